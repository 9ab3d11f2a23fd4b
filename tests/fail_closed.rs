//! Fail closed: a namespace this gateway has not built that guards access or changes what is
//! sent or returned makes its endpoint answer 501 — wherever it appears (service, endpoint or
//! backend level) and whatever the proxy kind (single backend, merge, sequential, static,
//! no-op) — without calling any backend. Only observational namespaces are ignored. The same
//! holds for `encoding` / `output_encoding` values KrakenD knows but we have not built.
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

#[derive(Clone, Copy, Debug)]
enum Kind {
    Single,
    Merge,
    Sequential,
    Static,
    NoOp,
}

#[derive(Clone, Copy, Debug)]
enum Level {
    Service,
    Endpoint,
    Backend,
}

/// Endpoint `/x` of this proxy kind, its backends all on `b`.
fn config_for(b: &Backend, kind: Kind) -> Value {
    let url = b.url();
    let ep = match kind {
        Kind::Single => endpoint("/x", "GET", vec![backend(&url, "/one")]),
        Kind::Merge => endpoint(
            "/x",
            "GET",
            vec![backend(&url, "/one"), backend(&url, "/two")],
        ),
        Kind::Sequential => {
            let mut e = endpoint(
                "/x",
                "GET",
                vec![backend(&url, "/one"), backend(&url, "/two/{resp0_id}")],
            );
            e["extra_config"] = json!({"proxy": {"sequential": true}});
            e
        }
        Kind::Static => {
            let mut e = endpoint("/x", "GET", vec![backend(&url, "/one")]);
            e["extra_config"] =
                json!({"proxy": {"static": {"data": {"s": 1}, "strategy": "always"}}});
            e
        }
        Kind::NoOp => {
            let mut e = endpoint("/x", "GET", vec![backend(&url, "/one")]);
            e["output_encoding"] = json!("no-op");
            e
        }
    };
    service(vec![ep])
}

/// Put `ns` at `level`: the service, the endpoint, or its last backend (so a merge or a
/// sequence would have called an earlier backend first).
fn place(cfg: &mut Value, level: Level, ns: &str) -> String {
    let settings = json!({"max_rate": 1});
    match level {
        Level::Service => {
            cfg["extra_config"] = json!({ ns: settings });
            format!("$.extra_config[\"{ns}\"]")
        }
        Level::Endpoint => {
            let ep = &mut cfg["endpoints"][0];
            if ep.get("extra_config").is_none() {
                ep["extra_config"] = json!({});
            }
            ep["extra_config"][ns] = settings;
            format!("$.endpoints[0].extra_config[\"{ns}\"]")
        }
        Level::Backend => {
            let backends = cfg["endpoints"][0]["backend"].as_array_mut().unwrap();
            let last = backends.len() - 1;
            backends[last]["extra_config"] = json!({ ns: settings });
            format!("$.endpoints[0].backend[{last}].extra_config[\"{ns}\"]")
        }
    }
}

