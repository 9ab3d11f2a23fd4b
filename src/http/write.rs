//! Encoders for response heads (to clients) and request heads (to backends), and chunked
//! transfer coding. Hot path: no `format!`, integers via `itoa`, everything appended with
//! `extend_from_slice`.
use super::{date, Version};

/// The canonical reason phrase for a status code ("OK", "Not Found", ...; "" if unknown).
// KrakenD: the phrases of Go's `http.StatusText`, which KrakenD's status lines carry.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        414 => "Request URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Requested Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Entity",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "",
    }
}

/// Append a response head to `out`: the status line (always `HTTP/1.1`, which RFC 9110 §6.2
/// allows towards 1.0 clients and Go does too), the given fields, `Date` (unless the fields
/// already carry one), `Content-Length` when `content_length` is Some (else
/// `Transfer-Encoding: chunked` if `chunked`), `Connection: close` when `!keep_alive` (or
/// `Connection: keep-alive` for a kept-alive HTTP/1.0 client), then CRLF.
///
/// Fields must not repeat what this function writes (Content-Length, Transfer-Encoding,
/// Connection). A field with an invalid name is dropped and CR/LF in a value become spaces,
/// so a value taken from a backend can never split the response.
pub fn response_head<N: AsRef<[u8]>, V: AsRef<[u8]>>(
    out: &mut Vec<u8>,
    version: Version,
    status: u16,
    headers: &[(N, V)],
    content_length: Option<usize>,
    chunked: bool,
    keep_alive: bool,
) {
    // Sized once for the usual head: growing it was a visible share of a request's CPU.
    out.reserve(
        128 + headers
            .iter()
            .map(|(n, v)| n.as_ref().len() + v.as_ref().len() + 4)
            .sum::<usize>(),
    );
    out.extend_from_slice(b"HTTP/1.1 ");
    push_int(out, status);
    out.push(b' ');
    match reason(status) {
        // KrakenD: Go writes "status code NNN" when it knows no phrase.
        "" => {
            out.extend_from_slice(b"status code ");
            push_int(out, status);
        }
        phrase => out.extend_from_slice(phrase.as_bytes()),
    }
    out.extend_from_slice(b"\r\n");
    let mut has_date = false;
    for (name, value) in headers {
        let name = name.as_ref();
        has_date |= name.eq_ignore_ascii_case(b"date");
        push_field(out, name, value.as_ref());
    }
    if !has_date {
        date::with_date(|d| push_field(out, b"Date", d));
    }
    match content_length {
        Some(n) => {
            out.extend_from_slice(b"Content-Length: ");
            push_int(out, n);
            out.extend_from_slice(b"\r\n");
        }
        None if chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        None => {}
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if version == Version::Http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Append a backend request head to `out`: `METHOD path_and_query HTTP/1.1`, `Host`, the given
/// fields, `Content-Length` when `content_length` is Some, then CRLF. Fields are sanitised as
/// in [`response_head`]; they must not repeat `Host` or `Content-Length`.
pub fn request_head(
    out: &mut Vec<u8>,
    method: &[u8],
    path_and_query: &[u8],
    host: &[u8],
    headers: &[(&[u8], &[u8])],
    content_length: Option<usize>,
) {
    out.extend_from_slice(method);
    out.push(b' ');
    out.extend_from_slice(path_and_query);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    push_field(out, b"Host", host);
    for (name, value) in headers {
        push_field(out, name, value);
    }
    if let Some(n) = content_length {
        out.extend_from_slice(b"Content-Length: ");
        push_int(out, n);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Append one chunk in chunked transfer coding (`size CRLF data CRLF`); an empty `data` writes
/// the last chunk `0 CRLF CRLF`.
pub fn chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        out.extend_from_slice(b"0\r\n\r\n");
        return;
    }
    push_hex(out, data.len());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

fn push_int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn push_hex(out: &mut Vec<u8>, n: usize) {
    let digits = ((usize::BITS - n.leading_zeros()).div_ceil(4)).max(1);
    for i in (0..digits).rev() {
        let nibble = ((n >> (i * 4)) & 0xf) as u8;
        out.push(if nibble < 10 {
            b'0' + nibble
        } else {
            b'a' + nibble - 10
        });
    }
}

/// RFC 9110 `tchar`, as a table: the name check runs on every header of every response.
// Indexing runs at compile time only: an out-of-range index would fail the build.
#[allow(clippy::indexing_slicing)]
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        i += 1;
    }
    t
};

fn is_token_byte(b: u8) -> bool {
    // A u8 always indexes a 256-entry table: the check compiles away.
    TOKEN.get(usize::from(b)).copied().unwrap_or(false)
}

/// Bytes a field value must not carry onto the wire.
fn breaks_line(b: u8) -> bool {
    matches!(b, b'\r' | b'\n' | 0)
}

/// `name: value CRLF`, dropping an invalid name and neutralising CR/LF/NUL in the value.
// KrakenD: Go's server skips invalid field names and turns newlines in values into spaces.
fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    if name.is_empty() || !name.iter().all(|&b| is_token_byte(b)) {
        return;
    }
    out.reserve(name.len() + value.len() + 4);
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    // A plain loop: values are short, and memchr3's setup cost more than the scan.
    if !value.iter().any(|&b| breaks_line(b)) {
        out.extend_from_slice(value);
    } else {
        out.extend(value.iter().map(|&b| if breaks_line(b) { b' ' } else { b }));
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::parse_request;
    use crate::http::response::parse_response;
    use crate::http::{Framing, Limits};
    use bytes::BytesMut;

    const NONE: &[(&[u8], &[u8])] = &[];

    fn text(v: &[u8]) -> String {
        String::from_utf8_lossy(v).into_owned()
    }

    #[test]
    fn response_head_parses_back_with_its_fields() {
        let mut out = Vec::new();
        let fields: &[(&[u8], &[u8])] = &[(b"Content-Type", b"application/json"), (b"X-A", b"1")];
        response_head(
            &mut out,
            Version::Http11,
            404,
            fields,
            Some(1234),
            false,
            true,
        );
        let s = text(&out);
        assert!(s.starts_with("HTTP/1.1 404 Not Found\r\n"), "{s}");
        assert!(s.ends_with("\r\n\r\n"), "{s}");
        let head = parse_response(&mut BytesMut::from(&out[..]), false, &Limits::default())
            .ok()
            .flatten();
        let head = head.unwrap_or_else(|| panic!("unparseable: {s}"));
        assert_eq!(head.framing, Framing::Length(1234));
        assert!(head.keep_alive);
        assert_eq!(
            head.headers.get("x-a").map(|v| v.to_vec()),
            Some(b"1".to_vec())
        );
        let date = head
            .headers
            .get("date")
            .map(|v| text(v))
            .unwrap_or_default();
        assert!(httpdate::parse_http_date(&date).is_ok(), "{date}");
        assert!(!s.contains("Connection"), "{s}");
    }

    #[test]
    fn response_head_keeps_a_given_date_and_adds_none() {
        let mut out = Vec::new();
        let fields: &[(&[u8], &[u8])] = &[(b"date", b"Sun, 06 Nov 1994 08:49:37 GMT")];
        response_head(&mut out, Version::Http11, 200, fields, Some(0), false, true);
        assert_eq!(text(&out).matches("ate: ").count(), 1);
    }

    #[test]
    fn chunked_and_close_are_announced() {
        let mut out = Vec::new();
        response_head(&mut out, Version::Http11, 200, NONE, None, true, false);
        let s = text(&out);
        assert!(s.contains("\r\nTransfer-Encoding: chunked\r\n"), "{s}");
        assert!(s.contains("\r\nConnection: close\r\n"), "{s}");
    }

    #[test]
    fn http10_clients_get_a_11_status_line_and_explicit_keep_alive() {
        let mut out = Vec::new();
        response_head(&mut out, Version::Http10, 200, NONE, Some(2), false, true);
        let s = text(&out);
        assert!(s.starts_with("HTTP/1.1 200 OK\r\n"), "{s}");
        assert!(s.contains("\r\nConnection: keep-alive\r\n"), "{s}");
    }

    #[test]
    fn unknown_status_gets_gos_generic_phrase() {
        let mut out = Vec::new();
        response_head(&mut out, Version::Http11, 299, NONE, Some(0), false, true);
        assert!(text(&out).starts_with("HTTP/1.1 299 status code 299\r\n"));
        assert_eq!(reason(299), "");
        assert_eq!(reason(503), "Service Unavailable");
    }

    #[test]
    fn the_token_table_accepts_exactly_rfc_9110_tchar() {
        let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        for b in 0..=255u8 {
            assert_eq!(is_token_byte(b), tchar(b), "byte {b:#04x}");
        }
    }

    #[test]
    fn header_injection_is_neutralised() {
        let mut out = Vec::new();
        let fields: &[(&[u8], &[u8])] = &[
            (b"X-A", b"a\r\nSet-Cookie: x"),
            (b"Bad Name", b"v"),
            (b"", b"v"),
        ];
        response_head(&mut out, Version::Http11, 200, fields, Some(0), false, true);
        let s = text(&out);
        assert!(s.contains("\r\nX-A: a  Set-Cookie: x\r\n"), "{s}");
        assert!(!s.contains("Bad Name") && !s.contains("\r\n: v"), "{s}");
    }

    #[test]
    fn request_head_parses_back() {
        let mut out = Vec::new();
        let fields: &[(&[u8], &[u8])] = &[(b"Accept", b"*/*")];
        request_head(
            &mut out,
            b"POST",
            b"/a?b=c",
            b"backend:8080",
            fields,
            Some(5),
        );
        out.extend_from_slice(b"hello");
        let mut buf = BytesMut::from(&out[..]);
        let head = parse_request(&mut buf, &Limits::default()).ok().flatten();
        let head = head.unwrap_or_else(|| panic!("unparseable: {}", text(&out)));
        assert_eq!(head.method.as_ref(), b"POST");
        assert_eq!(head.target.as_ref(), b"/a?b=c");
        assert_eq!(
            head.headers.get("host").map(|v| v.to_vec()),
            Some(b"backend:8080".to_vec())
        );
        assert_eq!(head.framing, Framing::Length(5));
        assert_eq!(buf.as_ref(), b"hello");
    }

    #[test]
    fn chunk_sizes_are_lowercase_hex_and_empty_data_ends_the_body() {
        let mut out = Vec::new();
        chunk(&mut out, &[b'x'; 26]);
        assert!(out.starts_with(b"1a\r\n"));
        assert!(out.ends_with(b"x\r\n"));
        assert_eq!(out.len(), 4 + 26 + 2);
        let mut out = Vec::new();
        chunk(&mut out, b"a");
        chunk(&mut out, b"");
        assert_eq!(out, b"1\r\na\r\n0\r\n\r\n");
    }

    #[test]
    fn hex_writer_handles_boundaries() {
        for (n, hex) in [
            (0usize, "0"),
            (15, "f"),
            (16, "10"),
            (255, "ff"),
            (4096, "1000"),
            (usize::MAX, "ffffffffffffffff"),
        ] {
            let mut out = Vec::new();
            push_hex(&mut out, n);
            assert_eq!(text(&out), hex);
        }
    }
}
