//! `modifier/martian`: martian's modifiers, filters and groups change the request a backend
//! receives and the raw answer it gives (before decoding; with no-op the client sees the
//! changed status, headers and body). A modifier this gateway does not know refuses the config.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::config::{backend_with, endpoint, service};
use common::*;
use serde_json::{json, Value};

/// A backend that answers what it received as JSON, with a header and a cookie of its own.
fn echo() -> Backend {
    Backend::start(|r: &Recorded| {
        let headers: serde_json::Map<String, Value> = r
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), Value::String(v.clone())))
            .collect();
        Reply::json(
            &json!({
                "method": r.method,
                "path": r.path,
                "query": r.query,
                "headers": headers,
                "body": String::from_utf8_lossy(&r.body),
            })
            .to_string(),
        )
        .header("X-Backend", "b")
        .header("Set-Cookie", "own=1")
    })
}

/// `/x` -> backend `/echo` with `martian`, as JSON or no-op.
fn gateway(b: &Backend, martian: Value, no_op: bool) -> Gateway {
    let mut be = backend_with(
        &b.url(),
        "/echo",
        json!({"extra_config": {"modifier/martian": martian}}),
    );
    if no_op {
        be["encoding"] = json!("no-op");
    }
    let mut cfg = service(vec![endpoint("/x", "POST", vec![be])]);
    cfg["endpoints"][0]["input_headers"] = json!(["*"]);
    cfg["endpoints"][0]["input_query_strings"] = json!(["*"]);
    if no_op {
        cfg["endpoints"][0]["output_encoding"] = json!("no-op");
    }
    Gateway::start(&cfg.to_string())
}

fn call(g: &Gateway, target: &str, headers: &[(&str, &str)]) -> Response {
    request("POST", &g.url(target), headers, b"client")
}

#[test]
fn header_modifiers_set_append_copy_and_remove_request_headers() {
    let b = echo();
    let g = gateway(
        &b,
        json!({"fifo.Group": {"scope": ["request"], "aggregateErrors": true, "modifiers": [
            {"header.Modifier": {"scope": ["request"], "name": "X-Set", "value": "s"}},
            {"header.Append": {"scope": ["request"], "name": "X-In", "value": "added"}},
            {"header.Copy": {"scope": ["request"], "from": "X-Set", "to": "X-Copy"}},
            {"header.Blacklist": {"scope": ["request"], "names": ["X-Gone"]}}
        ]}}),
        false,
    );
    let r = call(&g, "/x", &[("X-In", "client"), ("X-Gone", "1")]);
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = b.last_request();
    assert_eq!(seen.header("x-set"), Some("s"));
    assert_eq!(seen.header_all("x-in"), ["client", "added"]);
    assert_eq!(seen.header("x-copy"), Some("s"));
    assert_eq!(seen.header("x-gone"), None);
}

