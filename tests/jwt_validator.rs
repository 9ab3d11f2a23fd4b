//! `auth/validator` end to end: tokens minted by PyJWT (tests/jwt/mint.py), keys from a local
//! JWK file, every failure mode to its status, claims propagated to a backend that echoes the
//! request, and the configs `check` refuses.
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
use jwt::{claims, mint, now, temp_json};
use serde_json::{json, Value};
use std::sync::OnceLock;

struct Fixture {
    gw: Gateway,
    backend: Backend,
    tokens: Value,
}

fn validator(alg: &str, jwks: &str, extra: Value) -> Value {
    let mut v = json!({
        "alg": alg,
        "jwk_local_path": jwks,
        "disable_jwk_security": true,
        "issuer": "https://issuer.test",
        "audience": ["api"],
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

fn protected(path: &str, host: &str, url: &str, v: Value) -> Value {
    let mut e = endpoint(path, "GET", vec![backend(host, url)]);
    e["extra_config"] = json!({ "auth/validator": v });
    e["input_headers"] = json!(["X-User", "X-Roles", "X-Org", "X-Missing"]);
    e
}

fn tok(name: &str, kid: &str, alg: &str, c: Value) -> Value {
    json!({"name": name, "kid": kid, "alg": alg, "claims": c})
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let t = now();
        let minted = mint(json!({
            "keys": [
                {"kid": "r1", "type": "RSA"}, {"kid": "r2", "type": "RSA"},
                {"kid": "e256", "type": "EC256"}, {"kid": "e384", "type": "EC384"},
                {"kid": "ed", "type": "Ed25519"},
                {"kid": "hs", "type": "oct", "secret": "a-shared-secret-of-at-least-32-bytes!"}
            ],
            "tokens": [
                tok("rs", "r1", "RS256", claims(json!({"roles": ["ops", "dev"], "org": {"id": 42}}))),
                tok("rs_string_roles", "r1", "RS256", claims(json!({"roles": "guest ops"}))),
                tok("ps", "r1", "PS256", claims(json!({}))),
                tok("es256", "e256", "ES256", claims(json!({}))),
                tok("es384", "e384", "ES384", claims(json!({}))),
                tok("ed", "ed", "EdDSA", claims(json!({}))),
                tok("hs", "hs", "HS256", claims(json!({}))),
                tok("rs512", "r1", "RS512", claims(json!({"roles": ["ops"]}))),
                tok("expired", "r1", "RS256", claims(json!({"roles": ["ops"], "exp": t - 30}))),
                tok("nbf", "r1", "RS256", claims(json!({"roles": ["ops"], "nbf": t + 300}))),
                tok("iat_future", "r1", "RS256", claims(json!({"roles": ["ops"], "iat": t + 300}))),
                tok("iss", "r1", "RS256", claims(json!({"roles": ["ops"], "iss": "https://evil"}))),
                tok("aud", "r1", "RS256", claims(json!({"roles": ["ops"], "aud": "other"}))),
                tok("no_exp", "r1", "RS256", claims(json!({"roles": ["ops"], "exp": null}))),
                tok("no_role", "r1", "RS256", claims(json!({"roles": ["guest"]}))),
                tok("scope_some", "r1", "RS256", claims(json!({"scope": "read"}))),
                tok("scope_all", "r1", "RS256", claims(json!({"scope": "write profile read"}))),
                {"name": "wrong_key", "kid": "r1", "kid_sign": "r2", "alg": "RS256",
                 "claims": claims(json!({"roles": ["ops"]}))},
                {"name": "unknown_kid", "kid": "zz", "kid_sign": "r1", "alg": "RS256",
                 "claims": claims(json!({"roles": ["ops"]}))},
                {"name": "none", "kid": "r1", "raw": "none", "claims": claims(json!({"roles": ["ops"]}))},
                {"name": "confusion", "kid": "r1", "raw": "hs-with-public-pem",
                 "claims": claims(json!({"roles": ["ops"]}))}
            ]
        }));
        let jwks = temp_json(&minted["public"]);
        let b = Backend::start(|req| {
            let headers: serde_json::Map<String, Value> = req
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            Reply::json(&json!({"path": req.path, "headers": headers}).to_string())
        });
        let h = b.url();
        let rs_extra = json!({
            "roles": ["admin", "ops"],
            "propagate_claims": [["sub", "x-user"], ["roles", "X-Roles"], ["org.id", "X-Org"],
                                 ["missing", "X-Missing"]]
        });
        let cfg = service(vec![
            protected("/rs", &h, "/u/{JWT.sub}", validator("RS256", &jwks, rs_extra)),
            protected("/ps", &h, "/ps", validator("PS256", &jwks, json!({}))),
            protected("/es256", &h, "/es", validator("ES256", &jwks, json!({}))),
            protected("/es384", &h, "/es", validator("ES384", &jwks, json!({}))),
            protected("/eddsa", &h, "/ed", validator("EdDSA", &jwks, json!({}))),
            protected("/hs", &h, "/hs", validator("HS256", &jwks, json!({}))),
            protected(
                "/scopes",
                &h,
                "/s",
                validator(
                    "RS256",
                    &jwks,
                    json!({"scopes_key": "scope", "scopes": ["read", "write"], "scopes_matcher": "all"}),
                ),
            ),
            protected(
                "/cookie",
                &h,
                "/c",
                validator("RS256", &jwks, json!({"cookie_key": "tok", "auth_header_name": "X-Token"})),
            ),
            protected("/leeway", &h, "/l", validator("RS256", &jwks, json!({"leeway": "2m"}))),
            protected("/noexp", &h, "/n", validator("RS256", &jwks, json!({"require_exp": false}))),
            protected(
                "/preserve",
                &h,
                "/p",
                validator(
                    "RS256",
                    &jwks,
                    json!({"propagate_claims": [["roles", "X-Roles"]],
                           "propagate_claims_preserve_array": true}),
                ),
            ),
            endpoint("/open", "GET", vec![backend(&h, "/open")]),
        ]);
        let gw = Gateway::start(&cfg.to_string());
        // A static is never dropped: stop the shared gateway with the test process.
        common::gateway::stop_at_exit(gw.pid());
        Fixture {
            gw,
            backend: b,
            tokens: minted["tokens"].clone(),
        }
    })
}

fn call(path: &str, headers: &[(&str, &str)]) -> common::Response {
    let f = fixture();
    request("GET", &f.gw.url(path), headers, b"")
}

fn bearer(path: &str, token: &str) -> common::Response {
    let auth = format!("Bearer {}", fixture().tokens[token].as_str().unwrap());
    call(path, &[("Authorization", &auth)])
}

fn assert_bare(r: &common::Response, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    assert!(r.body.is_empty(), "{what}: body {:?}", r.text());
    assert_eq!(r.header("content-type"), None, "{what}");
    assert_eq!(r.header("x-krakend-completed"), None, "{what}");
}

#[test]
fn every_supported_algorithm_accepts_a_token_minted_by_pyjwt() {
    for (path, token) in [
        ("/ps", "ps"),
        ("/es256", "es256"),
        ("/es384", "es384"),
        ("/eddsa", "ed"),
        ("/hs", "hs"),
    ] {
        assert_eq!(bearer(path, token).status, 200, "{path}");
    }
    assert_eq!(bearer("/rs", "rs").status, 200);
}

#[test]
fn a_valid_token_sends_its_claims_to_the_backend_in_headers_and_the_url() {
    let f = fixture();
    let r = bearer("/rs", "rs");
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["path"], "/u/user-1");
    let h = &body["headers"];
    assert_eq!(h["X-User"], "user-1");
    assert_eq!(h["X-Roles"], "ops,dev");
    assert_eq!(h["X-Org"], "42");
    // KrakenD sets a propagated header even when the claim is missing (empty).
    assert_eq!(h["X-Missing"], "");
    let _ = f;
}

