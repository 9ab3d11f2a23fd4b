//! Safe by default where KrakenD is not: timeouts that apply when the config sets none
//! (shown by `check -d`; the 60 s / 75 s values themselves are unit-tested in
//! `src/plan/timeouts.rs` rather than waited for here), configured timeouts over real
//! sockets, and the socket-level refusals: an invalid `Host`, a chunk larger than the body
//! limit, a request-target over its cap.
//!
//! Beyond KrakenD: Go's server has no timeouts by default, checks only the bytes of `Host`,
//! waits for a too-large chunk to arrive, and has no request-target cap below its 1 MiB head
//! limit.
// A test crate: its helpers (not only #[test] fns) index JSON configs and fail loudly.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod common;

use common::config::{backend, endpoint, service};
use common::*;
use serde_json::json;
use std::io::Read;
use std::time::{Duration, Instant};

/// A gateway with `GET /x` and `POST /post` on one backend, with `extra` root keys.
fn gateway_with(extra: serde_json::Value) -> (Backend, Gateway) {
    let b = Backend::start(|r| Reply::json(&format!(r#"{{"path":"{}"}}"#, r.path)));
    let mut cfg = service(vec![
        endpoint("/x", "GET", vec![backend(&b.url(), "/x")]),
        endpoint("/post", "POST", vec![backend(&b.url(), "/post")]),
    ]);
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        cfg[k] = v;
    }
    let g = Gateway::start(&cfg.to_string());
    (b, g)
}

/// Send `bytes` on a fresh connection that stays open (no half-close), then wait up to
/// `wait` for the gateway to close it: (status of what it answered, time until closed).
fn send_then_wait_for_close(g: &Gateway, bytes: &[u8], wait: Duration) -> (Option<u16>, Duration) {
    let mut c = Conn::open(g.addr()).unwrap();
    let t = Instant::now();
    c.write_raw(bytes).unwrap();
    let closed = c.closed_within(wait);
    let took = t.elapsed();
    let got = c.reader.buf.clone();
    assert!(
        closed,
        "still open after {wait:?}; got {:?}",
        String::from_utf8_lossy(&got)
    );
    (raw_status(&got), took)
}

/// A head in raw bytes with this Host value.
fn with_host(host: &[u8]) -> Vec<u8> {
    let mut raw = b"GET /x HTTP/1.1\r\nHost: ".to_vec();
    raw.extend_from_slice(host);
    raw.extend_from_slice(b"\r\n\r\n");
    raw
}

// ---------------------------------------------------------------------------------------
// Timeouts: the defaults as `check -d` shows them.
// ---------------------------------------------------------------------------------------

#[test]
fn check_d_shows_nginx_like_timeouts_when_the_config_sets_none() {
    let out = check_file(&service(vec![]).to_string(), &["-d"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "Client timeouts: read_header_timeout 60s (default), read_timeout 60s between \
             reads (default), write_timeout 60s between writes (default), idle_timeout 75s \
             (default)"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("max_uri_bytes 8192"), "{}", out.stdout);
}

#[test]
fn check_d_shows_configured_timeouts_and_go_s_fallbacks_to_read_timeout() {
    let mut cfg = service(vec![]);
    cfg["read_timeout"] = json!("5s");
    cfg["write_timeout"] = json!("7s");
    let out = check_file(&cfg.to_string(), &["-d"]);
    assert!(
        out.stdout.contains(
            "Client timeouts: read_header_timeout 5s (from read_timeout), read_timeout 5s, \
             write_timeout 7s, idle_timeout 5s (from read_timeout)"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn max_uri_bytes_is_accepted_without_an_unknown_key_warning_and_shown_by_check_d() {
    let mut cfg = service(vec![]);
    cfg["max_uri_bytes"] = json!(16384);
    let out = check_file(&cfg.to_string(), &["-d"]);
    assert_eq!(out.code, 0);
    assert!(!out.stderr.contains("max_uri_bytes"), "{}", out.stderr);
    assert!(out.stdout.contains("max_uri_bytes 16384"), "{}", out.stdout);
    // A typo is pointed at it.
    let mut cfg = service(vec![]);
    cfg["max_uri_byte"] = json!(16384);
    let (_, _, stderr) = check(&cfg.to_string());
    assert!(
        stderr.contains(r#"did you mean "max_uri_bytes"?"#),
        "{stderr}"
    );
}

/// The defaults themselves over sockets: a minute and a quarter, so ignored by default.
/// Run with `cargo test --test safe_defaults -- --ignored`.
#[test]
#[ignore = "waits 75 s for the default idle timeout"]
fn with_no_timeouts_configured_idle_trickling_and_stalled_clients_are_all_cut() {
    let (b, g) = gateway_with(json!({}));
    let t = Instant::now();
    let idle = Conn::open(g.addr()).unwrap();
    let mut stalled = Conn::open(g.addr()).unwrap();
    stalled
        .write_raw(b"POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    let trickled = Conn::open(g.addr()).unwrap();
    let mut writer = trickled.reader.stream.try_clone().unwrap();
    std::thread::spawn(move || {
        use std::io::Write;
        // A byte every second: each read is in time, the head as a whole is not.
        for _ in 0..90 {
            if writer.write_all(b"G").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let watch = |mut c: Conn| {
        std::thread::spawn(move || {
            assert!(c.closed_within(Duration::from_secs(85)), "never closed");
            (t.elapsed(), raw_status(&c.reader.buf))
        })
    };
    let (idle, stalled, trickled) = (watch(idle), watch(stalled), watch(trickled));
    let secs = |h: std::thread::JoinHandle<(Duration, Option<u16>)>| {
        let (took, status) = h.join().unwrap();
        (took.as_secs_f64(), status)
    };
    let (took, status) = secs(stalled);
    assert!(
        (59.0..66.0).contains(&took),
        "stalled body cut after {took}s"
    );
    assert_eq!(status, Some(408));
    let (took, _) = secs(trickled);
    assert!(
        (59.0..66.0).contains(&took),
        "trickled head cut after {took}s"
    );
    let (took, status) = secs(idle);
    assert!(
        (74.0..81.0).contains(&took),
        "idle connection closed after {took}s"
    );
    assert_eq!(status, None);
    assert!(b.requests().is_empty());
}

// ---------------------------------------------------------------------------------------
// Timeouts as configured, over sockets.
// ---------------------------------------------------------------------------------------

#[test]
fn a_kept_alive_connection_gone_quiet_is_closed_after_idle_timeout() {
    let (_b, g) = gateway_with(json!({"idle_timeout": "1s"}));
    let mut c = Conn::open(g.addr()).unwrap();
    assert_eq!(c.send("GET", "/x", &[], b"").unwrap().status, 200);
    let t = Instant::now();
    assert!(c.closed_within(Duration::from_secs(3)), "still open");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "closed after {took:?}"
    );
}

#[test]
fn a_new_connection_that_sends_nothing_is_closed_after_idle_timeout() {
    let (_b, g) = gateway_with(json!({"idle_timeout": "1s"}));
    let (status, took) = send_then_wait_for_close(&g, b"", Duration::from_secs(3));
    assert_eq!(status, None);
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");
}

#[test]
fn read_timeout_alone_also_closes_idle_connections_as_in_go() {
    let (_b, g) = gateway_with(json!({"read_timeout": "1s"}));
    let mut c = Conn::open(g.addr()).unwrap();
    assert_eq!(c.send("GET", "/x", &[], b"").unwrap().status, 200);
    let t = Instant::now();
    assert!(c.closed_within(Duration::from_secs(3)), "still open");
    assert!(t.elapsed() >= Duration::from_millis(900));
}

#[test]
fn a_head_trickled_in_time_byte_by_byte_is_still_cut_at_read_header_timeout() {
    let (b, g) = gateway_with(json!({"read_header_timeout": "1s"}));
    let mut c = Conn::open(g.addr()).unwrap();
    let mut writer = c.reader.stream.try_clone().unwrap();
    let t = Instant::now();
    let trickle = std::thread::spawn(move || {
        use std::io::Write;
        // One byte every 100 ms, far within any per-read limit, for up to 4 s.
        for &byte in b"GET /x HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if writer.write_all(&[byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    assert!(c.closed_within(Duration::from_secs(4)), "still reading");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "cut after {took:?}"
    );
    assert_eq!(raw_status(&c.reader.buf), Some(408));
    let _ = trickle.join();
    assert!(b.requests().is_empty());
}

#[test]
fn a_stalled_body_gets_408_after_read_timeout() {
    let (b, g) = gateway_with(json!({"read_timeout": "1s"}));
    let (status, took) = send_then_wait_for_close(
        &g,
        b"POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
        Duration::from_secs(4),
    );
    assert_eq!(status, Some(408));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "answered after {took:?}"
    );
    assert!(b.requests().is_empty());
}

#[test]
fn a_client_that_never_reads_its_response_is_dropped_after_write_timeout() {
    const BIG: usize = 8 << 20;
    let b = Backend::start(|_| Reply::text("").body(vec![b'x'; BIG]));
    let mut ep = endpoint("/big", "GET", vec![backend(&b.url(), "/big")]);
    ep["output_encoding"] = json!("no-op");
    ep["backend"][0]["encoding"] = json!("no-op");
    let mut cfg = service(vec![ep]);
    cfg["write_timeout"] = json!("1s");
    let g = Gateway::start(&cfg.to_string());
    let mut c = Conn::open(g.addr()).unwrap();
    socket2::SockRef::from(&c.reader.stream)
        .set_recv_buffer_size(64 * 1024)
        .unwrap();
    c.write_raw(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    // Now read everything: the gateway gave up, so it is less than the body and then EOF.
    let mut got = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    let t = Instant::now();
    loop {
        match c.reader.stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
        assert!(t.elapsed() < Duration::from_secs(5), "still sending");
    }
    assert!(got < BIG, "the whole {got}-byte response was delivered");
}

// ---------------------------------------------------------------------------------------
// Request-target cap: 414.
// ---------------------------------------------------------------------------------------

fn get_with_target_len(len: usize) -> Vec<u8> {
    let mut raw = b"GET /x?q=".to_vec();
    raw.resize(4 + len, b'a');
    raw.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
    raw
}

#[test]
fn a_request_target_one_byte_over_8_kib_gets_414_and_the_connection_closes() {
    let (b, g) = gateway_with(json!({}));
    let (status, _) = send_then_wait_for_close(
        &g,
        &get_with_target_len(8 * 1024 + 1),
        Duration::from_secs(2),
    );
    assert_eq!(status, Some(414));
    assert!(b.requests().is_empty());
}

#[test]
fn a_request_target_of_exactly_8_kib_is_served() {
    let (_b, g) = gateway_with(json!({}));
    let mut c = Conn::open(g.addr()).unwrap();
    c.write_raw(&get_with_target_len(8 * 1024)).unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 200);
}

#[test]
fn an_endless_request_target_is_refused_before_its_line_ends() {
    let (_b, g) = gateway_with(json!({}));
    let mut raw = b"GET /".to_vec();
    raw.resize(20 * 1024, b'a');
    let (status, took) = send_then_wait_for_close(&g, &raw, Duration::from_secs(2));
    assert_eq!(status, Some(414));
    assert!(took < Duration::from_secs(1), "answered after {took:?}");
}

#[test]
fn max_uri_bytes_sets_the_request_target_cap() {
    let (_b, g) = gateway_with(json!({"max_uri_bytes": 100}));
    let (status, _) =
        send_then_wait_for_close(&g, &get_with_target_len(101), Duration::from_secs(2));
    assert_eq!(status, Some(414));
    let mut c = Conn::open(g.addr()).unwrap();
    c.write_raw(&get_with_target_len(100)).unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 200);
}

// ---------------------------------------------------------------------------------------
// Host: RFC 9110 §7.2.
// ---------------------------------------------------------------------------------------

#[test]
fn each_invalid_host_value_gets_400_and_the_connection_closes() {
    let (b, g) = gateway_with(json!({}));
    for host in [
        &b"exa mple.com"[..],
        b"example.com/evil",
        b"user@example.com",
        b"exa\x01mple.com",
        b"example.com:99999",
        b"example.com:80x",
        b"example.com:80:81",
        b"[::1",
        b"[::1]x",
        b"ex%zzample.com",
    ] {
        let (status, _) = send_then_wait_for_close(&g, &with_host(host), Duration::from_secs(2));
        assert_eq!(
            status,
            Some(400),
            "Host: {:?}",
            String::from_utf8_lossy(host)
        );
    }
    assert!(b.requests().is_empty());
}

#[test]
fn valid_host_forms_are_served() {
    let (_b, g) = gateway_with(json!({}));
    for host in [
        &b"example.com"[..],
        b"example.com:8080",
        b"127.0.0.1:80",
        b"[::1]",
        b"[2001:db8::1]:443",
        b"my_host.internal",
    ] {
        let mut c = Conn::open(g.addr()).unwrap();
        c.write_raw(&with_host(host)).unwrap();
        assert_eq!(
            c.read_response(false).unwrap().status,
            200,
            "Host: {:?}",
            String::from_utf8_lossy(host)
        );
    }
}

#[test]
fn a_missing_host_on_http_1_1_and_two_hosts_get_400() {
    let (b, g) = gateway_with(json!({}));
    let (status, _) = send_then_wait_for_close(
        &g,
        b"GET /x HTTP/1.1\r\nX: 1\r\n\r\n",
        Duration::from_secs(2),
    );
    assert_eq!(status, Some(400));
    let (status, _) = send_then_wait_for_close(
        &g,
        b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        Duration::from_secs(2),
    );
    assert_eq!(status, Some(400));
    assert!(b.requests().is_empty());
}

// ---------------------------------------------------------------------------------------
// Chunked bodies: a size over the limit is refused at once.
// ---------------------------------------------------------------------------------------

#[test]
fn a_chunk_size_over_the_body_limit_gets_413_at_once() {
    let (b, g) = gateway_with(json!({}));
    let (status, took) = send_then_wait_for_close(
        &g,
        b"POST /post HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\n",
        Duration::from_secs(2),
    );
    assert_eq!(status, Some(413));
    assert!(took < Duration::from_secs(1), "answered after {took:?}");
    assert!(b.requests().is_empty());
}

#[test]
fn a_chunk_size_line_with_more_hex_digits_than_a_u64_gets_400() {
    let (b, g) = gateway_with(json!({}));
    let (status, _) = send_then_wait_for_close(
        &g,
        b"POST /post HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000001\r\n",
        Duration::from_secs(2),
    );
    assert_eq!(status, Some(400));
    assert!(b.requests().is_empty());
}