#[test]
fn response_scoped_header_and_cookie_modifiers_reach_a_no_op_client() {
    let b = echo();
    let g = gateway(
        &b,
        json!({"fifo.Group": {"modifiers": [
            {"header.Modifier": {"scope": ["response"], "name": "X-Resp", "value": "r"}},
            {"header.Blacklist": {"scope": ["response"], "names": ["X-Backend"]}},
            {"cookie.Modifier": {"scope": ["response"], "name": "c", "value": "v",
                                 "path": "/", "httpOnly": true}},
            {"cookie.Modifier": {"scope": ["request"], "name": "rq", "value": "1"}}
        ]}}),
        true,
    );
    let r = call(&g, "/x", &[("Cookie", "a=b")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-resp"), Some("r"));
    assert_eq!(r.header("x-backend"), None);
    assert_eq!(
        r.header_all("set-cookie"),
        ["own=1", "c=v; Path=/; HttpOnly"]
    );
    assert_eq!(b.last_request().header("cookie"), Some("a=b; rq=1"));
}

#[test]
fn query_string_modifier_and_filter_change_the_backend_query() {
    let b = echo();
    let g = gateway(
        &b,
        json!({"fifo.Group": {"modifiers": [
            {"querystring.Modifier": {"scope": ["request"], "name": "added", "value": "a b"}},
            {"querystring.Filter": {"scope": ["request"], "name": "mode", "value": "x",
                "modifier": {"header.Modifier": {"scope": ["request"], "name": "X-Mode", "value": "x"}},
                "else": {"header.Modifier": {"scope": ["request"], "name": "X-Mode", "value": "other"}}}}
        ]}}),
        false,
    );
    call(&g, "/x?mode=x", &[]);
    let seen = b.last_request();
    assert_eq!(seen.query, "added=a+b&mode=x");
    assert_eq!(seen.header("x-mode"), Some("x"));
    call(&g, "/x?mode=y", &[]);
    assert_eq!(b.last_request().header("x-mode"), Some("other"));
}

#[test]
fn body_modifier_replaces_the_request_body_and_the_response_before_decoding() {
    let b = echo();
    // base64 of `{"replaced":true}` and of `sent`.
    let g = gateway(
        &b,
        json!({"fifo.Group": {"modifiers": [
            {"body.Modifier": {"scope": ["request"], "contentType": "text/plain", "body": "c2VudA=="}},
            {"body.Modifier": {"scope": ["response"], "contentType": "application/json",
                               "body": "eyJyZXBsYWNlZCI6dHJ1ZX0="}}
        ]}}),
        false,
    );
    let r = call(&g, "/x", &[("Content-Type", "application/json")]);
    assert_eq!((r.status, r.json()), (200, json!({"replaced": true})));
    let seen = b.last_request();
    assert_eq!(seen.body, b"sent");
    assert_eq!(seen.header("content-type"), Some("text/plain"));
}

#[test]
fn a_response_header_filter_picks_the_branch_from_the_backend_answer() {
    let b = echo();
    let g = gateway(
        &b,
        json!({"header.Filter": {"scope": ["response"], "name": "X-Backend", "value": "b",
            "modifier": {"body.Modifier": {"scope": ["response"], "body": "eyJoaXQiOjF9"}}}}),
        false,
    );
    assert_eq!(call(&g, "/x", &[]).json(), json!({"hit": 1}));
}

#[test]
fn url_and_port_modifiers_send_the_call_elsewhere() {
    let b = echo();
    let other = echo();
    let port = other.addr().port();
    let g = gateway(
        &b,
        json!({"fifo.Group": {"modifiers": [
            {"url.Modifier": {"scope": ["request"], "path": "/moved", "query": "q=1"}},
            {"port.Modifier": {"scope": ["request"], "port": port}},
            {"stash.Modifier": {"scope": ["request"], "headerName": "X-Stash"}}
        ]}}),
        false,
    );
    let r = call(&g, "/x", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(b.requests().is_empty());
    let seen = other.last_request();
    assert_eq!((seen.path.as_str(), seen.query.as_str()), ("/moved", "q=1"));
    assert_eq!(
        seen.header("x-stash"),
        Some(format!("http://127.0.0.1:{port}/moved?q=1").as_str())
    );
}

#[test]
fn a_priority_group_runs_the_highest_priority_first() {
    let b = echo();
    let g = gateway(
        &b,
        json!({"priority.Group": {"modifiers": [
            {"priority": 10, "modifier": {"header.Modifier": {"name": "X-Who", "value": "first"}}},
            {"priority": 1, "modifier": {"header.Modifier": {"name": "X-Who", "value": "last"}}}
        ]}}),
        false,
    );
    call(&g, "/x", &[]);
    assert_eq!(b.last_request().header("x-who"), Some("last"));
}

fn check_martian(martian: Value) -> (i32, String) {
    let mut cfg = service(vec![endpoint(
        "/x",
        "GET",
        vec![backend_with(
            "http://127.0.0.1:9",
            "/a",
            json!({"extra_config": {"modifier/martian": martian}}),
        )],
    )]);
    cfg["version"] = json!(3);
    let (code, out, err) = check(&cfg.to_string());
    (code, format!("{out}{err}"))
}

#[test]
fn an_unknown_modifier_a_wrong_scope_or_two_roots_refuse_the_config() {
    let (code, text) = check_martian(json!({"fifo.Group": {"modifiers": [
        {"status.Verifier": {"statusCode": 200}}
    ]}}));
    assert_ne!(code, 0);
    assert!(text.contains("status.Verifier"), "{text}");
    let (code, text) = check_martian(json!({"url.Modifier": {"scope": ["response"], "path": "/"}}));
    assert_ne!(code, 0);
    assert!(text.contains("invalid scope"), "{text}");
    let (code, text) = check_martian(json!({
        "header.Modifier": {"name": "a", "value": "b"},
        "header.Append": {"name": "a", "value": "b"}
    }));
    assert_ne!(code, 0);
    assert!(text.contains("expected one modifier"), "{text}");
    let (code, text) = check_martian(json!({"header.Modifier": {"name": "a", "value": "b"}}));
    assert_eq!(code, 0, "{text}");
}
