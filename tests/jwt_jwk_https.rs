//! https `jwk_url`s: a JWK server over TLS on 127.0.0.1 with its own CA. Trusted through
//! `jwk_local_ca` tokens validate (and a signer loads its key); an untrusted CA or a
//! certificate for another name never yields keys: the endpoint answers 401, as KrakenD does
//! (its JWK fetch fails per request), with the TLS reason in the log; `disable_jwk_security`
//! skips verification with a startup warning; `jwk_fingerprints` pins the server's key.
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
use common::pki::{Files, Leaf, Pki};
use common::tls_backend::TlsBackend;
use common::*;
use jwt::{claims, mint};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::{json, Value};
use std::time::Duration;

struct Setup {
    _pki: Pki,
    ca: Files,
    other_ca: Files,
    jwk: TlsBackend,
    m: Value,
}

/// A JWK server for `localhost` (and 127.0.0.1) signed by a test CA, serving `doc`.
fn setup_serving(names: &[&str], doc: impl Fn(&Value) -> Value) -> Setup {
    let m = mint(json!({
        "keys": [{"kid": "a1", "type": "EC256"}],
        "tokens": [{"name": "a", "kid": "a1", "alg": "ES256", "claims": claims(json!({}))}]
    }));
    let pki = Pki::new();
    let ca = pki.ca("jwk test CA");
    let other = pki.ca("some other CA");
    let leaf = pki.leaf(&ca, Leaf::server(names));
    let body: &'static str = Box::leak(doc(&m).to_string().into_boxed_str());
    let jwk = TlsBackend::start(&leaf, None, body);
    Setup {
        ca: ca.files.clone(),
        other_ca: other.files.clone(),
        _pki: pki,
        jwk,
        m,
    }
}

fn setup(names: &[&str]) -> Setup {
    setup_serving(names, |m| m["public"].clone())
}

fn validator_config(jwk_url: &str, host: &str, extra: Value) -> String {
    let mut v = json!({"alg": "ES256", "jwk_url": jwk_url});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    let mut e = endpoint("/p", "GET", vec![backend(host, "/")]);
    e["extra_config"] = json!({ "auth/validator": v });
    service(vec![e]).to_string()
}

fn status(gw: &Gateway, m: &Value) -> u16 {
    let auth = format!("Bearer {}", m["tokens"]["a"].as_str().unwrap());
    request("GET", &gw.url("/p"), &[("Authorization", &auth)], b"").status
}

fn logged(gw: &Gateway, what: &str) -> bool {
    wait_until(Duration::from_secs(3), || gw.output().contains(what))
}

#[test]
fn tokens_validate_with_keys_fetched_over_https_from_a_server_trusted_through_jwk_local_ca() {
    let s = setup(&["localhost"]);
    let b = Backend::json("{}");
    let url = format!("{}/.well-known/jwks.json", s.jwk.url());
    let gw = Gateway::start(&validator_config(
        &url,
        &b.url(),
        json!({"jwk_local_ca": s.ca.cert()}),
    ));
    assert_eq!(status(&gw, &s.m), 200, "{}", gw.output());
    let seen = s.jwk.seen.lock().unwrap();
    assert_eq!(seen.requests, 1, "one fetch per process");
    assert_eq!(
        seen.sni,
        vec![Some("localhost".to_string())],
        "SNI from the URL host"
    );
    drop(seen);
    assert!(!gw.output().contains("NOT verified"), "{}", gw.output());
}

#[test]
fn a_jwk_server_whose_ca_is_not_trusted_yields_no_keys_and_401() {
    let s = setup(&["localhost"]);
    let b = Backend::json("{}");
    let url = format!("{}/jwks", s.jwk.url());
    // Trusting another CA (and the system roots) is not enough.
    let gw = Gateway::start(&validator_config(
        &url,
        &b.url(),
        json!({"jwk_local_ca": s.other_ca.cert()}),
    ));
    assert_eq!(status(&gw, &s.m), 401);
    assert!(logged(&gw, "UnknownIssuer"), "{}", gw.output());
    assert_eq!(
        s.jwk.seen.lock().unwrap().requests,
        0,
        "no request was sent"
    );
    assert_eq!(b.requests().len(), 0);
}

#[test]
fn a_jwk_server_certificate_for_another_name_is_refused() {
    let s = setup(&["keys.example"]);
    let b = Backend::json("{}");
    let url = format!("{}/jwks", s.jwk.url()); // https://localhost:PORT
    let gw = Gateway::start(&validator_config(
        &url,
        &b.url(),
        json!({"jwk_local_ca": s.ca.cert()}),
    ));
    assert_eq!(status(&gw, &s.m), 401);
    assert!(logged(&gw, "not valid for name"), "{}", gw.output());
    assert_eq!(s.jwk.seen.lock().unwrap().requests, 0);
}

