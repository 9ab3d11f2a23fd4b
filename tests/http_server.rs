//! The gateway's HTTP/1.1 server as a client sees it: keep-alive, pipelining, framing,
//! limits, timeouts and the rejection of malformed or ambiguous requests.
//!
//! KrakenD serves with Go's net/http; where this file expects something stricter than Go
//! (request-smuggling defences, header-count and body limits), the test says
//! `Beyond KrakenD:`.
// A test crate: its helpers (not only #[test] fns) index JSON configs and fail loudly.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod common;

use common::config::{backend, endpoint, one, service, simple};
use common::*;
use serde_json::json;
use std::io::Write;
use std::time::{Duration, Instant};

/// A gateway with `GET /x` -> backend `/x`, answering `{"ok":true}`.
fn gateway_with(extra: impl FnOnce(&mut serde_json::Value)) -> (Backend, Gateway) {
    let b = Backend::start(|r| Reply::json(&format!(r#"{{"path":"{}"}}"#, r.path)));
    let mut cfg = service(vec![
        endpoint("/x", "GET", vec![backend(&b.url(), "/x")]),
        endpoint("/y", "GET", vec![backend(&b.url(), "/y")]),
        endpoint("/post", "POST", vec![backend(&b.url(), "/post")]),
    ]);
    extra(&mut cfg);
    let g = Gateway::start(&cfg.to_string());
    (b, g)
}

/// Send raw bytes and return (status, everything read until close), failing if the
/// gateway neither answers nor closes within 3 s.
fn raw_exchange(g: &Gateway, bytes: &[u8]) -> (Option<u16>, Vec<u8>, Duration) {
    let t = Instant::now();
    let got = raw_with_timeout(g.addr(), bytes, Duration::from_secs(3));
    (raw_status(&got), got, t.elapsed())
}

/// The request is rejected with `status` and the connection is closed (not left hanging).
fn assert_rejected_and_closed(g: &Gateway, bytes: &[u8], status: &[u16]) {
    let (got_status, got, elapsed) = raw_exchange(g, bytes);
    assert!(
        got_status.is_some_and(|s| status.contains(&s)),
        "want {status:?}, got {:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        elapsed < Duration::from_millis(2900),
        "connection not closed after the rejection"
    );
}

#[test]
fn keep_alive_serves_two_requests_on_one_connection() {
    let (b, g) = gateway_with(|_| {});
    let mut c = Conn::open(g.addr()).unwrap();
    let r1 = c.send("GET", "/x", &[], b"").unwrap();
    let r2 = c.send("GET", "/y", &[], b"").unwrap();
    assert_eq!((r1.status, r2.status), (200, 200));
    assert_eq!(r2.json(), json!({"path": "/y"}));
    assert!(!r1.says_close());
    assert_eq!(b.requests().len(), 2);
}

#[test]
fn http_1_0_request_gets_an_answer_then_the_connection_closes() {
    let (_b, g) = gateway_with(|_| {});
    let mut c = Conn::open(g.addr()).unwrap();
    c.write_raw(b"GET /x HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"path": "/x"}));
    assert!(c.closed_within(Duration::from_secs(2)));
}

#[test]
fn connection_close_from_the_client_is_honoured() {
    let (_b, g) = gateway_with(|_| {});
    let mut c = Conn::open(g.addr()).unwrap();
    let r = c
        .send("GET", "/x", &[("Connection", "close")], b"")
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(r.says_close());
    assert!(c.closed_within(Duration::from_secs(2)));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (_b, g) = gateway_with(|_| {});
    let mut c = Conn::open(g.addr()).unwrap();
    let mut bytes = c.encode("GET", "/y", &[], b"");
    bytes.extend(c.encode("GET", "/x", &[], b""));
    bytes.extend(c.encode("GET", "/y", &[], b""));
    c.write_raw(&bytes).unwrap();
    for want in ["/y", "/x", "/y"] {
        let r = c.read_response(false).unwrap();
        assert_eq!(r.json(), json!({ "path": want }));
    }
}

#[test]
fn chunked_request_body_with_extensions_and_trailers_reaches_the_backend_with_content_length() {
    let (b, g) = gateway_with(|_| {});
    let mut c = Conn::open(g.addr()).unwrap();
    c.write_raw(
        b"POST /post HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
          4;name=value\r\n{\"a\"\r\n4\r\n:12}\r\n0\r\nX-Trailer: t\r\n\r\n",
    )
    .unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 200);
    let rec = b.last_request();
    assert_eq!(rec.body, br#"{"a":12}"#);
    // Beyond KrakenD: lura forwards bodies chunked (lura#213); we buffer and send a length.
    assert_eq!(rec.header("content-length"), Some("8"));
    assert_eq!(rec.header("transfer-encoding"), None);
}

#[test]
fn expect_100_continue_gets_100_continue_then_the_answer() {
    let (b, g) = gateway_with(|_| {});
    let mut c = Conn::open(g.addr()).unwrap();
    c.write_raw(
        b"POST /post HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    )
    .unwrap();
    let interim = c.read_any_response(false).unwrap();
    assert_eq!(interim.status, 100);
    c.write_raw(b"{}").unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(b.last_request().body, b"{}");
}

#[test]
fn head_endpoint_answers_without_a_body() {
    // Beyond KrakenD: CE skips HEAD endpoints ("Unsupported method"); here a declared HEAD
    // endpoint works in no-op mode (a HEAD backend has no body to decode).
    let b = Backend::json(r#"{"a":1}"#);
    let mut cfg = one("/h", "HEAD", &b.url(), "/h");
    cfg["endpoints"][0]["output_encoding"] = json!("no-op");
    let g = Gateway::start(&cfg.to_string());
    let mut c = Conn::open(g.addr()).unwrap();
    let r = c.send("HEAD", "/h", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(b.last_request().method, "HEAD");
    // The connection is still usable: no stray body bytes were sent after the head.
    let r2 = c.send("HEAD", "/h", &[], b"").unwrap();
    assert_eq!(r2.status, 200);
}

#[test]
fn responses_carry_a_valid_date_header() {
    let (_b, g) = gateway_with(|_| {});
    let r = get(&g.url("/x"));
    let date = r.header("date").expect("Date header");
    let when = httpdate::parse_http_date(date).expect("IMF-fixdate");
    let skew = when
        .duration_since(std::time::SystemTime::now() - Duration::from_secs(5))
        .expect("Date is not in the past");
    assert!(
        skew < Duration::from_secs(10),
        "Date {date} too far from now"
    );
}

#[test]
fn head_over_max_header_bytes_gets_431() {
    // KrakenD: Go allows max_header_bytes plus 4096 bytes of slack; 64 KiB is well over.
    let (_b, g) = gateway_with(|c| c["max_header_bytes"] = json!(2048));
    let big = "a".repeat(64 * 1024);
    let req = format!("GET /x HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
    assert_rejected_and_closed(&g, req.as_bytes(), &[431]);
    // A normal request still works.
    assert_eq!(get(&g.url("/x")).status, 200);
}

#[test]
fn too_many_header_fields_get_431() {
    // Beyond KrakenD: Go limits header bytes only; the gateway also caps the field count
    // (100 by default), which 500 fields exceed.
    let (_b, g) = gateway_with(|_| {});
    let mut req = String::from("GET /x HTTP/1.1\r\nHost: x\r\n");
    for i in 0..500 {
        req.push_str(&format!("X-H{i}: v\r\n"));
    }
    req.push_str("\r\n");
    assert_rejected_and_closed(&g, req.as_bytes(), &[431]);
}

#[test]
fn body_over_the_limit_gets_413() {
    // Beyond KrakenD: CE has no request body limit (max_payload is EE). The gateway's
    // default limit is 64 MiB; the declared length alone is enough to reject.
    let (_b, g) = gateway_with(|_| {});
    let req = format!(
        "POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{{",
        64 * 1024 * 1024 + 1
    );
    assert_rejected_and_closed(&g, req.as_bytes(), &[413]);
}

#[test]
fn content_length_with_transfer_encoding_gets_400_and_close() {
    // Beyond KrakenD: Go drops the Content-Length and reads chunked; a gateway must not
    // guess (request smuggling), so it rejects.
    let (b, g) = gateway_with(|_| {});
    assert_rejected_and_closed(
        &g,
        b"POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        &[400],
    );
    assert!(b.requests().is_empty());
}

#[test]
fn two_differing_content_lengths_get_400() {
    let (b, g) = gateway_with(|_| {});
    assert_rejected_and_closed(
        &g,
        b"POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x",
        &[400],
    );
    assert!(b.requests().is_empty());
}

#[test]
fn transfer_encoding_gzip_is_rejected() {
    // KrakenD: Go answers 501 for a transfer coding it does not know; 400 is the codec's
    // mapping. Either way it is rejected and the connection closed.
    let (b, g) = gateway_with(|_| {});
    assert_rejected_and_closed(
        &g,
        b"POST /post HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nxxxx",
        &[400, 501],
    );
    assert!(b.requests().is_empty());
}

#[test]
fn bad_chunk_size_gets_400() {
    let (b, g) = gateway_with(|_| {});
    assert_rejected_and_closed(
        &g,
        b"POST /post HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        &[400],
    );
    assert!(b.requests().is_empty());
}

#[test]
fn obs_fold_header_gets_400() {
    let (b, g) = gateway_with(|_| {});
    assert_rejected_and_closed(
        &g,
        b"GET /x HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\r\n",
        &[400],
    );
    assert!(b.requests().is_empty());
}

#[test]
fn nul_byte_in_the_head_gets_400() {
    let (b, g) = gateway_with(|_| {});
    assert_rejected_and_closed(
        &g,
        b"GET /x HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n",
        &[400],
    );
    assert!(b.requests().is_empty());
}

#[test]
fn bare_cr_in_the_head_gets_400() {
    let (b, g) = gateway_with(|_| {});
    assert_rejected_and_closed(
        &g,
        b"GET /x HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
        &[400],
    );
    assert!(b.requests().is_empty());
}

#[test]
fn slow_header_trickle_past_read_header_timeout_gets_408_or_close() {
    let (b, g) = gateway_with(|c| c["read_header_timeout"] = json!("500ms"));
    let mut c = Conn::open(g.addr()).unwrap();
    c.write_raw(b"GET /x HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut writer = c.reader.stream.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        // One byte every 100 ms for at most 3 s; stops when the gateway closes.
        for _ in 0..30 {
            if writer.write_all(b"X").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let t = Instant::now();
    assert!(
        c.closed_within(Duration::from_secs(4)),
        "the gateway kept the trickling connection open"
    );
    assert!(t.elapsed() >= Duration::from_millis(300));
    let got = c.reader.buf.clone();
    assert!(
        got.is_empty() || raw_status(&got) == Some(408),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    let _ = trickle.join();
    assert!(b.requests().is_empty());
}

#[test]
fn idle_keep_alive_connection_is_closed_after_idle_timeout() {
    let (_b, g) = gateway_with(|c| c["idle_timeout"] = json!("300ms"));
    let mut c = Conn::open(g.addr()).unwrap();
    assert_eq!(c.send("GET", "/x", &[], b"").unwrap().status, 200);
    let t = Instant::now();
    assert!(c.closed_within(Duration::from_secs(3)));
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "closed after {:?}",
        t.elapsed()
    );
}

#[test]
fn idle_keep_alive_connection_stays_open_before_idle_timeout() {
    let (_b, g) = gateway_with(|c| c["idle_timeout"] = json!("3s"));
    let mut c = Conn::open(g.addr()).unwrap();
    assert_eq!(c.send("GET", "/x", &[], b"").unwrap().status, 200);
    assert!(!c.closed_within(Duration::from_millis(500)));
    assert_eq!(c.send("GET", "/x", &[], b"").unwrap().status, 200);
}

#[test]
fn random_garbage_never_kills_the_server() {
    let (_b, g) = gateway_with(|_| {});
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut inputs: Vec<Vec<u8>> = vec![
        b"\r\n\r\n".to_vec(),
        b"GET\r\n\r\n".to_vec(),
        b"GET / HTTP/9.9\r\n\r\n".to_vec(),
        b"GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(),
        b"GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(),
        b"POST /post HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n"
            .to_vec(),
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        vec![b'G'; 100_000],
    ];
    for _ in 0..20 {
        let len = 1 + (seed % 512) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 33) as u8
            })
            .collect();
        inputs.push(bytes);
    }
    for input in &inputs {
        let _ = raw_with_timeout(g.addr(), input, Duration::from_millis(300));
    }
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"path": "/x"}));
}

#[test]
fn simple_config_helper_serves_its_endpoint() {
    let b = Backend::json(r#"{"hello":"world"}"#);
    let g = Gateway::start(&simple("/hello", &b.url(), "/greeting"));
    let r = get(&g.url("/hello"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"hello": "world"}));
    assert_eq!(b.last_request().path, "/greeting");
}

// Between requests a connection first keeps a buffered read pending, then after about 500 ms
// switches to a readiness wait without a buffer (src/http/conn.rs). These check the switch
// loses nothing.

#[test]
fn a_connection_quiet_for_longer_than_the_hot_read_window_serves_its_next_request() {
    let (_b, g) = gateway_with(|_| {});
    let mut c = Conn::open(g.addr()).unwrap();
    assert_eq!(c.send("GET", "/x", &[], b"").unwrap().status, 200);
    std::thread::sleep(Duration::from_millis(900));
    let r = c.send("GET", "/y", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, br#"{"path":"/y"}"#);
}

#[test]
fn a_head_sent_in_pieces_after_the_quiet_switch_is_read_whole() {
    let (_b, g) = gateway_with(|_| {});
    let mut c = Conn::open(g.addr()).unwrap();
    assert_eq!(c.send("GET", "/x", &[], b"").unwrap().status, 200);
    std::thread::sleep(Duration::from_millis(800));
    // Longer than the first read's buffer, split across writes.
    let filler = "v".repeat(3000);
    let head = format!("GET /y HTTP/1.1\r\nHost: x\r\nX-Filler: {filler}\r\n\r\n");
    let (a, rest) = head.as_bytes().split_at(700);
    c.write_raw(a).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    c.write_raw(rest).unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, br#"{"path":"/y"}"#);
}

#[test]
fn pipelined_requests_after_the_quiet_switch_are_answered_in_order() {
    let (_b, g) = gateway_with(|_| {});
    let mut c = Conn::open(g.addr()).unwrap();
    assert_eq!(c.send("GET", "/x", &[], b"").unwrap().status, 200);
    std::thread::sleep(Duration::from_millis(800));
    c.write_raw(b"GET /y HTTP/1.1\r\nHost: x\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(c.read_response(false).unwrap().body, br#"{"path":"/y"}"#);
    assert_eq!(c.read_response(false).unwrap().body, br#"{"path":"/x"}"#);
}

#[test]
fn a_client_that_closes_during_the_quiet_wait_is_released_and_others_still_served() {
    let (_b, g) = gateway_with(|_| {});
    let mut conns: Vec<Conn> = (0..50).map(|_| Conn::open(g.addr()).unwrap()).collect();
    for c in &mut conns {
        assert_eq!(c.send("GET", "/x", &[], b"").unwrap().status, 200);
    }
    std::thread::sleep(Duration::from_millis(800));
    drop(conns);
    let mut c = Conn::open(g.addr()).unwrap();
    assert_eq!(c.send("GET", "/x", &[], b"").unwrap().status, 200);
}

// A small answer on a kept-alive connection is sent together with the read of the next request
// and collected after it (src/http/conn.rs, `read_behind`). These check nothing is lost or
// reordered when that send does not simply complete at once: a client with a 4 KB receive
// buffer that sends requests one by one without reading fills the gateway's send buffer, so
// later sends complete in part or wait for room.

/// A gateway answering `GET /n/{id}` with about 6 KB naming `id`.
fn numbered_answers() -> (Backend, Gateway) {
    let b = Backend::start(|r| {
        let n = r.path.trim_start_matches("/n/");
        Reply::json(&format!(r#"{{"n":"{n}","pad":"{}"}}"#, "p".repeat(6000)))
    });
    let g = Gateway::start(&one("/n/{id}", "GET", &b.url(), "/n/{id}").to_string());
    (b, g)
}

/// A keep-alive client with a 4 KB receive buffer.
fn small_window_client(g: &Gateway) -> Conn {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&g.addr().into()).unwrap();
    let stream: std::net::TcpStream = sock.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    Conn {
        reader: common::wire::Reader::new(stream),
        host: g.addr().to_string(),
    }
}

/// Answers the client does not read: 300 × 6 KB, more than the gateway's send buffer holds
/// on loopback (it starts at about 1.3 MB there: 20 segments of 64 KB).
const UNREAD: usize = 800;

/// Send `n` requests one at a time without reading, so that each comes on its own (not
/// pipelined); the last few after gaps longer than the gateway's 50 ms look at a send still
/// pending.
fn send_unread(c: &mut Conn, n: usize) {
    for i in 0..n {
        c.write_raw(format!("GET /n/{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let gap = if i + 40 > n && i % 10 == 9 { 80 } else { 1 };
        std::thread::sleep(Duration::from_millis(gap));
    }
}

fn assert_numbered(c: &mut Conn, n: usize) {
    for i in 0..n {
        let r = c
            .read_response(false)
            .unwrap_or_else(|e| panic!("answer {i}: {e}"));
        assert_eq!(r.status, 200, "answer {i}");
        let v = r.json();
        assert_eq!(v["n"], i.to_string(), "answer {i} out of order");
        assert_eq!(
            v["pad"].as_str().map(str::len),
            Some(6000),
            "answer {i} cut"
        );
    }
}

#[test]
fn answers_to_a_client_that_stops_reading_arrive_whole_and_in_order_once_it_reads() {
    let (_b, g) = numbered_answers();
    let mut c = small_window_client(&g);
    send_unread(&mut c, UNREAD);
    assert_numbered(&mut c, UNREAD);
}

#[test]
fn a_client_that_half_closes_after_requests_it_has_not_read_still_gets_every_answer() {
    let (_b, g) = numbered_answers();
    let mut c = small_window_client(&g);
    send_unread(&mut c, UNREAD);
    // EOF while the last answers still wait for room in the send buffer.
    c.reader.stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_numbered(&mut c, UNREAD);
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut c.reader.stream, &mut rest).unwrap();
    assert!(rest.is_empty(), "more after the last answer: {rest:?}");
}
