//! The gateway's backend client under faults: slow, resetting, lying, refusing and
//! connection-closing backends, the pool's reuse rules, and followed redirects.
//! KrakenD maps every backend failure of a single-backend endpoint to an empty 500 (§4).
// A test crate: its helpers (not only #[test] fns) index JSON configs and fail loudly.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod common;

use common::config::one;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn gateway_for(b: &Backend, timeout: &str) -> Gateway {
    let mut cfg = one("/f", "GET", &b.url(), "/f");
    cfg["endpoints"][0]["timeout"] = json!(timeout);
    Gateway::start(&cfg.to_string())
}

fn assert_empty_500(r: &Response) {
    assert_eq!(r.status, 500, "{:?}", r.text());
    assert!(r.body.is_empty(), "{:?}", r.text());
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
}

#[test]
fn slow_backend_beyond_the_endpoint_timeout_gives_500_within_about_the_timeout() {
    let b = Backend::start(|_| Reply::json(r#"{"late":true}"#).delay(Duration::from_secs(3)));
    let g = gateway_for(&b, "500ms");
    let t = Instant::now();
    let r = get(&g.url("/f"));
    let took = t.elapsed();
    assert_empty_500(&r);
    assert!(
        took >= Duration::from_millis(450),
        "answered before the timeout: {took:?}"
    );
    assert!(took < Duration::from_millis(1500), "took {took:?}");
}

#[test]
fn stalled_backend_gives_500_within_about_the_timeout() {
    let b = Backend::start(|_| Reply::stall());
    let g = gateway_for(&b, "400ms");
    let t = Instant::now();
    assert_empty_500(&get(&g.url("/f")));
    assert!(t.elapsed() < Duration::from_millis(1500));
}

#[test]
fn backend_that_resets_gives_500() {
    let b = Backend::start(|_| Reply::reset());
    let g = gateway_for(&b, "2s");
    assert_empty_500(&get(&g.url("/f")));
}

#[test]
fn backend_answering_garbage_gives_500() {
    let b = Backend::start(|_| Reply::garbage(b"\x00\x01\x02 this is not HTTP\r\n\r\n"));
    let g = gateway_for(&b, "2s");
    assert_empty_500(&get(&g.url("/f")));
}

#[test]
fn backend_closing_mid_body_gives_500() {
    let b = Backend::start(|_| {
        Reply::json("{}")
            .header("Content-Length", "100")
            .body(r#"{"a":"#)
            .close()
    });
    let g = gateway_for(&b, "2s");
    assert_empty_500(&get(&g.url("/f")));
}

#[test]
fn connection_refused_gives_500() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let g = Gateway::start(&one("/f", "GET", &url, "/f").to_string());
    let t = Instant::now();
    assert_empty_500(&get(&g.url("/f")));
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn gateway_keeps_serving_after_backend_faults() {
    // Go re-encodes the forwarded query, so `?reset` reaches the backend as `reset=`.
    let b = Backend::start(|r| match r.query.as_str() {
        "fault=reset" => Reply::reset(),
        "fault=garbage" => Reply::garbage(b"nope"),
        _ => Reply::json(r#"{"ok":true}"#),
    });
    let mut cfg = one("/f", "GET", &b.url(), "/f");
    cfg["endpoints"][0]["input_query_strings"] = json!(["*"]);
    let g = Gateway::start(&cfg.to_string());
    for fault in ["reset", "garbage", "reset"] {
        assert_eq!(get(&g.url(&format!("/f?fault={fault}"))).status, 500);
    }
    let r = get(&g.url("/f"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"ok": true}));
}

#[test]
fn pool_does_not_reuse_connections_the_backend_closed_while_idle() {
    let b =
        Backend::start(|_| Reply::json(r#"{"ok":true}"#).idle_close(Duration::from_millis(200)));
    let g = gateway_for(&b, "2s");
    for round in 0..3 {
        let r = get(&g.url("/f"));
        assert_eq!(r.status, 200, "round {round}");
        assert_eq!(r.json(), json!({"ok": true}));
        std::thread::sleep(Duration::from_millis(300));
    }
    // Each request needed a fresh connection, since the previous one was closed while idle.
    assert_eq!(b.connections_accepted(), 3);
}

#[test]
fn a_post_after_the_backend_closed_the_idle_connection_is_not_lost() {
    // POST is not retried (it may not be idempotent), so a connection the backend closed while
    // idle must be noticed before it is reused.
    let b = Backend::start(|r| {
        Reply::json(&format!(
            r#"{{"got":{}}}"#,
            String::from_utf8_lossy(&r.body)
        ))
        .idle_close(Duration::from_millis(150))
    });
    let mut cfg = one("/p", "POST", &b.url(), "/p");
    cfg["timeout"] = json!("2s");
    let g = Gateway::start(&cfg.to_string());
    for round in 0..3 {
        let body = format!("{round}");
        let r = request(
            "POST",
            &g.url("/p"),
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(r.status, 200, "round {round}: {}", g.output());
        assert_eq!(r.json(), json!({"got": round}));
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(
        b.requests().len(),
        3,
        "each POST reached the backend exactly once"
    );
}

#[test]
fn pool_reuses_a_keep_alive_backend_connection() {
    let b = Backend::json(r#"{"ok":true}"#);
    let g = gateway_for(&b, "2s");
    for _ in 0..5 {
        assert_eq!(get(&g.url("/f")).status, 200);
    }
    // One core, sequential requests: one pooled connection is enough.
    assert_eq!(b.connections_accepted(), 1);
}

#[test]
fn backend_connection_close_makes_the_next_request_use_a_new_connection() {
    let b = Backend::start(|_| Reply::json(r#"{"ok":true}"#).close_with_header());
    let g = gateway_for(&b, "2s");
    for _ in 0..3 {
        assert_eq!(get(&g.url("/f")).status, 200);
    }
    assert_eq!(b.connections_accepted(), 3);
    let ids: Vec<usize> = b.requests().iter().map(|r| r.conn_id).collect();
    assert_eq!(ids, vec![0, 1, 2]);
}

#[test]
fn close_delimited_backend_body_is_read_to_the_end() {
    let b = Backend::start(|_| Reply::json(r#"{"whole":"body"}"#).close_delimited());
    let g = gateway_for(&b, "2s");
    let r = get(&g.url("/f"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"whole": "body"}));
}

#[test]
fn chunked_backend_body_is_decoded() {
    let b = Backend::start(|_| Reply::json(r#"{"chunked":"yes, in two parts"}"#).chunked());
    let g = gateway_for(&b, "2s");
    assert_eq!(
        get(&g.url("/f")).json(),
        json!({"chunked": "yes, in two parts"})
    );
}

#[test]
fn backend_redirects_301_and_302_are_followed() {
    for status in [301, 302] {
        let b = Backend::start(move |r| {
            if r.path == "/f" {
                Reply::status(status).header("Location", "/moved")
            } else {
                Reply::json(&format!(r#"{{"at":"{}"}}"#, r.path))
            }
        });
        let g = gateway_for(&b, "2s");
        let r = get(&g.url("/f"));
        // KrakenD: the Go client follows redirects; the client never sees the 30x.
        assert_eq!(r.status, 200, "backend {status}");
        assert_eq!(r.json(), json!({"at": "/moved"}));
        let paths: Vec<String> = b.requests().iter().map(|r| r.path.clone()).collect();
        assert_eq!(paths, vec!["/f", "/moved"]);
    }
}

/// A raw backend: on its first connection it answers one request and then, on the next
/// request of that connection, hangs up without a word (the race of a backend closing a
/// kept-alive connection as the gateway reuses it); every later connection answers normally.
/// Returns its URL and a counter of accepted connections.
fn backend_hanging_up_on_the_second_request(
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::Ordering;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { return };
            let n = count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                for served in 0.. {
                    // Read one request head (the test sends bodiless GETs).
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    if n == 0 && served == 1 {
                        return; // hang up: the request is dropped unanswered
                    }
                    let body = format!(r#"{{"conn":{n}}}"#);
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    if conn.write_all(format!("{head}{body}").as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, accepted)
}

#[test]
fn a_get_on_a_reused_connection_the_backend_hangs_up_is_retried_on_a_new_one() {
    let (url, accepted) = backend_hanging_up_on_the_second_request();
    let mut cfg = one("/f", "GET", &url, "/f");
    cfg["endpoints"][0]["timeout"] = json!("2s");
    let g = Gateway::start(&cfg.to_string());
    let first = get(&g.url("/f"));
    assert_eq!(first.status, 200, "{}", g.output());
    assert_eq!(first.json(), json!({"conn": 0}));
    // The pooled connection is taken again; the backend drops this request and closes.
    let second = get(&g.url("/f"));
    assert_eq!(second.status, 200, "{}", g.output());
    assert_eq!(second.json(), json!({"conn": 1}));
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
}
