//! `qos/http-cache` over real sockets: a backend that counts its requests shows what the
//! gateway served from its cache, what it revalidated (the conditional request and its 304)
//! and what it never stored. `--cores 1` (the harness default) keeps the one store
//! deterministic; the last test runs 2 cores, where each core keeps its own store.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::config::{backend_with, endpoint, service};
use common::{request, Backend, Conn, Gateway, Recorded, Reply};
use serde_json::{json, Value};
use std::thread::sleep;
use std::time::Duration;

/// `GET /c` -> the backend's `/c` with `qos/http-cache: cache`.
fn cached(b: &Backend, cache: Value) -> Value {
    cached_at(b, "/c", "GET", cache)
}

fn cached_at(b: &Backend, path: &str, method: &str, cache: Value) -> Value {
    let be = backend_with(
        &b.url(),
        path,
        json!({"method": method, "extra_config": {"qos/http-cache": cache}}),
    );
    service(vec![endpoint(path, method, vec![be])])
}

/// `GET path` on a fresh connection (so `--cores 2` spreads them): status and body.
fn fetch(g: &Gateway, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut c = Conn::open(g.addr()).unwrap();
    let r = c.send("GET", path, headers, b"").unwrap();
    (r.status, r.text())
}

fn calls(b: &Backend) -> usize {
    b.requests().len()
}

