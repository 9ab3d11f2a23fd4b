#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Question: what do `security/cors` and `security/http` add to a simple request — the host
//! check, the HTTPS check and the headers appended to the response — and what does a
//! preflight answer cost?
//!
//! Inputs: a browser-like GET with `Origin` from a listed origin, 8 request headers; CORS with
//! two origins (one wildcard), expose headers and credentials; security/http with allowed
//! hosts, HSTS behind a proxy header and five fixed headers. Decision it informs: whether the
//! per-request work (a few comparisons and reference-counted header copies) needs caching.
use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion};
use proxy::guard::cors::{Cors, Verdict};
use proxy::guard::secure::{Check, Secure};
use proxy::http::request::parse_request;
use proxy::http::{write, Limits, Version};
use serde_json::json;
use std::hint::black_box;

fn head(text: &str) -> proxy::http::request::RequestHead {
    let mut buf = BytesMut::from(text.as_bytes());
    parse_request(&mut buf, &Limits::default())
        .unwrap()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let cors = Cors::compile(&json!({
        "allow_origins": ["https://app.example.com", "https://*.example.org"],
        "allow_methods": ["GET", "POST"],
        "expose_headers": ["Content-Length", "X-Total"],
        "allow_credentials": true,
        "max_age": "12h"
    }))
    .unwrap();
    let secure = Secure::compile(&json!({
        "allowed_hosts": ["api.example.com", "localhost:8080"],
        "ssl_proxy_headers": {"X-Forwarded-Proto": "https"},
        "sts_seconds": 31536000,
        "frame_deny": true,
        "content_type_nosniff": true,
        "browser_xss_filter": true,
        "content_security_policy": "default-src 'self'",
        "referrer_policy": "same-origin"
    }))
    .unwrap();
    let simple = head(
        "GET /users/42?x=1 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: Mozilla/5.0\r\n\
         Accept: application/json\r\nAccept-Language: en\r\nAccept-Encoding: gzip\r\n\
         Origin: https://app.example.com\r\nX-Forwarded-Proto: https\r\nConnection: keep-alive\r\n\r\n",
    );
    let base: Vec<(Bytes, Bytes)> = vec![
        (
            Bytes::from_static(b"Content-Type"),
            Bytes::from_static(b"application/json; charset=utf-8"),
        ),
        (
            Bytes::from_static(b"X-Krakend"),
            Bytes::from_static(b"Version proxy"),
        ),
        (
            Bytes::from_static(b"X-Krakend-Completed"),
            Bytes::from_static(b"true"),
        ),
    ];
    // Both cases write the response head too: checking each header byte as it is written was
    // most of what these headers cost (callgrind), which a bench of the checks alone missed.
    let mut out = Vec::with_capacity(1024);
    c.bench_function(
        "simple request: CORS + security/http checks, headers and head written",
        |b| {
            b.iter(|| {
                let h = black_box(&simple);
                let mut headers = base.clone();
                let mut lines = Vec::new();
                let Verdict::Actual = cors.check(h) else {
                    unreachable!()
                };
                let Check::Pass = secure.check(h) else {
                    unreachable!()
                };
                secure.lines(h, &mut lines);
                cors.actual(h, &mut headers, &mut lines);
                out.clear();
                write::response_head_lines(
                    &mut out,
                    Version::Http11,
                    200,
                    &headers,
                    &lines,
                    Some(1024),
                    false,
                    true,
                );
                out.len()
            })
        },
    );
    c.bench_function("simple request: response head alone (baseline)", |b| {
        b.iter(|| {
            let headers = black_box(&base).clone();
            out.clear();
            write::response_head(
                &mut out,
                Version::Http11,
                200,
                &headers,
                Some(1024),
                false,
                true,
            );
            out.len()
        })
    });
    let preflight = head(
        "OPTIONS /users/42 HTTP/1.1\r\nHost: api.example.com\r\nOrigin: https://a.example.org\r\n\
         Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type,x-trace\r\n\r\n",
    );
    let any = Cors::compile(&json!({})).unwrap();
    c.bench_function(
        "preflight answered (wildcard origin, 2 requested headers)",
        |b| {
            b.iter(|| match any.check(black_box(&preflight)) {
                Verdict::Answer(s, h) => h.len() + s as usize,
                _ => unreachable!(),
            })
        },
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
