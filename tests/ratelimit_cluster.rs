//! Cluster-wide rate limits: two real gateway processes share one endpoint `max_rate` through
//! a real `redis-server` (`connection_name` in `qos/ratelimit/router`, the service-level
//! `redis` namespace naming the connection). Their combined admitted count stays within +1%
//! of `rate × T + capacity`; when Redis dies each keeps serving under its own local limit
//! (`on_failure: local`) or refuses with 503 (`on_failure: deny`); a limit naming an unknown
//! connection is refused at startup; `proxy check` never connects; a reload keeps, replaces
//! or stops a limit's Redis feeder with the limit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::config::{backend, endpoint, service};
use common::redis::RedisServer;
use common::{check, wait_until, Backend, Conn, Gateway};
use proxy::redis::resp::Reply;
use proxy::redis::{Client, ConnectOptions};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// One `GET /limited` endpoint with `limit`, and the service-level `redis` connection
/// `shared` at `address` (generous timeouts: the test machine's 2 cores are shared, and a
/// lease slower than the read timeout would count as Redis being down).
fn config(b: &Backend, address: &str, limit: Value) -> Value {
    let mut ep = endpoint("/limited", "GET", vec![backend(&b.url(), "/")]);
    ep["extra_config"] = json!({ "qos/ratelimit/router": limit });
    let mut cfg = service(vec![ep]);
    cfg["extra_config"] = json!({
        "redis": { "connection_pools": [ {
            "name": "shared", "address": address, "client_name": "proxy-feeder",
            "dial_timeout": "500ms", "read_timeout": "1s", "write_timeout": "1s"
        } ] }
    });
    cfg
}

fn start(cfg: &Value) -> Gateway {
    Gateway::start(&cfg.to_string())
}

/// Drive every gateway with `conns` keep-alive connections each, as fast as they answer,
/// through consecutive phases; `at_phase(i)` runs as phase `i` begins. Returns, per gateway
/// and phase, the 200s and the refusals (503; 500 for a backend limit), and each phase's
/// measured length.
struct Counts {
    ok: Vec<Vec<u64>>,
    refused: Vec<Vec<u64>>,
    secs: Vec<f64>,
}

fn drive(
    gateways: &[&Gateway],
    conns: usize,
    phases: &[f64],
    at_phase: impl FnMut(usize),
) -> Counts {
    drive_refused(gateways, conns, phases, 503, at_phase)
}

fn drive_refused(
    gateways: &[&Gateway],
    conns: usize,
    phases: &[f64],
    refused_status: u16,
    mut at_phase: impl FnMut(usize),
) -> Counts {
    let n = phases.len();
    let counters: Arc<Vec<Vec<(AtomicU64, AtomicU64)>>> = Arc::new(
        gateways
            .iter()
            .map(|_| {
                (0..n)
                    .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
                    .collect()
            })
            .collect(),
    );
    let phase = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for (g, gw) in gateways.iter().enumerate() {
        for _ in 0..conns {
            let (counters, phase, stop, addr) =
                (counters.clone(), phase.clone(), stop.clone(), gw.addr());
            threads.push(thread::spawn(move || {
                let mut c = Conn::open(addr).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let p = phase.load(Ordering::Relaxed);
                    let r = c.send("GET", "/limited", &[], b"").unwrap();
                    let (ok, refused) = &counters[g][p];
                    match r.status {
                        200 => ok.fetch_add(1, Ordering::Relaxed),
                        s if s == refused_status => refused.fetch_add(1, Ordering::Relaxed),
                        s => panic!("unexpected status {s}: {}", r.text()),
                    };
                }
            }));
        }
    }
    let mut secs = Vec::new();
    for (i, len) in phases.iter().enumerate() {
        let began = Instant::now();
        phase.store(i, Ordering::Relaxed);
        at_phase(i);
        thread::sleep(Duration::from_secs_f64(*len).saturating_sub(began.elapsed()));
        if i + 1 == n {
            stop.store(true, Ordering::Relaxed);
            for t in threads.drain(..) {
                t.join().unwrap();
            }
        }
        secs.push(began.elapsed().as_secs_f64());
    }
    let read = |f: fn(&(AtomicU64, AtomicU64)) -> u64| {
        counters.iter().map(|g| g.iter().map(f).collect()).collect()
    };
    Counts {
        ok: read(|c| c.0.load(Ordering::Relaxed)),
        refused: read(|c| c.1.load(Ordering::Relaxed)),
        secs,
    }
}

