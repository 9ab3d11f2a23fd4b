//! `security/cors` as a browser sees it: preflights answered before routing on any path,
//! simple requests with `Vary: Origin` and the allow headers, origins with one wildcard,
//! credentials, max age, private network, passthrough. Before this was built the namespace
//! made every endpoint answer 501.
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

/// `GET /x` and `POST /x` on `b`, with this CORS block.
fn gateway(b: &Backend, cors: Value) -> Gateway {
    let url = b.url();
    let mut cfg = service(vec![
        endpoint("/x", "GET", vec![backend(&url, "/x")]),
        endpoint("/x", "POST", vec![backend(&url, "/x")]),
        endpoint("/x", "PUT", vec![backend(&url, "/x")]),
    ]);
    cfg["extra_config"] = json!({ "security/cors": cors });
    Gateway::start(&cfg.to_string())
}

fn preflight(g: &Gateway, path: &str, origin: &str, method: &str, headers: &str) -> Response {
    let mut h = vec![
        ("Origin", origin),
        ("Access-Control-Request-Method", method),
    ];
    if !headers.is_empty() {
        h.push(("Access-Control-Request-Headers", headers));
    }
    request("OPTIONS", &g.url(path), &h, b"")
}

#[test]
fn a_preflight_is_answered_on_a_path_with_no_route_without_calling_the_backend() {
    let b = Backend::json("{}");
    let g = gateway(&b, json!({"allow_origins": ["https://app.example"]}));
    let r = preflight(&g, "/no/such/path", "https://app.example", "POST", "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body.is_empty());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(r.header("access-control-allow-methods"), Some("POST"));
    assert_eq!(
        r.header("vary"),
        Some("Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
    );
    assert!(b.requests().is_empty());
}

#[test]
fn a_preflight_echoes_requested_headers_canonically_when_every_header_is_allowed() {
    let b = Backend::json("{}");
    // KrakenD: no allow_headers means every header.
    let g = gateway(&b, json!({}));
    let r = preflight(
        &g,
        "/x",
        "https://a.example",
        "GET",
        "x-pingother,content-type",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("X-Pingother, Content-Type")
    );
}

#[test]
fn a_preflight_asking_for_a_header_not_listed_gets_no_cors_headers() {
    let b = Backend::json("{}");
    let g = gateway(&b, json!({"allow_headers": ["Content-Type"]}));
    let ok = preflight(&g, "/x", "https://a.example", "GET", "content-type, origin");
    assert_eq!(ok.header("access-control-allow-origin"), Some("*"));
    let r = preflight(&g, "/x", "https://a.example", "GET", "X-Secret");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(r.header("access-control-allow-headers"), None);
}

#[test]
fn a_preflight_for_a_method_outside_the_default_get_post_head_gets_no_cors_headers() {
    let b = Backend::json("{}");
    let g = gateway(&b, json!({}));
    let r = preflight(&g, "/x", "https://a.example", "PUT", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(r.header("access-control-allow-methods"), None);
    let r = preflight(&g, "/x", "https://a.example", "HEAD", "");
    assert_eq!(r.header("access-control-allow-methods"), Some("HEAD"));
}

#[test]
fn a_disallowed_origin_gets_no_allow_headers_but_still_vary() {
    let b = Backend::json(r#"{"a":1}"#);
    let g = gateway(&b, json!({"allow_origins": ["https://app.example"]}));
    let r = preflight(&g, "/x", "https://evil.example", "GET", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert!(r.header("vary").unwrap().contains("Origin"));
    let r = request(
        "GET",
        &g.url("/x"),
        &[("Origin", "https://evil.example")],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"a": 1}));
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(r.header_all("vary"), vec!["Origin"]);
}

#[test]
fn a_simple_request_from_an_allowed_origin_gets_it_echoed_with_vary_and_expose_headers() {
    let b = Backend::json(r#"{"a":1}"#);
    let g = gateway(
        &b,
        json!({"allow_origins": ["https://app.example"], "expose_headers": ["x-total", "Content-Length"]}),
    );
    let r = request(
        "GET",
        &g.url("/x"),
        &[("Origin", "https://APP.example")],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://APP.example")
    );
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("X-Total, Content-Length")
    );
    assert_eq!(r.header_all("vary"), vec!["Origin"]);
    assert_eq!(r.header("access-control-allow-credentials"), None);
}

#[test]
fn a_request_without_origin_still_says_vary_origin_so_caches_keep_them_apart() {
    let b = Backend::json("{}");
    let g = gateway(&b, json!({}));
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header_all("vary"), vec!["Origin"]);
    assert_eq!(r.header("access-control-allow-origin"), None);
    // On 404s too: CORS wraps the whole server.
    let r = request(
        "GET",
        &g.url("/nope"),
        &[("Origin", "https://a.example")],
        b"",
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn one_wildcard_in_an_origin_matches_subdomains_only() {
    let b = Backend::json("{}");
    let g = gateway(&b, json!({"allow_origins": ["https://*.example.com"]}));
    let allowed = |o: &str| {
        request("GET", &g.url("/x"), &[("Origin", o)], b"")
            .header("access-control-allow-origin")
            .map(str::to_string)
    };
    assert_eq!(
        allowed("https://api.example.com").as_deref(),
        Some("https://api.example.com")
    );
    assert_eq!(allowed("https://example.com"), None);
    assert_eq!(allowed("http://api.example.com"), None);
    assert_eq!(allowed("https://api.example.com.evil.net"), None);
}

#[test]
fn credentials_with_listed_origins_echo_the_origin_and_allow_credentials() {
    let b = Backend::json("{}");
    let g = gateway(
        &b,
        json!({"allow_origins": ["https://app.example"], "allow_credentials": true}),
    );
    let r = request(
        "GET",
        &g.url("/x"),
        &[("Origin", "https://app.example")],
        b"",
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let p = preflight(&g, "/x", "https://app.example", "POST", "");
    assert_eq!(p.header("access-control-allow-credentials"), Some("true"));
}

#[test]
fn credentials_with_any_origin_keep_the_star_as_krakend_does() {
    // KrakenD (rs/cors): `*` plus credentials; a browser refuses to expose such a credentialed
    // response, which is the safe outcome (we do not reflect every origin).
    let b = Backend::json("{}");
    let g = gateway(&b, json!({"allow_credentials": true}));
    let r = request("GET", &g.url("/x"), &[("Origin", "https://a.example")], b"");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
}

#[test]
fn max_age_is_sent_in_seconds_on_allowed_preflights_only() {
    let b = Backend::json("{}");
    let g = gateway(
        &b,
        json!({"allow_origins": ["https://app.example"], "max_age": "12h"}),
    );
    let r = preflight(&g, "/x", "https://app.example", "GET", "");
    assert_eq!(r.header("access-control-max-age"), Some("43200"));
    let r = preflight(&g, "/x", "https://other.example", "GET", "");
    assert_eq!(r.header("access-control-max-age"), None);
    let r = request(
        "GET",
        &g.url("/x"),
        &[("Origin", "https://app.example")],
        b"",
    );
    assert_eq!(r.header("access-control-max-age"), None);
}

#[test]
fn private_network_access_is_allowed_only_when_configured_and_asked_for() {
    let b = Backend::json("{}");
    let g = gateway(&b, json!({"allow_private_network": true}));
    let ask = |g: &Gateway| {
        request(
            "OPTIONS",
            &g.url("/x"),
            &[
                ("Origin", "https://a.example"),
                ("Access-Control-Request-Method", "GET"),
                ("Access-Control-Request-Private-Network", "true"),
            ],
            b"",
        )
    };
    let r = ask(&g);
    assert_eq!(
        r.header("access-control-allow-private-network"),
        Some("true")
    );
    assert!(r
        .header_all("vary")
        .contains(&"Access-Control-Request-Private-Network"));
    let g2 = gateway(&b, json!({}));
    assert_eq!(
        ask(&g2).header("access-control-allow-private-network"),
        None
    );
}

#[test]
fn options_passthrough_lets_the_router_answer_with_the_cors_headers_added() {
    let b = Backend::json("{}");
    let url = b.url();
    let mut cfg = service(vec![endpoint("/x", "GET", vec![backend(&url, "/x")])]);
    cfg["extra_config"] = json!({
        "security/cors": {"options_passthrough": true},
        "router": {"auto_options": true}
    });
    let g = Gateway::start(&cfg.to_string());
    let r = preflight(&g, "/x", "https://a.example", "GET", "");
    assert_eq!(r.status, 200);
    // The router's auto OPTIONS answer, not CORS's.
    assert!(
        r.header("allow").unwrap().contains("GET"),
        "{:?}",
        r.headers
    );
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-methods"), Some("GET"));
}

#[test]
fn options_success_status_sets_the_preflight_status() {
    let b = Backend::json("{}");
    let g = gateway(&b, json!({"options_success_status": 204}));
    let r = preflight(&g, "/x", "https://a.example", "GET", "");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn an_options_request_without_a_requested_method_is_not_a_preflight() {
    let b = Backend::json("{}");
    let g = gateway(&b, json!({}));
    let r = request(
        "OPTIONS",
        &g.url("/x"),
        &[("Origin", "https://a.example")],
        b"",
    );
    // The router answers (no OPTIONS route: 405), with the actual-request headers.
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn a_bad_cors_block_stops_the_gateway_at_startup() {
    let b = Backend::json("{}");
    let url = b.url();
    let mut cfg = service(vec![endpoint("/x", "GET", vec![backend(&url, "/x")])]);
    cfg["extra_config"] = json!({"security/cors": {"max_age": "forever"}});
    let e = Gateway::try_start_with(&cfg.to_string(), &[], &[])
        .err()
        .expect("the gateway started");
    assert!(e.contains("max_age"), "{e}");
}