#[test]
fn disable_jwk_security_skips_certificate_verification_with_a_startup_warning() {
    let s = setup(&["keys.example"]);
    let b = Backend::json("{}");
    let url = format!("{}/jwks", s.jwk.url());
    let gw = Gateway::start(&validator_config(
        &url,
        &b.url(),
        json!({"disable_jwk_security": true}),
    ));
    assert_eq!(status(&gw, &s.m), 200, "{}", gw.output());
    assert!(logged(&gw, "NOT verified"), "{}", gw.output());
}

/// URL-safe padded base64 (Go's `base64.URLEncoding`) of the SHA-256 of the leaf's SPKI.
fn fingerprint(cert_pem: &str) -> String {
    let der = CertificateDer::from_pem_file(cert_pem).unwrap();
    let cert = webpki::EndEntityCert::try_from(&der).unwrap();
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        cert.subject_public_key_info().as_ref(),
    );
    let mut out = String::new();
    proxy::guard::jwt::b64::encode(digest.as_ref(), &mut out);
    out + "="
}

#[test]
fn jwk_fingerprints_pin_the_jwk_servers_key() {
    let s = setup(&["localhost"]);
    let leaf_cert = std::fs::read_dir(&s._pki.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("cert-")
        })
        .unwrap();
    let pin = fingerprint(leaf_cert.to_str().unwrap());
    let b = Backend::json("{}");
    let url = format!("{}/jwks", s.jwk.url());
    let ok = Gateway::start(&validator_config(
        &url,
        &b.url(),
        json!({"jwk_local_ca": s.ca.cert(), "jwk_fingerprints": [pin]}),
    ));
    assert_eq!(status(&ok, &s.m), 200, "{}", ok.output());
    let other = fingerprint(s.ca.cert());
    let pinned_elsewhere = Gateway::start(&validator_config(
        &url,
        &b.url(),
        json!({"jwk_local_ca": s.ca.cert(), "jwk_fingerprints": [other]}),
    ));
    assert_eq!(status(&pinned_elsewhere, &s.m), 401);
    assert!(
        logged(&pinned_elsewhere, "pinned key"),
        "{}",
        pinned_elsewhere.output()
    );
}

#[test]
fn a_signer_loads_its_key_from_an_https_jwk_url() {
    let s = setup_serving(&["localhost"], |m| m["private"].clone());
    let b = Backend::json(r#"{"t": {"sub": "u1"}}"#);
    let mut e = endpoint("/s", "GET", vec![backend(&b.url(), "/")]);
    e["extra_config"] = json!({"auth/signer": {
        "alg": "ES256", "kid": "a1", "jwk_url": format!("{}/jwks", s.jwk.url()),
        "jwk_local_ca": s.ca.cert(), "keys_to_sign": ["t"]}});
    let gw = Gateway::start(&service(vec![e]).to_string());
    let r = get(&gw.url("/s"));
    assert_eq!(r.status, 200, "{}{}", r.text(), gw.output());
    let token = r.json()["t"].as_str().unwrap().to_string();
    assert_eq!(token.split('.').count(), 3, "{token}");
}

#[test]
fn check_accepts_https_jwk_urls_and_refuses_what_cannot_work() {
    let ok = |v: Value| {
        let mut e = endpoint("/p", "GET", vec![backend("http://127.0.0.1:9", "/x")]);
        e["extra_config"] = json!({ "auth/validator": v });
        check(&service(vec![e]).to_string())
    };
    let (code, out, err) = ok(json!({"alg": "ES256", "jwk_url": "https://idp.example/jwk"}));
    assert_eq!(code, 0, "{out}{err}");
    for (v, want) in [
        (
            json!({"alg": "ES256", "jwk_url": "https://idp.example/jwk",
                   "jwk_local_ca": "/nonexistent/ca.pem"}),
            "jwk_local_ca",
        ),
        (
            json!({"alg": "ES256", "jwk_url": "https://idp.example/jwk",
                   "jwk_fingerprints": ["not base64!"]}),
            "jwk_fingerprints[0]",
        ),
        (
            json!({"alg": "ES256", "jwk_url": "https://idp.example/jwk",
                   "cipher_suites": [5]}),
            "cipher_suites[0]",
        ),
    ] {
        let (code, out, err) = ok(v.clone());
        assert_ne!(code, 0, "{v}");
        assert!(format!("{out}{err}").contains(want), "{v}: {out}{err}");
    }
}
