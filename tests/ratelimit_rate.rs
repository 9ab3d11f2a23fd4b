//! Rate limits hold per process on a thread-per-core gateway: the admitted rate against the
//! configured one at 1 and 2 cores, with traffic on one connection (one core) or spread over
//! many (SO_REUSEPORT spreads them over the cores); and a flood of distinct client keys keeps
//! memory bounded and a normal client unharmed (`#[ignore]`d: about a minute in debug builds;
//! run with `cargo test --release --test ratelimit_rate -- --ignored`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::config::{backend, endpoint, service};
use common::gateway::{binary, temp_config_path};
use common::{Backend, Conn, Gateway};
use serde_json::{json, Value};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

fn start(cfg: &Value, cores: usize) -> Gateway {
    let path = temp_config_path();
    std::fs::write(&path, cfg.to_string()).unwrap();
    let mut cmd = Command::new(binary());
    cmd.arg("run")
        .arg("-c")
        .arg(&path)
        .args(["--cores", &cores.to_string(), "-p", "0"]);
    Gateway::spawn(cmd, path).unwrap()
}

fn limited(b: &Backend, limit: Value) -> Value {
    let mut ep = endpoint("/limited", "GET", vec![backend(&b.url(), "/")]);
    ep["extra_config"] = json!({ "qos/ratelimit/router": limit });
    service(vec![ep])
}

/// Send as fast as `conns` keep-alive connections allow for `secs`; returns the requests
/// admitted (200) and the time between the first send and the last answer.
fn drive(g: &Gateway, conns: usize, secs: f64) -> (u64, f64) {
    let ok = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let stop_at = start + Duration::from_secs_f64(secs);
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            let (ok, addr) = (ok.clone(), g.addr());
            thread::spawn(move || {
                let mut c = Conn::open(addr).unwrap();
                while Instant::now() < stop_at {
                    let r = c.send("GET", "/limited", &[], b"").unwrap();
                    match r.status {
                        200 => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        503 => {}
                        s => panic!("unexpected status {s}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    (ok.load(Ordering::Relaxed), start.elapsed().as_secs_f64())
}

#[test]
fn admitted_rate_is_the_configured_one_within_one_percent_on_one_or_two_cores() {
    let b = Backend::json("{}");
    let (rate, capacity, secs) = (400.0, 10.0, 3.0);
    let cfg = limited(&b, json!({"max_rate": rate, "capacity": capacity}));
    let mut table = String::from("cores conns admitted expected error\n");
    let mut worst: f64 = 0.0;
    for cores in [1, 2] {
        for conns in [1, 8] {
            let g = start(&cfg, cores);
            let (ok, elapsed) = drive(&g, conns, secs);
            let expected = capacity + rate * elapsed;
            let err = (ok as f64 - expected) / (rate * elapsed);
            worst = worst.max(err.abs());
            table.push_str(&format!(
                "{cores} {conns} {ok} {expected:.0} {:+.2}%\n",
                err * 100.0
            ));
        }
    }
    eprintln!("{table}");
    assert!(worst <= 0.01, "admitted rate off by more than 1%:\n{table}");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

/// A normal client: one request every 10 ms on its own connection until `stop`; returns the
/// latencies and the statuses it saw other than 200 and 503.
fn normal_client(
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<(Vec<Duration>, Vec<u16>)> {
    thread::spawn(move || {
        let mut c = Conn::open(addr).unwrap();
        let (mut lat, mut odd) = (Vec::new(), Vec::new());
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            let s = c
                .send("GET", "/limited", &[("X-Client", "normal")], b"")
                .unwrap()
                .status;
            lat.push(t.elapsed());
            if s != 200 && s != 503 {
                odd.push(s);
            }
            thread::sleep(Duration::from_millis(10));
        }
        (lat, odd)
    })
}

#[test]
#[ignore = "about a minute in a debug build; run it with --release"]
fn a_million_client_keys_keep_memory_bounded_and_a_normal_client_unharmed() {
    let keys: u64 = std::env::var("RATELIMIT_FLOOD_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let b = Backend::json("{}");
    // Each new key passes its own limit and then meets the endpoint's (503), so the flood
    // fills the client table without loading the backend. The normal client asks 100 a
    // second within its 200: it must never see 429, whatever the flood evicts.
    let cfg = limited(
        &b,
        json!({"max_rate": 100, "client_max_rate": 200, "strategy": "header", "key": "X-Client"}),
    );
    let g = start(&cfg, 2);
    let stop = Arc::new(AtomicBool::new(false));
    let alone = normal_client(g.addr(), stop.clone());
    thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let (base_lat, base_odd) = alone.join().unwrap();
    let rss_before = rss_kib(g.pid());

    let stop = Arc::new(AtomicBool::new(false));
    let normal = normal_client(g.addr(), stop.clone());
    let started = Instant::now();
    let flooders = 4u64;
    let threads: Vec<_> = (0..flooders)
        .map(|t| {
            let addr = g.addr();
            thread::spawn(move || {
                let mut c = Conn::open(addr).unwrap();
                let mut i = t;
                let depth = 32;
                while i < keys {
                    // Pipelined batches of distinct keys.
                    let mut batch = Vec::new();
                    let mut n = 0;
                    while n < depth && i < keys {
                        let k = format!("flood-{i}");
                        batch.extend(c.encode("GET", "/limited", &[("X-Client", &k)], b""));
                        i += flooders;
                        n += 1;
                    }
                    c.write_raw(&batch).unwrap();
                    for _ in 0..n {
                        let s = c.read_response(false).unwrap().status;
                        assert!(s == 200 || s == 503, "flood status {s}");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let flood_time = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (flood_lat, flood_odd) = normal.join().unwrap();
    let rss_after = rss_kib(g.pid());
    let (base, during) = (p99(base_lat), p99(flood_lat));
    eprintln!(
        "{keys} keys in {flood_time:?} ({:.0}/s); RSS {rss_before} KiB -> {rss_after} KiB; \
         normal client p99 {base:?} alone, {during:?} during the flood",
        keys as f64 / flood_time.as_secs_f64()
    );
    assert!(
        base_odd.is_empty() && flood_odd.is_empty(),
        "{base_odd:?} {flood_odd:?}"
    );
    // The table is 1 MiB per endpoint; allow for connection buffers and allocator slack.
    assert!(
        rss_after.saturating_sub(rss_before) < 16 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    // The flood competes for the same two cores: the bound is on what the table adds, not
    // on CPU contention, so it is generous.
    assert!(
        during <= base * 10 + Duration::from_millis(20),
        "p99 {base:?} alone, {during:?} during the flood"
    );
}
