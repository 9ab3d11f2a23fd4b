//! HTTPS backends: verification against `client_tls.ca_certs`, SNI, keep-alive in the per-core
//! pool, refusals (wrong CA, wrong name, expired) as backend errors with the reason logged,
//! `allow_insecure_connections`, and client certificates (`client_certs`).
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod common;

use common::config::{backend, endpoint, service};
use common::pki::{Alg, Leaf, Pki};
use common::tls_backend::TlsBackend;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn config(host: &str, client_tls: Option<Value>) -> String {
    let mut cfg = service(vec![endpoint("/x", "GET", vec![backend(host, "/x")])]);
    if let Some(c) = client_tls {
        cfg["client_tls"] = c;
    }
    cfg.to_string()
}

fn wait_for_log(g: &Gateway, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && !g.output().contains(needle) {
        std::thread::sleep(Duration::from_millis(50));
    }
    g.output()
}

#[test]
fn an_https_backend_signed_by_ca_certs_is_called_with_sni_and_its_connection_kept_alive() {
    let pki = Pki::new();
    let ca = pki.ca("backend CA");
    let leaf = pki.leaf(&ca, Leaf::server(&["localhost"]));
    let b = TlsBackend::start(&leaf, None, r#"{"ok":true}"#);
    let g = Gateway::start(&config(
        &b.url(),
        Some(json!({"ca_certs": [ca.files.cert()]})),
    ));
    for _ in 0..3 {
        let r = get(&g.url("/x"));
        assert_eq!(r.status, 200, "{}", g.output());
        assert_eq!(r.json(), json!({"ok": true}));
    }
    let seen = b.seen.lock().unwrap();
    assert_eq!(seen.requests, 3);
    assert_eq!(seen.connections, 1, "the TLS connection is reused");
    assert_eq!(seen.sni, vec![Some("localhost".to_string())]);
}

#[test]
fn an_ip_literal_https_backend_is_verified_against_the_ip_in_the_certificate() {
    let pki = Pki::new();
    let ca = pki.ca("ip CA");
    let leaf = pki.leaf(&ca, Leaf::server(&["127.0.0.1"]));
    let b = TlsBackend::start(&leaf, None, r#"{"ip":1}"#);
    let url = format!("https://127.0.0.1:{}", b.port());
    let g = Gateway::start(&config(&url, Some(json!({"ca_certs": [ca.files.cert()]}))));
    assert_eq!(get(&g.url("/x")).status, 200, "{}", g.output());
    // No SNI for an IP address (RFC 6066).
    assert_eq!(b.seen.lock().unwrap().sni, vec![None]);
}

#[test]
fn wrong_ca_wrong_name_and_expired_backends_are_refused_with_the_reason_logged() {
    let pki = Pki::new();
    let ca = pki.ca("trusted CA");
    let rogue = pki.ca("rogue CA");
    let cases = [
        (
            pki.leaf(&rogue, Leaf::server(&["localhost"])),
            "UnknownIssuer",
        ),
        (
            pki.leaf(&ca, Leaf::server(&["other.test"])),
            "not valid for name",
        ),
        (
            pki.leaf(
                &ca,
                Leaf {
                    expired: true,
                    ..Leaf::server(&["localhost"])
                },
            ),
            "expired",
        ),
    ];
    for (leaf, reason) in cases {
        let b = TlsBackend::start(&leaf, None, r#"{"secret":1}"#);
        let g = Gateway::start(&config(
            &b.url(),
            Some(json!({"ca_certs": [ca.files.cert()]})),
        ));
        let r = get(&g.url("/x"));
        assert_eq!(r.status, 500, "{reason}");
        assert!(!r.text().contains("secret"));
        assert_eq!(b.seen.lock().unwrap().requests, 0, "{reason}");
        let out = wait_for_log(&g, reason);
        assert!(out.contains("invalid peer certificate"), "{out}");
        assert!(out.contains(reason), "{reason}: {out}");
    }
}

#[test]
fn without_client_tls_the_system_roots_do_not_trust_a_private_ca() {
    let pki = Pki::new();
    let ca = pki.ca("private CA");
    let leaf = pki.leaf(&ca, Leaf::server(&["localhost"]));
    let b = TlsBackend::start(&leaf, None, r#"{"x":1}"#);
    let g = Gateway::start(&config(&b.url(), None));
    assert_eq!(get(&g.url("/x")).status, 500);
    assert!(wait_for_log(&g, "UnknownIssuer").contains("UnknownIssuer"));
}

#[test]
fn allow_insecure_connections_calls_an_unverified_backend_and_warns_at_startup() {
    let pki = Pki::new();
    let leaf = pki.self_signed(Alg::Rsa);
    let b = TlsBackend::start(&leaf, None, r#"{"insecure":true}"#);
    let g = Gateway::start(&config(
        &b.url(),
        Some(json!({"allow_insecure_connections": true})),
    ));
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 200, "{}", g.output());
    assert_eq!(r.json(), json!({"insecure": true}));
    assert!(g.output().contains("NOT verified"), "{}", g.output());
}

#[test]
fn client_certs_are_presented_to_a_backend_that_requires_one() {
    let pki = Pki::new();
    let ca = pki.ca("server CA");
    let client_ca = pki.ca("client CA");
    let leaf = pki.leaf(&ca, Leaf::server(&["localhost"]));
    let mine = pki.leaf(
        &client_ca,
        Leaf {
            client: true,
            ..Leaf::server(&["gateway.test"])
        },
    );
    let b = TlsBackend::start(&leaf, Some(&client_ca.files), r#"{"mtls":true}"#);
    let without = Gateway::start(&config(
        &b.url(),
        Some(json!({"ca_certs": [ca.files.cert()]})),
    ));
    assert_eq!(get(&without.url("/x")).status, 500);
    let with = Gateway::start(&config(
        &b.url(),
        Some(json!({
            "ca_certs": [ca.files.cert()],
            "client_certs": [{"certificate": mine.cert(), "private_key": mine.key()}]
        })),
    ));
    let r = get(&with.url("/x"));
    assert_eq!(r.status, 200, "{}", with.output());
    assert!(b.seen.lock().unwrap().client_cert.contains(&true));
}

#[test]
fn a_redirect_to_an_https_location_is_followed_over_tls() {
    let pki = Pki::new();
    let ca = pki.ca("redirect CA");
    let leaf = pki.leaf(&ca, Leaf::server(&["localhost"]));
    let tls = TlsBackend::start(&leaf, None, r#"{"moved":true}"#);
    let to = format!("{}/x", tls.url());
    let plain = Backend::start(move |_| Reply::status(302).header("Location", &to));
    let g = Gateway::start(&config(
        &plain.url(),
        Some(json!({"ca_certs": [ca.files.cert()]})),
    ));
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 200, "{}", g.output());
    assert_eq!(r.json(), json!({"moved": true}));
}

#[test]
fn of_several_client_certs_the_one_issued_by_a_ca_the_backend_lists_is_sent() {
    let pki = Pki::new();
    let ca = pki.ca("server CA");
    let wanted_ca = pki.ca("wanted client CA");
    let other_ca = pki.ca("other client CA");
    let leaf = pki.leaf(&ca, Leaf::server(&["localhost"]));
    let client = |ca| {
        pki.leaf(
            ca,
            Leaf {
                client: true,
                ..Leaf::server(&["gateway.test"])
            },
        )
    };
    let (other, wanted) = (client(&other_ca), client(&wanted_ca));
    let b = TlsBackend::start(&leaf, Some(&wanted_ca.files), r#"{"picked":true}"#);
    let g = Gateway::start(&config(
        &b.url(),
        Some(json!({
            "ca_certs": [ca.files.cert()],
            "client_certs": [
                {"certificate": other.cert(), "private_key": other.key()},
                {"certificate": wanted.cert(), "private_key": wanted.key()}
            ]
        })),
    ));
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 200, "{}", g.output());
}
