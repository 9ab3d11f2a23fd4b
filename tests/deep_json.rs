//! A hostile backend body nested as deep as the scanner allows (and deeper) must never take a
//! core down: it is shaped, or rejected as a backend failure, and the gateway keeps serving.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::config::{backend, endpoint, service};
use common::*;
use serde_json::json;

fn nested(depth: usize) -> String {
    format!(
        "{{\"a\":{}1{},\"ok\":true}}",
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

#[test]
fn deeply_nested_bodies_through_flatmap_and_sequential_never_kill_the_gateway() {
    let b = Backend::start(|r| {
        let depth: usize = r.path.trim_start_matches('/').parse().unwrap_or(1);
        Reply::json(&nested(depth))
    });
    let mut fm_backend = backend(&b.url(), "/{depth}");
    fm_backend["extra_config"] =
        json!({"proxy": {"flatmap_filter": [{"type": "move", "args": ["a", "b"]}]}});
    let mut seq = endpoint(
        "/seq/{depth}",
        "GET",
        vec![
            backend(&b.url(), "/{depth}"),
            backend(&b.url(), "/{resp0_a}"),
        ],
    );
    seq["extra_config"] = json!({"proxy": {"sequential": true}});
    let cfg = service(vec![endpoint("/fm/{depth}", "GET", vec![fm_backend]), seq]);
    let g = Gateway::start(&cfg.to_string());
    for depth in [100, 5_000, 9_990, 10_001, 200_000] {
        for path in [format!("/fm/{depth}"), format!("/seq/{depth}")] {
            let r = get(&g.url(&path));
            assert!(r.status == 200 || r.status == 500, "{path}: {}", r.status);
        }
    }
    assert_eq!(get(&g.url("/__health")).status, 200, "{}", g.output());
}
