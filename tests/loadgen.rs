//! The open-loop load generator (`examples/loadgen.rs`) as a black box: run the built example
//! against fixture backends and check what its JSON line reports. `cargo test` builds the
//! example only as its own unit-test harness (`test = true` in Cargo.toml), so the first test
//! that needs the binary builds it with `cargo build --example loadgen` (the same profile).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `target/<profile>/examples/loadgen`, next to this test's `target/<profile>/deps/`, built
/// once per test run (cargo's own freshness check makes that a no-op when it is up to date).
fn loadgen_exe() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let me = std::env::current_exe().expect("test exe path");
            let profile_dir = me
                .parent()
                .and_then(|deps| deps.parent())
                .expect("target/<profile>/deps");
            let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cmd.args(["build", "--quiet", "--example", "loadgen"])
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            match profile_dir.file_name().and_then(|n| n.to_str()) {
                Some("debug") | None => {}
                Some("release") => {
                    cmd.arg("--release");
                }
                Some(other) => {
                    cmd.args(["--profile", other]);
                }
            }
            let status = cmd.status().expect("run cargo build --example loadgen");
            assert!(status.success(), "cargo build --example loadgen failed");
            let exe = profile_dir.join("examples").join("loadgen");
            assert!(exe.exists(), "{} missing after the build", exe.display());
            exe
        })
        .clone()
}

/// The usual arguments: `conns` connections at `rate` req/s for `duration` s, no warm-up.
fn paced<'a>(conns: &'a str, rate: &'a str, duration: &'a str) -> [&'a str; 8] {
    [
        "--conns",
        conns,
        "--rate",
        rate,
        "--duration",
        duration,
        "--warmup",
        "0",
    ]
}

