//! The fast head parser answers only what `httparse` answers: on generated heads (plain ones,
//! and ones with the bytes and shapes it must leave to `httparse`), whenever it returns a
//! head, `httparse` parses the same bytes to the same length, start line and fields.
use super::*;
use proptest::prelude::*;

/// (name, value) pairs as recorded, as text.
fn recorded(buf: &[u8], f: &FieldRanges) -> Vec<(Vec<u8>, Vec<u8>)> {
    f.iter()
        .map(|&[a, b, c, d]| {
            let s = |x: u32, y: u32| buf[x as usize..y as usize].to_vec();
            (s(a, b), s(c, d))
        })
        .collect()
}

fn fields_of(h: &[httparse::Header<'_>]) -> Vec<(Vec<u8>, Vec<u8>)> {
    h.iter()
        .map(|h| (h.name.as_bytes().to_vec(), h.value.to_vec()))
        .collect()
}

fn check_request(buf: &[u8], max: usize) -> bool {
    let mut ranges = FieldRanges::new();
    let Some(fast) = request(buf, max, &mut ranges) else {
        return false;
    };
    let mut slots = vec![httparse::EMPTY_HEADER; max];
    let mut req = httparse::Request::new(&mut slots);
    let Ok(httparse::Status::Complete(len)) = req.parse(buf) else {
        panic!(
            "fast took what httparse did not: {:?}",
            String::from_utf8_lossy(buf)
        );
    };
    assert_eq!(fast.len, len, "{:?}", String::from_utf8_lossy(buf));
    assert_eq!(req.method.map(str::as_bytes), Some(&buf[fast.method]));
    assert_eq!(req.path.map(str::as_bytes), Some(&buf[fast.target]));
    let v = match fast.version {
        Version::Http10 => 0,
        Version::Http11 => 1,
    };
    assert_eq!(req.version, Some(v));
    assert_eq!(recorded(buf, &ranges), fields_of(req.headers));
    true
}

fn check_response(buf: &[u8], max: usize) -> bool {
    let mut ranges = FieldRanges::new();
    let Some(fast) = response(buf, max, &mut ranges) else {
        return false;
    };
    let mut slots = vec![httparse::EMPTY_HEADER; max];
    let mut res = httparse::Response::new(&mut slots);
    let Ok(httparse::Status::Complete(len)) = res.parse(buf) else {
        panic!(
            "fast took what httparse did not: {:?}",
            String::from_utf8_lossy(buf)
        );
    };
    assert_eq!(fast.len, len, "{:?}", String::from_utf8_lossy(buf));
    assert_eq!(res.code, Some(fast.status));
    let v = match fast.version {
        Version::Http10 => 0,
        Version::Http11 => 1,
    };
    assert_eq!(res.version, Some(v));
    assert_eq!(recorded(buf, &ranges), fields_of(res.headers));
    true
}

#[test]
fn the_usual_heads_take_the_fast_path() {
    assert!(check_request(
        b"GET /json?a=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: */*\r\n\r\n",
        100
    ));
    assert!(check_request(
        b"POST /p HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello",
        100
    ));
    assert!(check_response(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        100
    ));
    assert!(check_response(
        b"HTTP/1.1 204 \r\nX-Empty:\r\nX-Pad:  v \t \r\n\r\n",
        100
    ));
}

#[test]
fn what_httparse_must_decide_is_left_to_it() {
    for head in [
        &b"GET / HTTP/1.1\r\nHost: h\r\n"[..],             // incomplete
        b"\r\nGET / HTTP/1.1\r\n\r\n",                     // leading empty line
        b"GET / HTTP/1.1\nHost: h\n\n",                    // bare LF line ends
        b"GET  / HTTP/1.1\r\n\r\n",                        // two spaces
        b"GET / HTTP/1.2\r\n\r\n",                         // version
        b"GET /\xc3\xa9 HTTP/1.1\r\n\r\n",                 // non-ASCII target
        b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",             // space before the colon
        b"GET / HTTP/1.1\r\n Host: h\r\n\r\n",             // folded / leading space
        b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",              // bare CR in a value
        b"GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n",       // obs-text value
        b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",            // NUL
        b"GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n",            // DEL
        b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",              // no colon
        b"GET / HTTP/1.1\r\n: empty-name\r\n\r\n",         // empty name
        b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", // more fields than allowed (2)
    ] {
        let mut r = FieldRanges::new();
        assert!(
            request(head, 2, &mut r).is_none(),
            "{:?}",
            String::from_utf8_lossy(head)
        );
    }
    for head in [
        &b"HTTP/1.1 200\r\n\r\n"[..], // no reason and no space: httparse's call
        b"HTTP/1.1 20x OK\r\n\r\n",   // status digits
        b"HTTP/1.1 200 O\x01K\r\n\r\n", // control byte in the reason
        b"HTTP/1.1 200 OK\r\nX:\x01\r\n\r\n",
    ] {
        let mut r = FieldRanges::new();
        assert!(
            response(head, 8, &mut r).is_none(),
            "{:?}",
            String::from_utf8_lossy(head)
        );
    }
}

/// A head line by line from pieces that are mostly plain, with the odd byte or shape that only
/// `httparse` may judge.
fn head(start: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    let name = prop_oneof![
        Just(b"Host".to_vec()),
        Just(b"Content-Length".to_vec()),
        Just(b"X-A-Rather-Long-Header-Name-Over-32".to_vec()),
        prop::collection::vec(
            prop_oneof![
                Just(b'a'),
                Just(b'Z'),
                Just(b'-'),
                Just(b'!'),
                Just(b' '),
                Just(b'('),
                Just(b'\x7f'),
                Just(b'\xe9'),
                Just(b':'),
                any::<u8>()
            ],
            0..40
        ),
    ];
    let value = prop::collection::vec(
        prop_oneof![
            Just(b'v'),
            Just(b' '),
            Just(b'\t'),
            Just(b':'),
            Just(b'\r'),
            Just(b'\n'),
            Just(b'\x00'),
            Just(b'\x7f'),
            Just(b'\x80'),
            Just(b'~'),
            any::<u8>()
        ],
        0..48,
    );
    let sep = prop_oneof![
        Just(b": ".to_vec()),
        Just(b":".to_vec()),
        Just(b" : ".to_vec()),
        Just(b":\t ".to_vec())
    ];
    let end = prop_oneof![
        Just(b"\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec())
    ];
    let line = (name, sep, value, end.clone()).prop_map(|(n, s, v, e)| [n, s, v, e].concat());
    (
        prop::sample::select(start),
        prop::collection::vec(line, 0..6),
        end,
    )
        .prop_map(|(s, lines, e)| [s.as_bytes().to_vec(), lines.concat(), e].concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn a_request_taken_fast_is_the_one_httparse_reads(
        buf in head(&["GET / HTTP/1.1\r\n", "POST /a/b?c=%20&d HTTP/1.0\r\n", "G\x7fT / HTTP/1.1\r\n",
                      "GET /x HTTP/1.1 \r\n", "OPTIONS * HTTP/1.1\r\n", "GET / http/1.1\r\n"]),
        max in 0usize..8,
    ) {
        check_request(&buf, max);
    }

    #[test]
    fn a_response_taken_fast_is_the_one_httparse_reads(
        buf in head(&["HTTP/1.1 200 OK\r\n", "HTTP/1.0 404 Not Found\r\n", "HTTP/1.1 200 \r\n",
                      "HTTP/1.1 2000 OK\r\n", "HTTP/1.1 200 O\tK\r\n"]),
        max in 0usize..8,
    ) {
        check_response(&buf, max);
    }
}
