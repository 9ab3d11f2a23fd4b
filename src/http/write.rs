//! Encoders for response heads (to clients) and request heads (to backends). OWNER: codec helper.
use super::Version;

/// The canonical reason phrase for a status code ("OK", "Not Found", ...; "" if unknown).
pub fn reason(status: u16) -> &'static str {
    let _ = status;
    ""
}

/// Append a response head to `out`: status line (`HTTP/1.1` unless `version` is 1.0), the
/// given fields, `Date`, `Content-Length` when `content_length` is Some (else
/// `Transfer-Encoding: chunked` if `chunked`), `Connection: close` when `!keep_alive` (or
/// `Connection: keep-alive` for a kept-alive HTTP/1.0 client), then CRLF.
pub fn response_head(
    out: &mut Vec<u8>,
    version: Version,
    status: u16,
    headers: &[(&[u8], &[u8])],
    content_length: Option<usize>,
    chunked: bool,
    keep_alive: bool,
) {
    let _ = (
        out,
        version,
        status,
        headers,
        content_length,
        chunked,
        keep_alive,
    );
}

/// Append a backend request head to `out`: `METHOD path_and_query HTTP/1.1`, `Host`, the given
/// fields, `Content-Length` when `content_length` is Some, then CRLF.
pub fn request_head(
    out: &mut Vec<u8>,
    method: &[u8],
    path_and_query: &[u8],
    host: &[u8],
    headers: &[(&[u8], &[u8])],
    content_length: Option<usize>,
) {
    let _ = (out, method, path_and_query, host, headers, content_length);
}

/// Append one chunk in chunked transfer coding (`size CRLF data CRLF`); an empty `data` writes
/// the last chunk `0 CRLF CRLF`.
pub fn chunk(out: &mut Vec<u8>, data: &[u8]) {
    let _ = (out, data);
}
