//! Response-head parsing (client side, for backend responses). OWNER: codec helper.
use super::{Framing, Headers, HttpError, Limits, Version};
use bytes::BytesMut;

#[derive(Clone, Debug)]
pub struct ResponseHead {
    pub status: u16,
    pub version: Version,
    pub headers: Headers,
    pub framing: Framing,
    /// The backend allows reusing the connection after this response.
    pub keep_alive: bool,
}

/// Parse one response head from the front of `buf`, skipping interim 1xx responses (except
/// 101). `head_request`: the request was HEAD (no body whatever the headers say).
/// Same `Ok(None)` / split-off contract as [`super::request::parse_request`].
pub fn parse_response(
    buf: &mut BytesMut,
    head_request: bool,
    limits: &Limits,
) -> Result<Option<ResponseHead>, HttpError> {
    let _ = (buf, head_request, limits);
    Err(HttpError::BadResponse("codec not implemented yet"))
}
