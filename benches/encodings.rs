//! Question: are the XML decoder (`encoding: xml`) and a CEL check (`validation/cel`) cheap
//! enough to run on the request path of the endpoints that use them? Targets: a 10 KB XML
//! document decoded and shaped in under 100 us (KrakenD's mxj is in the same range); one
//! KrakenD-style CEL request predicate (variables built, expression run) in under 10 us.
//!
//! Sizes: a 10 KB XML document of 100 repeated records with attributes and nested elements;
//! the CE fixture's two endpoint expressions on a request with 3 headers. The decision it
//! informs: whether either needs caching or a lighter representation before it ships.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use proxy::config::{Backend, Span};
use proxy::guard::cel::{CelChecks, Request};
use proxy::json::BackendShape;
use serde_json::json;

fn xml_doc(size: usize) -> Bytes {
    let mut s = String::from(r#"<?xml version="1.0" encoding="UTF-8"?><catalog version="2">"#);
    let mut i = 0;
    while s.len() < size {
        s.push_str(&format!(
            r#"<item id="{i}" kind="book"><title>Title &amp; {i}</title><price cur="EUR">12.50</price><tags><tag>a</tag><tag>b</tag></tags></item>"#
        ));
        i += 1;
    }
    s.push_str("</catalog>");
    Bytes::from(s)
}

fn xml_backend() -> Backend {
    Backend {
        host: vec![],
        url_pattern: "/b".into(),
        method: "GET".into(),
        encoding: "xml".into(),
        is_collection: false,
        target: String::new(),
        allow: vec![],
        deny: vec![],
        mapping: vec![],
        group: String::new(),
        sd: "static".into(),
        sd_scheme: String::new(),
        host_span: None,
        disable_host_sanitize: false,
        input_headers: vec![],
        input_query_strings: vec![],
        extra_config: Default::default(),
        span: Span::default(),
    }
}

fn benches(c: &mut Criterion) {
    let doc = xml_doc(10 * 1024);
    let shape = BackendShape::compile(&xml_backend()).expect("xml backend compiles");
    let mut g = c.benchmark_group("xml_decode");
    g.throughput(Throughput::Bytes(doc.len() as u64));
    g.bench_function("10KB", |b| {
        b.iter(|| shape.apply(black_box(doc.clone())).map(|f| f.len()))
    });
    g.finish();

    let checks = CelChecks::compile(&json!([
        {"check_expr": "'something' in req_headers['X-Header']"},
        {"check_expr": "int(req_params.Id) % 2 == 0"}
    ]))
    .expect("fixture expressions compile");
    let params = [("id", "10".to_string())];
    let headers = vec![
        ("X-Header".to_string(), "something".to_string()),
        ("X-Forwarded-For".to_string(), "127.0.0.1".to_string()),
        ("User-Agent".to_string(), "bench".to_string()),
    ];
    c.bench_function("cel_request_predicate", |b| {
        b.iter(|| {
            let req = Request {
                method: "GET",
                path: "/cel/req-resp/10",
                params: &params,
                headers: headers.clone(),
                query: vec![],
            };
            checks.check_pre(black_box(&req), "2026-12-07T00:00:00Z")
        })
    });
}

criterion_group!(group, benches);
criterion_main!(group);
