//! Routing as gin does it in KrakenD CE: 404/405 text bodies, trailing-slash redirects,
//! `{param}` segments, the encoded-parameter check, and `router.error_body`.
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
use serde_json::{json, Value};

/// Endpoints `GET /foo`, `POST /bar`, `GET /users/{id}` -> the backend, after `tweak`.
fn setup(tweak: impl FnOnce(&mut Value)) -> (Backend, Gateway) {
    let b = Backend::start(|r| Reply::json(&json!({ "path": r.path }).to_string()));
    let mut cfg = service(vec![
        endpoint("/foo", "GET", vec![backend(&b.url(), "/foo")]),
        endpoint("/bar", "POST", vec![backend(&b.url(), "/bar")]),
        endpoint("/users/{id}", "GET", vec![backend(&b.url(), "/u/{id}")]),
        endpoint(
            "/users/{id}/posts",
            "GET",
            vec![backend(&b.url(), "/u/{id}/p")],
        ),
    ]);
    tweak(&mut cfg);
    let g = Gateway::start(&cfg.to_string());
    (b, g)
}

#[test]
fn unknown_path_is_404_page_not_found_as_text() {
    let (b, g) = setup(|_| {});
    let r = get(&g.url("/unknown"));
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "404 page not found");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("cache-control"), None);
    assert!(b.requests().is_empty());
}

#[test]
fn wrong_method_on_a_known_path_is_405_method_not_allowed() {
    let (b, g) = setup(|_| {});
    let r = request("POST", &g.url("/foo"), &[], b"{}");
    assert_eq!(r.status, 405);
    assert_eq!(r.text(), "405 method not allowed");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert!(b.requests().is_empty());
}

#[test]
fn disable_handle_method_not_allowed_makes_a_wrong_method_404() {
    let (_b, g) = setup(|c| {
        c["extra_config"] = json!({"router": {"disable_handle_method_not_allowed": true}})
    });
    let r = request("POST", &g.url("/foo"), &[], b"{}");
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "404 page not found");
}

#[test]
fn trailing_slash_redirects_get_with_301() {
    let (b, g) = setup(|_| {});
    let r = get(&g.url("/foo/"));
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/foo"));
    assert!(b.requests().is_empty());
}

#[test]
fn trailing_slash_redirects_post_with_307() {
    let (_b, g) = setup(|_| {});
    let r = request("POST", &g.url("/bar/"), &[], b"{}");
    assert_eq!(r.status, 307);
    assert_eq!(r.header("location"), Some("/bar"));
}

#[test]
fn disable_redirect_trailing_slash_answers_404() {
    let (_b, g) = setup(|c| {
        c["extra_config"] = json!({"router": {
            "disable_redirect_trailing_slash": true,
            "disable_redirect_fixed_path": true
        }});
    });
    let r = get(&g.url("/foo/"));
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "404 page not found");
}

#[test]
fn param_routes_match_one_segment_each() {
    let (b, g) = setup(|_| {});
    let r = get(&g.url("/users/42"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"path": "/u/42"}));
    let r = get(&g.url("/users/42/posts"));
    assert_eq!(r.json(), json!({"path": "/u/42/p"}));
    assert_eq!(get(&g.url("/users/42/other")).status, 404);
    assert_eq!(b.requests().len(), 2);
}

#[test]
fn matching_is_case_sensitive_and_wrong_case_redirects() {
    let (_b, g) = setup(|_| {});
    // KrakenD: gin's RedirectFixedPath is on by default: /FOO -> 301 /foo.
    let r = get(&g.url("/FOO"));
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/foo"));
}

#[test]
fn encoded_params_are_rejected_with_400() {
    let (b, g) = setup(|_| {});
    // The path is decoded once before routing, so `%252F` leaves `%2F` in the param, which
    // changes under decoding: KrakenD's paramChecker rejects it.
    let r = get(&g.url("/users/a%252Fb"));
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "error: encoded url params");
    assert!(b.requests().is_empty());
}

#[test]
fn params_with_a_question_mark_or_hash_are_rejected_with_400() {
    let (b, g) = setup(|_| {});
    for target in ["/users/a%3Fb", "/users/a%23b"] {
        let r = get(&g.url(target));
        assert_eq!(r.status, 400, "{target}");
        assert_eq!(r.text(), "error: encoded url params", "{target}");
    }
    assert!(b.requests().is_empty());
}

#[test]
fn disable_path_decoding_passes_encoded_params() {
    let (b, g) = setup(|c| c["extra_config"] = json!({"router": {"disable_path_decoding": true}}));
    let r = get(&g.url("/users/a%252Fb"));
    assert_eq!(r.status, 200);
    // The param holds the once-decoded `a%2Fb`; it is put into the url_pattern as is.
    assert_eq!(b.last_request().path, "/u/a%2Fb");
}

#[test]
fn error_body_replaces_the_404_text() {
    let (_b, g) = setup(|c| {
        c["extra_config"] = json!({"router": {"error_body": {
            "404": {"msg": "nothing here", "code": 404},
            "405": {"msg": "wrong verb"}
        }}});
    });
    let r = get(&g.url("/nope"));
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"msg": "nothing here", "code": 404}));
    let r = request("POST", &g.url("/foo"), &[], b"{}");
    assert_eq!(r.status, 405);
    assert_eq!(r.json(), json!({"msg": "wrong verb"}));
}

#[test]
fn endpoints_with_the_same_path_and_different_methods_both_route() {
    let b = Backend::start(|r| Reply::json(&json!({ "m": r.method }).to_string()));
    let cfg = service(vec![
        endpoint("/same", "GET", vec![backend(&b.url(), "/same")]),
        endpoint("/same", "DELETE", vec![backend(&b.url(), "/same")]),
    ]);
    let g = Gateway::start(&cfg.to_string());
    assert_eq!(get(&g.url("/same")).json(), json!({"m": "GET"}));
    assert_eq!(
        request("DELETE", &g.url("/same"), &[], b"").json(),
        json!({"m": "DELETE"})
    );
    assert_eq!(request("PUT", &g.url("/same"), &[], b"").status, 405);
}
