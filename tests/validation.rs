//! `validation/json-schema` and `validation/cel` over real sockets: what is rejected, with
//! which status, before or after which backend call; and `check` refusing a schema or an
//! expression that does not compile, at its line and column.
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

fn with_error_msg(mut cfg: Value) -> Value {
    cfg["extra_config"] = json!({"router": {"return_error_msg": true}});
    cfg
}

#[test]
fn a_body_the_schema_rejects_is_a_400_and_no_backend_is_called() {
    let b = Backend::json(r#"{"ok":true}"#);
    let mut e = endpoint("/v", "POST", vec![backend(&b.url(), "/b")]);
    e["extra_config"] = json!({"validation/json-schema": {
        "type": "object", "required": ["name"],
        "properties": {"name": {"type": "string"}}}});
    let g = Gateway::start(&with_error_msg(service(vec![e])).to_string());
    let bad = request(
        "POST",
        &g.url("/v"),
        &[("Content-Type", "application/json")],
        br#"{"name":1}"#,
    );
    assert_eq!(bad.status, 400);
    assert!(bad.text().starts_with("- /name: "), "{}", bad.text());
    assert_eq!(bad.header("x-krakend-completed"), Some("false"));
    let empty = request("POST", &g.url("/v"), &[], b"");
    assert_eq!(
        (empty.status, empty.text()),
        (400, "could not validate an empty body".into())
    );
    let broken = request("POST", &g.url("/v"), &[], b"{");
    assert_eq!(broken.status, 400);
    assert!(b.requests().is_empty());
    let good = request("POST", &g.url("/v"), &[], br#"{"name":"x"}"#);
    assert_eq!((good.status, good.json()), (200, json!({"ok": true})));
    assert_eq!(b.requests().len(), 1);
}

#[test]
fn an_endpoint_cel_request_check_rejects_with_a_500_before_any_call() {
    let b = Backend::json(r#"{"ok":true}"#);
    let mut e = endpoint("/c/{id}", "GET", vec![backend(&b.url(), "/b")]);
    e["input_headers"] = json!(["X-Tenant"]);
    e["input_query_strings"] = json!(["q"]);
    e["extra_config"] = json!({"validation/cel": [
        {"check_expr": "req_headers['X-Tenant'][0] == 'acme' && req_method == 'GET'"},
        {"check_expr": "int(req_params.Id) > 10 && req_querystring.q[0] == 'yes'"},
        {"check_expr": "timestamp(now) > timestamp('2020-01-01T00:00:00Z') && req_path.startsWith('/c/')"}
    ]});
    let g = Gateway::start(&with_error_msg(service(vec![e])).to_string());
    let ok = request("GET", &g.url("/c/11?q=yes"), &[("X-Tenant", "acme")], b"");
    assert_eq!(ok.status, 200, "{}", ok.text());
    let low = request("GET", &g.url("/c/3?q=yes"), &[("X-Tenant", "acme")], b"");
    assert_eq!(
        (low.status, low.text()),
        (500, "request aborted by evaluator #1".into())
    );
    let other = request("GET", &g.url("/c/11?q=yes"), &[("X-Tenant", "evil")], b"");
    assert_eq!(other.status, 500);
    let not_a_number = request("GET", &g.url("/c/abc?q=yes"), &[("X-Tenant", "acme")], b"");
    assert_eq!(not_a_number.status, 500);
    assert_eq!(b.requests().len(), 1);
}

#[test]
fn an_endpoint_cel_response_check_turns_the_answer_into_a_500() {
    let b = Backend::start(|r| {
        if r.path == "/big" {
            Reply::json(r#"{"total":50}"#)
        } else {
            Reply::json(r#"{"total":5}"#)
        }
    });
    let mk = |path: &str, up: &str| {
        let mut e = endpoint(path, "GET", vec![backend(&b.url(), up)]);
        e["extra_config"] =
            json!({"validation/cel": [{"check_expr": "resp_data.total < 10 && resp_completed"}]});
        e
    };
    let g = Gateway::start(&service(vec![mk("/small", "/small"), mk("/big", "/big")]).to_string());
    assert_eq!(get(&g.url("/small")).json(), json!({"total": 5}));
    let r = get(&g.url("/big"));
    assert_eq!((r.status, r.text()), (500, String::new()));
    assert_eq!(b.requests().len(), 2);
}

#[test]
fn a_backend_cel_check_fails_only_that_backend() {
    let b = Backend::json(r#"{"v":1}"#);
    let e = endpoint(
        "/m/{id}",
        "GET",
        vec![
            backend_with(
                &b.url(),
                "/one/{id}",
                json!({"group": "one",
                "extra_config": {"validation/cel": [{"check_expr": "req_path == '/one/7'"}]}}),
            ),
            backend_with(
                &b.url(),
                "/two/{id}",
                json!({"group": "two",
                "extra_config": {"validation/cel": [{"check_expr": "resp_data.two.v == 2"}]}}),
            ),
        ],
    );
    let g = Gateway::start(&service(vec![e]).to_string());
    let r = get(&g.url("/m/7"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"one": {"v": 1}}));
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
    // The first backend's request check refused /one/8 before calling it.
    let r = get(&g.url("/m/8"));
    assert_eq!(r.status, 500);
    assert!(b.requests().iter().all(|r| r.path != "/one/8"));
}

#[test]
fn a_cel_check_on_jwt_without_a_validator_is_refused_at_startup_never_served_open() {
    let b = Backend::json(r#"{"v":1}"#);
    let mut e = endpoint("/j", "GET", vec![backend(&b.url(), "/b")]);
    e["extra_config"] = json!({"validation/cel": [{"check_expr": "size(JWT.roles) > 1"}]});
    let err = Gateway::try_start_with(&service(vec![e]).to_string(), &[], &[])
        .err()
        .expect("run must refuse the config");
    assert!(err.contains("no auth/validator"), "{err}");
    assert!(b.requests().is_empty());
}

#[test]
fn check_refuses_a_schema_or_an_expression_that_does_not_compile_at_its_position() {
    let b = Backend::json("{}");
    let mut e1 = endpoint("/s", "POST", vec![backend(&b.url(), "/b")]);
    e1["extra_config"] = json!({"validation/json-schema": {"type": 12}});
    let mut e2 = endpoint("/c", "GET", vec![backend(&b.url(), "/b")]);
    e2["extra_config"] = json!({"validation/cel": [{"check_expr": "req_path =="}]});
    let text = serde_json::to_string_pretty(&service(vec![e1, e2])).unwrap();
    let out = check_file(&text, &[]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    let file = out.path.to_str().unwrap();
    for (ns, what) in [
        ("validation/json-schema", "does not compile"),
        ("validation/cel", "does not parse"),
    ] {
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains(ns) && l.contains(what))
            .unwrap_or_else(|| panic!("no error for {ns}: {}", out.stderr));
        let pos = line
            .strip_prefix(file)
            .and_then(|r| r.strip_prefix(':'))
            .unwrap();
        let mut parts = pos.splitn(3, ':');
        assert!(parts.next().unwrap().parse::<u32>().is_ok(), "{line}");
        assert!(parts.next().unwrap().parse::<u32>().is_ok(), "{line}");
    }
}
