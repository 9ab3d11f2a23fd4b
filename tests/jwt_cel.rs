//! `JWT` in endpoint-level `validation/cel` expressions: the validated token's claims, checked
//! by the JWT validator before the roles (krakend-cel's rejecter): a refusal is a bare 401 and
//! no backend is called. Expressions on `JWT` that KrakenD would never evaluate (no validator,
//! backend level) are `check` errors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_types
)]

mod common;
mod jwt;

use common::config::{backend, endpoint, service};
use common::*;
use jwt::{claims, mint, temp_json};
use serde_json::{json, Value};

fn tokens() -> Value {
    mint(json!({
        "keys": [{"kid": "k", "type": "EC256"}],
        "tokens": [
            {"name": "two_roles", "kid": "k", "alg": "ES256",
             "claims": claims(json!({"roles": ["a", "b"], "tier": "gold"}))},
            {"name": "one_role", "kid": "k", "alg": "ES256",
             "claims": claims(json!({"roles": ["a"], "tier": "gold"}))},
            {"name": "no_role_c", "kid": "k", "alg": "ES256",
             "claims": claims(json!({"roles": ["x"], "tier": "silver"}))}
        ]
    }))
}

fn gateway(m: &Value, b: &Backend, exprs: &[&str], roles: Value) -> Gateway {
    let keys = temp_json(&m["public"]);
    let mut e = endpoint("/p", "GET", vec![backend(&b.url(), "/")]);
    let cel: Vec<Value> = exprs.iter().map(|x| json!({"check_expr": x})).collect();
    e["extra_config"] = json!({
        "validation/cel": cel,
        "auth/validator": {"alg": "ES256", "jwk_local_path": keys,
                           "disable_jwk_security": true, "roles": roles}
    });
    Gateway::start(&service(vec![e]).to_string())
}

fn status(gw: &Gateway, m: &Value, token: &str) -> u16 {
    let auth = format!("Bearer {}", m["tokens"][token].as_str().unwrap());
    request("GET", &gw.url("/p"), &[("Authorization", &auth)], b"").status
}

#[test]
fn a_token_whose_claims_fail_the_jwt_expression_gets_a_bare_401_and_no_backend_call() {
    let m = tokens();
    let b = Backend::json(r#"{"ok": true}"#);
    let gw = gateway(
        &m,
        &b,
        &["size(JWT.roles) > 1 && JWT.tier == 'gold'"],
        json!([]),
    );
    assert_eq!(status(&gw, &m, "two_roles"), 200);
    assert_eq!(b.requests().len(), 1);
    let auth = format!("Bearer {}", m["tokens"]["one_role"].as_str().unwrap());
    let r = request("GET", &gw.url("/p"), &[("Authorization", &auth)], b"");
    assert_eq!(r.status, 401);
    assert!(r.body.is_empty(), "{}", r.text());
    assert_eq!(
        b.requests().len(),
        1,
        "the refused request reached no backend"
    );
    // The outcome is not cached past the check: the same token is refused again.
    assert_eq!(status(&gw, &m, "one_role"), 401);
    assert_eq!(status(&gw, &m, "two_roles"), 200);
}

#[test]
fn the_jwt_expression_runs_before_the_roles_so_a_token_failing_both_gets_401_not_403() {
    let m = tokens();
    let b = Backend::json("{}");
    let gw = gateway(&m, &b, &["JWT.tier == 'gold'"], json!(["a"]));
    assert_eq!(status(&gw, &m, "one_role"), 200);
    assert_eq!(status(&gw, &m, "no_role_c"), 401);
    // Passing the expression but lacking the role is the validator's 403.
    let gw2 = gateway(&m, &b, &["JWT.tier != ''"], json!(["a"]));
    assert_eq!(status(&gw2, &m, "no_role_c"), 403);
}

#[test]
fn an_expression_on_a_claim_the_token_lacks_refuses_it() {
    let m = tokens();
    let b = Backend::json("{}");
    let gw = gateway(&m, &b, &["JWT.missing == 'x'"], json!([]));
    assert_eq!(status(&gw, &m, "two_roles"), 401);
    assert!(b.requests().is_empty());
}

#[test]
fn check_refuses_jwt_expressions_krakend_would_never_evaluate() {
    let b = "http://127.0.0.1:9";
    let mut no_validator = endpoint("/p", "GET", vec![backend(b, "/")]);
    no_validator["extra_config"] = json!({"validation/cel": [{"check_expr": "JWT.sub == 'x'"}]});
    let (code, out, err) = check(&service(vec![no_validator]).to_string());
    assert_ne!(code, 0);
    assert!(
        format!("{out}{err}").contains("no auth/validator"),
        "{out}{err}"
    );

    let mut be = backend(b, "/");
    be["extra_config"] = json!({"validation/cel": [{"check_expr": "JWT.sub == 'x'"}]});
    let (code, out, err) = check(&service(vec![endpoint("/q", "GET", vec![be])]).to_string());
    assert_ne!(code, 0);
    assert!(
        format!("{out}{err}").contains("endpoint-level"),
        "{out}{err}"
    );
}
