//! Request-head parsing and validation (server side): `httparse` for syntax, then the
//! framing rules a gateway must enforce so that it and its backends never disagree on where a
//! request ends (RFC 9112 §6, request smuggling).
use super::fields::{self, ContentLength, TransferCoding};
use super::host;
use super::{Framing, Headers, HttpError, Limits, Version};
use bytes::{Bytes, BytesMut};
use std::ops::Range;

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
    /// `Expect: 100-continue` was sent on HTTP/1.1 with a body to come: answer
    /// `100 Continue` before reading the body.
    // KrakenD: Go only sends 100 Continue when the request has a body (ContentLength != 0).
    pub expect_continue: bool,
    /// The request came over the TLS listener (set by the connection loop).
    pub tls: bool,
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
    if target_too_long(buf, limits.max_target_bytes) {
        return Err(HttpError::UriTooLong);
    }
    if !fields::precheck(buf, limits.max_header_bytes)? {
        return Ok(None);
    }
    let mut ranges = fields::FieldRanges::new();
    let Some(raw) = parse_raw(buf, limits.max_headers, &mut ranges)? else {
        return fields::incomplete(buf.len(), limits.max_header_bytes);
    };
    if raw.len > limits.max_header_bytes {
        return Err(HttpError::HeadTooLarge);
    }
    let head = buf.split_to(raw.len).freeze();
    if fields::has_nul_or_bare_cr(&head) {
        return Err(HttpError::BadRequest("NUL or bare CR in request head"));
    }
    let bad_offsets = HttpError::BadRequest("malformed request head");
    let method =
        fields::slice(&head, raw.method).ok_or(HttpError::BadRequest("malformed request head"))?;
    let target =
        fields::slice(&head, raw.target).ok_or(HttpError::BadRequest("malformed request head"))?;
    let (headers, noted) = fields::build_headers(&head, &ranges, bad_offsets)?;
    finish(method, target, raw.version, headers, &noted).map(Some)
}

/// Whether the request-target at the front of `buf` is longer than `max`, as far as it has
/// arrived: the check runs before the request line is complete, so a client streaming an
/// endless target is answered once it passes the cap, not when the head limit is reached.
/// Only the request line is scanned (two `memchr`s), so a trickled head costs little per read.
fn target_too_long(buf: &[u8], max: usize) -> bool {
    // httparse skips empty lines before the request line (RFC 9112 §2.2).
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let line = buf.get(start..).unwrap_or_default();
    let Some(sp) = memchr::memchr(b' ', line) else {
        return false;
    };
    let rest = line.get(sp + 1..).unwrap_or_default();
    let end = memchr::memchr3(b' ', b'\r', b'\n', rest).unwrap_or(rest.len());
    end > max
}

/// What `httparse` found, as offsets into the not-yet-split buffer.
struct RawHead {
    len: usize,
    method: Range<usize>,
    target: Range<usize>,
    version: Version,
}

fn parse_raw(
    buf: &[u8],
    max_headers: usize,
    fields: &mut fields::FieldRanges,
) -> Result<Option<RawHead>, HttpError> {
    #[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
    {
        if let Some(h) = super::fast_head::request(buf, max_headers, fields) {
            return Ok(Some(RawHead {
                len: h.len,
                method: h.method,
                target: h.target,
                version: h.version,
            }));
        }
        fields.clear();
    }
    fields::with_slots(max_headers, |slots| {
        let mut req = httparse::Request::new(&mut []);
        let len = match req.parse_with_uninit_headers(buf, slots) {
            Ok(httparse::Status::Complete(len)) => {
                fields::record_fields(fields, buf, req.headers);
                len
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(map_error(e)),
        };
        let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version)
        else {
            return Err(HttpError::BadRequest("malformed request line"));
        };
        let version = match version {
            0 => Version::Http10,
            _ => Version::Http11,
        };
        Ok(Some(RawHead {
            len,
            method: fields::offset_in(buf, method.as_bytes()),
            target: fields::offset_in(buf, target.as_bytes()),
            version,
        }))
    })
}

fn map_error(e: httparse::Error) -> HttpError {
    match e {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders,
        httparse::Error::HeaderName => HttpError::BadRequest("invalid header name"),
        httparse::Error::HeaderValue => HttpError::BadRequest("invalid header value"),
        httparse::Error::NewLine => HttpError::BadRequest("invalid line ending"),
        httparse::Error::Version => HttpError::BadRequest("malformed HTTP version"),
        httparse::Error::Token => HttpError::BadRequest("invalid method or target"),
        httparse::Error::Status => HttpError::BadRequest("malformed request line"),
    }
}

