//! Proves the test harness itself: every `Reply` kind of the fixture backend behaves as
//! documented, observed through the std client, and the gateway launcher reports failures.
// A test crate: its helpers (not only #[test] fns) index JSON configs and fail loudly.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod common;

use common::client::split_url;
use common::gateway::parse_listening;
use common::*;
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn json_backend_answers_200_with_content_length_and_records_the_request() {
    let b = Backend::json(r#"{"a":1}"#);
    let r = request(
        "POST",
        &format!("{}/x/y?b=2&c", b.url()),
        &[("X-Test", "1")],
        b"hello",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("content-length"), Some("7"));
    assert_eq!(r.json(), serde_json::json!({"a": 1}));
    let rec = b.last_request();
    assert_eq!(rec.method, "POST");
    assert_eq!(rec.path, "/x/y");
    assert_eq!(rec.query, "b=2&c");
    assert_eq!(
        rec.query_pairs(),
        vec![("b".into(), "2".into()), ("c".into(), String::new())]
    );
    assert_eq!(rec.header("x-test"), Some("1"));
    assert_eq!(rec.body, b"hello");
    assert_eq!(rec.conn_id, 0);
}

#[test]
fn chunked_reply_is_reassembled_by_the_client() {
    let b = Backend::start(|_| Reply::json(r#"{"long":"0123456789"}"#).chunked());
    let r = get(&b.url());
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.text(), r#"{"long":"0123456789"}"#);
}

#[test]
fn close_delimited_reply_is_read_until_close() {
    let b = Backend::start(|_| Reply::text("until the end").close_delimited());
    let r = get(&b.url());
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.text(), "until the end");
}

#[test]
fn keep_alive_requests_share_one_connection() {
    let b = Backend::json("{}");
    let mut c = Conn::open(b.addr()).unwrap();
    assert_eq!(c.send("GET", "/1", &[], b"").unwrap().status, 200);
    assert_eq!(c.send("GET", "/2", &[], b"").unwrap().status, 200);
    let reqs = b.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs.iter().all(|r| r.conn_id == 0));
    assert_eq!(b.connections_accepted(), 1);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let b = Backend::start(|r| Reply::text(&r.path));
    let mut c = Conn::open(b.addr()).unwrap();
    let mut bytes = c.encode("GET", "/first", &[], b"");
    bytes.extend(c.encode("POST", "/second", &[], b"body"));
    bytes.extend(c.encode("GET", "/third", &[], b""));
    c.write_raw(&bytes).unwrap();
    for want in ["/first", "/second", "/third"] {
        assert_eq!(c.read_response(false).unwrap().text(), want);
    }
    assert_eq!(b.requests()[1].body, b"body");
}

#[test]
fn chunked_request_body_with_extensions_and_trailers_is_decoded() {
    let b = Backend::json("{}");
    let mut c = Conn::open(b.addr()).unwrap();
    c.write_raw(b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
        .unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 200);
    let rec = b.last_request();
    assert_eq!(rec.body, b"hello world");
    assert_eq!(rec.trailers, b"X-Trailer: t\r\n");
}

#[test]
fn delayed_reply_arrives_after_the_delay() {
    let b = Backend::start(|_| Reply::json("{}").delay(Duration::from_millis(300)));
    let t = Instant::now();
    assert_eq!(get(&b.url()).status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
}

#[test]
fn close_without_header_closes_silently_after_the_response() {
    let b = Backend::start(|_| Reply::json("{}").close());
    let mut c = Conn::open(b.addr()).unwrap();
    let r = c.send("GET", "/", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    assert!(!r.says_close());
    assert!(c.closed_within(Duration::from_secs(1)));
}

#[test]
fn close_with_header_announces_and_closes() {
    let b = Backend::start(|_| Reply::json("{}").close_with_header());
    let mut c = Conn::open(b.addr()).unwrap();
    let r = c.send("GET", "/", &[], b"").unwrap();
    assert!(r.says_close());
    assert!(c.closed_within(Duration::from_secs(1)));
}

#[test]
fn reset_reply_makes_the_client_see_a_connection_reset() {
    let b = Backend::start(|_| Reply::reset());
    let err = try_request("GET", &b.url(), &[], b"").unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::UnexpectedEof
        ),
        "{err:?}"
    );
    // The RST is really a reset, not a clean FIN: a raw read errors instead of returning 0.
    let mut s = TcpStream::connect(b.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    std::io::Write::write_all(&mut s, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        s.read(&mut buf).unwrap_err().kind(),
        ErrorKind::ConnectionReset
    );
}

#[test]
fn garbage_reply_sends_exactly_the_bytes_then_closes() {
    let b = Backend::start(|_| Reply::garbage(b"\x00\x01not http\r\n\r\n"));
    let got = raw(b.addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(got, b"\x00\x01not http\r\n\r\n");
    assert!(try_request("GET", &b.url(), &[], b"").is_err());
}

#[test]
fn stalled_reply_never_answers_and_still_shuts_down() {
    let b = Backend::start(|_| Reply::stall());
    let got = raw_with_timeout(
        b.addr(),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_millis(400),
    );
    assert!(got.is_empty());
    let t = Instant::now();
    drop(b);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "drop took {:?}",
        t.elapsed()
    );
}

#[test]
fn idle_close_drops_an_idle_keep_alive_connection() {
    let b = Backend::start(|_| Reply::json("{}").idle_close(Duration::from_millis(150)));
    let mut c = Conn::open(b.addr()).unwrap();
    assert_eq!(c.send("GET", "/", &[], b"").unwrap().status, 200);
    let t = Instant::now();
    assert!(c.closed_within(Duration::from_secs(2)));
    assert!(
        t.elapsed() >= Duration::from_millis(100),
        "closed after {:?}",
        t.elapsed()
    );
}

#[test]
fn without_idle_close_the_connection_stays_open() {
    let b = Backend::json("{}");
    let mut c = Conn::open(b.addr()).unwrap();
    assert_eq!(c.send("GET", "/", &[], b"").unwrap().status, 200);
    assert!(!c.closed_within(Duration::from_millis(300)));
    assert_eq!(c.send("GET", "/", &[], b"").unwrap().status, 200);
}

#[test]
fn expect_continue_gets_an_interim_100_before_the_body() {
    let b = Backend::json("{}");
    let mut c = Conn::open(b.addr()).unwrap();
    c.write_raw(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
        .unwrap();
    assert_eq!(c.read_any_response(false).unwrap().status, 100);
    c.write_raw(b"abc").unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 200);
    assert_eq!(b.last_request().body, b"abc");
}

#[test]
fn head_reply_has_a_length_but_no_body() {
    let b = Backend::json(r#"{"a":1}"#);
    let mut c = Conn::open(b.addr()).unwrap();
    let r = c.send("HEAD", "/", &[], b"").unwrap();
    assert_eq!(r.header("content-length"), Some("7"));
    assert!(r.body.is_empty());
    // The connection is still in sync for the next request.
    assert_eq!(c.send("GET", "/", &[], b"").unwrap().body, br#"{"a":1}"#);
}

#[test]
fn status_and_headers_are_sent_as_given_with_duplicates() {
    let b = Backend::start(|_| {
        Reply::status(201)
            .header("Set-Cookie", "a=1")
            .header("Set-Cookie", "b=2")
            .body("x")
    });
    let r = get(&b.url());
    assert_eq!(r.status, 201);
    assert_eq!(r.header_all("set-cookie"), vec!["a=1", "b=2"]);
}

#[test]
fn each_connection_gets_its_own_id() {
    let b = Backend::json("{}");
    get(&b.url());
    get(&b.url());
    let ids: Vec<usize> = b.requests().iter().map(|r| r.conn_id).collect();
    assert_eq!(ids, vec![0, 1]);
    assert_eq!(b.connections_accepted(), 2);
}

#[test]
fn dropped_backend_refuses_connections() {
    let b = Backend::json("{}");
    let addr = b.addr();
    drop(b);
    assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
}

#[test]
fn raw_status_reads_the_status_line() {
    assert_eq!(
        raw_status(b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n"),
        Some(431)
    );
    assert_eq!(raw_status(b"garbage"), None);
    assert_eq!(raw_status(b""), None);
}

#[test]
fn listening_line_is_parsed_and_wildcard_maps_to_loopback() {
    let a = parse_listening(
        "proxy: listening on 0.0.0.0:41235 (cores=1, driver=io_uring, endpoints=3)",
    )
    .unwrap();
    assert_eq!(a.to_string(), "127.0.0.1:41235");
    let a = parse_listening("listening on 127.0.0.2:80").unwrap();
    assert_eq!(a.to_string(), "127.0.0.2:80");
    assert!(parse_listening("starting up").is_none());
}

#[test]
fn url_is_split_into_address_host_and_target() {
    let (addr, host, target) = split_url("http://127.0.0.1:9/a/b?c=d");
    assert_eq!(addr.to_string(), "127.0.0.1:9");
    assert_eq!(host, "127.0.0.1:9");
    assert_eq!(target, "/a/b?c=d");
    assert_eq!(split_url("http://127.0.0.1:9").2, "/");
}

#[test]
fn gateway_that_refuses_its_config_is_reported_with_its_output() {
    let t = Instant::now();
    let err = Gateway::try_start_with(r#"{"version": 2, "endpoints": []}"#, &[], &[])
        .err()
        .unwrap();
    assert!(err.contains("gateway did not start"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(11));
}

/// A stand-in for the gateway: prints the startup line, reports signals, exits 0 on TERM.
fn fake_gateway(script: &str) -> Result<Gateway, String> {
    let path = common::gateway::temp_config_path();
    std::fs::write(&path, "{}").unwrap();
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(script);
    Gateway::spawn(cmd, path)
}

const WELL_BEHAVED: &str = "trap 'echo got-hup' HUP; trap 'echo bye; exit 0' TERM; \
    echo 'proxy: listening on 0.0.0.0:4321 (cores=1, driver=io_uring, endpoints=3)'; \
    while true; do sleep 0.05; done";

#[test]
fn launcher_parses_the_listening_line_reloads_and_stops_with_sigterm() {
    let mut g = fake_gateway(WELL_BEHAVED).unwrap();
    assert_eq!(g.addr().to_string(), "127.0.0.1:4321");
    assert_eq!(g.url("/x"), "http://127.0.0.1:4321/x");
    g.reload(r#"{"version":3}"#);
    assert_eq!(
        std::fs::read_to_string(g.config_path()).unwrap(),
        r#"{"version":3}"#
    );
    assert!(
        wait_until(Duration::from_secs(3), || g.output().contains("got-hup")),
        "{}",
        g.output()
    );
    let status = g.stop();
    assert_eq!(status.code(), Some(0));
    assert!(
        wait_until(Duration::from_secs(1), || g.output().contains("bye")),
        "{}",
        g.output()
    );
}

#[test]
fn launcher_reports_an_early_exit_with_stderr() {
    let err = fake_gateway("echo 'config is broken' >&2; exit 3")
        .err()
        .unwrap();
    assert!(err.contains("config is broken"), "{err}");
    assert!(err.contains("exit"), "{err}");
}

#[test]
fn launcher_kills_a_process_that_ignores_sigterm() {
    let script = "trap '' TERM; echo 'listening on 127.0.0.1:1'; while true; do sleep 0.05; done";
    let mut g = fake_gateway(script).unwrap();
    let t = Instant::now();
    let status = g.stop_within(Duration::from_millis(300));
    assert!(status.code().is_none(), "{status:?}");
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn dropping_the_launcher_kills_the_process_and_removes_the_config() {
    let g = fake_gateway(WELL_BEHAVED).unwrap();
    let pid = libc::pid_t::try_from(g.pid()).unwrap();
    let path = g.config_path().to_path_buf();
    drop(g);
    // SAFETY: signal 0 only checks whether the PID exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    assert!(!alive, "process {pid} survived the drop");
    assert!(!path.exists());
}
