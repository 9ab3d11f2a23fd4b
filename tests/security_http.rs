//! `security/http` (unrolled/secure in KrakenD): allowed hosts (exact, regex, proxy headers),
//! the HTTPS redirect, HSTS only over HTTPS (said by a proxy header, this listener being
//! plaintext) or when forced, and each fixed header. Before this was built the namespace made
//! every endpoint answer 501.
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

fn gateway(b: &Backend, secure: Value) -> Gateway {
    let url = b.url();
    let mut cfg = service(vec![endpoint("/x", "GET", vec![backend(&url, "/x")])]);
    cfg["extra_config"] = json!({ "security/http": secure });
    Gateway::start(&cfg.to_string())
}

fn get_with(g: &Gateway, path: &str, headers: &[(&str, &str)]) -> Response {
    request("GET", &g.url(path), headers, b"")
}

#[test]
fn a_host_outside_allowed_hosts_is_a_400_and_the_backend_is_not_called() {
    let b = Backend::json(r#"{"a":1}"#);
    let g = gateway(&b, json!({"allowed_hosts": ["api.example.com"]}));
    let r = get_with(&g, "/x", &[("Host", "evil.example.com")]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("host not allowed"), "{}", r.text());
    assert!(b.requests().is_empty());
    let r = get_with(&g, "/x", &[("Host", "API.example.com")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"a": 1}));
}

#[test]
fn allowed_hosts_as_regex_are_anchored() {
    let b = Backend::json("{}");
    let g = gateway(
        &b,
        json!({"allowed_hosts": ["[a-z]+\\.example\\.com"], "allowed_hosts_are_regex": true}),
    );
    assert_eq!(
        get_with(&g, "/x", &[("Host", "api.example.com")]).status,
        200
    );
    assert_eq!(
        get_with(&g, "/x", &[("Host", "api.example.com.evil.net")]).status,
        400
    );
    assert_eq!(
        get_with(&g, "/x", &[("Host", "x.api.example.com")]).status,
        400
    );
}

#[test]
fn host_proxy_headers_name_the_host_to_check() {
    let b = Backend::json("{}");
    let g = gateway(
        &b,
        json!({"allowed_hosts": ["api.example.com"], "host_proxy_headers": ["X-Forwarded-Host"]}),
    );
    let r = get_with(
        &g,
        "/x",
        &[
            ("Host", "internal:8080"),
            ("X-Forwarded-Host", "api.example.com"),
        ],
    );
    assert_eq!(r.status, 200);
    let r = get_with(&g, "/x", &[("Host", "internal:8080")]);
    assert_eq!(r.status, 400);
}

#[test]
fn is_development_turns_the_host_check_redirect_and_hsts_off() {
    let b = Backend::json("{}");
    let g = gateway(
        &b,
        json!({"allowed_hosts": ["api.example.com"], "ssl_redirect": true, "sts_seconds": 60,
               "force_sts_header": true, "frame_deny": true, "is_development": true}),
    );
    let r = get_with(&g, "/x", &[("Host", "other")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("strict-transport-security"), None);
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
}

#[test]
fn ssl_redirect_sends_plain_http_to_https_with_path_and_query() {
    let b = Backend::json("{}");
    let g = gateway(&b, json!({"ssl_redirect": true}));
    let r = get_with(&g, "/x?a=1", &[("Host", "api.example.com")]);
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://api.example.com/x?a=1"));
    assert!(b.requests().is_empty());
}

#[test]
fn ssl_redirect_uses_ssl_host_and_the_temporary_status_when_asked() {
    let b = Backend::json("{}");
    let g = gateway(
        &b,
        json!({"ssl_redirect": true, "ssl_host": "secure.example.com", "ssl_temporary_redirect": true}),
    );
    let r = request("POST", &g.url("/x"), &[("Host", "api.example.com")], b"{}");
    assert_eq!(r.status, 307);
    assert_eq!(r.header("location"), Some("https://secure.example.com/x"));
}

#[test]
fn ssl_proxy_headers_mark_a_request_as_https_so_it_is_not_redirected() {
    let b = Backend::json(r#"{"a":1}"#);
    let g = gateway(
        &b,
        json!({"ssl_redirect": true, "ssl_proxy_headers": {"X-Forwarded-Proto": "https"}}),
    );
    let r = get_with(&g, "/x", &[("X-Forwarded-Proto", "https")]);
    assert_eq!(r.status, 200);
    let r = get_with(&g, "/x", &[("X-Forwarded-Proto", "http")]);
    assert_eq!(r.status, 301);
}

#[test]
fn hsts_is_sent_only_over_https_as_said_by_the_proxy_header() {
    let b = Backend::json("{}");
    let g = gateway(
        &b,
        json!({"sts_seconds": 31536000, "sts_include_subdomains": true,
               "ssl_proxy_headers": {"X-Forwarded-Proto": "https"}}),
    );
    let plain = get(&g.url("/x"));
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("strict-transport-security"), None);
    let tls = get_with(&g, "/x", &[("X-Forwarded-Proto", "https")]);
    assert_eq!(
        tls.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
}

#[test]
fn force_sts_header_sends_hsts_over_plain_http() {
    let b = Backend::json("{}");
    let g = gateway(&b, json!({"sts_seconds": 60, "force_sts_header": true}));
    let r = get(&g.url("/x"));
    assert_eq!(r.header("strict-transport-security"), Some("max-age=60"));
}

#[test]
fn each_fixed_header_is_added_to_every_answer_including_404s() {
    let b = Backend::json("{}");
    let g = gateway(
        &b,
        json!({"frame_deny": true, "content_type_nosniff": true, "browser_xss_filter": true,
               "content_security_policy": "default-src 'self'", "referrer_policy": "same-origin"}),
    );
    for path in ["/x", "/nope"] {
        let r = get(&g.url(path));
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            r.header("x-xss-protection"),
            Some("1; mode=block"),
            "{path}"
        );
        assert_eq!(
            r.header("content-security-policy"),
            Some("default-src 'self'"),
            "{path}"
        );
        assert_eq!(r.header("referrer-policy"), Some("same-origin"), "{path}");
    }
}

#[test]
fn a_custom_frame_options_value_wins_over_frame_deny() {
    let b = Backend::json("{}");
    let g = gateway(
        &b,
        json!({"frame_deny": true, "custom_frame_options_value": "SAMEORIGIN"}),
    );
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header_all("x-frame-options"), vec!["SAMEORIGIN"]);
}

#[test]
fn an_empty_block_changes_nothing() {
    let b = Backend::json(r#"{"a":1}"#);
    let g = gateway(&b, json!({}));
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"a": 1}));
    assert_eq!(r.header("x-frame-options"), None);
}

#[test]
fn a_bad_allowed_hosts_regex_stops_the_gateway_at_startup() {
    let b = Backend::json("{}");
    let url = b.url();
    let mut cfg = service(vec![endpoint("/x", "GET", vec![backend(&url, "/x")])]);
    cfg["extra_config"] =
        json!({"security/http": {"allowed_hosts": ["(a"], "allowed_hosts_are_regex": true}});
    let e = Gateway::try_start_with(&cfg.to_string(), &[], &[])
        .err()
        .expect("the gateway started");
    assert!(e.contains("allowed_hosts"), "{e}");
}