#[test]
fn two_gateways_sharing_one_redis_admit_the_limit_together_within_one_percent() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let b = Backend::json("{}");
    let (rate, capacity) = (200.0, 200.0);
    let cfg = config(
        &b,
        &redis.address(),
        json!({ "max_rate": rate, "capacity": capacity, "connection_name": "shared" }),
    );
    let (g1, g2) = (start(&cfg), start(&cfg));
    // Both are fed from Redis before they listen; let the shared bucket refill to capacity
    // so the run starts from the documented worst case (a full bucket).
    thread::sleep(Duration::from_millis(300));
    let c = drive(&[&g1, &g2], 4, &[3.0], |_| {});
    let (t, admitted) = (c.secs[0], c.ok[0][0] + c.ok[1][0]);
    let limit = rate * t + capacity;
    let independent = 2.0 * limit;
    eprintln!(
        "rate {rate}/s capacity {capacity} over {t:.2} s: admitted {admitted} ({} + {}), \
         limit {limit:.0} ({:+.2}%), two independent limits would admit {independent:.0}",
        c.ok[0][0],
        c.ok[1][0],
        (admitted as f64 - limit) / limit * 100.0
    );
    assert!(
        admitted as f64 <= limit * 1.01,
        "over the cluster limit: {admitted} > {limit:.0} + 1%\n{}\n{}",
        g1.output(),
        g2.output()
    );
    assert!(
        admitted as f64 >= limit * 0.9,
        "the cluster limit is badly under-used: {admitted} of {limit:.0}"
    );
    assert!(c.ok[0][0] > 0 && c.ok[1][0] > 0, "both gateways admit");
    assert!(
        c.refused[0][0] > 0 && c.refused[1][0] > 0,
        "both refuse (503)"
    );
    for g in [&g1, &g2] {
        assert!(
            wait_until(Duration::from_secs(5), || g
                .output()
                .contains("max_rate is cluster-wide")),
            "{}",
            g.output()
        );
    }
}

#[test]
fn a_backend_limit_naming_a_connection_is_shared_by_both_gateways() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let b = Backend::json("{}");
    let (rate, capacity) = (100.0, 50.0);
    let limited = json!({ "qos/ratelimit/proxy": {
        "max_rate": rate, "capacity": capacity, "connection_name": "shared"
    } });
    let mut cfg = config(&b, &redis.address(), json!({}));
    let ep = &mut cfg["endpoints"][0];
    ep.as_object_mut().unwrap().remove("extra_config");
    ep["backend"][0]["extra_config"] = limited;
    let (g1, g2) = (start(&cfg), start(&cfg));
    thread::sleep(Duration::from_millis(300));
    // A backend call over the limit fails without reaching the backend: the endpoint's
    // only backend failed, so it answers 500.
    let c = drive_refused(&[&g1, &g2], 2, &[2.0], 500, |_| {});
    let (t, called) = (c.secs[0], b.requests().len() as f64);
    let limit = rate * t + capacity;
    eprintln!(
        "backend limit {rate}/s capacity {capacity} over {t:.2} s: the backend was called \
         {called} times ({} + {} answered 200), limit {limit:.0}",
        c.ok[0][0], c.ok[1][0]
    );
    assert_eq!(called as u64, c.ok[0][0] + c.ok[1][0]);
    assert!(called <= limit * 1.01, "{called} > {limit:.0} + 1%");
    assert!(called >= limit * 0.9, "{called} of {limit:.0}");
    assert!(c.refused[0][0] > 0 && c.refused[1][0] > 0);
}

#[test]
fn killing_redis_mid_run_keeps_both_gateways_serving_under_their_local_limit() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let b = Backend::json("{}");
    let (rate, capacity) = (100.0, 20.0);
    let cfg = config(
        &b,
        &redis.address(),
        json!({ "max_rate": rate, "capacity": capacity, "connection_name": "shared" }),
    );
    let (g1, g2) = (start(&cfg), start(&cfg));
    let c = drive(&[&g1, &g2], 3, &[1.0, 2.5], |i| {
        if i == 1 {
            redis.kill();
        }
    });
    let t = c.secs[1];
    eprintln!(
        "with Redis ({:.2} s): {} + {} admitted; after killing it ({t:.2} s): {} + {} \
         admitted, {} + {} refused; local limit {rate}/s each",
        c.secs[0], c.ok[0][0], c.ok[1][0], c.ok[0][1], c.ok[1][1], c.refused[0][1], c.refused[1][1]
    );
    let with_redis = (c.ok[0][0] + c.ok[1][0]) as f64;
    assert!(
        with_redis <= (rate * c.secs[0] + capacity) * 1.01 + 5.0,
        "before the kill the two share one limit: {with_redis}"
    );
    for (g, gw) in [&g1, &g2].iter().enumerate() {
        let ok = c.ok[g][1] as f64;
        // Each keeps serving at its own rate (the time to notice is a failed lease: ms) and
        // never above its local limit (what it held from Redis is at most a few tokens).
        assert!(
            ok >= rate * t * 0.8,
            "gateway {g} stopped serving after Redis died: {ok} in {t:.2} s\n{}",
            gw.output()
        );
        assert!(
            ok <= rate * t + capacity + 5.0,
            "gateway {g} over its local limit: {ok} in {t:.2} s"
        );
        let out = gw.output();
        assert_eq!(
            out.matches("lease failed").count(),
            1,
            "one warning per limit, not one per retry:\n{out}"
        );
    }
    let after = (c.ok[0][1] + c.ok[1][1]) as f64;
    assert!(
        after > rate * t * 1.5,
        "the fallback is the per-process limit: {after} in {t:.2} s"
    );
}