#[test]
fn a_client_cannot_forge_a_propagated_header() {
    let auth = format!("Bearer {}", fixture().tokens["rs"].as_str().unwrap());
    let r = call(
        "/rs",
        &[
            ("Authorization", &auth),
            ("X-User", "admin"),
            ("x-org", "1"),
        ],
    );
    assert_eq!(r.status, 200);
    let req = fixture().backend.last_request();
    assert_eq!(req.header_all("x-user"), ["user-1"]);
    assert_eq!(req.header_all("x-org"), ["42"]);
}

#[test]
fn preserve_array_sends_one_header_value_per_array_item() {
    let auth = format!("Bearer {}", fixture().tokens["rs"].as_str().unwrap());
    let r = call("/preserve", &[("Authorization", &auth)]);
    assert_eq!(r.status, 200);
    let req = fixture().backend.last_request();
    assert_eq!(req.header_all("x-roles"), ["ops", "dev"]);
}

#[test]
fn every_invalid_token_gets_a_bare_401() {
    for name in [
        "expired",
        "nbf",
        "iat_future",
        "iss",
        "aud",
        "no_exp",
        "wrong_key",
        "unknown_kid",
        "none",
        "confusion",
        "rs512",
    ] {
        assert_bare(&bearer("/rs", name), 401, name);
    }
    assert_bare(&call("/rs", &[]), 401, "no token");
    assert_bare(
        &call("/rs", &[("Authorization", "Bearer a.bad.token")]),
        401,
        "malformed",
    );
    let huge = format!("Bearer {}", "a".repeat(20_000));
    assert_eq!(call("/rs", &[("Authorization", &huge)]).status, 401);
}

