#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
// The lock models the per-process alternative this bench prices; it is not on the request path.
#![allow(clippy::disallowed_types)]
//! Question: what does a `qos/http-cache` hit cost, per core (thread-local store, no lock)
//! against one store per process (the same lookup behind one lock every core takes)?
//!
//! An LRU hit is a write (the entry moves to the back), so a process-wide store needs an
//! exclusive lock on every hit; the 2-thread case shows what that costs when both cores hit at
//! once (the lock's cache line moves between cores). The store holds 1,000 entries of ~1 KiB.
//! Decision it informs: per-core or per-process storage (README "HTTP cache: per core").
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use proxy::backend::httpcache::fresh::Freshness;
use proxy::backend::httpcache::{HttpCache, Lookup, Store, Stored};
use proxy::http::{Header, Headers};
use std::hint::black_box;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

const KEYS: usize = 1_000;

fn keys() -> Vec<String> {
    (0..KEYS)
        .map(|i| format!("GET 127.0.0.1:8080/api/items/{i}?page=1"))
        .collect()
}

fn stored() -> Stored {
    Stored {
        status: 200,
        headers: Headers(vec![
            Header {
                name: Bytes::from_static(b"Content-Type"),
                value: Bytes::from_static(b"application/json"),
            },
            Header {
                name: Bytes::from_static(b"Cache-Control"),
                value: Bytes::from_static(b"max-age=60"),
            },
        ]),
        body: Bytes::from(vec![b'x'; 1024]),
    }
}

const FOREVER: Freshness = Freshness {
    received_ms: 0,
    initial_age_ms: 0,
    lifetime_ms: u64::MAX,
    must_revalidate: false,
};

fn fill(s: &mut Store, keys: &[String]) {
    for k in keys {
        s.put(k, &[], stored(), FOREVER);
    }
}

fn hit(s: &mut Store, k: &str) -> bool {
    matches!(s.lookup(k, &[], 1), Lookup::Fresh(_))
}

fn bench(c: &mut Criterion) {
    let keys = keys();
    let cache = HttpCache::compile(&serde_json::json!({})).unwrap();
    cache.with_store(|s| fill(s, &keys));
    let mut i = 0usize;
    c.bench_function("http_cache_hit_per_core", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(cache.with_store(|s| hit(s, &keys[i])))
        })
    });
    let locked = Mutex::new(());
    c.bench_function("http_cache_hit_one_lock_uncontended", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            let _g = locked.lock().unwrap();
            black_box(cache.with_store(|s| hit(s, &keys[i])))
        })
    });
    c.bench_function("http_cache_hit_one_lock_2_threads", |b| {
        b.iter_custom(|iters| two_threads(iters, true))
    });
    c.bench_function("http_cache_hit_per_core_2_threads", |b| {
        b.iter_custom(|iters| two_threads(iters, false))
    });
}

/// Both threads hit their own store `iters` times; with `lock`, under one shared mutex (the
/// per-process model). Returns the wall time of the slower thread.
fn two_threads(iters: u64, lock: bool) -> Duration {
    let shared = Arc::new(Mutex::new(()));
    let start = Arc::new(Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (shared, start) = (Arc::clone(&shared), Arc::clone(&start));
            std::thread::spawn(move || {
                let keys = keys();
                let mut s = Store::new(10_000, 64 << 20);
                fill(&mut s, &keys);
                start.wait();
                let t = Instant::now();
                for n in 0..iters as usize {
                    let k = &keys[n % KEYS];
                    if lock {
                        let _g = shared.lock().unwrap();
                        black_box(hit(&mut s, k));
                    } else {
                        black_box(hit(&mut s, k));
                    }
                }
                t.elapsed()
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .max()
        .unwrap()
}

criterion_group!(benches, bench);
criterion_main!(benches);
