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
    response_head_lines(
        out,
        version,
        status,
        headers,
        &[],
        content_length,
        chunked,
        keep_alive,
    );
}

/// [`response_head`] with `lines` after the fields: header lines made by [`field_line`] when
/// the config was compiled, copied as they are. Configured headers (security headers, CORS)
/// are checked once at startup instead of byte by byte on every response; callgrind put that
/// check at a third of the instructions the security headers added per request.
#[allow(clippy::too_many_arguments)]
pub fn response_head_lines<N: AsRef<[u8]>, V: AsRef<[u8]>>(
    out: &mut Vec<u8>,
    version: Version,
    status: u16,
    headers: &[(N, V)],
    lines: &[bytes::Bytes],
    content_length: Option<usize>,
    chunked: bool,
    keep_alive: bool,
) {
    // Sized once for the usual head: growing it was a visible share of a request's CPU.
    out.reserve(
        128 + headers
            .iter()
            .map(|(n, v)| n.as_ref().len() + v.as_ref().len() + 4)
            .sum::<usize>()
            + lines.iter().map(|l| l.len()).sum::<usize>(),
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
    // Lines never carry `Date` ([`field_line`] refuses it).
    for line in lines {
        out.extend_from_slice(line);
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
/// fields and then `extra` ones, `Content-Length` when `content_length` is Some, then CRLF.
/// Fields are sanitised as in [`response_head`]; they must not repeat `Host` or
/// `Content-Length`. (Two lists, so that a caller adding a field or two to a request's own
/// need not copy them all into a new one.)
pub fn request_head<N: AsRef<[u8]>, V: AsRef<[u8]>>(
    out: &mut Vec<u8>,
    method: &[u8],
    path_and_query: &[u8],
    host: &[u8],
    headers: &[(N, V)],
    extra: &[(&[u8], &[u8])],
    content_length: Option<usize>,
) {
    out.extend_from_slice(method);
    out.push(b' ');
    out.extend_from_slice(path_and_query);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    push_field(out, b"Host", host);
    for (name, value) in headers {
        push_field(out, name.as_ref(), value.as_ref());
    }
    for (name, value) in extra {
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
pub(super) static TOKEN: [bool; 256] = {
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

/// Whether every byte of a non-empty name is a `tchar`. Branch-free over the bytes: names
/// are nearly always valid, and an early exit per byte cost more than it saved (callgrind:
/// the per-byte checks were a third of the instructions spent writing a response head).
pub(crate) fn is_token(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().fold(true, |ok, &b| ok & is_token_byte(b))
}

/// Bytes a field value must not carry onto the wire.
fn breaks_line(b: u8) -> bool {
    matches!(b, b'\r' | b'\n' | 0)
}

/// Whether `value` holds a CR, LF or NUL, eight bytes at a time (SWAR: a word has a zero
/// byte iff `(x - 0x01..) & !x & 0x80..` is non-zero). This check runs on every field of
/// every head, and a byte loop was the largest share of writing one.
fn has_line_break(value: &[u8]) -> bool {
    const LO: u64 = u64::from_ne_bytes([0x01; 8]);
    const HI: u64 = u64::from_ne_bytes([0x80; 8]);
    const CR: u64 = u64::from_ne_bytes([b'\r'; 8]);
    const LF: u64 = u64::from_ne_bytes([b'\n'; 8]);
    let zero_byte = |x: u64| x.wrapping_sub(LO) & !x & HI;
    let mut words = value.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        let x = u64::from_ne_bytes(b);
        if zero_byte(x) | zero_byte(x ^ CR) | zero_byte(x ^ LF) != 0 {
            return true;
        }
    }
    words.remainder().iter().any(|&b| breaks_line(b))
}

/// One header line, `name: value CRLF`, checked now so that it can be written as it is on
/// every response ([`response_head_lines`]). Refuses what [`push_field`] would drop or
/// rewrite, and the fields the connection writes itself.
pub fn field_line(name: &str, value: &str) -> Result<bytes::Bytes, String> {
    if !is_token(name.as_bytes()) {
        return Err(format!("{name:?} is not a valid header name"));
    }
    if has_line_break(value.as_bytes()) {
        return Err(format!("{name}: {value:?} cannot be sent in a header"));
    }
    const OWN: [&str; 4] = ["date", "content-length", "transfer-encoding", "connection"];
    if OWN.iter().any(|o| o.eq_ignore_ascii_case(name)) {
        return Err(format!(
            "{name} is written by the connection, not configurable"
        ));
    }
    let mut out = Vec::with_capacity(name.len() + value.len() + 4);
    push_field(&mut out, name.as_bytes(), value.as_bytes());
    Ok(bytes::Bytes::from(out))
}

/// `name: value CRLF`, dropping an invalid name and neutralising CR/LF/NUL in the value.
// KrakenD: Go's server skips invalid field names and turns newlines in values into spaces.
fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    #[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
    if super::field_simd::push_short(out, name, value) {
        return;
    }
    push_field_bytes(out, name, value);
}

/// [`push_field`] byte by byte: any length, and a value with line breaks.
fn push_field_bytes(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    if !is_token(name) {
        return;
    }
    out.reserve(name.len() + value.len() + 4);
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    // Word-at-a-time: values are short, and memchr3's setup cost more than the scan.
    if !has_line_break(value) {
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
    fn the_short_field_writer_writes_exactly_what_the_byte_wise_one_does() {
        // Every byte value at the start, middle and end of names and values of every length
        // around the short writer's pieces (1-3, 4-7, 8-15, 16-32) and its limit.
        let lens: [usize; 17] = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 40];
        let check = |name: &[u8], value: &[u8]| {
            let (mut fast, mut slow) = (b"x".to_vec(), b"x".to_vec());
            push_field(&mut fast, name, value);
            push_field_bytes(&mut slow, name, value);
            assert_eq!(fast, slow, "{name:?}: {value:?}");
            // The short writer alone: it takes every short clean field (no needless fallback)
            // and leaves the output untouched when it declines.
            #[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
            {
                let short = super::super::field_simd::MAX;
                let clean = is_token(name)
                    && name.len() <= short
                    && value.len() <= short
                    && !has_line_break(value);
                let mut alone = b"x".to_vec();
                let took = super::super::field_simd::push_short(&mut alone, name, value);
                assert_eq!(took, clean, "{name:?}: {value:?}");
                if !took {
                    assert_eq!(alone, b"x", "{name:?}: {value:?}");
                }
            }
        };
        for &n in &lens {
            for &v in &lens {
                for b in 0..=255u8 {
                    for pos in [0, n / 2, n.saturating_sub(1)] {
                        let mut name = vec![b'N'; n];
                        if let Some(x) = name.get_mut(pos) {
                            *x = b;
                        }
                        check(&name, &vec![b'v'; v]);
                        let mut value = vec![b'v'; v];
                        if let Some(x) = value.get_mut(pos.min(v.saturating_sub(1))) {
                            *x = b;
                        }
                        check(&vec![b'N'; n], &value);
                    }
                }
            }
        }
    }

    #[test]
    fn a_line_break_is_found_at_every_position_and_only_there() {
        for len in 0..40 {
            assert!(!has_line_break(&vec![b'a'; len]), "clean {len}");
            for pos in 0..len {
                for bad in [b'\r', b'\n', 0u8] {
                    let mut v = vec![0x7fu8; len];
                    v[pos] = bad;
                    assert!(has_line_break(&v), "{bad} at {pos} of {len}");
                }
                // Bytes next to the forbidden ones (and with the high bit set) are clean.
                let mut v = vec![b'a'; len];
                v[pos] = [0x0b, 0x0c, 0x0e, 0x01, 0x80, 0x8d, 0xff][pos % 7];
                assert!(!has_line_break(&v), "{:?}", v);
            }
        }
    }

    #[test]
    fn configured_lines_are_written_after_the_fields_and_before_date() {
        let line = field_line("X-Frame-Options", "DENY").unwrap();
        assert!(field_line("Bad Name", "x").is_err());
        assert!(field_line("X-A", "a\r\nSet-Cookie: x").is_err());
        assert!(field_line("date", "x").is_err());
        let mut out = Vec::new();
        let fields: &[(&[u8], &[u8])] = &[(b"X-A", b"1")];
        response_head_lines(
            &mut out,
            Version::Http11,
            200,
            fields,
            &[line],
            Some(0),
            false,
            true,
        );
        let text = text(&out);
        let a = text.find("X-A: 1\r\n").unwrap();
        let f = text.find("X-Frame-Options: DENY\r\n").unwrap();
        let d = text.find("Date: ").unwrap();
        assert!(a < f && f < d, "{text}");
    }

    #[test]
    fn a_name_is_a_token_only_when_every_byte_is_a_tchar() {
        assert!(is_token(b"X-Frame-Options"));
        assert!(!is_token(b""));
        for bad in [b' ', b':', b'\r', b'\n', 0, 0x80, b'(', b'"'] {
            for pos in 0..3 {
                let mut n = b"abc".to_vec();
                n[pos] = bad;
                assert!(!is_token(&n), "{n:?}");
            }
        }
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
            &[],
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
