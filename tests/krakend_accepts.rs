//! Configs that KrakenD CE 2.13 starts with, which this gateway used to refuse: each now starts
//! (`proxy check` exits 0 and warns, naming what KrakenD does) and behaves at run time as KrakenD
//! does. Sources: lura `config/config.go`, `proxy/static.go`, `proxy/merging.go`,
//! `proxy/formatter.go`, `router/gin/router.go` and `engine.go`, krakend-koanf (mapstructure's
//! weak typing), `sd/loadbalancing.go`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::config::{backend, backend_with, endpoint, service};
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// `proxy check` on `cfg`: it must accept the file. Returns what it wrote to stderr.
fn accepted(cfg: &Value) -> String {
    let (code, out, err) = check(&cfg.to_string());
    assert_eq!(code, 0, "check refused it:\n{out}{err}");
    err
}

/// An endpoint with `extra_config` set.
fn endpoint_with(path: &str, backends: Vec<Value>, extra: Value) -> Value {
    let mut e = endpoint(path, "GET", backends);
    e["extra_config"] = extra;
    e
}

#[test]
fn v1_keys_are_ignored_as_krakend_ignores_them_with_a_warning_naming_the_v3_key() {
    let b = Backend::start(|_| Reply::json(r#"{"a":1,"b":2}"#));
    let mut e = endpoint(
        "/legacy",
        "GET",
        vec![backend_with(&b.url(), "/x", json!({"whitelist": ["a"]}))],
    );
    e["headers_to_pass"] = json!(["X-Custom"]);
    let cfg = service(vec![e]);
    let err = accepted(&cfg);
    assert!(
        err.contains("\"headers_to_pass\" is a KrakenD v1 key")
            && err.contains("\"input_headers\""),
        "{err}"
    );
    assert!(err.contains("rename it to \"allow\""), "{err}");

    let g = Gateway::start(&cfg.to_string());
    let r = request("GET", &g.url("/legacy"), &[("X-Custom", "1")], b"");
    assert_eq!(r.status, 200);
    // `whitelist` does not filter, `headers_to_pass` forwards nothing: as in KrakenD v2.
    assert_eq!(r.json(), json!({"a": 1, "b": 2}));
    assert_eq!(b.last_request().header("x-custom"), None);
}

#[test]
fn an_unknown_static_strategy_applies_the_data_always_as_krakend_does() {
    let bad = Backend::start(|_| Reply::status(500));
    let e = endpoint_with(
        "/s",
        vec![backend(&bad.url(), "/x")],
        json!({"proxy": {"static": {"strategy": "sucess", "data": {"s": 1}}}}),
    );
    let cfg = service(vec![e]);
    let err = accepted(&cfg);
    assert!(err.contains("unknown strategy \"sucess\""), "{err}");

    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/s"));
    // "always": even a total failure becomes the static data ("success" would be a 500).
    assert_eq!((r.status, r.json()), (200, json!({"s": 1})));
}

#[test]
fn static_data_that_is_not_an_object_leaves_the_endpoint_without_static_data() {
    let ok = Backend::start(|_| Reply::json(r#"{"a":1}"#));
    let e = endpoint_with(
        "/s",
        vec![backend(&ok.url(), "/x")],
        json!({"proxy": {"static": {"strategy": "always", "data": [1]}}}),
    );
    let cfg = service(vec![e]);
    let err = accepted(&cfg);
    assert!(
        err.contains("KrakenD ignores the whole static block"),
        "{err}"
    );
    let g = Gateway::start(&cfg.to_string());
    assert_eq!(get(&g.url("/s")).json(), json!({"a": 1}));
}

#[test]
fn sequential_that_is_not_a_boolean_calls_the_backends_in_parallel_as_krakend_does() {
    let first = Backend::start(|_| Reply::json(r#"{"id":7}"#));
    let second = Backend::start(|_| Reply::json(r#"{"b":2}"#));
    let e = endpoint_with(
        "/seq",
        vec![
            backend(&first.url(), "/a"),
            backend(&second.url(), "/b/{resp0_id}"),
        ],
        json!({"proxy": {"sequential": "true"}}),
    );
    let cfg = service(vec![e]);
    let err = accepted(&cfg);
    assert!(err.contains("reads it as false"), "{err}");
    let g = Gateway::start(&cfg.to_string());
    assert_eq!(get(&g.url("/seq")).json(), json!({"id": 7, "b": 2}));
    // In parallel nothing fills `{resp0_id}` (sequentially it would be /b/7): lura sends its
    // template key as it is.
    assert_eq!(second.last_request().path, "/b/%7B%7B.Resp0_id%7D%7D");
}

#[test]
fn a_sequential_placeholder_naming_a_later_backend_starts_and_stays_unfilled() {
    let first = Backend::start(|_| Reply::json(r#"{"a":1}"#));
    let second = Backend::start(|_| Reply::json(r#"{"id":9}"#));
    let e = endpoint_with(
        "/seq",
        vec![
            backend(&first.url(), "/a/{resp1_id}"),
            backend(&second.url(), "/b"),
        ],
        json!({"proxy": {"sequential": true}}),
    );
    let cfg = service(vec![e]);
    let err = accepted(&cfg);
    assert!(err.contains("{resp1_id} refers to backend 1"), "{err}");
    let g = Gateway::start(&cfg.to_string());
    assert_eq!(get(&g.url("/seq")).json(), json!({"a": 1, "id": 9}));
    assert_eq!(first.last_request().path, "/a/%7B%7B.Resp1_id%7D%7D");
}

#[test]
fn an_endpoint_with_a_method_krakend_does_not_route_is_skipped_and_the_rest_served() {
    let b = Backend::json(r#"{"ok":true}"#);
    let cfg = service(vec![
        endpoint("/trace", "TRACE", vec![backend(&b.url(), "/x")]),
        endpoint("/ok", "GET", vec![backend(&b.url(), "/x")]),
    ]);
    let err = accepted(&cfg);
    assert!(err.contains("unsupported method \"TRACE\""), "{err}");
    let g = Gateway::start(&cfg.to_string());
    assert_eq!(get(&g.url("/ok")).status, 200);
    // KrakenD's router never registers it: not found.
    assert_eq!(get(&g.url("/trace")).status, 404);
}

#[test]
fn a_backend_without_any_host_starts_and_fails_each_call_with_a_500() {
    let b = Backend::json(r#"{"b":1}"#);
    let cfg = service(vec![
        endpoint("/none", "GET", vec![json!({"url_pattern": "/x"})]),
        endpoint(
            "/half",
            "GET",
            vec![backend(&b.url(), "/x"), json!({"url_pattern": "/y"})],
        ),
    ]);
    let err = accepted(&cfg);
    assert!(err.contains("no hosts available"), "{err}");
    let g = Gateway::start(&cfg.to_string());
    assert_eq!(get(&g.url("/none")).status, 500);
    // With another backend it is a partial response, as any failing backend.
    let r = get(&g.url("/half"));
    assert_eq!((r.status, r.json()), (200, json!({"b": 1})));
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
}

#[test]
fn a_missing_url_pattern_calls_the_root_and_a_missing_endpoint_is_served_at_the_root() {
    let b = Backend::json(r#"{"b":1}"#);
    let cfg = service(vec![json!({"backend": [{"host": [b.url()]}]})]);
    let err = accepted(&cfg);
    assert!(err.contains("no \"endpoint\""), "{err}");
    assert!(err.contains("no \"url_pattern\""), "{err}");
    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/"));
    assert_eq!((r.status, r.json()), (200, json!({"b": 1})));
    assert_eq!(b.last_request().path, "/");
}

#[test]
fn an_https_backend_that_cannot_be_reached_fails_only_its_own_endpoint() {
    let b = Backend::json(r#"{"b":1}"#);
    let cfg = service(vec![
        endpoint("/tls", "GET", vec![backend("https://127.0.0.1:9", "/x")]),
        endpoint("/plain", "GET", vec![backend(&b.url(), "/x")]),
    ]);
    let err = accepted(&cfg);
    assert!(!err.contains("not built"), "{err}");
    let g = Gateway::start(&cfg.to_string());
    assert_eq!(get(&g.url("/tls")).status, 500);
    assert_eq!(get(&g.url("/plain")).json(), json!({"b": 1}));
}

#[test]
fn a_host_with_a_path_answers_501_and_a_non_http_scheme_fails_each_call() {
    let cfg = service(vec![
        endpoint(
            "/path",
            "GET",
            vec![backend_with(
                "http://127.0.0.1:9/api",
                "/x",
                json!({"disable_host_sanitize": true}),
            )],
        ),
        endpoint(
            "/amqp",
            "GET",
            vec![backend_with(
                "amqp://127.0.0.1:9",
                "/x",
                json!({"disable_host_sanitize": true}),
            )],
        ),
    ]);
    let err = accepted(&cfg);
    assert!(err.contains("a path in the host is not built yet"), "{err}");
    assert!(err.contains("fails every call sent to this host"), "{err}");
    let g = Gateway::start(&cfg.to_string());
    assert_eq!(get(&g.url("/path")).status, 501);
    assert_eq!(get(&g.url("/amqp")).status, 500);
}

#[test]
fn scalar_types_convert_weakly_as_krakend_decodes_them() {
    let b = Backend::start(|_| Reply::json(r#"[1,2]"#));
    let mut e = endpoint("/w", "GET", vec![]);
    // A host string instead of a list, booleans and integers in quotes, a header name alone.
    e["backend"] = json!([{"host": b.url(), "url_pattern": "/x", "is_collection": "true"}]);
    e["input_headers"] = json!("X-A");
    e["concurrent_calls"] = json!("1");
    let mut cfg = service(vec![e]);
    cfg["cache_ttl"] = json!(null);
    let err = accepted(&cfg);
    assert!(err.contains("read as a list of one item"), "{err}");
    assert!(err.contains("read as true"), "{err}");
    assert!(err.contains("null is ignored"), "{err}");
    let g = Gateway::start(&cfg.to_string());
    let r = request("GET", &g.url("/w"), &[("X-A", "1")], b"");
    assert_eq!(r.json(), json!({"collection": [1, 2]}));
    assert_eq!(b.last_request().header("x-a"), Some("1"));
}

#[test]
fn a_type_error_in_the_router_namespace_drops_its_options_but_four_as_krakend_does() {
    let bad = Backend::start(|_| Reply::status(500).body("backend says no"));
    let mut cfg = service(vec![endpoint("/e", "GET", vec![backend(&bad.url(), "/x")])]);
    cfg["extra_config"] = json!({"router": {"return_error_msg": "true", "health_path": "/hc"}});
    let err = accepted(&cfg);
    assert!(
        err.contains("KrakenD then ignores the router options"),
        "{err}"
    );
    let g = Gateway::start(&cfg.to_string());
    assert_eq!(get(&g.url("/hc")).status, 200);
    // return_error_msg is not applied: no error text in the body.
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 500);
    assert!(!r.text().contains("500"), "{}", r.text());
}

#[test]
fn endpoints_under_stats_and_catchall_are_served_as_krakend_ce_serves_them() {
    let b = Backend::json(r#"{"b":1}"#);
    let cfg = service(vec![
        endpoint("/__stats/x", "GET", vec![backend(&b.url(), "/x")]),
        endpoint("/__catchall", "GET", vec![backend(&b.url(), "/x")]),
    ]);
    accepted(&cfg);
    let g = Gateway::start(&cfg.to_string());
    assert_eq!(get(&g.url("/__stats/x")).status, 200);
    assert_eq!(get(&g.url("/__catchall")).status, 200);
}

#[test]
fn a_jwt_placeholder_without_the_validator_starts_and_stays_unfilled() {
    let b = Backend::json(r#"{"b":1}"#);
    let cfg = service(vec![endpoint(
        "/u",
        "GET",
        vec![backend(&b.url(), "/users/{JWT.sub}")],
    )]);
    let err = accepted(&cfg);
    assert!(err.contains("{JWT.sub}"), "{err}");
    let g = Gateway::start(&cfg.to_string());
    assert_eq!(get(&g.url("/u")).status, 200);
    assert_eq!(b.last_request().path, "/users/%7B%7B.JWT.sub%7D%7D");
}

#[test]
fn a_flatmap_move_with_extra_args_uses_the_first_two_as_krakend_does() {
    let b = Backend::json(r#"{"a":1,"b":2}"#);
    let be = backend_with(
        &b.url(),
        "/x",
        json!({"extra_config": {"proxy": {"flatmap_filter": [
            {"type": "move", "args": ["a", "z", "extra"]},
            {"type": "del"}
        ]}}}),
    );
    let cfg = service(vec![endpoint("/f", "GET", vec![be])]);
    let err = accepted(&cfg);
    assert!(err.contains("ignores the other 1"), "{err}");
    assert!(err.contains("del without args"), "{err}");
    let g = Gateway::start(&cfg.to_string());
    assert_eq!(get(&g.url("/f")).json(), json!({"z": 1, "b": 2}));
}

#[test]
fn what_krakend_crashes_on_or_refuses_is_still_refused_and_the_message_says_so() {
    let b = "http://127.0.0.1:9";
    // gin panics at startup on a route registered twice.
    let dup = service(vec![
        endpoint("/a/{x}", "GET", vec![backend(b, "/x")]),
        endpoint("/a/{y}", "GET", vec![backend(b, "/y")]),
    ]);
    // lura panics at startup on a host its pattern does not match once.
    let host = service(vec![endpoint(
        "/h",
        "GET",
        vec![backend("http://h/api", "/x")],
    )]);
    // A listener whose certificate cannot be read does not start (KrakenD neither).
    let mut tls = service(vec![endpoint("/t", "GET", vec![backend(b, "/x")])]);
    tls["tls"] = json!({"public_key": "a.pem", "private_key": "a.key"});
    for (cfg, says) in [
        (dup, "gin) panics at startup"),
        (host, "lura panics at startup"),
        (tls, "cannot read \"a.pem\""),
    ] {
        let (code, out, err) = check(&cfg.to_string());
        assert_eq!(code, 1, "{out}{err}");
        assert!(err.contains(says), "{says:?} not in {err}");
    }
}

#[test]
fn an_sd_dns_backend_with_a_scheme_that_is_not_http_fails_each_call_as_krakend_does() {
    let cfg = service(vec![endpoint(
        "/e",
        "GET",
        vec![backend_with(
            "_api._tcp.svc.test",
            "/",
            json!({"sd": "dns", "sd_scheme": "ftp"}),
        )],
    )]);
    let g = Gateway::start(&cfg.to_string());
    // The warning is on stderr, read by another thread than the `listening` line: wait for it.
    assert!(
        wait_until(Duration::from_secs(5), || g
            .output()
            .contains("sd_scheme \"ftp\" is not HTTP")),
        "{}",
        g.output()
    );
    assert_eq!(get(&g.url("/e")).status, 500);
}
