//! Response-head parsing (client side, for backend responses): `httparse` for syntax, interim
//! 1xx responses skipped, framing decided per RFC 9112 §6.3 with the smuggling-relevant
//! conflicts (CL+TE, differing CLs) rejected rather than guessed.
use super::fields::{self, ContentLength, TransferCoding};
use super::{Framing, Headers, HttpError, Limits, Version};
use bytes::BytesMut;

#[derive(Clone, Debug)]
pub struct ResponseHead {
    pub status: u16,
    pub version: Version,
    pub headers: Headers,
    pub framing: Framing,
    /// The backend allows reusing the connection after this response (never for a
    /// close-delimited body or a 101 switch).
    pub keep_alive: bool,
}

/// Parse one response head from the front of `buf`, skipping interim 1xx responses (except
/// 101). `head_request`: the request was HEAD (no body whatever the headers say).
/// Same `Ok(None)` / split-off contract as [`super::request::parse_request`]; interim
/// responses already skipped stay consumed even when the final head is still incomplete.
pub fn parse_response(
    buf: &mut BytesMut,
    head_request: bool,
    limits: &Limits,
) -> Result<Option<ResponseHead>, HttpError> {
    loop {
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
        if (100..200).contains(&raw.status) && raw.status != 101 {
            // 100 Continue, 102 Processing, 103 Early Hints: not the answer, read on.
            continue;
        }
        if fields::has_nul_or_bare_cr(&head) {
            return Err(HttpError::BadResponse("NUL or bare CR in response head"));
        }
        let (headers, noted) = fields::build_headers(
            &head,
            &ranges,
            HttpError::BadResponse("malformed response head"),
        )?;
        return finish(raw.status, raw.version, headers, &noted, head_request).map(Some);
    }
}

struct RawHead {
    len: usize,
    status: u16,
    version: Version,
}

fn parse_raw(
    buf: &[u8],
    max_headers: usize,
    fields: &mut fields::FieldRanges,
) -> Result<Option<RawHead>, HttpError> {
    #[cfg(all(target_arch = "x86_64", target_feature = "ssse3"))]
    {
        if let Some(h) = super::fast_head::response(buf, max_headers, fields) {
            return Ok(Some(RawHead {
                len: h.len,
                status: h.status,
                version: h.version,
            }));
        }
        fields.clear();
    }
    fields::with_slots(max_headers, |slots| {
        let mut res = httparse::Response::new(&mut []);
        let len = match httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut res, buf, slots)
        {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders),
            Err(_) => return Err(HttpError::BadResponse("not an HTTP/1.x response head")),
        };
        let (Some(status), Some(version)) = (res.code, res.version) else {
            return Err(HttpError::BadResponse("malformed status line"));
        };
        fields::record_fields(fields, buf, res.headers);
        let version = if version == 0 {
            Version::Http10
        } else {
            Version::Http11
        };
        Ok(Some(RawHead {
            len,
            status,
            version,
        }))
    })
}

fn finish(
    status: u16,
    version: Version,
    headers: Headers,
    noted: &fields::Noted,
    head_request: bool,
) -> Result<ResponseHead, HttpError> {
    let framing = response_framing(status, &headers, noted, head_request)?;
    let keep_alive = status != 101
        && framing != Framing::CloseDelimited
        && match version {
            Version::Http11 => !noted.connection_has(&headers, "close"),
            Version::Http10 => {
                noted.connection_has(&headers, "keep-alive")
                    && !noted.connection_has(&headers, "close")
            }
        };
    Ok(ResponseHead {
        status,
        version,
        headers,
        framing,
        keep_alive,
    })
}

