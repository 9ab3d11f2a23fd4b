#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! Question: what does `auth/validator` cost per request, verifying a typical access token
//! (~600 bytes, 8 claims, roles and one propagated claim) from scratch with RS256 (2048-bit)
//! and ES256, against the same token answered from the per-core verified-token cache?
//!
//! Decision it informs: whether the cache is what lets a JWT-protected endpoint stay within
//! 10% of the CPU of an unprotected one (a request costs ~15 µs of gateway CPU), and which
//! algorithm to recommend when users can choose. Keys: `benches/data/` (made by PyJWT).
use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::FutureExt;
use proxy::guard::jwt::signer::Signer;
use proxy::guard::jwt::Validator;
use proxy::http::request::parse_request;
use proxy::http::Limits;
use serde_json::json;
use std::hint::black_box;

fn data(name: &str) -> String {
    format!("{}/benches/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn token(alg: &str, kid: &str) -> String {
    let signer = Signer::compile(&json!({
        "alg": alg, "kid": kid, "jwk_local_path": data("jwt_private_jwks.json"),
        "disable_jwk_security": true, "keys_to_sign": ["t"]
    }))
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    signer
        .sign(&json!({
            "iss": "https://issuer.example.com/realms/main",
            "aud": ["api.example.com"],
            "sub": "5f1c2a9e-7d3b-4c1a-9e8f-0a1b2c3d4e5f",
            "exp": now + 3600, "iat": now - 10, "nbf": now - 10,
            "roles": ["user", "reader"],
            "scope": "openid profile email"
        }))
        .unwrap()
}

fn validator(alg: &str) -> Validator {
    Validator::compile(
        &json!({
            "alg": alg, "jwk_local_path": data("jwt_public_jwks.json"),
            "disable_jwk_security": true,
            "issuer": "https://issuer.example.com/realms/main",
            "audience": ["api.example.com"], "roles": ["reader"],
            "propagate_claims": [["sub", "X-User"]]
        }),
        vec!["sub".into()],
        None,
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for (alg, kid) in [("RS256", "rsa"), ("ES256", "ec")] {
        let v = validator(alg);
        let t = token(alg, kid);
        assert_eq!(v.verify_uncached(t.as_bytes(), now_ms), 200);
        c.bench_function(&format!("jwt/{alg}_verify_uncached"), |b| {
            b.iter(|| black_box(v.verify_uncached(black_box(t.as_bytes()), now_ms)))
        });
        let text = format!("GET /api HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {t}\r\n\r\n");
        let mut buf = BytesMut::from(text.as_bytes());
        let head = parse_request(&mut buf, &Limits::default())
            .unwrap()
            .unwrap();
        // Local keys never wait: the future is ready at once.
        assert!(v.admit(&head).now_or_never().unwrap().is_ok());
        c.bench_function(&format!("jwt/{alg}_cached_hit"), |b| {
            b.iter(|| black_box(v.admit(black_box(&head)).now_or_never().unwrap().is_ok()))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
