//! `proxy.sequential` (reference §4, lura `proxy/merging.go`): backends called in order, later
//! url_patterns reading `{respN_field}` from earlier shaped results; the first failing fails the
//! request, a later one failing gives the partial merge.
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
use std::time::Duration;

/// `GET /seq/{id}` -> the given backends, sequential.
fn sequential(backends: Vec<Value>) -> Value {
    let mut ep = endpoint("/seq/{id}", "GET", backends);
    ep["extra_config"] = json!({"proxy": {"sequential": true}});
    service(vec![ep])
}

#[test]
fn the_second_backend_receives_values_from_the_first_in_its_path() {
    let first = Backend::json(r#"{"user":{"id":42,"tags":["a","b"]},"name":"ann"}"#);
    let second = Backend::json(r#"{"posts":[1,2]}"#);
    let cfg = sequential(vec![
        backend(&first.url(), "/users/{id}"),
        backend(
            &second.url(),
            "/posts/{resp0_user.id}/{resp0_name}/{resp0_user.tags}",
        ),
    ]);
    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/seq/7"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(first.last_request().path, "/users/7");
    // KrakenD: nested object paths are followed, arrays become comma-joined values.
    assert_eq!(second.last_request().path, "/posts/42/ann/a,b");
    assert_eq!(
        r.json(),
        json!({"user": {"id": 42, "tags": ["a", "b"]}, "name": "ann", "posts": [1, 2]})
    );
    assert_eq!(r.header("x-krakend-completed"), Some("true"));
}

#[test]
fn a_field_the_earlier_response_lacks_is_sent_as_luras_template_key_not_an_empty_segment() {
    let first = Backend::json(r#"{"name":"ann"}"#);
    let second = Backend::json(r#"{"ok":true}"#);
    let cfg = sequential(vec![
        backend(&first.url(), "/users/{id}"),
        backend(&second.url(), "/users/{resp0_id}/delete"),
    ]);
    let g = Gateway::start(&cfg.to_string());
    assert_eq!(get(&g.url("/seq/7")).status, 200);
    // KrakenD: lura leaves the unfilled `{{.Resp0_id}}` in the URL (Go escapes it); an empty
    // segment would have called `/users//delete`.
    assert_eq!(
        second.last_request().path,
        "/users/%7B%7B.Resp0_id%7D%7D/delete"
    );
}

#[test]
fn values_come_from_the_shaped_data_of_the_earlier_backend() {
    let first = Backend::json(r#"{"data":{"user":{"id":"u-9"}}}"#);
    let second = Backend::json(r#"{"ok":true}"#);
    let mut b0 = backend(&first.url(), "/a");
    b0["target"] = json!("data");
    b0["group"] = json!("account");
    let cfg = sequential(vec![
        b0,
        backend(&second.url(), "/b/{resp0_account.user.id}"),
    ]);
    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/seq/1"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(second.last_request().path, "/b/u-9");
}

#[test]
fn a_third_backend_can_use_values_from_the_first_and_the_second() {
    let first = Backend::json(r#"{"a":"x"}"#);
    let second = Backend::json(r#"{"b":"y"}"#);
    let third = Backend::json(r#"{"c":"z"}"#);
    let cfg = sequential(vec![
        backend(&first.url(), "/1"),
        backend(&second.url(), "/2/{resp0_a}"),
        backend(&third.url(), "/3/{resp0_a}/{resp1_b}"),
    ]);
    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/seq/1"));
    assert_eq!(r.status, 200);
    assert_eq!(second.last_request().path, "/2/x");
    assert_eq!(third.last_request().path, "/3/x/y");
    assert_eq!(r.json(), json!({"a": "x", "b": "y", "c": "z"}));
}

#[test]
fn a_failing_first_backend_fails_the_request_and_stops_the_chain() {
    let first = Backend::start(|_| Reply::status(500).body("boom"));
    let second = Backend::json(r#"{"b":1}"#);
    let cfg = sequential(vec![
        backend(&first.url(), "/1"),
        backend(&second.url(), "/2/{resp0_a}"),
    ]);
    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/seq/1"));
    assert_eq!(r.status, 500);
    assert!(r.body.is_empty(), "body {:?}", r.text());
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
    assert!(
        second.requests().is_empty(),
        "the second backend was called"
    );
}

#[test]
fn return_error_code_on_a_failing_first_backend_passes_its_status() {
    // KrakenD: the sequential merger returns the first backend's error unwrapped, so the
    // endpoint handler sees its status (a parallel merge would wrap it and answer 500).
    let first = Backend::start(|_| Reply::status(404).body("nope"));
    let second = Backend::json(r#"{"b":1}"#);
    let mut b0 = backend(&first.url(), "/1");
    b0["extra_config"] = json!({"backend/http": {"return_error_code": true}});
    let cfg = sequential(vec![b0, backend(&second.url(), "/2")]);
    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/seq/1"));
    assert_eq!(r.status, 404);
    assert!(second.requests().is_empty());
}

#[test]
fn a_failing_second_backend_gives_the_partial_merge_and_stops_the_chain() {
    let first = Backend::json(r#"{"foo":42}"#);
    let second = Backend::start(|_| Reply::status(500));
    let third = Backend::json(r#"{"c":1}"#);
    let mut cfg = sequential(vec![
        backend(&first.url(), "/1"),
        backend(&second.url(), "/2/{resp0_foo}"),
        backend(&third.url(), "/3"),
    ]);
    cfg["endpoints"][0]["cache_ttl"] = json!("1h");
    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/seq/1"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"foo": 42}));
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
    assert_eq!(r.header("cache-control"), None);
    assert_eq!(second.last_request().path, "/2/42");
    assert!(third.requests().is_empty(), "the chain did not stop");
}

#[test]
fn error_details_from_a_later_backend_stop_the_chain_as_data() {
    let first = Backend::json(r#"{"foo":1}"#);
    let second = Backend::start(|_| {
        Reply::status(418)
            .header("Content-Type", "text/plain")
            .body("teapot")
    });
    let third = Backend::json(r#"{"c":1}"#);
    let mut b1 = backend(&second.url(), "/2");
    b1["extra_config"] = json!({"backend/http": {"return_error_details": "two"}});
    let cfg = sequential(vec![
        backend(&first.url(), "/1"),
        b1,
        backend(&third.url(), "/3"),
    ]);
    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/seq/1"));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"foo": 1, "error_two": {
            "http_status_code": 418, "http_body": "teapot", "http_body_encoding": "text/plain"}})
    );
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
    assert!(third.requests().is_empty());
}

#[test]
fn the_whole_sequence_shares_85_percent_of_the_endpoint_timeout() {
    // Each call alone fits the 1s timeout; together (1.1s) they pass the 850ms window.
    let slow = |_: &Recorded| Reply::json(r#"{"a":1}"#).delay(Duration::from_millis(550));
    let first = Backend::start(slow);
    let second = Backend::start(|_| Reply::json(r#"{"b":1}"#).delay(Duration::from_millis(550)));
    let mut cfg = sequential(vec![
        backend(&first.url(), "/1"),
        backend(&second.url(), "/2"),
    ]);
    cfg["endpoints"][0]["timeout"] = json!("1s");
    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/seq/1"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"a": 1}));
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
}

#[test]
fn sequential_propagated_params_are_accepted() {
    let first = Backend::json(r#"{"id":5}"#);
    let second = Backend::json(r#"{"b":1}"#);
    let mut cfg = sequential(vec![
        backend(&first.url(), "/1"),
        backend(&second.url(), "/2/{resp0_id}"),
    ]);
    cfg["endpoints"][0]["extra_config"]["proxy"]["sequential_propagated_params"] =
        json!(["resp0_id"]);
    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/seq/1"));
    assert_eq!(r.status, 200);
    assert_eq!(second.last_request().path, "/2/5");
}

#[test]
fn without_sequential_the_backends_run_in_parallel() {
    // Both backends wait 400ms: in parallel the request takes about 400ms, in sequence 800ms.
    let a = Backend::start(|_| Reply::json(r#"{"a":1}"#).delay(Duration::from_millis(400)));
    let b = Backend::start(|_| Reply::json(r#"{"b":1}"#).delay(Duration::from_millis(400)));
    let run = |seq: bool| {
        let mut ep = endpoint(
            "/p",
            "GET",
            vec![backend(&a.url(), "/a"), backend(&b.url(), "/b")],
        );
        ep["extra_config"] = json!({"proxy": {"sequential": seq}});
        let g = Gateway::start(&service(vec![ep]).to_string());
        let t = std::time::Instant::now();
        let r = get(&g.url("/p"));
        assert_eq!(r.json(), json!({"a": 1, "b": 1}));
        t.elapsed()
    };
    let parallel = run(false);
    let in_sequence = run(true);
    assert!(
        parallel < Duration::from_millis(750),
        "parallel took {parallel:?}"
    );
    assert!(
        in_sequence >= Duration::from_millis(800),
        "sequential took {in_sequence:?}"
    );
}

#[test]
fn config_check_refuses_sequential_propagated_params_that_are_not_strings() {
    // KrakenD panics on them. (A forward `{respN}` reference and a non-boolean `sequential`
    // are accepted as KrakenD accepts them: tests/krakend_accepts.rs.)
    let mut bad_params = sequential(vec![backend("http://127.0.0.1:9", "/1")]);
    bad_params["endpoints"][0]["extra_config"]["proxy"]["sequential_propagated_params"] =
        json!([1]);
    let (code, out, err) = check(&bad_params.to_string());
    assert_ne!(code, 0);
    assert!(format!("{out}{err}").contains("panics"), "{out}{err}");
}
