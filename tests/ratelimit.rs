//! `qos/ratelimit/router` and `qos/ratelimit/proxy` over real sockets: statuses and their
//! order, client keys (header, param, ip with and without trusted proxies), backend limits as
//! backend failures, startup refusals, and what a reload keeps. Rates here are per minute, so
//! nothing refills during a test and every count is exact.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::config::{backend, endpoint, service};
use common::{check, get, Backend, Conn, Gateway};
use serde_json::{json, Value};

/// One endpoint `GET /limited` with a rate-limit block, calling `b`.
fn limited(b: &Backend, limit: Value) -> Value {
    let mut ep = endpoint("/limited", "GET", vec![backend(&b.url(), "/")]);
    ep["extra_config"] = json!({ "qos/ratelimit/router": limit });
    service(vec![ep])
}

/// Status of `GET path` with `headers` on a fresh connection.
fn status(g: &Gateway, path: &str, headers: &[(&str, &str)]) -> u16 {
    let mut c = Conn::open(g.addr()).unwrap();
    c.send("GET", path, headers, b"").unwrap().status
}

fn statuses(g: &Gateway, n: usize, headers: &[(&str, &str)]) -> Vec<u16> {
    (0..n).map(|_| status(g, "/limited", headers)).collect()
}

#[test]
fn endpoint_over_max_rate_answers_503_with_an_empty_body() {
    let b = Backend::json(r#"{"ok":true}"#);
    let g = Gateway::start(
        &limited(&b, json!({"max_rate": 3, "every": "1m", "capacity": 3})).to_string(),
    );
    let mut c = Conn::open(g.addr()).unwrap();
    let got: Vec<(u16, usize)> = (0..5)
        .map(|_| {
            let r = c.send("GET", "/limited", &[], b"").unwrap();
            (r.status, r.body.len())
        })
        .collect();
    assert_eq!(
        got,
        vec![(200, 11), (200, 11), (200, 11), (503, 0), (503, 0)]
    );
    assert_eq!(
        b.requests().len(),
        3,
        "refused requests never reach the backend"
    );
}

#[test]
fn client_limit_is_checked_before_the_endpoint_limit() {
    let b = Backend::json("{}");
    let limit = json!({
        "max_rate": 5, "capacity": 5, "client_max_rate": 3, "client_capacity": 3,
        "strategy": "header", "key": "X-Client", "every": "1m"
    });
    let g = Gateway::start(&limited(&b, limit).to_string());
    let a = [("X-Client", "a")];
    let bb = [("X-Client", "b")];
    // Client a: its 3, then 429 (the endpoint still had tokens).
    assert_eq!(statuses(&g, 4, &a), vec![200, 200, 200, 429]);
    // Client b: 2 left at the endpoint, then 503 while b still has a token of its own.
    assert_eq!(statuses(&g, 3, &bb), vec![200, 200, 503]);
    // Client a over both limits: the client check answers first.
    assert_eq!(statuses(&g, 1, &a), vec![429]);
}

#[test]
fn header_strategy_without_the_header_answers_429() {
    let b = Backend::json("{}");
    let limit = json!({"client_max_rate": 100, "strategy": "header", "key": "X-Api-Key"});
    let g = Gateway::start(&limited(&b, limit).to_string());
    assert_eq!(status(&g, "/limited", &[]), 429);
    assert_eq!(status(&g, "/limited", &[("X-Api-Key", "")]), 429);
    assert_eq!(status(&g, "/limited", &[("X-Api-Key", "k1")]), 200);
    assert!(b.requests().len() == 1);
}

#[test]
fn param_strategy_limits_each_value_of_the_placeholder() {
    let b = Backend::json("{}");
    let mut ep = endpoint("/users/{id}", "GET", vec![backend(&b.url(), "/")]);
    ep["extra_config"] = json!({"qos/ratelimit/router": {
        "client_max_rate": 2, "client_capacity": 2, "every": "1m", "strategy": "param",
        "key": "id"}});
    let g = Gateway::start(&service(vec![ep]).to_string());
    let run = |p: &str| (0..3).map(|_| status(&g, p, &[])).collect::<Vec<_>>();
    assert_eq!(run("/users/1"), vec![200, 200, 429]);
    assert_eq!(run("/users/2"), vec![200, 200, 429]);
}

/// `strategy: ip` with `X-Forwarded-For` in gin's router options, trusting `trusted`.
fn ip_limited(b: &Backend, trusted: &[&str], key: Option<&str>) -> Value {
    let mut limit =
        json!({"client_max_rate": 5, "client_capacity": 5, "every": "1m", "strategy": "ip"});
    if let Some(k) = key {
        limit["key"] = json!(k);
    }
    let mut cfg = limited(b, limit);
    cfg["extra_config"] = json!({"router": {
        "forwarded_by_client_ip": true,
        "remote_ip_headers": ["X-Forwarded-For"],
        "trusted_proxies": trusted,
    }});
    cfg
}

fn forged(g: &Gateway, n: usize) -> Vec<u16> {
    (0..n)
        .map(|i| {
            let ip = format!("203.0.113.{}", i + 1);
            status(g, "/limited", &[("X-Forwarded-For", &ip)])
        })
        .collect()
}

#[test]
fn ip_strategy_ignores_forwarded_addresses_from_an_untrusted_peer() {
    let b = Backend::json("{}");
    for key in [None, Some("X-Forwarded-For")] {
        // 127.0.0.1 is not in 10.0.0.0/8: twelve forged addresses share the peer's budget.
        let g = Gateway::start(&ip_limited(&b, &["10.0.0.0/8"], key).to_string());
        let got = forged(&g, 12);
        assert_eq!(
            got.iter().filter(|s| **s == 200).count(),
            5,
            "key {key:?}: {got:?}"
        );
        assert_eq!(
            got.iter().filter(|s| **s == 429).count(),
            7,
            "key {key:?}: {got:?}"
        );
    }
}

#[test]
fn ip_strategy_believes_forwarded_addresses_from_a_trusted_proxy() {
    let b = Backend::json("{}");
    for key in [None, Some("X-Forwarded-For")] {
        let g = Gateway::start(&ip_limited(&b, &["127.0.0.0/8"], key).to_string());
        assert_eq!(forged(&g, 12), vec![200; 12], "key {key:?}");
        // One forwarded address is one client: its 5, then 429.
        let same = statuses(&g, 6, &[("X-Forwarded-For", "198.51.100.7, 127.0.0.1")]);
        assert_eq!(same, vec![200, 200, 200, 200, 200, 429], "key {key:?}");
    }
}

#[test]
fn ip_strategy_keys_on_the_peer_address_by_default() {
    let b = Backend::json("{}");
    let limit =
        json!({"client_max_rate": 2, "client_capacity": 2, "every": "1m", "strategy": "ip"});
    let g = Gateway::start(&limited(&b, limit).to_string());
    let got: Vec<u16> = (0..4)
        .map(|i| {
            status(
                &g,
                "/limited",
                &[("X-Forwarded-For", &format!("192.0.2.{i}"))],
            )
        })
        .collect();
    assert_eq!(got, vec![200, 200, 429, 429]);
}

#[test]
fn blocks_krakend_would_silently_weaken_are_refused_at_startup() {
    let b = Backend::json("{}");
    let cases = [
        (
            limited(&b, json!({"client_max_rate": 5})),
            "needs a strategy",
        ),
        (
            limited(&b, json!({"client_max_rate": 5, "strategy": "header"})),
            "is missing",
        ),
        (limited(&b, json!({"max_rate": "10"})), "must be a number"),
        (
            limited(
                &b,
                json!({"client_max_rate": 5, "strategy": "param", "key": "id"}),
            ),
            "not a placeholder",
        ),
        (ip_limited(&b, &[], None), "trusted_proxies is empty"),
        (ip_limited(&b, &["not-an-ip"], None), "not an IP address"),
    ];
    for (cfg, why) in cases {
        let (code, out, err) = check(&cfg.to_string());
        assert_ne!(code, 0, "{cfg}\n{out}{err}");
        assert!(format!("{out}{err}").contains(why), "{why}: {out}{err}");
    }
}

/// An endpoint calling `a` (limited to 2 calls a minute) and `other`.
fn backend_limited(a: &Backend, other: Option<&Backend>) -> Value {
    let mut limited = backend(&a.url(), "/a");
    limited["extra_config"] =
        json!({"qos/ratelimit/proxy": {"max_rate": 2, "every": "1m", "capacity": 2}});
    let mut backends = vec![limited];
    if let Some(o) = other {
        backends.push(backend(&o.url(), "/b"));
    }
    service(vec![endpoint("/x", "GET", backends)])
}

#[test]
fn a_backend_over_its_limit_fails_like_any_failing_backend() {
    let a = Backend::json(r#"{"a":1}"#);
    let o = Backend::json(r#"{"b":2}"#);
    let g = Gateway::start(&backend_limited(&a, Some(&o)).to_string());
    for _ in 0..2 {
        let r = get(&g.url("/x"));
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), json!({"a": 1, "b": 2}));
        assert_eq!(r.header("x-krakend-completed"), Some("true"));
    }
    // Over the limit: a partial response with the other backend's data.
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"b": 2}));
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
    assert_eq!(a.requests().len(), 2, "the limited backend is not called");
    assert_eq!(o.requests().len(), 3);
}

