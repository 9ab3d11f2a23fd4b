//! Unit tests of request-head parsing (`request.rs`).
use super::*;

fn parse(raw: &[u8]) -> Result<Option<RequestHead>, HttpError> {
    parse_request(&mut BytesMut::from(raw), &Limits::default())
}

fn parse_ok(raw: &[u8]) -> RequestHead {
    match parse(raw) {
        Ok(Some(head)) => head,
        other => panic!(
            "expected a head for {:?}, got {other:?}",
            String::from_utf8_lossy(raw)
        ),
    }
}

fn rejected(raw: &[u8]) -> HttpError {
    match parse(raw) {
        Err(e) => e,
        other => panic!(
            "expected an error for {:?}, got {other:?}",
            String::from_utf8_lossy(raw)
        ),
    }
}

#[test]
fn simple_get_is_parsed_and_split_off_leaving_the_body() {
    let mut buf = BytesMut::from(
        &b"POST /a/b?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET"[..],
    );
    let head = match parse_request(&mut buf, &Limits::default()) {
        Ok(Some(h)) => h,
        other => panic!("{other:?}"),
    };
    assert_eq!(head.method.as_ref(), b"POST");
    assert_eq!(head.target.as_ref(), b"/a/b?x=1");
    assert_eq!(head.path(), b"/a/b");
    assert_eq!(head.query(), Some(&b"x=1"[..]));
    assert_eq!(head.version, Version::Http11);
    assert_eq!(head.framing, Framing::Length(3));
    assert!(head.keep_alive);
    assert_eq!(
        head.headers.get("HOST").map(|v| v.as_ref()),
        Some(&b"h"[..])
    );
    assert_eq!(buf.as_ref(), b"abcGET");
}

#[test]
fn fields_are_slices_of_one_buffer() {
    let head = parse_ok(b"GET / HTTP/1.1\r\nHost: example\r\nX-A: 1\r\n\r\n");
    let start = head.method.as_ptr() as usize;
    let host = head
        .headers
        .get("host")
        .map(|v| v.as_ptr() as usize)
        .unwrap_or(0);
    // "GET / HTTP/1.1\r\nHost: " is 22 bytes: the value points into the same allocation.
    assert_eq!(host - start, 22);
}

#[test]
fn incomplete_head_asks_for_more() {
    assert_eq!(
        parse(b"GET / HTTP/1.1\r\nHost: h\r\n").map(|h| h.is_none()),
        Ok(true)
    );
    assert_eq!(parse(b"").map(|h| h.is_none()), Ok(true));
}

#[test]
fn incomplete_head_over_the_limit_is_431() {
    let limits = Limits {
        max_header_bytes: 64,
        ..Limits::default()
    };
    let mut raw = b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: ".to_vec();
    raw.resize(65, b'a');
    let err = parse_request(&mut BytesMut::from(&raw[..]), &limits).err();
    assert_eq!(err, Some(HttpError::HeadTooLarge));
    raw.truncate(64);
    assert!(matches!(
        parse_request(&mut BytesMut::from(&raw[..]), &limits),
        Ok(None)
    ));
}

#[test]
fn large_incomplete_head_without_line_end_is_431_past_the_precheck() {
    let limits = Limits {
        max_header_bytes: 16 * 1024,
        ..Limits::default()
    };
    let mut raw = b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: ".to_vec();
    raw.resize(12 * 1024, b'a');
    assert!(matches!(
        parse_request(&mut BytesMut::from(&raw[..]), &limits),
        Ok(None)
    ));
    raw.resize(17 * 1024, b'a');
    let err = parse_request(&mut BytesMut::from(&raw[..]), &limits).err();
    assert_eq!(err, Some(HttpError::HeadTooLarge));
}

#[test]
fn complete_head_over_the_limit_is_431() {
    let limits = Limits {
        max_header_bytes: 40,
        ..Limits::default()
    };
    let raw = b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: aaaaaaaaaaaaaaaa\r\n\r\n";
    let err = parse_request(&mut BytesMut::from(&raw[..]), &limits).err();
    assert_eq!(err, Some(HttpError::HeadTooLarge));
}

