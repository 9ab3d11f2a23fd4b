//! The built-in endpoints: `/__health` (on by default), `/__echo/` (`echo_endpoint`) and
//! `/__debug/` (`debug_endpoint` or `run -d`), as lura's router/gin registers them.
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
use serde_json::{json, Value};

fn start(tweak: impl FnOnce(&mut Value)) -> (Backend, Gateway) {
    start_with(tweak, &[])
}

fn start_with(tweak: impl FnOnce(&mut Value), args: &[&str]) -> (Backend, Gateway) {
    let b = Backend::json(r#"{"a":1}"#);
    let mut cfg = one("/e", "GET", &b.url(), "/e");
    tweak(&mut cfg);
    let g = Gateway::start_with(&cfg.to_string(), args, &[]);
    (b, g)
}

#[test]
fn health_answers_200_with_status_ok() {
    let (b, g) = start(|_| {});
    let r = get(&g.url("/__health"));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let body = r.json();
    assert_eq!(body["status"], "ok");
    assert!(body["agents"].is_object(), "{body}");
    assert!(
        body["now"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    // It never touches a backend.
    assert!(b.requests().is_empty());
}

#[test]
fn health_is_get_only() {
    let (_b, g) = start(|_| {});
    assert_eq!(request("POST", &g.url("/__health"), &[], b"").status, 405);
}

#[test]
fn health_path_moves_the_health_endpoint() {
    let (_b, g) = start(|c| c["extra_config"] = json!({"router": {"health_path": "/healthz"}}));
    let r = get(&g.url("/healthz"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
    assert_eq!(get(&g.url("/__health")).status, 404);
}

#[test]
fn disable_health_removes_it() {
    let (_b, g) = start(|c| c["extra_config"] = json!({"router": {"disable_health": true}}));
    assert_eq!(get(&g.url("/__health")).status, 404);
}

#[test]
fn echo_is_off_by_default() {
    let (_b, g) = start(|_| {});
    assert_eq!(get(&g.url("/__echo/x")).status, 404);
}

#[test]
fn echo_endpoint_describes_the_request() {
    let (b, g) = start(|c| c["echo_endpoint"] = json!(true));
    let r = request(
        "POST",
        &g.url("/__echo/some/path?b=2&a=1&a=3"),
        &[("X-Thing", "yes"), ("Content-Type", "text/plain")],
        b"the body",
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["req_uri"], "/__echo/some/path?b=2&a=1&a=3");
    assert_eq!(v["req_method"], "POST");
    assert_eq!(v["req_body"], "the body");
    assert_eq!(v["req_querystring"], json!({"a": ["1", "3"], "b": ["2"]}));
    assert_eq!(v["req_headers"]["X-Thing"], json!(["yes"]));
    let d = &v["req_uri_details"];
    assert_eq!(d["path"], "/__echo/some/path");
    assert_eq!(d["host"], g.addr().to_string());
    // KrakenD: url.Values.Encode sorts keys.
    assert_eq!(d["query"], "a=1&a=3&b=2");
    assert_eq!(d["user"], "");
    assert_eq!(d["fragment"], "");
    assert!(b.requests().is_empty());
}

#[test]
fn echo_answers_any_method() {
    let (_b, g) = start(|c| c["echo_endpoint"] = json!(true));
    for m in ["GET", "PUT", "DELETE", "PATCH"] {
        let r = request(m, &g.url("/__echo/"), &[], b"");
        assert_eq!(r.status, 200, "{m}");
        assert_eq!(r.json()["req_method"], m);
    }
}

#[test]
fn debug_is_off_by_default() {
    let (_b, g) = start(|_| {});
    assert_eq!(get(&g.url("/__debug/anything")).status, 404);
}

#[test]
fn debug_endpoint_answers_pong() {
    let (_b, g) = start(|c| c["debug_endpoint"] = json!(true));
    for m in ["GET", "POST"] {
        let r = request(m, &g.url("/__debug/some/thing?x=1"), &[], b"payload");
        assert_eq!(r.status, 200, "{m}");
        assert_eq!(r.text(), r#"{"message":"pong"}"#);
    }
}

#[test]
fn run_dash_d_enables_the_debug_endpoint() {
    let (_b, g) = start_with(|_| {}, &["-d"]);
    let r = get(&g.url("/__debug/"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"message": "pong"}));
}

#[test]
fn debug_and_echo_without_the_trailing_slash_redirect_to_it_as_gin_does() {
    let (_b, g) = start(|c| {
        c["echo_endpoint"] = json!(true);
        c["debug_endpoint"] = json!(true);
    });
    for path in ["/__debug", "/__echo"] {
        let r = get(&g.url(&format!("{path}?a=1")));
        assert_eq!(r.status, 301, "{path}");
        assert_eq!(r.header("location"), Some(format!("{path}/?a=1").as_str()));
        let r = request("POST", &g.url(path), &[], b"x");
        assert_eq!(r.status, 307, "{path}");
    }
    // The redirect leads somewhere that answers.
    assert_eq!(get(&g.url("/__debug/")).status, 200);
}

#[test]
fn a_disabled_debug_endpoint_does_not_redirect() {
    let (_b, g) = start(|_| {});
    assert_eq!(get(&g.url("/__debug")).status, 404);
    assert_eq!(get(&g.url("/__echo")).status, 404);
}

#[test]
fn a_backend_pointed_at_the_gateways_own_debug_path_gets_the_debug_answer() {
    // KrakenD's own specs point backends at `http://host/__debug`: the client follows the
    // redirect to `/__debug/`, which answers `{"message":"pong"}`.
    let (_b, g) = start(|c| c["debug_endpoint"] = json!(true));
    let mut cfg = one("/d", "GET", &format!("http://{}", g.addr()), "/__debug");
    cfg["debug_endpoint"] = json!(true);
    g.reload(&cfg.to_string());
    assert!(wait_until(std::time::Duration::from_secs(5), || {
        get(&g.url("/d")).status == 200
    }));
    let r = get(&g.url("/d"));
    assert_eq!(r.json(), json!({"message": "pong"}));
}