#[test]
fn a_single_backend_over_its_limit_gives_500_with_krakends_error_text() {
    let a = Backend::json(r#"{"a":1}"#);
    let mut cfg = backend_limited(&a, None);
    cfg["extra_config"] = json!({"router": {"return_error_msg": true}});
    let g = Gateway::start(&cfg.to_string());
    assert_eq!(get(&g.url("/x")).status, 200);
    assert_eq!(get(&g.url("/x")).status, 200);
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 500);
    assert_eq!(r.text(), "rate limit exceded");
}

#[test]
fn a_reload_keeps_the_buckets_of_unchanged_limits_and_refills_changed_ones() {
    let b = Backend::json("{}");
    let cfg = limited(&b, json!({"max_rate": 2, "every": "1m", "capacity": 2}));
    let g = Gateway::start(&cfg.to_string());
    assert_eq!(statuses(&g, 3, &[]), vec![200, 200, 503]);
    // Another endpoint added, this limit untouched: the drained bucket stays drained.
    let mut more = cfg.clone();
    more["endpoints"].as_array_mut().unwrap().push(endpoint(
        "/other",
        "GET",
        vec![backend(&b.url(), "/")],
    ));
    g.reload(&more.to_string());
    wait_for(|| status(&g, "/other", &[]) == 200);
    assert_eq!(statuses(&g, 1, &[]), vec![503]);
    // The limit changed: a fresh, full bucket.
    let mut changed = more.clone();
    changed["endpoints"][0]["extra_config"]["qos/ratelimit/router"]["capacity"] = json!(3);
    g.reload(&changed.to_string());
    wait_for(|| status(&g, "/limited", &[]) == 200);
    assert_eq!(statuses(&g, 3, &[]), vec![200, 200, 503]);
}

fn wait_for(mut ok: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !ok() {
        assert!(std::time::Instant::now() < end, "reload not seen");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