/// The endpoint answers 501 naming `ns` and where it is, and no backend saw a request.
fn assert_fails_closed(level: Level, kind: Kind, ns: &str) {
    let b = Backend::json(r#"{"id":7}"#);
    let mut cfg = config_for(&b, kind);
    let at = place(&mut cfg, level, ns);
    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/x"));
    assert_eq!(
        r.status,
        501,
        "{ns} at {level:?} level, {kind:?} proxy: {}",
        r.text()
    );
    let body = r.json();
    assert_eq!(body["namespace"], json!(ns), "{body}");
    assert_eq!(body["at"], json!(at), "{body}");
    assert!(
        b.requests().is_empty(),
        "{ns} at {level:?} level, {kind:?} proxy: a backend was called: {:?}",
        b.requests()
    );
}

// Service level: every endpoint answers 501.

#[test]
fn service_level_http_server_plugin_fails_a_single_backend_endpoint_closed() {
    assert_fails_closed(Level::Service, Kind::Single, "plugin/http-server");
}

#[test]
fn service_level_http_server_plugin_fails_a_merging_endpoint_closed() {
    assert_fails_closed(Level::Service, Kind::Merge, "plugin/http-server");
}

#[test]
fn service_level_server_plugin_fails_a_sequential_endpoint_closed() {
    assert_fails_closed(Level::Service, Kind::Sequential, "plugin/http-server");
}

#[test]
fn service_level_server_plugin_fails_a_static_endpoint_closed() {
    assert_fails_closed(Level::Service, Kind::Static, "plugin/http-server");
}

#[test]
fn service_level_server_plugin_fails_a_no_op_endpoint_closed() {
    assert_fails_closed(Level::Service, Kind::NoOp, "plugin/http-server");
}

// Endpoint level.

#[test]
fn endpoint_level_middleware_plugin_fails_a_single_backend_endpoint_closed() {
    assert_fails_closed(Level::Endpoint, Kind::Single, "plugin/middleware");
}

#[test]
fn endpoint_level_req_resp_plugin_fails_a_merging_endpoint_closed() {
    assert_fails_closed(Level::Endpoint, Kind::Merge, "plugin/req-resp-modifier");
}

#[test]
fn endpoint_level_req_resp_plugin_fails_a_sequential_endpoint_closed() {
    assert_fails_closed(
        Level::Endpoint,
        Kind::Sequential,
        "plugin/req-resp-modifier",
    );
}

#[test]
fn endpoint_level_plugin_fails_a_static_endpoint_closed() {
    assert_fails_closed(Level::Endpoint, Kind::Static, "plugin/req-resp-modifier");
}

#[test]
fn service_level_revoker_fails_every_endpoint_closed_now_that_validators_are_built() {
    // Ignoring it would let revoked tokens through the (built) endpoint validators.
    assert_fails_closed(Level::Service, Kind::Single, "auth/revoker");
}

#[test]
fn endpoint_level_plugin_fails_a_no_op_endpoint_closed() {
    assert_fails_closed(Level::Endpoint, Kind::NoOp, "plugin/req-resp-modifier");
}

// Backend level: the endpoint owning the backend answers 501 before calling any backend.

#[test]
fn backend_level_lambda_fails_a_single_backend_endpoint_closed() {
    assert_fails_closed(Level::Backend, Kind::Single, "backend/lambda");
}

#[test]
fn backend_level_lambda_fails_a_merging_endpoint_closed_before_any_backend_is_called() {
    assert_fails_closed(Level::Backend, Kind::Merge, "backend/lambda");
}

#[test]
fn backend_level_graphql_fails_a_sequential_endpoint_closed_before_the_first_call() {
    assert_fails_closed(Level::Backend, Kind::Sequential, "backend/graphql");
}

#[test]
fn backend_level_client_credentials_fail_a_static_endpoint_closed() {
    assert_fails_closed(Level::Backend, Kind::Static, "auth/client-credentials");
}

#[test]
fn backend_level_amqp_producer_fails_a_no_op_endpoint_closed() {
    assert_fails_closed(Level::Backend, Kind::NoOp, "backend/amqp/producer");
}

// What is not fail-closed.

#[test]
fn telemetry_at_every_level_is_ignored_and_the_endpoint_serves() {
    let b = Backend::json(r#"{"id":7}"#);
    let mut cfg = config_for(&b, Kind::Merge);
    place(&mut cfg, Level::Service, "telemetry/opentelemetry");
    place(&mut cfg, Level::Endpoint, "telemetry/influx");
    place(&mut cfg, Level::Backend, "telemetry/opentelemetry");
    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(b.requests().len(), 2);
}

#[test]
fn an_unknown_namespace_fails_its_endpoint_closed_and_check_names_the_nearest_known_one() {
    let b = Backend::json(r#"{"id":7}"#);
    let mut cfg = service(vec![
        endpoint("/x", "GET", vec![backend(&b.url(), "/one")]),
        endpoint("/open", "GET", vec![backend(&b.url(), "/open")]),
    ]);
    cfg["endpoints"][0]["extra_config"] = json!({"auth/validater": {"alg": "RS256"}});
    let text = serde_json::to_string_pretty(&cfg).unwrap();
    let out = check_file(&text, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("$.endpoints[0].extra_config[\"auth/validater\"]: warning:")
            && out.stderr.contains("did you mean \"auth/validator\"?")
            && out.stderr.contains("501"),
        "{}",
        out.stderr
    );
    let g = Gateway::start(&text);
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 501);
    assert_eq!(r.json()["namespace"], json!("auth/validater"));
    assert!(b.requests().is_empty());
    assert_eq!(get(&g.url("/open")).status, 200);
}

#[test]
fn service_level_auth_validator_only_tunes_a_cache_and_is_ignored() {
    // KrakenD: at service level auth/validator only holds `shared_cache_duration`.
    let b = Backend::json(r#"{"id":7}"#);
    let mut cfg = config_for(&b, Kind::Single);
    cfg["extra_config"] = json!({"auth/validator": {"shared_cache_duration": 900}});
    let g = Gateway::start(&cfg.to_string());
    assert_eq!(get(&g.url("/x")).status, 200);
}

#[test]
fn check_lists_each_namespace_with_its_path_and_what_happens() {
    let b = Backend::json("{}");
    let mut cfg = config_for(&b, Kind::Merge);
    place(&mut cfg, Level::Service, "telemetry/influx");
    place(&mut cfg, Level::Backend, "backend/lambda");
    let out = check_file(&cfg.to_string(), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("$.extra_config[\"telemetry/influx\"]: telemetry/influx: ignored"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "$.endpoints[0].backend[1].extra_config[\"backend/lambda\"]: backend/lambda: \
             GET /x answers 501"
        ),
        "{}",
        out.stdout
    );
}

// Encodings KrakenD has and we have not built.

/// `check` succeeds with a warning at `line:col` of `path` naming `what` and 501.
fn assert_check_warns_501(text: &str, path: &str, what: &str) {
    let out = check_file(text, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains(&format!(": {path}: warning:")))
        .unwrap_or_else(|| panic!("no warning at {path}: {}", out.stderr));
    assert!(line.contains(what) && line.contains("501"), "{line}");
    // file:line:col: $.path: ...
    let file = out.path.to_str().unwrap();
    let pos = line
        .strip_prefix(file)
        .and_then(|r| r.strip_prefix(':'))
        .unwrap_or_else(|| panic!("{line}"));
    let mut parts = pos.splitn(3, ':');
    assert!(parts.next().unwrap().parse::<u32>().is_ok(), "{line}");
    assert!(parts.next().unwrap().parse::<u32>().is_ok(), "{line}");
}

#[test]
fn an_encoding_krakend_does_not_know_still_falls_back_to_json() {
    let b = Backend::json(r#"{"id":7}"#);
    let mut cfg = config_for(&b, Kind::Single);
    cfg["endpoints"][0]["output_encoding"] = json!("fast-json");
    cfg["endpoints"][0]["backend"][0]["encoding"] = json!("JSON");
    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"id": 7}));
}

#[test]
fn a_shadow_backend_fails_its_endpoint_closed_rather_than_merge_its_answer() {
    // KrakenD drops a shadow backend's answer; without shadowing it would be merged in.
    let b = Backend::json(r#"{"id":7}"#);
    let mut cfg = config_for(&b, Kind::Merge);
    cfg["endpoints"][0]["backend"][1]["extra_config"] = json!({"proxy": {"shadow": true}});
    let text = serde_json::to_string_pretty(&cfg).unwrap();
    assert_check_warns_501(
        &text,
        "$.endpoints[0].backend[1].extra_config.proxy.shadow",
        "\"shadow\"",
    );
    let g = Gateway::start(&text);
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 501, "{}", r.text());
    assert_eq!(r.json()["setting"], json!("proxy.shadow"));
    assert!(b.requests().is_empty());
}