#[test]
fn missing_roles_or_scopes_get_a_bare_403() {
    assert_bare(&bearer("/rs", "no_role"), 403, "roles");
    assert_eq!(
        bearer("/rs", "rs_string_roles").status,
        200,
        "space-separated roles"
    );
    assert_bare(
        &bearer("/scopes", "scope_some"),
        403,
        "one scope of two, all needed",
    );
    assert_eq!(bearer("/scopes", "scope_all").status, 200);
}

#[test]
fn the_bearer_prefix_is_optional_and_any_case() {
    let t = fixture().tokens["ps"].as_str().unwrap().to_string();
    assert_eq!(call("/ps", &[("Authorization", &t)]).status, 200);
    assert_eq!(
        call("/ps", &[("Authorization", &format!("bEaReR {t}"))]).status,
        200
    );
}

#[test]
fn the_token_may_come_from_the_configured_header_or_cookie() {
    let t = fixture().tokens["rs"].as_str().unwrap().to_string();
    assert_eq!(call("/cookie", &[("X-Token", &t)]).status, 200);
    let cookie = format!("a=b; tok={t}; c=d");
    assert_eq!(call("/cookie", &[("Cookie", &cookie)]).status, 200);
    // The default header is not read when another is configured.
    assert_eq!(call("/cookie", &[("Authorization", &t)]).status, 401);
    assert_eq!(
        call("/cookie", &[("Cookie", &format!("access_token={t}"))]).status,
        401
    );
}

#[test]
fn leeway_admits_a_recently_expired_token() {
    assert_eq!(bearer("/leeway", "expired").status, 200);
    assert_eq!(bearer("/rs", "expired").status, 401);
}

#[test]
fn exp_is_required_unless_require_exp_is_false() {
    assert_eq!(bearer("/rs", "no_exp").status, 401);
    assert_eq!(bearer("/noexp", "no_exp").status, 200);
}

#[test]
fn a_cached_token_gives_the_same_answers_as_a_fresh_one() {
    for _ in 0..5 {
        assert_eq!(bearer("/rs", "rs").status, 200);
        assert_bare(&bearer("/rs", "no_role"), 403, "cached 403");
        assert_bare(
            &bearer("/rs", "wrong_key"),
            401,
            "bad signature is never cached",
        );
    }
    assert_eq!(fixture().backend.last_request().path, "/u/user-1");
}

