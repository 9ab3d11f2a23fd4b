//! Question: is projecting backend bodies straight from raw text with sonic-rs (skip what is
//! dropped, slice what is kept) clearly faster than the obvious path (parse into a
//! `serde_json::Value`, filter the map, serialise)? Target: >= 4x faster, and <= 3 us for a
//! 3-backend aggregate of 3 x 1 KB bodies (apply x3 + merge + write_object).
//!
//! Sizes: 1 KB, 10 KB and 100 KB objects of realistic members (strings with escapes, numbers,
//! nested objects, arrays), keeping 4 fields (one of them a nested allow path). The decision it
//! informs: whether shaping can stay on the request path without a DOM.

use bytes::Bytes;
use criterion::{black_box, criterion_group, BenchmarkId, Criterion, Throughput};
use proxy::config::{Backend, Span};
use proxy::json::{merge, BackendShape};
use serde_json::{Map, Value};

/// An object of about `size` bytes with `id`, `name`, `price`, `meta.{a,b}` and filler members.
fn body(size: usize, seed: usize) -> Bytes {
    let mut s = format!(
        r#"{{"id":{seed},"name":"item \"{seed}\" <x>","price":12.50,"meta":{{"a":1.0e+2,"b":"c","z":[1,2,3]}}"#
    );
    let mut i = 0;
    while s.len() < size {
        s.push_str(&format!(
            r#","f{i}_{seed}":{{"text":"lorem ipsum dolor \u00e9 {i}","n":{i},"tags":["a","b",null,true],"deep":{{"x":12345678901234567890}}}}"#
        ));
        i += 1;
    }
    s.push('}');
    Bytes::from(s)
}

fn backend(allow: &[&str], group: &str) -> Backend {
    Backend {
        host: vec![],
        url_pattern: "/b".into(),
        method: "GET".into(),
        encoding: "json".into(),
        is_collection: false,
        target: String::new(),
        allow: allow.iter().map(|s| s.to_string()).collect(),
        deny: vec![],
        mapping: vec![],
        group: group.into(),
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

const ALLOW: &[&str] = &["id", "name", "price", "meta.a"];

/// The obvious path: full DOM, filter, serialise.
fn value_project(body: &[u8], group: &str) -> Map<String, Value> {
    let Ok(Value::Object(mut m)) = serde_json::from_slice::<Value>(body) else {
        return Map::new();
    };
    let mut out = Map::new();
    for k in ["id", "name", "price"] {
        if let Some(v) = m.remove(k) {
            out.insert(k.to_owned(), v);
        }
    }
    if let Some(Value::Object(mut meta)) = m.remove("meta") {
        if let Some(a) = meta.remove("a") {
            let mut inner = Map::new();
            inner.insert("a".to_owned(), a);
            out.insert("meta".to_owned(), Value::Object(inner));
        }
    }
    if group.is_empty() {
        out
    } else {
        let mut g = Map::new();
        g.insert(group.to_owned(), Value::Object(out));
        g
    }
}

fn projection(c: &mut Criterion) {
    let mut g = c.benchmark_group("project");
    let Ok(shape) = BackendShape::compile(&backend(ALLOW, "")) else {
        return;
    };
    for size in [1_000usize, 10_000, 100_000] {
        let b = body(size, 1);
        g.throughput(Throughput::Bytes(b.len() as u64));
        g.bench_with_input(BenchmarkId::new("sonic", size), &b, |bench, b| {
            let mut out = Vec::with_capacity(256);
            bench.iter(|| {
                out.clear();
                if let Ok(f) = shape.apply(b.clone()) {
                    f.write_object(&mut out);
                }
                black_box(out.len())
            })
        });
        g.bench_with_input(BenchmarkId::new("serde_value", size), &b, |bench, b| {
            bench.iter(|| {
                let m = value_project(b, "");
                black_box(serde_json::to_vec(&m).map(|v| v.len()).unwrap_or(0))
            })
        });
    }
    g.finish();
}

fn aggregate(c: &mut Criterion) {
    let mut g = c.benchmark_group("aggregate_3x1KB");
    let shapes: Vec<BackendShape> = ["", "second", ""]
        .iter()
        .filter_map(|grp| BackendShape::compile(&backend(ALLOW, grp)).ok())
        .collect();
    let bodies: Vec<Bytes> = (0..3).map(|i| body(1_000, i)).collect();
    g.bench_function("sonic", |bench| {
        let mut out = Vec::with_capacity(512);
        bench.iter(|| {
            let parts = shapes
                .iter()
                .zip(&bodies)
                .filter_map(|(s, b)| s.apply(b.clone()).ok())
                .collect();
            let merged = merge(parts);
            out.clear();
            merged.write_object(&mut out);
            black_box(out.len())
        })
    });
    g.bench_function("serde_value", |bench| {
        bench.iter(|| {
            let mut acc = Map::new();
            for (grp, b) in ["", "second", ""].iter().zip(&bodies) {
                acc.extend(value_project(b, grp));
            }
            black_box(serde_json::to_vec(&acc).map(|v| v.len()).unwrap_or(0))
        })
    });
    g.finish();
}

/// The aggregate case a fixed number of times, for `perf stat` on a shared machine: cycles and
/// instructions per request do not depend on how busy the other cores are, wall time does.
/// `SHAPING_ITERS=200000 perf stat -e task-clock target/release/deps/shaping-*` (add
/// `SHAPING_PATH=value` for the `serde_json::Value` path).
fn fixed_count(iters: u64) {
    let shapes: Vec<BackendShape> = ["", "second", ""]
        .iter()
        .filter_map(|grp| BackendShape::compile(&backend(ALLOW, grp)).ok())
        .collect();
    let bodies: Vec<Bytes> = (0..3).map(|i| body(1_000, i)).collect();
    let mut out = Vec::with_capacity(512);
    let mut total = 0usize;
    if std::env::var("SHAPING_PATH").as_deref() == Ok("value") {
        for _ in 0..iters {
            let mut acc = Map::new();
            for (grp, b) in ["", "second", ""].iter().zip(&bodies) {
                acc.extend(value_project(b, grp));
            }
            total += black_box(serde_json::to_vec(&acc).map(|v| v.len()).unwrap_or(0));
        }
        println!("{iters} serde_json::Value aggregates, {total} bytes out");
        return;
    }
    for _ in 0..iters {
        let parts = shapes
            .iter()
            .zip(&bodies)
            .filter_map(|(s, b)| s.apply(b.clone()).ok())
            .collect();
        let merged = merge(parts);
        out.clear();
        merged.write_object(&mut out);
        total += black_box(out.len());
    }
    println!("{iters} aggregates, {total} bytes out");
}

criterion_group!(benches, projection, aggregate);

fn main() {
    if let Some(iters) = std::env::var("SHAPING_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        fixed_count(iters);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
