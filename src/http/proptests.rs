//! Property tests for the codec: no input, however split, panics the request parser or the
//! chunked decoder, and chunked encoding (by `write::chunk`) round-trips through the decoder
//! whatever the read boundaries.
use super::body::BodyDecoder;
use super::request::parse_request;
use super::response::parse_response;
use super::{write, Framing, Limits};
use bytes::BytesMut;
use proptest::prelude::*;

/// Bytes biased towards HTTP syntax, so the parsers get past the first line often.
fn http_ish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"GET / HTTP/1.1\r\n".to_vec()),
        Just(b"Host: h\r\n".to_vec()),
        Just(b"Transfer-Encoding: chunked\r\n".to_vec()),
        Just(b"Content-Length: 5\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b";".to_vec()),
        Just(b"ff".to_vec()),
        prop::collection::vec(any::<u8>(), 0..8),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

/// Split `data` at the given fractions (0..=1000 per mille), in order.
fn pieces(data: &[u8], cuts: &[u16]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|&c| data.len() * usize::from(c.min(1000)) / 1000)
        .collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for p in points.into_iter().chain(std::iter::once(data.len())) {
        out.push(data[start..p].to_vec());
        start = p;
    }
    out
}

proptest! {
    #[test]
    fn request_parser_never_panics(data in prop_oneof![http_ish(), prop::collection::vec(any::<u8>(), 0..512)],
                                   cuts in prop::collection::vec(0u16..=1000, 0..6)) {
        let limits = Limits { max_header_bytes: 256, max_headers: 8, ..Limits::default() };
        let mut buf = BytesMut::new();
        for piece in pieces(&data, &cuts) {
            buf.extend_from_slice(&piece);
            loop {
                match parse_request(&mut buf, &limits) {
                    Ok(Some(_)) => continue,
                    Ok(None) => {
                        prop_assert!(buf.len() <= limits.max_header_bytes);
                        break;
                    }
                    Err(_) => return Ok(()),
                }
            }
        }
    }

    #[test]
    fn response_parser_never_panics(data in prop::collection::vec(any::<u8>(), 0..512), head in any::<bool>()) {
        let _ = parse_response(&mut BytesMut::from(&data[..]), head, &Limits::default());
    }

    #[test]
    fn chunked_decoder_never_panics(data in prop_oneof![http_ish(), prop::collection::vec(any::<u8>(), 0..512)],
                                    cuts in prop::collection::vec(0u16..=1000, 0..6)) {
        let mut dec = BodyDecoder::new(Framing::Chunked);
        let mut buf = BytesMut::new();
        let mut out = BytesMut::new();
        for piece in pieces(&data, &cuts) {
            buf.extend_from_slice(&piece);
            match dec.decode(&mut buf, &mut out, 1 << 16) {
                Ok(true) | Err(_) => break,
                Ok(false) => prop_assert!(buf.is_empty(), "an unfinished body consumes all input"),
            }
        }
        prop_assert!(out.len() <= data.len());
    }

    #[test]
    fn chunked_encoding_round_trips_for_any_split(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..6),
                                                   cuts in prop::collection::vec(0u16..=1000, 0..8),
                                                   trailing in prop::collection::vec(any::<u8>(), 0..16)) {
        let mut wire = Vec::new();
        for c in chunks.iter().filter(|c| !c.is_empty()) {
            write::chunk(&mut wire, c);
        }
        write::chunk(&mut wire, b"");
        let expected: Vec<u8> = chunks.concat();
        wire.extend_from_slice(&trailing);

        let mut dec = BodyDecoder::new(Framing::Chunked);
        let mut buf = BytesMut::new();
        let mut out = BytesMut::new();
        let mut done = false;
        for piece in pieces(&wire, &cuts) {
            buf.extend_from_slice(&piece);
            if !done {
                done = dec.decode(&mut buf, &mut out, usize::MAX).map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
        }
        prop_assert!(done);
        prop_assert_eq!(out.to_vec(), expected);
        prop_assert_eq!(buf.to_vec(), trailing, "bytes after the body stay in the buffer");
    }
}