/// Run loadgen against `url` with `args`; its JSON report and how long it took. Fails the test
/// when it runs past `limit` (it must end by itself, whatever the server does).
fn run(url: &str, args: &[&str], limit: Duration) -> (Value, Duration) {
    // Built (once) before the clock starts: a rebuild of the library is not loadgen's time.
    let exe = loadgen_exe();
    let start = Instant::now();
    let mut child = Command::new(exe)
        .arg("--url")
        .arg(url)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn loadgen");
    loop {
        if child.try_wait().expect("wait loadgen").is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("loadgen still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = start.elapsed();
    let out = child.wait_with_output().expect("loadgen output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "loadgen failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line expected: {stdout}");
    (serde_json::from_str(lines[0]).expect("JSON report"), took)
}

fn num(report: &Value, key: &str) -> f64 {
    report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {report}"))
}

fn url(b: &Backend) -> String {
    format!("{}/x", b.url())
}

#[test]
fn the_reported_latency_includes_the_backend_delay_and_not_much_more() {
    let b = Backend::start(|_| Reply::json(r#"{"a":1}"#).delay(Duration::from_millis(15)));
    // 8 connections at 40/s: each has 200 ms between its requests, far more than the delay.
    let (r, _) = run(
        &url(&b),
        &[
            "--conns",
            "8",
            "--rate",
            "40",
            "--duration",
            "1",
            "--warmup",
            "0.2",
        ],
        Duration::from_secs(10),
    );
    assert_eq!(num(&r, "requests"), 40.0, "{r}");
    assert_eq!(num(&r, "errors"), 0.0, "{r}");
    let p50 = num(&r, "p50_us");
    assert!(p50 >= 15_000.0, "p50 below the 15 ms delay: {r}");
    assert!(p50 < 40_000.0, "p50 far above the 15 ms delay: {r}");
    assert!(
        num(&r, "p99_us") >= p50 && num(&r, "max_us") >= num(&r, "p99_us"),
        "{r}"
    );
}

#[test]
fn a_fast_backend_gets_the_requested_rate() {
    let b = Backend::json(r#"{"ok":true}"#);
    let (r, took) = run(
        &url(&b),
        &[
            "--conns",
            "8",
            "--rate",
            "1000",
            "--duration",
            "1.5",
            "--warmup",
            "0.3",
        ],
        Duration::from_secs(15),
    );
    assert_eq!(num(&r, "errors"), 0.0, "{r}");
    assert_eq!(num(&r, "non2xx"), 0.0, "{r}");
    assert_eq!(num(&r, "requests"), 1500.0, "{r}");
    let rps = num(&r, "achieved_rps");
    assert!(
        (900.0..=1010.0).contains(&rps),
        "achieved {rps} of 1000/s: {r}"
    );
    // The warm-up is sent too (not recorded): the backend saw both.
    assert!(
        b.requests().len() >= 1800,
        "{} requests",
        b.requests().len()
    );
    assert!(took >= Duration::from_millis(1800), "ran {took:?}");
    // 8 keep-alive connections, no more.
    assert_eq!(b.connections_accepted(), 8);
}

#[test]
fn non_2xx_answers_are_counted_apart_from_errors() {
    let b = Backend::start(|_| Reply::status(500).body("boom"));
    let (r, _) = run(&url(&b), &paced("4", "200", "0.5"), Duration::from_secs(10));
    assert_eq!(num(&r, "requests"), 100.0, "{r}");
    assert_eq!(num(&r, "non2xx"), 100.0, "{r}");
    assert_eq!(num(&r, "errors"), 0.0, "{r}");
}

#[test]
fn chunked_and_connection_close_answers_are_read_whole_without_errors() {
    // Chunked bodies, and a server that closes after each answer but says so: every request
    // is answered, on a new connection each time.
    let b = Backend::start(|_| {
        Reply::json(r#"{"chunked":"yes"}"#)
            .chunked()
            .close_with_header()
    });
    let (r, _) = run(&url(&b), &paced("2", "100", "0.5"), Duration::from_secs(10));
    assert_eq!(num(&r, "requests"), 50.0, "{r}");
    assert_eq!(num(&r, "errors"), 0.0, "{r}");
    assert!(
        b.connections_accepted() >= 50,
        "{}",
        b.connections_accepted()
    );
}

#[test]
fn a_backend_that_closes_silently_is_reconnected_and_counted_as_errors() {
    // The close after each answer is not announced: the next request on that connection
    // fails, and the one after it goes over a new connection.
    let b = Backend::start(|_| Reply::json("{}").close());
    let (r, _) = run(&url(&b), &paced("2", "100", "1"), Duration::from_secs(10));
    let (ok, errors) = (num(&r, "requests"), num(&r, "errors"));
    assert!(ok >= 30.0, "{r}");
    assert!(errors >= 1.0, "{r}");
    assert_eq!(ok + errors, 100.0, "every request answered or failed: {r}");
    assert!(
        b.connections_accepted() >= 30,
        "{}",
        b.connections_accepted()
    );
}

#[test]
fn a_backend_that_resets_every_connection_makes_every_request_an_error() {
    let b = Backend::start(|_| Reply::reset());
    let (r, took) = run(&url(&b), &paced("2", "100", "0.5"), Duration::from_secs(10));
    assert_eq!(num(&r, "requests"), 0.0, "{r}");
    assert_eq!(num(&r, "errors"), 50.0, "{r}");
    assert!(r["p50_us"].is_null(), "no latency without answers: {r}");
    assert!(
        b.connections_accepted() >= 40,
        "{}",
        b.connections_accepted()
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn a_stalled_backend_does_not_hang_the_run_and_its_requests_time_out() {
    let b = Backend::start(|_| Reply::stall());
    let (r, took) = run(
        &url(&b),
        &[
            "--conns",
            "4",
            "--rate",
            "40",
            "--duration",
            "0.5",
            "--warmup",
            "0",
            "--drain",
            "0.5",
        ],
        Duration::from_secs(10),
    );
    assert_eq!(num(&r, "requests"), 0.0, "{r}");
    assert_eq!(num(&r, "errors"), 20.0, "{r}");
    assert_eq!(num(&r, "timeouts"), 20.0, "{r}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn a_slow_server_shows_queueing_from_the_schedule_not_from_the_send() {
    // One connection, a request due every 20 ms, each answered after 100 ms: requests queue
    // up on the connection. Latency counted from the send (coordinated omission) would stay
    // near 100 ms; counted from the schedule it grows by 80 ms per request.
    let b = Backend::start(|_| Reply::json("{}").delay(Duration::from_millis(100)));
    let (r, _) = run(
        &url(&b),
        &[
            "--conns",
            "1",
            "--rate",
            "50",
            "--duration",
            "0.5",
            "--warmup",
            "0",
            "--drain",
            "3",
        ],
        Duration::from_secs(15),
    );
    assert_eq!(num(&r, "requests"), 25.0, "{r}");
    assert_eq!(num(&r, "errors"), 0.0, "{r}");
    // Request i completes near (i + 1) * 100 ms after t0, scheduled at i * 20 ms.
    assert!(num(&r, "p50_us") > 800_000.0, "{r}");
    assert!(num(&r, "max_us") > 1_900_000.0, "{r}");
    assert!(num(&r, "achieved_rps") < 15.0, "{r}");
}

#[test]
fn bad_arguments_are_refused() {
    for args in [
        vec!["--url", "https://127.0.0.1:1/", "--rate", "10"],
        vec!["--url", "http://127.0.0.1:1/", "--rate", "0"],
        vec![
            "--url",
            "http://127.0.0.1:1/",
            "--rate",
            "10",
            "--conns",
            "0",
        ],
    ] {
        let out = Command::new(loadgen_exe()).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // Nothing listens: a clear failure, not a report.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(loadgen_exe())
        .args([
            "--url",
            &format!("http://127.0.0.1:{port}/"),
            "--rate",
            "10",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("connect"));
}

#[test]
fn a_coarse_send_grid_shows_up_as_sender_delay_and_in_the_latency() {
    // Sending only every 100 ms: requests scheduled evenly in between leave up to 100 ms late,
    // and their latency still counts from their own schedule.
    let b = Backend::json("{}");
    let (r, _) = run(
        &url(&b),
        &[
            "--conns",
            "4",
            "--rate",
            "100",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--batch-us",
            "100000",
        ],
        Duration::from_secs(10),
    );
    assert_eq!(num(&r, "requests"), 100.0, "{r}");
    let send_p50 = num(&r, "send_p50_us");
    assert!((30_000.0..=70_000.0).contains(&send_p50), "{r}");
    // Due 10 ms after a grid point: sent 90 ms late.
    assert!(num(&r, "send_p99_us") > 80_000.0, "{r}");
    assert!(num(&r, "p50_us") >= send_p50, "{r}");
}
