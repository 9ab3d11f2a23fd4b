//! `proxy.static` (lura `proxy/static.go`): static data written over the response when the
//! strategy matches the pipe's result, for a succeeding, a partially failing and a fully
//! failing set of backends.
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

/// Fixtures: `ok` answers `/a` with `{"a":1,"shared":"backend"}` and `/b` with `{"b":2}`;
/// `bad` always answers 500.
struct Fixture {
    _ok: Backend,
    _bad: Backend,
    g: Gateway,
}

/// Three endpoints with the same static strategy: `/all-ok`, `/partial` (second backend
/// fails) and `/all-fail`.
fn fixture(strategy: &str) -> Fixture {
    let ok = Backend::start(|r| {
        if r.path == "/a" {
            Reply::json(r#"{"a":1,"shared":"backend"}"#)
        } else {
            Reply::json(r#"{"b":2}"#)
        }
    });
    let bad = Backend::start(|_| Reply::status(500).body("down"));
    let ep = |path: &str, hosts: [&str; 2]| {
        let mut e = endpoint(
            path,
            "GET",
            vec![backend(hosts[0], "/a"), backend(hosts[1], "/b")],
        );
        e["cache_ttl"] = json!("1h");
        e["extra_config"] = json!({"proxy": {"static": {
            "strategy": strategy,
            "data": {"s": "static", "shared": "static"},
        }}});
        e
    };
    let (o, b) = (ok.url(), bad.url());
    let cfg = service(vec![
        ep("/all-ok", [&o, &o]),
        ep("/partial", [&o, &b]),
        ep("/all-fail", [&b, &b]),
    ]);
    let g = Gateway::start(&cfg.to_string());
    Fixture {
        _ok: ok,
        _bad: bad,
        g,
    }
}

/// (status, body or Null when empty, X-Krakend-Completed)
fn call(f: &Fixture, path: &str) -> (u16, Value, String) {
    let r = get(&f.g.url(path));
    let body = if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    };
    let completed = r.header("x-krakend-completed").unwrap_or("").to_string();
    (r.status, body, completed)
}

fn all_ok_with_static() -> Value {
    json!({"a": 1, "b": 2, "shared": "static", "s": "static"})
}
fn all_ok_plain() -> Value {
    json!({"a": 1, "b": 2, "shared": "backend"})
}
fn partial_with_static() -> Value {
    json!({"a": 1, "shared": "static", "s": "static"})
}
fn partial_plain() -> Value {
    json!({"a": 1, "shared": "backend"})
}
fn static_only() -> Value {
    json!({"s": "static", "shared": "static"})
}

#[test]
fn always_adds_the_data_to_success_partial_and_total_failure() {
    let f = fixture("always");
    assert_eq!(
        call(&f, "/all-ok"),
        (200, all_ok_with_static(), "true".into())
    );
    assert_eq!(
        call(&f, "/partial"),
        (200, partial_with_static(), "false".into())
    );
    // KrakenD: a total failure gets a response made of the static data: 200, not complete.
    assert_eq!(call(&f, "/all-fail"), (200, static_only(), "false".into()));
}

#[test]
fn success_adds_the_data_only_when_no_backend_failed() {
    let f = fixture("success");
    assert_eq!(
        call(&f, "/all-ok"),
        (200, all_ok_with_static(), "true".into())
    );
    // KrakenD: a partial merge carries an error, so "success" does not match it.
    assert_eq!(call(&f, "/partial"), (200, partial_plain(), "false".into()));
    assert_eq!(call(&f, "/all-fail"), (500, Value::Null, "false".into()));
}

#[test]
fn complete_adds_the_data_only_to_complete_responses() {
    let f = fixture("complete");
    assert_eq!(
        call(&f, "/all-ok"),
        (200, all_ok_with_static(), "true".into())
    );
    assert_eq!(call(&f, "/partial"), (200, partial_plain(), "false".into()));
    assert_eq!(call(&f, "/all-fail"), (500, Value::Null, "false".into()));
}

#[test]
fn errored_adds_the_data_on_partial_and_total_failure_and_a_total_failure_becomes_200() {
    let f = fixture("errored");
    assert_eq!(call(&f, "/all-ok"), (200, all_ok_plain(), "true".into()));
    assert_eq!(
        call(&f, "/partial"),
        (200, partial_with_static(), "false".into())
    );
    assert_eq!(call(&f, "/all-fail"), (200, static_only(), "false".into()));
}

#[test]
fn incomplete_adds_the_data_when_the_response_is_missing_or_incomplete() {
    let f = fixture("incomplete");
    assert_eq!(call(&f, "/all-ok"), (200, all_ok_plain(), "true".into()));
    assert_eq!(
        call(&f, "/partial"),
        (200, partial_with_static(), "false".into())
    );
    assert_eq!(call(&f, "/all-fail"), (200, static_only(), "false".into()));
}

#[test]
fn a_missing_strategy_means_always() {
    let bad = Backend::start(|_| Reply::status(500));
    let mut ep = endpoint("/s", "GET", vec![backend(&bad.url(), "/x")]);
    ep["extra_config"] = json!({"proxy": {"static": {"data": {"fallback": true}}}});
    let g = Gateway::start(&service(vec![ep]).to_string());
    let r = get(&g.url("/s"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"fallback": true}));
}

#[test]
fn a_single_failing_backend_with_return_error_code_still_gets_200_with_errored_data() {
    // KrakenD: the backend status only reaches the client when there is no response at all.
    let bad = Backend::start(|_| Reply::status(404).body("gone"));
    let mut b = backend(&bad.url(), "/x");
    b["extra_config"] = json!({"backend/http": {"return_error_code": true}});
    let mut ep = endpoint("/s", "GET", vec![b]);
    ep["extra_config"] =
        json!({"proxy": {"static": {"strategy": "errored", "data": {"cached": [1, 2]}}}});
    let g = Gateway::start(&service(vec![ep]).to_string());
    let r = get(&g.url("/s"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"cached": [1, 2]}));
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
    assert_eq!(r.header("cache-control"), None);
}

#[test]
fn error_details_count_as_success_but_not_as_complete() {
    // KrakenD: a backend answering with error details returns a response and no error.
    let bad = Backend::start(|_| Reply::status(503));
    let mut b = backend(&bad.url(), "/x");
    b["extra_config"] = json!({"backend/http": {"return_error_details": "x"}});
    let run = |strategy: &str| {
        let mut ep = endpoint("/s", "GET", vec![b.clone()]);
        ep["extra_config"] = json!({"proxy": {"static": {"strategy": strategy, "data": {"s": 1}}}});
        let g = Gateway::start(&service(vec![ep]).to_string());
        get(&g.url("/s")).json()
    };
    let details = json!({"http_status_code": 503});
    assert_eq!(run("success"), json!({"error_x": details, "s": 1}));
    assert_eq!(run("complete"), json!({"error_x": details}));
    assert_eq!(run("errored"), json!({"error_x": details}));
}
