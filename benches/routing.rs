#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Question: what does finding the endpoint cost per request (`Router::route`), for a small
//! and a large config, on a static path and on a path with two `{param}`s?
//!
//! Inputs: 10 and 200 routes shaped like real APIs (`/v1/resourceN`, `/v1/resourceN/{id}`,
//! `/v1/resourceN/{id}/items/{item}`), looked up at the last-registered resource (worst case
//! for any scan). Decision it informs: whether routing needs more than the per-method segment
//! tree (it should stay well under the ~0.3 us of head parsing).
use criterion::{criterion_group, criterion_main, Criterion};
use proxy::router::{Route, Router, RouterOptions};
use std::hint::black_box;

fn router(n: usize) -> Router<usize> {
    let mut r = Router::new(RouterOptions::default());
    for i in 0..n / 3 + 1 {
        r.insert("GET", &format!("/v1/resource{i}"), i).unwrap();
        r.insert("GET", &format!("/v1/resource{i}/{{id}}"), i)
            .unwrap();
        r.insert("GET", &format!("/v1/resource{i}/{{id}}/items/{{item}}"), i)
            .unwrap();
    }
    r
}

fn bench(c: &mut Criterion) {
    for n in [10usize, 200] {
        let r = router(n);
        let last = n / 3;
        let stat = format!("/v1/resource{last}");
        let param = format!("/v1/resource{last}/42/items/abc-123");
        c.bench_function(&format!("route static, {n} routes"), |b| {
            b.iter(|| {
                matches!(
                    r.route(black_box("GET"), black_box(&stat), None),
                    Route::Found { .. }
                )
            })
        });
        c.bench_function(&format!("route 2 params, {n} routes"), |b| {
            b.iter(|| {
                matches!(
                    r.route(black_box("GET"), black_box(&param), None),
                    Route::Found { .. }
                )
            })
        });
        c.bench_function(&format!("route miss (404), {n} routes"), |b| {
            b.iter(|| {
                matches!(
                    r.route(black_box("GET"), black_box("/v2/nothing/here"), None),
                    Route::NotFound
                )
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