#[test]
fn too_many_headers_is_431() {
    let limits = Limits {
        max_headers: 2,
        ..Limits::default()
    };
    let raw = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
    let err = parse_request(&mut BytesMut::from(&raw[..]), &limits).err();
    assert_eq!(err.map(|e| e.status()), Some(431));
    let raw = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n\r\n";
    assert!(matches!(
        parse_request(&mut BytesMut::from(&raw[..]), &limits),
        Ok(Some(_))
    ));
}

#[test]
fn header_limit_above_the_stack_slots_uses_the_heap() {
    let limits = Limits {
        max_headers: fields::STACK_HEADERS + 10,
        ..Limits::default()
    };
    let mut raw = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    for _ in 0..fields::STACK_HEADERS + 5 {
        raw.extend_from_slice(b"X: y\r\n");
    }
    raw.extend_from_slice(b"\r\n");
    let head = parse_request(&mut BytesMut::from(&raw[..]), &limits);
    assert_eq!(
        head.ok().flatten().map(|h| h.headers.len()),
        Some(fields::STACK_HEADERS + 6)
    );
}

#[test]
fn content_length_with_transfer_encoding_is_400() {
    let err = rejected(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert_eq!(err.status(), 400);
}

#[test]
fn conflicting_content_lengths_are_400_but_identical_ones_pass() {
    assert_eq!(
        rejected(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n")
            .status(),
        400
    );
    assert_eq!(
        rejected(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\n").status(),
        400
    );
    let head =
        parse_ok(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n");
    assert_eq!(head.framing, Framing::Length(3));
    let head = parse_ok(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7 , 7\r\n\r\n");
    assert_eq!(head.framing, Framing::Length(7));
}

#[test]
fn malformed_content_length_is_400() {
    for cl in ["-1", "+3", "abc", "1 2", "18446744073709551616", ""] {
        let raw = format!("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {cl}\r\n\r\n");
        assert_eq!(rejected(raw.as_bytes()).status(), 400, "{cl:?}");
    }
}

#[test]
fn zero_content_length_means_no_body() {
    assert_eq!(
        parse_ok(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n").framing,
        Framing::None
    );
    assert_eq!(
        parse_ok(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").framing,
        Framing::None
    );
}

#[test]
fn chunked_final_coding_is_accepted_in_any_case_and_across_fields() {
    let head = parse_ok(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ChUnKeD\r\n\r\n");
    assert_eq!(head.framing, Framing::Chunked);
    let head = parse_ok(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(head.framing, Framing::Chunked);
}

#[test]
fn non_chunked_final_coding_is_400() {
    for te in [
        "gzip",
        "chunked, gzip",
        "chunked\r\nTransfer-Encoding: identity",
        "chunked, chunked",
        "",
    ] {
        let raw = format!("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: {te}\r\n\r\n");
        assert_eq!(
            rejected(raw.as_bytes()),
            HttpError::BadRequest("unsupported Transfer-Encoding"),
            "{te:?}"
        );
    }
}

#[test]
fn transfer_encoding_on_http10_is_400() {
    let err = rejected(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(err, HttpError::BadRequest("Transfer-Encoding on HTTP/1.0"));
}

#[test]
fn obs_fold_is_400() {
    assert_eq!(
        rejected(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  continued\r\n\r\n").status(),
        400
    );
    assert_eq!(
        rejected(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\tcontinued\r\n\r\n").status(),
        400
    );
}

#[test]
fn nul_and_bare_cr_are_400() {
    assert_eq!(
        rejected(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n").status(),
        400
    );
    assert_eq!(
        rejected(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n").status(),
        400
    );
    assert_eq!(rejected(b"GET / HTTP/1.1\rHost: h\r\n\r\n").status(), 400);
    assert_eq!(
        rejected(b"GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n").status(),
        400
    );
}

#[test]
fn space_before_colon_and_bad_name_chars_are_400() {
    assert_eq!(
        rejected(b"GET / HTTP/1.1\r\nHost : h\r\n\r\n").status(),
        400
    );
    assert_eq!(
        rejected(b"GET / HTTP/1.1\r\nHost: h\r\nX(A): 1\r\n\r\n").status(),
        400
    );
    assert_eq!(
        rejected(b"GET / HTTP/1.1\r\nHost: h\r\n: empty\r\n\r\n").status(),
        400
    );
    assert_eq!(rejected(b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n").status(), 400);
}

#[test]
fn host_is_required_once_on_http11() {
    assert_eq!(
        rejected(b"GET / HTTP/1.1\r\nX: 1\r\n\r\n"),
        HttpError::BadRequest("missing required Host header")
    );
    assert_eq!(
        rejected(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        HttpError::BadRequest("too many Host headers")
    );
    assert_eq!(parse_ok(b"GET / HTTP/1.0\r\n\r\n").version, Version::Http10);
}

#[test]
fn keep_alive_follows_version_and_connection_tokens() {
    assert!(parse_ok(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").keep_alive);
    assert!(!parse_ok(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, CLOSE\r\n\r\n").keep_alive);
    assert!(
        !parse_ok(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: x\r\nConnection: close\r\n\r\n")
            .keep_alive
    );
    assert!(!parse_ok(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
    assert!(parse_ok(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
    assert!(!parse_ok(b"GET / HTTP/1.0\r\nConnection: keep-alive-ish\r\n\r\n").keep_alive);
}

#[test]
fn expect_100_continue_is_flagged_on_http11_with_a_body() {
    let head = parse_ok(
        b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n",
    );
    assert!(head.expect_continue);
    let head = parse_ok(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    assert!(!head.expect_continue);
    let head = parse_ok(b"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n");
    assert!(!head.expect_continue);
    let head = parse_ok(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n");
    assert!(!head.expect_continue);
}

#[test]
fn unknown_expectation_is_417() {
    let err =
        rejected(b"POST / HTTP/1.1\r\nHost: h\r\nExpect: teapot\r\nContent-Length: 5\r\n\r\n");
    assert_eq!(err.status(), 417);
}

#[test]
fn absolute_form_is_reduced_to_path_and_query() {
    let head =
        parse_ok(b"GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(head.target.as_ref(), b"/a/b?c=d");
    let head = parse_ok(b"GET HTTPS://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(head.target.as_ref(), b"/");
    let head = parse_ok(b"GET http://example.com?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(head.target.as_ref(), b"/?q=1");
    assert_eq!(
        rejected(b"GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n").status(),
        400
    );
}

#[test]
fn asterisk_target_is_kept_and_other_forms_are_400() {
    assert_eq!(
        parse_ok(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")
            .target
            .as_ref(),
        b"*"
    );
    assert_eq!(
        rejected(b"GET foo HTTP/1.1\r\nHost: h\r\n\r\n").status(),
        400
    );
    assert_eq!(
        rejected(b"CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n").status(),
        400
    );
    assert_eq!(
        rejected(b"GET ftp://h/x HTTP/1.1\r\nHost: h\r\n\r\n").status(),
        400
    );
}

#[test]
fn leading_empty_lines_are_tolerated() {
    let mut buf = BytesMut::from(&b"\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n"[..]);
    let head = parse_request(&mut buf, &Limits::default()).ok().flatten();
    assert_eq!(head.map(|h| h.target), Some(Bytes::from_static(b"/x")));
    assert!(buf.is_empty());
}

#[test]
fn pipelined_requests_parse_one_after_another() {
    let mut buf = BytesMut::from(
        &b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"[..],
    );
    let first = parse_request(&mut buf, &Limits::default())
        .ok()
        .flatten()
        .map(|h| h.target);
    let second = parse_request(&mut buf, &Limits::default())
        .ok()
        .flatten()
        .map(|h| h.target);
    assert_eq!(first, Some(Bytes::from_static(b"/1")));
    assert_eq!(second, Some(Bytes::from_static(b"/2")));
    assert!(buf.is_empty());
}

#[test]
fn head_fed_byte_by_byte_completes_exactly_once() {
    let raw = b"GET /x HTTP/1.1\r\nHost: h\r\nX-A: b\r\n\r\n";
    let mut buf = BytesMut::new();
    let mut heads = 0;
    for &b in raw.iter() {
        buf.extend_from_slice(&[b]);
        match parse_request(&mut buf, &Limits::default()) {
            Ok(Some(_)) => heads += 1,
            Ok(None) => {}
            Err(e) => panic!("error mid-head: {e}"),
        }
    }
    assert_eq!(heads, 1);
}

#[test]
fn unsupported_versions_are_400() {
    assert_eq!(rejected(b"GET / HTTP/2.0\r\nHost: h\r\n\r\n").status(), 400);
    assert_eq!(rejected(b"GET / FOO/1.1\r\nHost: h\r\n\r\n").status(), 400);
}

fn with_target_cap(raw: &[u8], max_target_bytes: usize) -> Result<Option<RequestHead>, HttpError> {
    let limits = Limits {
        max_target_bytes,
        ..Limits::default()
    };
    parse_request(&mut BytesMut::from(raw), &limits)
}

#[test]
fn a_target_over_the_cap_is_414_before_its_line_ends() {
    let mut raw = b"GET /".to_vec();
    raw.resize(4 + 65, b'a');
    assert_eq!(with_target_cap(&raw, 64).err(), Some(HttpError::UriTooLong));
    assert_eq!(
        with_target_cap(&raw, 64).map_err(|e| e.status()).err(),
        Some(414)
    );
    raw.truncate(4 + 64);
    assert!(matches!(with_target_cap(&raw, 64), Ok(None)));
    raw.extend_from_slice(b" HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(matches!(with_target_cap(&raw, 64), Ok(Some(_))));
}

#[test]
fn the_target_cap_counts_an_absolute_form_whole_and_skips_leading_empty_lines() {
    let raw = b"\r\n\r\nGET http://example.com/abc HTTP/1.1\r\nHost: example.com\r\n\r\n";
    assert_eq!(with_target_cap(raw, 20).err(), Some(HttpError::UriTooLong));
    assert!(matches!(with_target_cap(raw, 22), Ok(Some(_))));
}

#[test]
fn the_default_target_cap_is_8_kib() {
    let mut raw = b"GET /".to_vec();
    raw.resize(4 + 8 * 1024, b'a');
    raw.extend_from_slice(b" HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(matches!(parse(&raw), Ok(Some(_))));
    let mut raw = b"GET /".to_vec();
    raw.resize(4 + 8 * 1024 + 1, b'a');
    assert_eq!(parse(&raw).err(), Some(HttpError::UriTooLong));
}

#[test]
fn an_invalid_host_value_is_400_on_either_version() {
    for host in ["a b", "h/x", "u@h", "h:99999", "h:8o", "[::1"] {
        let raw = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert_eq!(
            rejected(raw.as_bytes()),
            HttpError::BadRequest("malformed Host header"),
            "{host:?}"
        );
        let raw = format!("GET / HTTP/1.0\r\nHost: {host}\r\n\r\n");
        assert_eq!(rejected(raw.as_bytes()).status(), 400, "{host:?}");
    }
    assert_eq!(
        rejected(b"GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n").status(),
        400
    );
    let head = parse_ok(b"GET / HTTP/1.1\r\nHost:  example.com:8080 \r\n\r\n");
    assert_eq!(head.target.as_ref(), b"/");
    let _ = parse_ok(b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n");
    let _ = parse_ok(b"GET / HTTP/1.1\r\nHost:\r\n\r\n");
}