#[test]
fn with_on_failure_deny_the_endpoint_answers_503_while_redis_is_down() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let b = Backend::json("{}");
    // A limit requests never reach: every 503 below is the fail-closed answer.
    let cfg = config(
        &b,
        &redis.address(),
        json!({ "max_rate": 1000, "connection_name": "shared", "on_failure": "deny" }),
    );
    let g = start(&cfg);
    let mut c = Conn::open(g.addr()).unwrap();
    let mut status = || c.send("GET", "/limited", &[], b"").unwrap().status;
    for _ in 0..20 {
        assert_eq!(status(), 200);
    }
    redis.kill();
    // The tokens already leased are spent first; the next lease fails and the limit closes.
    assert!(
        wait_until(Duration::from_secs(3), || status() == 503),
        "still admitting with Redis down\n{}",
        g.output()
    );
    for _ in 0..20 {
        assert_eq!(status(), 503);
        thread::sleep(Duration::from_millis(10));
    }
    redis.restart();
    // Reconnection is in the background, with a backoff of at most 2 s.
    assert!(
        wait_until(Duration::from_secs(5), || status() == 200),
        "not admitting again after Redis came back\n{}",
        g.output()
    );
}

#[test]
fn a_limit_naming_an_unknown_connection_is_refused_at_startup() {
    let b = Backend::json("{}");
    let cfg = config(
        &b,
        "127.0.0.1:6379",
        json!({ "max_rate": 10, "connection_name": "nope" }),
    );
    let err = Gateway::try_start_with(&cfg.to_string(), &[], &[])
        .err()
        .expect("the gateway must refuse the config");
    let want = "qos/ratelimit/router: connection_name \"nope\" is not declared in \
                redis.connection_pools (declared: shared)";
    assert!(err.contains(want), "{err}");
    let (code, _, stderr) = check(&cfg.to_string());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(want), "{stderr}");
}

#[test]
fn proxy_check_accepts_a_cluster_limit_without_connecting_to_redis() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let b = Backend::json("{}");
    let cfg = config(
        &b,
        &address,
        json!({ "max_rate": 10, "connection_name": "shared" }),
    );
    let (code, stdout, stderr) = check(&cfg.to_string());
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("Syntax OK!"), "{stdout}");
    assert!(!stdout.contains("Not implemented"), "{stdout}");
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "proxy check connected to Redis");
}

/// The ids of Redis connections named `proxy-feeder` (one per running feeder).
fn feeders(redis: &RedisServer) -> Vec<String> {
    let mut c = Client::connect(&ConnectOptions::new(redis.address())).unwrap();
    match c.command(&[b"CLIENT", b"LIST"]).unwrap() {
        Reply::Bulk(Some(list)) => String::from_utf8_lossy(&list)
            .lines()
            .filter(|l| l.contains(" name=proxy-feeder "))
            .filter_map(|l| l.split(' ').next().map(str::to_string))
            .collect(),
        other => panic!("CLIENT LIST: {other:?}"),
    }
}

#[test]
fn a_reload_keeps_replaces_or_stops_the_feeder_with_its_limit() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let b = Backend::json("{}");
    let limit = json!({ "max_rate": 50, "connection_name": "shared" });
    let cfg = config(&b, &redis.address(), limit.clone());
    let g = start(&cfg);
    let first = feeders(&redis);
    assert_eq!(first.len(), 1, "one feeder per cluster-wide limit");

    g.reload(&cfg.to_string());
    assert!(wait_until(Duration::from_secs(3), || g
        .output()
        .contains("reloaded")));
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        feeders(&redis),
        first,
        "an unchanged limit keeps its feeder"
    );

    let mut changed = limit.clone();
    changed["capacity"] = json!(5);
    g.reload(&config(&b, &redis.address(), changed).to_string());
    assert!(
        wait_until(Duration::from_secs(3), || {
            let now = feeders(&redis);
            now.len() == 1 && now != first
        }),
        "a changed limit gets a new feeder and the old one stops\n{}",
        g.output()
    );

    let mut local = limit;
    local.as_object_mut().unwrap().remove("connection_name");
    g.reload(&config(&b, &redis.address(), local).to_string());
    assert!(
        wait_until(Duration::from_secs(3), || feeders(&redis).is_empty()),
        "a limit no plan uses stops its feeder\n{}",
        g.output()
    );
}
