#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! Question: what does one rate-limit check cost on the request path, and does it stay in the
//! tens of nanoseconds with no syscall?
//!
//! Cases: the endpoint limit (`Limiter::admit`) on a core whose shard has tokens (the common
//! case; the clock is not even read) and with the clock read on every call as the gateway
//! does when a shard runs dry; a limit that refuses (dry, waiting for `retry_at`); the
//! per-client table (`ClientTable::admit`) for a known client among 10,000; and the process
//! bucket taken directly (one shared CAS, the cost a batch amortises). Decision it informs:
//! whether a limit that never trips can stay within 3% of the CPU of a request (~10 µs).
use criterion::{criterion_group, criterion_main, Criterion};
use proxy::guard::ratelimit::clients::ClientTable;
use proxy::guard::ratelimit::{now_ns, Limiter, ProcessBucket};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    // A rate that never trips: shards borrow 64 at a time.
    let never = Limiter::new(1e12, 1 << 40, 2, now_ns());
    c.bench_function("limiter_admit_never_trips", |b| {
        b.iter(|| black_box(never.admit(black_box(0), now_ns)))
    });
    let dry = Limiter::new(1e-9, 1, 2, now_ns());
    let _ = dry.admit(0, now_ns);
    c.bench_function("limiter_admit_refusing", |b| {
        b.iter(|| black_box(dry.admit(black_box(0), now_ns)))
    });
    c.bench_function("clock_read", |b| b.iter(|| black_box(now_ns())));
    let table = ClientTable::new(1e12, 1 << 40, 1 << 16);
    let keys: Vec<String> = (0..10_000).map(|i| format!("client-{i}")).collect();
    for k in &keys {
        table.admit(k.as_bytes(), now_ns());
    }
    let mut i = 0;
    c.bench_function("client_table_admit_known_client", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(table.admit(keys[i].as_bytes(), now_ns()))
        })
    });
    let bucket = ProcessBucket::new(1e12, 1 << 40, now_ns());
    c.bench_function("process_bucket_take_uncontended", |b| {
        b.iter(|| black_box(bucket.take(now_ns())))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
