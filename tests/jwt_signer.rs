//! `auth/signer` end to end: the gateway signs members of the backend's answer with private
//! keys from a JWK file, and PyJWT (an independent implementation) verifies the tokens.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
mod jwt;

use common::config::{backend, endpoint, service};
use common::*;
use jwt::{mint, temp_json};
use serde_json::{json, Value};

fn signer_endpoint(path: &str, host: &str, url: &str, signer: Value) -> Value {
    let mut e = endpoint(path, "GET", vec![backend(host, url)]);
    e["extra_config"] = json!({ "auth/signer": signer });
    e
}

#[test]
fn signed_members_verify_with_pyjwt_for_every_key_type() {
    let keys = mint(json!({"keys": [
        {"kid": "rsa", "type": "RSA"}, {"kid": "ec", "type": "EC256"},
        {"kid": "ec384", "type": "EC384"}, {"kid": "ed", "type": "Ed25519"},
        {"kid": "hs", "type": "oct", "secret": "another-shared-secret-32-bytes-long"}
    ]}));
    let private = temp_json(&keys["private"]);
    let b = Backend::json(
        r#"{"access_token": {"sub": "u1", "exp": 1735689600, "roles": ["a"]},
            "refresh_token": {"sub": "u1"}, "plain": "kept", "not_object": 5}"#,
    );
    let algs = [
        ("RS256", "rsa"),
        ("PS384", "rsa"),
        ("ES256", "ec"),
        ("ES384", "ec384"),
        ("EdDSA", "ed"),
        ("HS512", "hs"),
    ];
    let eps: Vec<Value> = algs
        .iter()
        .map(|(alg, kid)| {
            signer_endpoint(
                &format!("/sign/{alg}"),
                &b.url(),
                "/",
                json!({"alg": alg, "kid": kid, "jwk_local_path": private,
                       "disable_jwk_security": true,
                       "keys_to_sign": ["access_token", "refresh_token", "not_object"]}),
            )
        })
        .collect();
    let gw = Gateway::start(&service(eps).to_string());
    let mut verify = Vec::new();
    for (alg, kid) in algs {
        let r = get(&gw.url(&format!("/sign/{alg}")));
        assert_eq!(r.status, 200, "{alg}: {}", r.text());
        assert_eq!(
            r.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(r.header("x-krakend-completed"), None);
        let body = r.json();
        assert_eq!(body["plain"], "kept");
        assert_eq!(body["not_object"], 5, "only objects are signed");
        let jwk = keys["public"]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap()
            .clone();
        for key in ["access_token", "refresh_token"] {
            let token = body[key]
                .as_str()
                .unwrap_or_else(|| panic!("{alg} {key}: {body}"));
            verify.push(json!({"token": token, "jwk": jwk, "alg": alg}));
        }
    }
    let out = mint(json!({"verify": verify}));
    for (i, v) in out["verified"].as_array().unwrap().iter().enumerate() {
        assert_eq!(v["ok"], true, "token {i}: {v}");
        assert_eq!(v["claims"]["sub"], "u1");
        assert!(v["header"]["kid"].is_string(), "{v}");
    }
    assert_eq!(out["verified"][0]["claims"]["exp"], 1735689600);
    assert_eq!(out["verified"][0]["claims"]["roles"], json!(["a"]));
}