#[test]
fn a_fresh_response_is_served_from_the_cache_without_calling_the_backend() {
    let b = Backend::start(|_| Reply::json(r#"{"n":1}"#).header("Cache-Control", "max-age=60"));
    let g = Gateway::start(&cached(&b, json!({})).to_string());
    for _ in 0..3 {
        assert_eq!(fetch(&g, "/c", &[]), (200, r#"{"n":1}"#.into()));
    }
    assert_eq!(calls(&b), 1, "the 2nd and 3rd answers came from the cache");
}

#[test]
fn a_response_expires_after_its_max_age() {
    let b = Backend::start(|_| Reply::json("{}").header("Cache-Control", "max-age=1"));
    let g = Gateway::start(&cached(&b, json!({})).to_string());
    fetch(&g, "/c", &[]);
    fetch(&g, "/c", &[]);
    assert_eq!(calls(&b), 1);
    sleep(Duration::from_millis(1200));
    fetch(&g, "/c", &[]);
    assert_eq!(calls(&b), 2, "expired: the backend is asked again");
}

#[test]
fn expires_gives_freshness_when_max_age_is_absent() {
    let b = Backend::start(|_| {
        let later = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(60));
        Reply::json("{}").header("Expires", &later)
    });
    let g = Gateway::start(&cached(&b, json!({})).to_string());
    fetch(&g, "/c", &[]);
    fetch(&g, "/c", &[]);
    assert_eq!(calls(&b), 1);
}

/// A backend answering `{"v":1}` with `validator: value` and `max-age=0`, and 304 to a request
/// whose `conditional` header matches; the 304 carries `refresh` as its Cache-Control.
fn validating(
    validator: &'static str,
    value: &'static str,
    conditional: &'static str,
    refresh: &'static str,
) -> Backend {
    Backend::start(move |r: &Recorded| {
        if r.header(conditional) == Some(value) {
            Reply::status(304)
                .header("Cache-Control", refresh)
                .header(validator, value)
        } else {
            Reply::json(r#"{"v":1}"#)
                .header("Cache-Control", "max-age=0")
                .header(validator, value)
        }
    })
}

#[test]
fn a_stale_response_is_revalidated_with_its_etag_and_a_304_serves_and_refreshes_it() {
    let b = validating("ETag", "\"v1\"", "If-None-Match", "max-age=60");
    let g = Gateway::start(&cached(&b, json!({})).to_string());
    assert_eq!(fetch(&g, "/c", &[]), (200, r#"{"v":1}"#.into()));
    assert_eq!(
        fetch(&g, "/c", &[]),
        (200, r#"{"v":1}"#.into()),
        "304 -> the stored body"
    );
    let reqs = b.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].header("If-None-Match"), None);
    assert_eq!(reqs[1].header("If-None-Match"), Some("\"v1\""));
    // The 304 said max-age=60: the refreshed entry is now fresh.
    assert_eq!(fetch(&g, "/c", &[]), (200, r#"{"v":1}"#.into()));
    assert_eq!(calls(&b), 2);
}

#[test]
fn a_stale_response_is_revalidated_with_its_last_modified() {
    let lm = "Sun, 06 Dec 2026 10:00:00 GMT";
    let b = validating("Last-Modified", lm, "If-Modified-Since", "max-age=0");
    let g = Gateway::start(&cached(&b, json!({})).to_string());
    for _ in 0..3 {
        assert_eq!(fetch(&g, "/c", &[]), (200, r#"{"v":1}"#.into()));
    }
    let reqs = b.requests();
    assert_eq!(reqs.len(), 3, "max-age=0: every use asks the backend");
    assert_eq!(reqs[0].header("If-Modified-Since"), None);
    assert_eq!(reqs[1].header("If-Modified-Since"), Some(lm));
    assert_eq!(reqs[2].header("If-Modified-Since"), Some(lm));
}

#[test]
fn no_store_responses_are_never_cached() {
    let b = Backend::start(|_| {
        Reply::json("{}")
            .header("Cache-Control", "no-store, max-age=60")
            .header("ETag", "\"x\"")
    });
    let g = Gateway::start(&cached(&b, json!({})).to_string());
    fetch(&g, "/c", &[]);
    fetch(&g, "/c", &[]);
    let reqs = b.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[1].header("If-None-Match"),
        None,
        "nothing stored to revalidate"
    );
}

#[test]
fn no_cache_responses_are_revalidated_on_every_use() {
    let b = Backend::start(|r: &Recorded| {
        if r.header("If-None-Match") == Some("\"e\"") {
            Reply::status(304).header("ETag", "\"e\"")
        } else {
            Reply::json(r#"{"a":1}"#)
                .header("Cache-Control", "no-cache, max-age=60")
                .header("ETag", "\"e\"")
        }
    });
    let g = Gateway::start(&cached(&b, json!({})).to_string());
    for _ in 0..3 {
        assert_eq!(fetch(&g, "/c", &[]), (200, r#"{"a":1}"#.into()));
    }
    let reqs = b.requests();
    assert_eq!(reqs.len(), 3, "max-age=60 does not matter under no-cache");
    assert_eq!(reqs[1].header("If-None-Match"), Some("\"e\""));
    assert_eq!(reqs[2].header("If-None-Match"), Some("\"e\""));
}

#[test]
fn vary_keeps_one_entry_per_value_of_the_varied_request_header() {
    let b = Backend::start(|r: &Recorded| {
        let lang = r.header("Accept-Language").unwrap_or("none").to_string();
        Reply::json(&format!(r#"{{"lang":"{lang}"}}"#))
            .header("Cache-Control", "max-age=60")
            .header("Vary", "Accept-Language")
    });
    let mut cfg = cached(&b, json!({}));
    cfg["endpoints"][0]["input_headers"] = json!(["Accept-Language"]);
    let g = Gateway::start(&cfg.to_string());
    let en = [("Accept-Language", "en")];
    let fr = [("Accept-Language", "fr")];
    assert_eq!(fetch(&g, "/c", &en).1, r#"{"lang":"en"}"#);
    assert_eq!(fetch(&g, "/c", &fr).1, r#"{"lang":"fr"}"#);
    assert_eq!(fetch(&g, "/c", &en).1, r#"{"lang":"en"}"#);
    assert_eq!(fetch(&g, "/c", &fr).1, r#"{"lang":"fr"}"#);
    assert_eq!(calls(&b), 2, "one call per language");
}

#[test]
fn post_backend_calls_are_never_cached() {
    let b = Backend::start(|_| Reply::json("{}").header("Cache-Control", "max-age=60"));
    let g = Gateway::start(&cached_at(&b, "/c", "POST", json!({})).to_string());
    for _ in 0..2 {
        let r = request(
            "POST",
            &g.url("/c"),
            &[("Content-Type", "application/json")],
            b"{}",
        );
        assert_eq!(r.status, 200);
    }
    assert_eq!(calls(&b), 2);
}

#[test]
fn the_least_recently_used_entry_is_evicted_past_max_items() {
    let b = Backend::start(|r: &Recorded| {
        Reply::json(&format!(r#"{{"p":"{}"}}"#, r.path)).header("Cache-Control", "max-age=60")
    });
    let g = Gateway::start(
        &cached_at(
            &b,
            "/i/{id}",
            "GET",
            json!({"max_items": 2, "max_size": 1048576}),
        )
        .to_string(),
    );
    for p in ["/i/1", "/i/2", "/i/1", "/i/3", "/i/1", "/i/2"] {
        assert_eq!(fetch(&g, p, &[]).0, 200);
    }
    let paths: Vec<String> = b.requests().into_iter().map(|r| r.path).collect();
    // /i/1 was used after /i/2, so /i/3 pushed /i/2 out and /i/1 stayed.
    assert_eq!(paths, ["/i/1", "/i/2", "/i/3", "/i/2"]);
}

#[test]
fn a_response_larger_than_max_size_is_not_cached() {
    let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(4000));
    let b = Backend::start(move |_| Reply::json(&big).header("Cache-Control", "max-age=60"));
    let g = Gateway::start(&cached(&b, json!({"max_items": 10, "max_size": 2048})).to_string());
    assert_eq!(fetch(&g, "/c", &[]).0, 200);
    assert_eq!(fetch(&g, "/c", &[]).0, 200);
    assert_eq!(calls(&b), 2);
}

#[test]
fn a_cached_error_status_gets_the_same_status_policy_as_a_live_one() {
    let b = Backend::start(|_| {
        Reply::status(404)
            .header("Content-Type", "application/json")
            .header("Cache-Control", "max-age=60")
            .body(r#"{"missing":true}"#)
    });
    let mut cfg = cached(&b, json!({}));
    cfg["endpoints"][0]["backend"][0]["extra_config"]["backend/http"] =
        json!({"return_error_code": true});
    let g = Gateway::start(&cfg.to_string());
    let live = fetch(&g, "/c", &[]);
    let hit = fetch(&g, "/c", &[]);
    assert_eq!(live.0, 404);
    assert_eq!(hit, live, "the cached 404 answers like the live one");
    assert_eq!(calls(&b), 1);
}

#[test]
fn a_malformed_cache_block_stops_the_gateway_at_startup() {
    let b = Backend::json("{}");
    let cfg = cached(&b, json!({"max_items": 10}));
    let err = Gateway::try_start_with(&cfg.to_string(), &[], &[])
        .err()
        .unwrap();
    assert!(err.contains("max_items and max_size go together"), "{err}");
}

#[test]
fn a_no_op_endpoint_with_a_cached_backend_fails_closed_with_501() {
    let b = Backend::start(|_| Reply::json("{}").header("Cache-Control", "max-age=60"));
    let mut cfg = cached(&b, json!({}));
    cfg["endpoints"][0]["output_encoding"] = json!("no-op");
    cfg["endpoints"][0]["backend"][0]["encoding"] = json!("no-op");
    let g = Gateway::start(&cfg.to_string());
    let (status, body) = fetch(&g, "/c", &[]);
    assert_eq!(status, 501, "{body}");
    assert!(body.contains("qos/http-cache"), "{body}");
    assert_eq!(calls(&b), 0);
}

#[test]
fn with_two_cores_each_core_keeps_its_own_store() {
    let b = Backend::start(|_| Reply::json(r#"{"n":1}"#).header("Cache-Control", "max-age=60"));
    let g = two_cores(&cached(&b, json!({})).to_string());
    for _ in 0..40 {
        assert_eq!(fetch(&g, "/c", &[]), (200, r#"{"n":1}"#.into()));
    }
    // Per-core stores: one miss per core that got a connection (the kernel spreads 40
    // connections over both), never more.
    let n = calls(&b);
    assert!((1..=2).contains(&n), "{n} backend calls for 40 requests");
    eprintln!("2 cores: {n} backend calls for 40 requests");
}

/// `proxy run --cores 2` on `config`.
fn two_cores(config: &str) -> Gateway {
    let path = common::gateway::temp_config_path();
    std::fs::write(&path, config).unwrap();
    let mut cmd = std::process::Command::new(common::gateway::binary());
    cmd.arg("run")
        .arg("-c")
        .arg(&path)
        .args(["--cores", "2", "-p", "0"]);
    Gateway::spawn(cmd, path).unwrap()
}

/// The measurement behind README "HTTP cache: per core" (run with `--ignored --nocapture`):
/// 200 URLs x 10 uses each on fresh connections at 2 cores: backend calls (misses), and the
/// gateway's RSS growth for 1 KiB bodies against the same traffic without the cache.
#[test]
#[ignore = "measurement, prints numbers"]
fn measure_hit_ratio_and_memory_at_two_cores() {
    let (urls, uses) = (200, 10);
    let total = urls * uses;
    let rss = |pid: u32| -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    for cache in [
        None,
        Some(json!({"max_items": 10000, "max_size": 67108864})),
    ] {
        let body = format!(r#"{{"x":"{}"}}"#, "a".repeat(1000));
        let b = Backend::start(move |_| Reply::json(&body).header("Cache-Control", "max-age=600"));
        let cfg = match &cache {
            Some(c) => cached_at(&b, "/i/{id}", "GET", c.clone()),
            None => service(vec![endpoint(
                "/i/{id}",
                "GET",
                vec![backend_with(&b.url(), "/i/{id}", json!({}))],
            )]),
        };
        let g = two_cores(&cfg.to_string());
        let before = rss(g.pid());
        for _ in 0..uses {
            for i in 0..urls {
                assert_eq!(fetch(&g, &format!("/i/{i}"), &[]).0, 200);
            }
        }
        let grown = rss(g.pid()).saturating_sub(before);
        let misses = calls(&b);
        eprintln!(
            "2 cores, cache {}: {misses} backend calls / {total} requests, hit ratio {:.1}% (one store per process would give {:.1}%); RSS +{grown} KiB",
            cache.is_some(),
            100.0 * (total - misses) as f64 / total as f64,
            100.0 * (total - urls) as f64 / total as f64,
        );
    }
}

#[test]
fn the_circuit_breaker_wraps_the_cache_so_cached_errors_count_and_an_open_circuit_refuses_hits() {
    let b = Backend::start(|_| {
        Reply::status(404)
            .header("Content-Type", "application/json")
            .header("Cache-Control", "max-age=60")
            .body("{}")
    });
    let mut cfg = cached(&b, json!({}));
    cfg["endpoints"][0]["backend"][0]["extra_config"]["backend/http"] =
        json!({"return_error_code": true});
    cfg["endpoints"][0]["backend"][0]["extra_config"]["qos/circuit-breaker"] =
        json!({"interval": 60, "timeout": 60, "max_errors": 1});
    let g = Gateway::start(&cfg.to_string());
    // Live 404, then the cached 404: two consecutive failures exceed max_errors 1.
    assert_eq!(fetch(&g, "/c", &[]).0, 404);
    assert_eq!(fetch(&g, "/c", &[]).0, 404);
    assert_eq!(
        fetch(&g, "/c", &[]).0,
        500,
        "open: refused before the cache"
    );
    assert_eq!(calls(&b), 1);
}