#[test]
fn a_cached_token_is_refused_once_it_expires() {
    // Its own key and gateway, so the token's two seconds start now.
    let m = mint(json!({"keys": [{"kid": "k", "type": "EC256"}],
                        "tokens": [tok("short", "k", "ES256", claims(json!({"exp": now() + 2})))]}));
    let jwks = temp_json(&m["public"]);
    let b = Backend::json("{}");
    let cfg = service(vec![protected(
        "/p",
        &b.url(),
        "/",
        validator("ES256", &jwks, json!({})),
    )]);
    let gw = Gateway::start(&cfg.to_string());
    let auth = format!("Bearer {}", m["tokens"]["short"].as_str().unwrap());
    let get = || request("GET", &gw.url("/p"), &[("Authorization", &auth)], b"");
    assert_eq!(get().status, 200);
    assert_eq!(get().status, 200, "now from the cache");
    // exp + 1 s of leeway, then a little more.
    std::thread::sleep(std::time::Duration::from_millis(3300));
    assert_bare(&get(), 401, "expired while cached");
}

#[test]
fn unprotected_endpoints_need_no_token() {
    assert_eq!(call("/open", &[]).status, 200);
}

// ---------------------------------------------------------------------------------------
// What `check` refuses (KrakenD: fatal at startup, or 401 to every request).
// ---------------------------------------------------------------------------------------

fn check_validator(v: Value) -> (i32, String) {
    let mut e = endpoint("/p", "GET", vec![backend("http://127.0.0.1:9", "/x")]);
    e["extra_config"] = json!({ "auth/validator": v });
    let (code, out, err) = check(&service(vec![e]).to_string());
    (code, format!("{out}{err}"))
}

fn local_jwks() -> String {
    static P: OnceLock<String> = OnceLock::new();
    P.get_or_init(|| {
        let m = mint(json!({"keys": [{"kid": "k", "type": "EC256"}]}));
        temp_json(&m["public"])
    })
    .clone()
}

#[test]
fn check_refuses_validators_that_cannot_work() {
    let p = local_jwks();
    let cases = [
        (
            json!({"alg": "ES512", "jwk_local_path": p, "disable_jwk_security": true}),
            "P-521",
        ),
        (
            json!({"alg": "XS256", "jwk_local_path": p, "disable_jwk_security": true}),
            "unknown algorithm",
        ),
        (
            json!({"jwk_local_path": p, "disable_jwk_security": true}),
            "alg: missing",
        ),
        (
            json!({"alg": "ES256", "jwk_local_path": p, "disable_jwk_security": true, "cache": true}),
            "fatal in KrakenD",
        ),
        (
            json!({"alg": "ES256", "jwk_local_path": p}),
            "needs \"disable_jwk_security\"",
        ),
        (
            json!({"alg": "ES256", "jwk_url": "http://127.0.0.1:9/jwk"}),
            "is not https",
        ),
        (
            json!({"alg": "ES256", "jwk_local_path": "/nonexistent/jwks.json", "disable_jwk_security": true}),
            "cannot read it",
        ),
        (
            json!({"alg": "RS256", "jwk_local_path": p, "disable_jwk_security": true}),
            "no key usable with RS256",
        ),
        (
            json!({"alg": "ES256", "disable_jwk_security": true}),
            "needs jwk_url or jwk_local_path",
        ),
        (
            json!({"alg": "ES256", "jwk_local_path": p, "disable_jwk_security": true, "scopes_matcher": "some"}),
            "scopes_matcher",
        ),
    ];
    for (v, want) in cases {
        let (code, out) = check_validator(v.clone());
        assert_eq!(code, 1, "{v}: {out}");
        assert!(out.contains(want), "{v}: wanted {want:?} in {out}");
    }
    let (code, out) =
        check_validator(json!({"alg": "ES256", "jwk_local_path": p, "disable_jwk_security": true}));
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("501"), "{out}");
}

#[test]
fn run_refuses_a_validator_check_refuses() {
    let mut e = endpoint("/p", "GET", vec![backend("http://127.0.0.1:9", "/x")]);
    e["extra_config"] = json!({"auth/validator": {"alg": "ES512", "jwk_local_path": local_jwks(),
                                                  "disable_jwk_security": true}});
    let err = Gateway::try_start_with(&service(vec![e]).to_string(), &[], &[])
        .err()
        .expect("run must refuse");
    assert!(err.contains("P-521"), "{err}");
}