/// RFC 9112 §6.3, in order.
fn response_framing(
    status: u16,
    headers: &Headers,
    noted: &fields::Noted,
    head_request: bool,
) -> Result<Framing, HttpError> {
    if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Framing::None);
    }
    let cl = noted.content_length(headers);
    match noted.transfer_coding(headers) {
        TransferCoding::Absent => {}
        _ if cl != ContentLength::Absent => {
            return Err(HttpError::BadResponse(
                "both Content-Length and Transfer-Encoding",
            ))
        }
        TransferCoding::Chunked => return Ok(Framing::Chunked),
        // The final coding is not chunked: the body runs to the end of the connection.
        TransferCoding::Other => return Ok(Framing::CloseDelimited),
        TransferCoding::Invalid => return Err(HttpError::BadResponse("invalid Transfer-Encoding")),
    }
    match cl {
        ContentLength::Value(n) => Ok(Framing::Length(n)),
        ContentLength::Invalid => Err(HttpError::BadResponse("invalid Content-Length")),
        ContentLength::Absent => Ok(Framing::CloseDelimited),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8], head_request: bool) -> Result<Option<ResponseHead>, HttpError> {
        parse_response(&mut BytesMut::from(raw), head_request, &Limits::default())
    }

    fn parse_ok(raw: &[u8]) -> ResponseHead {
        match parse(raw, false) {
            Ok(Some(head)) => head,
            other => panic!(
                "expected a head for {:?}, got {other:?}",
                String::from_utf8_lossy(raw)
            ),
        }
    }

    #[test]
    fn length_response_is_parsed_and_the_body_left_in_the_buffer() {
        let mut buf =
            BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nhi"[..]);
        let head = parse_response(&mut buf, false, &Limits::default())
            .ok()
            .flatten();
        let head = head.unwrap_or_else(|| panic!("no head"));
        assert_eq!(head.status, 200);
        assert_eq!(head.framing, Framing::Length(2));
        assert!(head.keep_alive);
        assert_eq!(head.headers.get("x-a").map(|v| v.as_ref()), Some(&b"b"[..]));
        assert_eq!(buf.as_ref(), b"hi");
    }

    #[test]
    fn interim_responses_are_skipped_but_101_is_returned() {
        let mut buf =
            BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"[..]);
        let head = parse_response(&mut buf, false, &Limits::default())
            .ok()
            .flatten();
        assert_eq!(head.map(|h| h.status), Some(201));
        assert!(buf.is_empty());
        let head = parse_ok(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
        assert_eq!(
            (head.status, head.framing, head.keep_alive),
            (101, Framing::None, false)
        );
    }

    #[test]
    fn interim_response_then_partial_final_asks_for_more() {
        let mut buf = BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"[..]);
        assert!(matches!(
            parse_response(&mut buf, false, &Limits::default()),
            Ok(None)
        ));
        buf.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        let head = parse_response(&mut buf, false, &Limits::default())
            .ok()
            .flatten();
        assert_eq!(head.map(|h| h.status), Some(200));
    }

    #[test]
    fn bodiless_statuses_and_head_requests_have_no_body() {
        assert_eq!(
            parse_ok(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n").framing,
            Framing::None
        );
        assert_eq!(
            parse_ok(b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n").framing,
            Framing::None
        );
        let head = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true)
            .ok()
            .flatten();
        assert_eq!(
            head.map(|h| (h.framing, h.keep_alive)),
            Some((Framing::None, true))
        );
    }

    #[test]
    fn transfer_encoding_decides_between_chunked_and_close_delimited() {
        let head = parse_ok(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n");
        assert_eq!((head.framing, head.keep_alive), (Framing::Chunked, true));
        let head = parse_ok(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
        assert_eq!(
            (head.framing, head.keep_alive),
            (Framing::CloseDelimited, false)
        );
    }

    #[test]
    fn conflicting_framing_is_a_bad_response() {
        for raw in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n",
        ] {
            assert!(
                matches!(parse(raw, false), Err(HttpError::BadResponse(_))),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn no_length_means_close_delimited_and_no_reuse() {
        let head = parse_ok(b"HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(
            (head.framing, head.keep_alive),
            (Framing::CloseDelimited, false)
        );
    }

    #[test]
    fn keep_alive_follows_version_and_connection() {
        assert!(
            !parse_ok(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                .keep_alive
        );
        assert!(!parse_ok(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
        let head =
            parse_ok(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
        assert_eq!((head.version, head.keep_alive), (Version::Http10, true));
    }

    #[test]
    fn garbage_is_a_bad_response() {
        for raw in [
            &b"HTTP/2 200 OK\r\n\r\n"[..],
            b"hello world\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX\0: 1\r\n\r\n",
        ] {
            assert!(
                matches!(parse(raw, false), Err(HttpError::BadResponse(_))),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn response_limits_apply() {
        let limits = Limits {
            max_headers: 1,
            ..Limits::default()
        };
        let raw = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n";
        assert_eq!(
            parse_response(&mut BytesMut::from(&raw[..]), false, &limits).err(),
            Some(HttpError::TooManyHeaders)
        );
        let limits = Limits {
            max_header_bytes: 20,
            ..Limits::default()
        };
        assert_eq!(
            parse_response(&mut BytesMut::from(&raw[..]), false, &limits).err(),
            Some(HttpError::HeadTooLarge)
        );
        let partial = b"HTTP/1.1 200 OK\r\nA: 1111111111";
        assert_eq!(
            parse_response(&mut BytesMut::from(&partial[..]), false, &limits).err(),
            Some(HttpError::HeadTooLarge)
        );
    }
}
