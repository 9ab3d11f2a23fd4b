//! `qos/circuit-breaker`: against a backend that fails on command, the breaker opens when
//! consecutive failures exceed `max_errors`, then fails calls at once (500, or a partial
//! response) without calling the backend; after `timeout` it lets one trial call through,
//! whose success closes it and whose failure opens it again.
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
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A backend answering `{"ok":true}` with whatever status the test last set.
fn switchable() -> (Backend, Arc<AtomicU16>) {
    let status = Arc::new(AtomicU16::new(500));
    let s = Arc::clone(&status);
    let b = Backend::start(move |_| {
        let mut r = Reply::json(r#"{"ok":true}"#);
        r.status = s.load(Ordering::SeqCst);
        r
    });
    (b, status)
}

fn guarded(b: &Backend, cb: Value) -> Value {
    let mut be = backend(&b.url(), "/x");
    be["extra_config"] = json!({ "qos/circuit-breaker": cb });
    let mut cfg = service(vec![endpoint("/x", "GET", vec![be])]);
    cfg["extra_config"] = json!({"router": {"return_error_msg": true}});
    cfg
}

fn calls(b: &Backend) -> usize {
    b.requests().len()
}

/// Trip a breaker with `max_errors: 1` (two failures in a row reach the backend).
fn trip(g: &Gateway, b: &Backend) {
    for n in 1..=2 {
        assert_eq!(get(&g.url("/x")).status, 500);
        assert_eq!(calls(b), n, "failure {n} reaches the backend");
    }
}

#[test]
fn the_circuit_opens_after_more_than_max_errors_failures_and_rejects_without_calling() {
    let (b, _status) = switchable();
    let g = Gateway::start(
        &guarded(&b, json!({"interval": 60, "timeout": 10, "max_errors": 1})).to_string(),
    );
    trip(&g, &b);
    for _ in 0..3 {
        let r = get(&g.url("/x"));
        assert_eq!(r.status, 500);
        assert_eq!(r.text(), "circuit breaker is open");
        assert_eq!(r.header("x-krakend-completed"), Some("false"));
    }
    assert_eq!(calls(&b), 2, "an open circuit never calls the backend");
}

#[test]
fn a_success_before_the_threshold_keeps_the_circuit_closed() {
    let (b, status) = switchable();
    let g = Gateway::start(
        &guarded(&b, json!({"interval": 60, "timeout": 10, "max_errors": 1})).to_string(),
    );
    assert_eq!(get(&g.url("/x")).status, 500);
    status.store(200, Ordering::SeqCst);
    assert_eq!(get(&g.url("/x")).status, 200);
    status.store(500, Ordering::SeqCst);
    assert_eq!(get(&g.url("/x")).status, 500);
    assert_eq!(calls(&b), 3);
    // The 4th call still reaches the backend: only one failure in a row so far.
    assert_eq!(get(&g.url("/x")).status, 500);
    assert_eq!(calls(&b), 4);
}

#[test]
fn after_the_timeout_one_trial_call_goes_through_and_its_success_closes_the_circuit() {
    let (b, status) = switchable();
    let g = Gateway::start(
        &guarded(&b, json!({"interval": 60, "timeout": 1, "max_errors": 1})).to_string(),
    );
    trip(&g, &b);
    assert_eq!(get(&g.url("/x")).text(), "circuit breaker is open");
    status.store(200, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1_200));
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(calls(&b), 3, "the trial call reached the backend");
    // Closed again: every call goes through.
    for n in 4..=6 {
        assert_eq!(get(&g.url("/x")).status, 200);
        assert_eq!(calls(&b), n);
    }
}

#[test]
fn a_failed_trial_call_opens_the_circuit_again() {
    let (b, _status) = switchable();
    let g = Gateway::start(
        &guarded(&b, json!({"interval": 60, "timeout": 1, "max_errors": 1})).to_string(),
    );
    trip(&g, &b);
    std::thread::sleep(Duration::from_millis(1_200));
    // Half-open: the trial call reaches the backend and fails.
    assert_eq!(get(&g.url("/x")).status, 500);
    assert_eq!(calls(&b), 3);
    // One failure is enough in half-open: open again, the backend is left alone.
    let r = get(&g.url("/x"));
    assert_eq!(r.text(), "circuit breaker is open");
    assert_eq!(calls(&b), 3);
}

#[test]
fn an_open_circuit_on_one_backend_gives_a_partial_response() {
    let (bad, _status) = switchable();
    let good = Backend::json(r#"{"fine":1}"#);
    let mut be = backend(&bad.url(), "/x");
    be["extra_config"] =
        json!({"qos/circuit-breaker": {"interval": 60, "timeout": 10, "max_errors": 0}});
    let cfg = service(vec![endpoint(
        "/x",
        "GET",
        vec![be, backend(&good.url(), "/y")],
    )]);
    let g = Gateway::start(&cfg.to_string());
    for _ in 0..3 {
        let r = get(&g.url("/x"));
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), json!({"fine": 1}));
        assert_eq!(r.header("x-krakend-completed"), Some("false"));
    }
    assert_eq!(calls(&bad), 1, "max_errors 0: open after the first failure");
    assert_eq!(calls(&good), 3);
}

#[test]
fn a_block_krakend_would_silently_drop_is_refused_at_startup() {
    let (b, _status) = switchable();
    let (code, out, err) = gateway::check(&guarded(&b, json!({"name": "x"})).to_string());
    assert_ne!(code, 0, "{out}{err}");
    assert!(format!("{out}{err}").contains("max_errors"), "{out}{err}");
}