/// The semantic checks on a syntactically valid head.
fn finish(
    method: Bytes,
    target: Bytes,
    version: Version,
    headers: Headers,
    noted: &fields::Noted,
) -> Result<RequestHead, HttpError> {
    let target = normalize_target(target)?;

    let hosts = noted.hosts;
    // KrakenD: Go's server answers 400 "missing required Host header" / "too many Host headers".
    if hosts > 1 {
        return Err(HttpError::BadRequest("too many Host headers"));
    }
    if hosts == 0 && version == Version::Http11 {
        return Err(HttpError::BadRequest("missing required Host header"));
    }
    if hosts == 1
        && headers
            .0
            .get(noted.host)
            .is_some_and(|h| !host::valid_host(fields::trim_ows(&h.value)))
    {
        return Err(HttpError::BadRequest("malformed Host header"));
    }

    let framing = request_framing(&headers, noted, version)?;

    let keep_alive = match version {
        Version::Http11 => !noted.connection_has(&headers, "close"),
        Version::Http10 => {
            noted.connection_has(&headers, "keep-alive") && !noted.connection_has(&headers, "close")
        }
    };

    let expect = if noted.expect {
        headers.get("expect")
    } else {
        None
    };
    let expect_continue = match expect {
        None => false,
        Some(v) if fields::list_has_token(std::iter::once(v.as_ref()), "100-continue") => {
            version == Version::Http11 && !matches!(framing, Framing::None | Framing::Length(0))
        }
        // KrakenD: Go answers 417 to any expectation it does not know.
        Some(v) if fields::trim_ows(v).is_empty() => false,
        Some(_) => return Err(HttpError::ExpectationFailed),
    };

    Ok(RequestHead {
        method,
        target,
        version,
        headers,
        framing,
        keep_alive,
        expect_continue,
        tls: false,
    })
}

/// RFC 9112 §6.1-6.3 for requests, strict: anything ambiguous is a 400, never a guess.
fn request_framing(
    headers: &Headers,
    noted: &fields::Noted,
    version: Version,
) -> Result<Framing, HttpError> {
    let cl = noted.content_length(headers);
    let te = noted.transfer_coding(headers);
    if te == TransferCoding::Absent {
        return match cl {
            ContentLength::Absent => Ok(Framing::None),
            ContentLength::Value(0) => Ok(Framing::None),
            ContentLength::Value(n) => Ok(Framing::Length(n)),
            ContentLength::Invalid => Err(HttpError::BadRequest("invalid Content-Length")),
        };
    }
    // KrakenD: Go ignores Content-Length when chunked is present; a gateway in front of other
    // parsers must not, since the two readings disagree (RFC 9112 §6.1: MAY reject).
    if cl != ContentLength::Absent {
        return Err(HttpError::BadRequest(
            "both Content-Length and Transfer-Encoding",
        ));
    }
    if version == Version::Http10 {
        return Err(HttpError::BadRequest("Transfer-Encoding on HTTP/1.0"));
    }
    match te {
        TransferCoding::Chunked => Ok(Framing::Chunked),
        // KrakenD: Go answers 501 for an unsupported transfer coding; the brief wants 400 (a
        // request body whose final coding is not chunked has no determinable length).
        _ => Err(HttpError::BadRequest("unsupported Transfer-Encoding")),
    }
}

/// Origin-form stays; absolute-form is reduced to path+query (RFC 9112 §3.2.2); `*` stays.
fn normalize_target(target: Bytes) -> Result<Bytes, HttpError> {
    match target.first() {
        Some(b'/') => return Ok(target),
        _ if target.as_ref() == b"*" => return Ok(target),
        _ => {}
    }
    let rest = strip_scheme(&target).ok_or(HttpError::BadRequest("invalid request target"))?;
    let authority_len = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    if authority_len == 0 {
        return Err(HttpError::BadRequest(
            "absolute-form target without authority",
        ));
    }
    let path = rest.get(authority_len..).unwrap_or_default();
    match path.first() {
        Some(b'/') => Ok(target.slice_ref(path)),
        // `http://host` or `http://host?q`: the path is `/`, which is not in the buffer.
        _ => {
            let mut owned = Vec::with_capacity(path.len() + 1);
            owned.push(b'/');
            owned.extend_from_slice(path);
            Ok(Bytes::from(owned))
        }
    }
}

/// The part after `http://` or `https://` (scheme case-insensitive).
fn strip_scheme(target: &[u8]) -> Option<&[u8]> {
    for scheme in [&b"http://"[..], &b"https://"[..]] {
        if let Some(prefix) = target.get(..scheme.len()) {
            if prefix.eq_ignore_ascii_case(scheme) {
                return target.get(scheme.len()..);
            }
        }
    }
    None
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
