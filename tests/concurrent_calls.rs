//! `concurrent_calls` (lura `proxy/concurrent.go`): the same backend request fired N times at
//! once; the first successful response wins; the calls get 75% of the endpoint timeout.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::config::{backend, endpoint, service};
use common::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A backend whose handler sees the arrival number of each request (0, 1, 2...).
fn counting(reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Backend {
    let n = Arc::new(AtomicUsize::new(0));
    Backend::start(move |_| reply(n.fetch_add(1, Ordering::SeqCst)))
}

/// `GET /c` -> `backends`, with `concurrent_calls: n`.
fn config(n: u32, backends: Vec<Value>) -> Value {
    let mut ep = endpoint("/c", "GET", backends);
    ep["concurrent_calls"] = json!(n);
    service(vec![ep])
}

#[test]
fn a_failing_first_call_is_ignored_when_another_call_succeeds() {
    let b = counting(|i| {
        if i == 0 {
            Reply::status(500).body("first fails")
        } else {
            Reply::json(&format!(r#"{{"call":{i}}}"#)).delay(Duration::from_millis(100))
        }
    });
    let g = Gateway::start(&config(3, vec![backend(&b.url(), "/x")]).to_string());
    let r = get(&g.url("/c"));
    assert_eq!(r.status, 200, "{}", r.text());
    let call = r.json()["call"].as_u64().unwrap();
    assert!(call == 1 || call == 2, "answered by call {call}");
    assert_eq!(r.header("x-krakend-completed"), Some("true"));
    assert!(wait_until(Duration::from_secs(2), || b.requests().len() == 3));
    assert!(b.requests().iter().all(|r| r.path == "/x"));
}

#[test]
fn the_fast_successful_call_wins_over_a_slow_one() {
    let b = counting(|i| {
        let reply = Reply::json(&format!(r#"{{"call":{i}}}"#));
        if i == 0 {
            reply.delay(Duration::from_millis(1500))
        } else {
            reply.delay(Duration::from_millis(50 * i as u64))
        }
    });
    let g = Gateway::start(&config(3, vec![backend(&b.url(), "/x")]).to_string());
    let t = Instant::now();
    let r = get(&g.url("/c"));
    let took = t.elapsed();
    assert_eq!(r.status, 200);
    assert_ne!(r.json()["call"], json!(0), "the slow call answered");
    assert!(took < Duration::from_millis(1000), "took {took:?}");
    assert!(wait_until(Duration::from_secs(2), || b.requests().len() == 3));
    // The losing calls were cancelled mid-flight; the gateway keeps serving.
    assert_eq!(get(&g.url("/c")).status, 200);
}

#[test]
fn when_every_call_fails_the_request_fails() {
    let b = Backend::start(|_| Reply::status(500));
    let g = Gateway::start(&config(3, vec![backend(&b.url(), "/x")]).to_string());
    let r = get(&g.url("/c"));
    assert_eq!(r.status, 500);
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
    assert!(wait_until(Duration::from_secs(2), || b.requests().len() == 3));
}

#[test]
fn the_calls_get_75_percent_of_the_endpoint_timeout() {
    // 800ms fits a 1s timeout for one call but not the 750ms concurrent window.
    let b = Backend::start(|_| Reply::json(r#"{"a":1}"#).delay(Duration::from_millis(800)));
    let run = |n: u32| {
        let mut cfg = config(n, vec![backend(&b.url(), "/x")]);
        cfg["endpoints"][0]["timeout"] = json!("1s");
        let g = Gateway::start(&cfg.to_string());
        get(&g.url("/c")).status
    };
    assert_eq!(run(1), 200);
    assert_eq!(run(2), 500);
}

#[test]
fn each_backend_of_a_merging_endpoint_is_called_n_times() {
    let a = Backend::json(r#"{"a":1}"#);
    let b = Backend::json(r#"{"b":2}"#);
    let cfg = config(2, vec![backend(&a.url(), "/a"), backend(&b.url(), "/b")]);
    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/c"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"a": 1, "b": 2}));
    assert!(wait_until(Duration::from_secs(2), || a.requests().len()
        == 2
        && b.requests().len() == 2));
}

#[test]
fn a_no_op_endpoint_calls_its_backend_once() {
    let b = Backend::start(|_| Reply::text("raw"));
    let mut cfg = config(3, vec![backend(&b.url(), "/x")]);
    cfg["endpoints"][0]["output_encoding"] = json!("no-op");
    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/c"));
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "raw");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(b.requests().len(), 1);
}

#[test]
fn without_concurrent_calls_the_backend_is_called_once() {
    let b = Backend::json(r#"{"a":1}"#);
    let g = Gateway::start(&config(1, vec![backend(&b.url(), "/x")]).to_string());
    assert_eq!(get(&g.url("/c")).status, 200);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(b.requests().len(), 1);
}
