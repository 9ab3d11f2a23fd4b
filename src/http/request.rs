//! Request-head parsing and validation (server side). OWNER: codec helper.
use super::{Framing, Headers, HttpError, Limits, Version};
use bytes::{Bytes, BytesMut};

/// A parsed request head. All byte fields are slices of one frozen buffer.
#[derive(Clone, Debug)]
pub struct RequestHead {
    /// Method token as sent (case-sensitive, e.g. `GET`).
    pub method: Bytes,
    /// Request target as sent (origin-form `/path?query`, or absolute-form reduced to its
    /// path+query; `*` for OPTIONS *).
    pub target: Bytes,
    pub version: Version,
    pub headers: Headers,
    pub framing: Framing,
    /// Whether the connection stays open after this exchange (HTTP/1.1 default yes unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    pub keep_alive: bool,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
}

impl RequestHead {
    /// The path part of the target (before `?`).
    pub fn path(&self) -> &[u8] {
        match memchr::memchr(b'?', &self.target) {
            Some(i) => self.target.get(..i).unwrap_or(&[]),
            None => &self.target,
        }
    }

    /// The raw query (after `?`, without it), if any.
    pub fn query(&self) -> Option<&[u8]> {
        memchr::memchr(b'?', &self.target).and_then(|i| self.target.get(i + 1..))
    }
}

/// Parse one request head from the front of `buf`.
/// - `Ok(None)`: incomplete, read more (but `Err(HeadTooLarge)` once `buf` holds more than
///   `limits.max_header_bytes` without a complete head).
/// - `Ok(Some(head))`: the head bytes were split off the front of `buf`; what remains is body
///   and/or pipelined data.
/// - `Err(_)`: reject; the caller answers `err.status()` and closes.
pub fn parse_request(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<RequestHead>, HttpError> {
    let _ = (buf, limits);
    Err(HttpError::BadRequest("codec not implemented yet"))
}
