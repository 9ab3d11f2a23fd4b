#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Question: what does writing a response cost once the data is shaped — the response head
//! (`write::response_head`: status line, 5 headers, cached Date, Content-Length) and the
//! JSON body assembled from shaped pieces (`Fields::write_object`)?
//!
//! Inputs: a typical endpoint response head; a 3-backend merge of 5 grouped members each
//! (~1 KB). Decision it informs: whether rendering deserves vectored writes of the pieces
//! instead of one copy into a contiguous buffer.
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use proxy::http::{write, Version};
use proxy::json::{merge, Fields};
use std::hint::black_box;

fn part(i: usize) -> Fields {
    let v = serde_json::json!({
        format!("group{i}"): {"id": 42, "name": "Ada Lovelace", "email": "ada@example.com", "active": true, "score": 97.5,
            "pad": "x".repeat(200)}
    });
    proxy::json::from_value(&v)
}

fn bench(c: &mut Criterion) {
    let headers: Vec<(&[u8], &[u8])> = vec![
        (b"Content-Type", b"application/json; charset=utf-8"),
        (b"X-Krakend", b"Version proxy-0.1.0"),
        (b"X-Krakend-Completed", b"true"),
        (b"Cache-Control", b"public, max-age=60"),
    ];
    c.bench_function("response head, 4 headers + Date + Content-Length", |b| {
        let mut out = Vec::with_capacity(512);
        b.iter(|| {
            out.clear();
            write::response_head(
                &mut out,
                Version::Http11,
                200,
                black_box(&headers),
                Some(1024),
                false,
                true,
            );
            out.len()
        })
    });
    let merged = merge(vec![part(0), part(1), part(2)]);
    c.bench_function("write_object of a 3-backend merge (~1 KB)", |b| {
        let mut out = Vec::with_capacity(2048);
        b.iter(|| {
            out.clear();
            black_box(&merged).write_object(&mut out);
            Bytes::copy_from_slice(&out).len()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
