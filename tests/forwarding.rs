//! What the backend receives: url_pattern substitution, query-string and header forwarding,
//! KrakenD's own X-Forwarded-* / User-Agent headers, method override, bodies, and hosts.
//! Expectations follow lura `router/gin/endpoint.go` and `proxy/balancing.go` (reference §2-3).
// A test crate: its helpers (not only #[test] fns) index JSON configs and fail loudly.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod common;

use common::config::{backend, endpoint, one, service};
use common::*;
use serde_json::json;

/// A backend that always answers `{}` and a gateway built from `cfg(backend_url)`.
fn setup(cfg: impl FnOnce(&str) -> serde_json::Value) -> (Backend, Gateway) {
    let b = Backend::json("{}");
    let g = Gateway::start(&cfg(&b.url()).to_string());
    (b, g)
}

fn sorted(mut v: Vec<(String, String)>) -> Vec<(String, String)> {
    v.sort();
    v
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn url_pattern_params_are_substituted() {
    let (b, g) = setup(|h| one("/users/{id}/posts/{post}", "GET", h, "/u/{post}/of/{id}"));
    assert_eq!(get(&g.url("/users/42/posts/7")).status, 200);
    assert_eq!(b.last_request().path, "/u/7/of/42");
}

#[test]
fn literal_query_in_url_pattern_is_kept_and_the_client_query_appended() {
    let (b, g) = setup(|h| {
        let mut c = one("/q", "GET", h, "/q?fixed=1");
        c["endpoints"][0]["input_query_strings"] = json!(["a"]);
        c
    });
    assert_eq!(get(&g.url("/q?a=2")).status, 200);
    // KrakenD: the forwarded query is appended after `&` (lura proxy/balancing.go).
    assert_eq!(b.last_request().query, "fixed=1&a=2");
}

#[test]
fn literal_query_in_url_pattern_is_sent_without_a_client_query() {
    let (b, g) = setup(|h| one("/q", "GET", h, "/q?fixed=1"));
    assert_eq!(get(&g.url("/q?other=2")).status, 200);
    assert_eq!(b.last_request().query, "fixed=1");
}

#[test]
fn query_strings_are_not_forwarded_by_default() {
    let (b, g) = setup(|h| one("/q", "GET", h, "/q"));
    assert_eq!(get(&g.url("/q?a=1&b=2")).status, 200);
    assert_eq!(b.last_request().query, "");
}

#[test]
fn only_listed_query_strings_are_forwarded() {
    let (b, g) = setup(|h| {
        let mut c = one("/q", "GET", h, "/q");
        c["endpoints"][0]["input_query_strings"] = json!(["a", "b"]);
        c
    });
    assert_eq!(get(&g.url("/q?a=1&c=3&b=2&A=4")).status, 200);
    // KrakenD: names are case-sensitive, so `A` is not `a`.
    assert_eq!(
        sorted(b.last_request().query_pairs()),
        pairs(&[("a", "1"), ("b", "2")])
    );
}

#[test]
fn star_forwards_every_query_string_with_repeated_values() {
    let (b, g) = setup(|h| {
        let mut c = one("/q", "GET", h, "/q");
        c["endpoints"][0]["input_query_strings"] = json!(["*"]);
        c
    });
    assert_eq!(get(&g.url("/q?a=1&b=2&b=3")).status, 200);
    assert_eq!(
        sorted(b.last_request().query_pairs()),
        pairs(&[("a", "1"), ("b", "2"), ("b", "3")])
    );
}

#[test]
fn listed_query_string_keeps_repeated_values() {
    let (b, g) = setup(|h| {
        let mut c = one("/q", "GET", h, "/q");
        c["endpoints"][0]["input_query_strings"] = json!(["b"]);
        c
    });
    assert_eq!(get(&g.url("/q?b=2&a=1&b=3")).status, 200);
    assert_eq!(
        b.last_request().query_pairs(),
        pairs(&[("b", "2"), ("b", "3")])
    );
}

const CLIENT_HEADERS: &[(&str, &str)] = &[
    ("Content-Type", "application/json"),
    ("X-Custom", "1"),
    ("Cookie", "session=abc"),
    ("Authorization", "Bearer t"),
];

#[test]
fn by_default_only_content_type_is_forwarded_from_the_client() {
    let (b, g) = setup(|h| one("/p", "POST", h, "/p"));
    assert_eq!(
        request("POST", &g.url("/p"), CLIENT_HEADERS, b"{}").status,
        200
    );
    let rec = b.last_request();
    assert_eq!(rec.header("content-type"), Some("application/json"));
    for absent in ["x-custom", "cookie", "authorization"] {
        assert_eq!(rec.header(absent), None, "{absent} was forwarded");
    }
}

#[test]
fn listing_input_headers_stops_content_type_unless_listed() {
    let (b, g) = setup(|h| {
        let mut c = one("/p", "POST", h, "/p");
        // KrakenD: names are case-insensitive (canonicalised).
        c["endpoints"][0]["input_headers"] = json!(["x-custom"]);
        c
    });
    assert_eq!(
        request("POST", &g.url("/p"), CLIENT_HEADERS, b"{}").status,
        200
    );
    let rec = b.last_request();
    assert_eq!(rec.header("x-custom"), Some("1"));
    assert_eq!(rec.header("content-type"), None);
    assert_eq!(rec.header("cookie"), None);
}

#[test]
fn star_forwards_every_client_header() {
    let (b, g) = setup(|h| {
        let mut c = one("/p", "POST", h, "/p");
        c["endpoints"][0]["input_headers"] = json!(["*"]);
        c
    });
    assert_eq!(
        request("POST", &g.url("/p"), CLIENT_HEADERS, b"{}").status,
        200
    );
    let rec = b.last_request();
    for (k, v) in CLIENT_HEADERS {
        assert_eq!(rec.header(k), Some(*v), "{k}");
    }
}

#[test]
fn x_forwarded_for_is_the_client_ip_and_overrides_the_client_value() {
    let (b, g) = setup(|h| {
        let mut c = one("/p", "GET", h, "/p");
        c["endpoints"][0]["input_headers"] = json!(["*"]);
        c
    });
    assert_eq!(
        request("GET", &g.url("/p"), &[("X-Forwarded-For", "1.2.3.4")], b"").status,
        200
    );
    // KrakenD: a single IP, not an appended chain, even with `*`.
    assert_eq!(
        b.last_request().header_all("x-forwarded-for"),
        vec!["127.0.0.1"]
    );
}

#[test]
fn x_forwarded_host_is_the_original_host() {
    let (b, g) = setup(|h| one("/p", "GET", h, "/p"));
    assert_eq!(
        request(
            "GET",
            &g.url("/p"),
            &[("Host", "api.example.test:8080")],
            b""
        )
        .status,
        200
    );
    let rec = b.last_request();
    assert_eq!(
        rec.header("x-forwarded-host"),
        Some("api.example.test:8080")
    );
    // The backend sees its own host in Host.
    assert_eq!(rec.header("host"), Some(b.host_port().as_str()));
}

#[test]
fn user_agent_is_krakend_version_unless_forwarded() {
    let (b, g) = setup(|h| one("/p", "GET", h, "/p"));
    assert_eq!(
        request("GET", &g.url("/p"), &[("User-Agent", "curl/8")], b"").status,
        200
    );
    let rec = b.last_request();
    let ua = rec.header("user-agent").expect("User-Agent");
    assert!(ua.starts_with("KrakenD Version "), "{ua}");
    assert_eq!(rec.header("x-forwarded-via"), None);
}

#[test]
fn forwarded_user_agent_is_kept_and_x_forwarded_via_added() {
    let (b, g) = setup(|h| {
        let mut c = one("/p", "GET", h, "/p");
        c["endpoints"][0]["input_headers"] = json!(["User-Agent"]);
        c
    });
    assert_eq!(
        request("GET", &g.url("/p"), &[("User-Agent", "curl/8")], b"").status,
        200
    );
    let rec = b.last_request();
    assert_eq!(rec.header("user-agent"), Some("curl/8"));
    let via = rec.header("x-forwarded-via").expect("X-Forwarded-Via");
    assert!(via.starts_with("KrakenD Version "), "{via}");
}

#[test]
fn a_backend_filter_without_user_agent_sends_go_clients_default_and_no_forwarded_headers() {
    let (b, g) = setup(|h| {
        let mut c = one("/p", "GET", h, "/p");
        c["endpoints"][0]["input_headers"] = json!(["*"]);
        c["endpoints"][0]["backend"][0]["input_headers"] = json!(["X-Trace-Id"]);
        c
    });
    let r = request(
        "GET",
        &g.url("/p"),
        &[("User-Agent", "curl/8"), ("X-Trace-Id", "t1")],
        b"",
    );
    assert_eq!(r.status, 200);
    let rec = b.last_request();
    // KrakenD (recorded): the backend-level filter drops the gateway's User-Agent, and Go's
    // client then sends its own default.
    assert_eq!(rec.header("user-agent"), Some("Go-http-client/1.1"));
    assert_eq!(rec.header("x-trace-id"), Some("t1"));
    assert_eq!(rec.header("x-forwarded-for"), None);
    assert_eq!(rec.header("x-forwarded-host"), None);
}

#[test]
fn backend_method_overrides_the_endpoint_method() {
    let (b, g) = setup(|h| {
        let mut c = one("/m", "GET", h, "/m");
        c["endpoints"][0]["backend"][0]["method"] = json!("POST");
        c
    });
    assert_eq!(get(&g.url("/m")).status, 200);
    assert_eq!(b.last_request().method, "POST");
}

#[test]
fn backend_method_defaults_to_the_endpoint_method() {
    let (b, g) = setup(|h| one("/m", "PUT", h, "/m"));
    assert_eq!(request("PUT", &g.url("/m"), &[], b"{}").status, 200);
    assert_eq!(b.last_request().method, "PUT");
}

#[test]
fn post_body_is_forwarded_with_content_length() {
    let (b, g) = setup(|h| one("/p", "POST", h, "/p"));
    let body = br#"{"name":"value","n":[1,2,3]}"#;
    assert_eq!(
        request(
            "POST",
            &g.url("/p"),
            &[("Content-Type", "application/json")],
            body
        )
        .status,
        200
    );
    let rec = b.last_request();
    assert_eq!(rec.body, body);
    // Beyond KrakenD: lura sends request bodies chunked unless Content-Length is forwarded
    // (lura#213, lura#234); the gateway buffers and sends a length.
    assert_eq!(
        rec.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(rec.header("transfer-encoding"), None);
}

#[test]
fn host_without_scheme_gets_http() {
    let b = Backend::json(r#"{"ok":true}"#);
    let cfg = service(vec![endpoint(
        "/h",
        "GET",
        vec![json!({"host": [b.host_port()], "url_pattern": "/h"})],
    )]);
    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/h"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"ok": true}));
}

#[test]
fn root_host_list_is_used_when_the_backend_has_none() {
    let b = Backend::json(r#"{"ok":true}"#);
    let mut cfg = service(vec![endpoint(
        "/h",
        "GET",
        vec![json!({"url_pattern": "/root"})],
    )]);
    cfg["host"] = json!([b.url()]);
    let g = Gateway::start(&cfg.to_string());
    assert_eq!(get(&g.url("/h")).status, 200);
    assert_eq!(b.last_request().path, "/root");
}

#[test]
fn two_hosts_both_receive_traffic() {
    let b1 = Backend::json(r#"{"from":1}"#);
    let b2 = Backend::json(r#"{"from":2}"#);
    let mut be = backend(&b1.url(), "/lb");
    be["host"] = json!([b1.url(), b2.url()]);
    let g = Gateway::start(&service(vec![endpoint("/lb", "GET", vec![be])]).to_string());
    for _ in 0..30 {
        assert_eq!(get(&g.url("/lb")).status, 200);
    }
    let (n1, n2) = (b1.requests().len(), b2.requests().len());
    assert_eq!(n1 + n2, 30);
    assert!(n1 > 0 && n2 > 0, "unbalanced: {n1} / {n2}");
}