#[test]
fn full_serialization_gives_the_flattened_json_form() {
    let keys = mint(
        json!({"keys": [{"kid": "hs", "type": "oct", "secret": "0123456789abcdef0123456789abcdef"}]}),
    );
    let private = temp_json(&keys["private"]);
    let b = Backend::json(r#"{"t": {"a": 1}}"#);
    let gw = Gateway::start(
        &service(vec![signer_endpoint(
            "/s",
            &b.url(),
            "/",
            json!({"alg": "HS256", "kid": "hs", "jwk_local_path": private,
                   "disable_jwk_security": true, "keys_to_sign": ["t"], "full": true}),
        )])
        .to_string(),
    );
    let r = get(&gw.url("/s"));
    assert_eq!(r.status, 200);
    let full: Value = serde_json::from_str(r.json()["t"].as_str().unwrap()).unwrap();
    let compact = format!(
        "{}.{}.{}",
        full["protected"].as_str().unwrap(),
        full["payload"].as_str().unwrap(),
        full["signature"].as_str().unwrap()
    );
    let out = mint(
        json!({"verify": [{"token": compact, "jwk": keys["public"]["keys"][0], "alg": "HS256"}]}),
    );
    assert_eq!(out["verified"][0]["ok"], true, "{out}");
    assert_eq!(out["verified"][0]["claims"]["a"], 1);
}

#[test]
fn a_failing_backend_gets_a_bare_400_never_unsigned_data() {
    let keys = mint(json!({"keys": [{"kid": "ec", "type": "EC256"}]}));
    let private = temp_json(&keys["private"]);
    let b = Backend::start(|_| Reply::status(500).body("boom"));
    let gw = Gateway::start(
        &service(vec![signer_endpoint(
            "/s",
            &b.url(),
            "/",
            json!({"alg": "ES256", "kid": "ec", "jwk_local_path": private,
                   "disable_jwk_security": true, "keys_to_sign": ["t"]}),
        )])
        .to_string(),
    );
    let r = get(&gw.url("/s"));
    assert_eq!(r.status, 400);
    assert!(r.body.is_empty(), "{}", r.text());
}

#[test]
fn check_refuses_a_signer_without_a_usable_key() {
    let keys = mint(json!({"keys": [{"kid": "ec", "type": "EC256"}]}));
    let private = temp_json(&keys["private"]);
    let public = temp_json(&keys["public"]);
    let cases = [
        (
            json!({"alg": "ES256", "kid": "nope", "jwk_local_path": private, "disable_jwk_security": true}),
            "no key with kid",
        ),
        (
            json!({"alg": "ES256", "kid": "ec", "jwk_local_path": public, "disable_jwk_security": true}),
            "missing \"d\"",
        ),
        (
            json!({"alg": "RS256", "kid": "ec", "jwk_local_path": private, "disable_jwk_security": true}),
            "cannot sign RS256",
        ),
        (
            json!({"alg": "ES256", "jwk_local_path": private, "disable_jwk_security": true}),
            "kid: missing",
        ),
        (
            json!({"alg": "ES512", "kid": "ec", "jwk_local_path": private, "disable_jwk_security": true}),
            "P-521",
        ),
        (
            json!({"alg": "ES256", "kid": "ec", "jwk_url": "https://idp/jwk", "jwk_local_ca": "/nonexistent/ca.pem"}),
            "jwk_local_ca",
        ),
    ];
    for (s, want) in cases {
        let cfg = service(vec![signer_endpoint(
            "/s",
            "http://127.0.0.1:9",
            "/",
            s.clone(),
        )]);
        let (code, out, err) = check(&cfg.to_string());
        assert_eq!(code, 1, "{s}: {out}{err}");
        assert!(
            format!("{out}{err}").contains(want),
            "{s}: wanted {want:?} in {out}{err}"
        );
    }
}

#[test]
fn a_signer_whose_jwk_url_fails_at_startup_answers_400_until_a_retry_loads_the_key() {
    let keys = mint(
        json!({"keys": [{"kid": "hs", "type": "oct", "secret": "0123456789abcdef0123456789abcdef"}]}),
    );
    let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let doc = keys["private"].to_string();
    let flag = up.clone();
    let jwk = Backend::start(move |_| {
        if flag.load(std::sync::atomic::Ordering::SeqCst) {
            Reply::json(&doc)
        } else {
            Reply::status(503)
        }
    });
    let b = Backend::json(r#"{"t": {"a": 1}}"#);
    let gw = Gateway::start(
        &service(vec![signer_endpoint(
            "/s",
            &b.url(),
            "/",
            json!({"alg": "HS256", "kid": "hs", "jwk_url": format!("{}/jwk", jwk.url()),
                   "disable_jwk_security": true, "keys_to_sign": ["t"]}),
        )])
        .to_string(),
    );
    let r = get(&gw.url("/s"));
    assert_eq!(r.status, 400, "no key yet: never unsigned data");
    assert!(r.body.is_empty());
    up.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(wait_until(std::time::Duration::from_secs(5), || get(
        &gw.url("/s")
    )
    .status
        == 200));
    assert!(get(&gw.url("/s")).json()["t"]
        .as_str()
        .unwrap()
        .starts_with("eyJ"));
}
