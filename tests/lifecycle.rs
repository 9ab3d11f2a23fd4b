//! The process over time: SIGHUP reload (beyond KrakenD, which has none), SIGTERM drain,
//! refusing unsupported modules loudly, and `proxy check` diagnostics and exit codes.
// A test crate: its helpers (not only #[test] fns) index JSON configs and fail loudly.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod common;

use common::config::{backend, endpoint, service};
use common::gateway::run_cli;
use common::*;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn config_with(b: &Backend, paths: &[&str]) -> String {
    service(
        paths
            .iter()
            .map(|p| endpoint(p, "GET", vec![backend(&b.url(), p)]))
            .collect(),
    )
    .to_string()
}

#[test]
fn sighup_reload_adds_an_endpoint_with_no_failed_request_during_the_swap() {
    let b = Backend::json(r#"{"ok":true}"#);
    let g = Gateway::start(&config_with(&b, &["/a"]));
    assert_eq!(get(&g.url("/b")).status, 404);

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let url = g.url("/a");
    let looper = {
        let (stop, failures, done) = (Arc::clone(&stop), Arc::clone(&failures), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut conn = Conn::open(common::client::split_url(&url).0).ok();
            while !stop.load(Ordering::SeqCst) {
                // Alternate a kept-alive connection and fresh ones: both must survive a swap.
                let ok = match conn.as_mut() {
                    Some(c) if done.load(Ordering::SeqCst) % 2 == 0 => {
                        c.send("GET", "/a", &[], b"").map(|r| r.status == 200)
                    }
                    _ => try_request("GET", &url, &[], b"").map(|r| r.status == 200),
                };
                if !ok.unwrap_or(false) {
                    failures.fetch_add(1, Ordering::SeqCst);
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    g.reload(&config_with(&b, &["/a", "/b"]));
    let appeared = wait_until(Duration::from_secs(5), || get(&g.url("/b")).status == 200);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    looper.join().unwrap();
    assert!(appeared, "the new endpoint never appeared\n{}", g.output());
    assert!(
        done.load(Ordering::SeqCst) > 5,
        "the client loop barely ran"
    );
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "requests failed during the reload\n{}",
        g.output()
    );
    assert_eq!(get(&g.url("/b")).json(), json!({"ok": true}));
}

#[test]
fn reload_can_remove_an_endpoint() {
    let b = Backend::json(r#"{"ok":true}"#);
    let g = Gateway::start(&config_with(&b, &["/a", "/b"]));
    assert_eq!(get(&g.url("/b")).status, 200);
    g.reload(&config_with(&b, &["/a"]));
    assert!(
        wait_until(Duration::from_secs(5), || get(&g.url("/b")).status == 404),
        "{}",
        g.output()
    );
    assert_eq!(get(&g.url("/a")).status, 200);
}

#[test]
fn broken_config_on_sighup_is_rejected_and_the_old_one_keeps_serving() {
    let b = Backend::json(r#"{"ok":true}"#);
    let mut g = Gateway::start(&config_with(&b, &["/a"]));
    g.reload("{ this is not json");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        g.try_exit_status().is_none(),
        "the gateway died on a broken reload\n{}",
        g.output()
    );
    assert_eq!(get(&g.url("/a")).status, 200);
    // A config that parses but is invalid (no backends) is refused too.
    g.reload(&json!({"version": 3, "endpoints": [{"endpoint": "/c", "backend": []}]}).to_string());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(get(&g.url("/a")).status, 200);
    assert_eq!(get(&g.url("/c")).status, 404);
    // And a good config afterwards is still taken.
    g.reload(&config_with(&b, &["/a", "/d"]));
    assert!(
        wait_until(Duration::from_secs(5), || get(&g.url("/d")).status == 200),
        "{}",
        g.output()
    );
}

#[test]
fn sigterm_exits_0_after_an_in_flight_slow_request_completes() {
    let b = Backend::start(|_| Reply::json(r#"{"slow":true}"#).delay(Duration::from_millis(1000)));
    let mut cfg = service(vec![endpoint(
        "/slow",
        "GET",
        vec![backend(&b.url(), "/slow")],
    )]);
    cfg["timeout"] = json!("5s");
    let mut g = Gateway::start(&cfg.to_string());
    let url = g.url("/slow");
    let client = std::thread::spawn(move || try_request("GET", &url, &[], b""));
    assert!(
        wait_until(Duration::from_secs(3), || !b.requests().is_empty()),
        "request never reached the backend"
    );
    let t = Instant::now();
    g.signal(libc::SIGTERM);
    let r = client
        .join()
        .unwrap()
        .expect("the in-flight request was cut");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"slow": true}));
    let status = g
        .wait_exit(Duration::from_secs(5))
        .expect("no exit after SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", g.output());
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "exited before the request finished"
    );
}

#[test]
fn sigterm_on_an_idle_gateway_exits_0_promptly() {
    let b = Backend::json("{}");
    let mut g = Gateway::start(&config_with(&b, &["/a"]));
    let t = Instant::now();
    let status = g.stop();
    assert_eq!(status.code(), Some(0), "{}", g.output());
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_validator_whose_jwk_local_ca_cannot_be_read_is_refused_at_startup_never_served_open() {
    let b = Backend::json(r#"{"ok":true}"#);
    let mut secure = endpoint("/secure", "GET", vec![backend(&b.url(), "/secure")]);
    secure["extra_config"] = json!({"auth/validator": {"alg": "RS256",
        "jwk_url": "https://example.test/jwks.json", "jwk_local_ca": "/nonexistent/ca.pem"}});
    let cfg = service(vec![
        secure,
        endpoint("/open", "GET", vec![backend(&b.url(), "/open")]),
    ]);
    let err = Gateway::try_start_with(&cfg.to_string(), &[], &[])
        .err()
        .expect("run must refuse the config");
    assert!(err.contains("jwk_local_ca"), "{err}");
    assert!(b.requests().is_empty());
}

#[test]
fn a_service_level_namespace_not_built_makes_every_endpoint_fail_closed_with_501() {
    let b = Backend::json(r#"{"ok":true}"#);
    let mut cfg = service(vec![endpoint(
        "/open",
        "GET",
        vec![backend(&b.url(), "/open")],
    )]);
    cfg["extra_config"] = json!({"plugin/http-server": {"name": ["x"]}});
    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/open"));
    assert_eq!(r.status, 501);
    assert!(r.json().to_string().contains("plugin/http-server"));
    assert!(
        b.requests().is_empty(),
        "an unguarded call reached the backend"
    );
    assert_eq!(get(&g.url("/__health")).status, 200);
}

/// A config with two independent errors, pretty-printed so each sits on its own lines:
/// endpoint 0 (lines 4-7) has no backend, endpoint 1 (lines 8-16) uses an undefined param.
const TWO_ERRORS: &str = r#"{
  "version": 3,
  "endpoints": [
    {
      "endpoint": "/no-backend",
      "backend": []
    },
    {
      "endpoint": "/bad-param",
      "backend": [
        {
          "host": ["http://127.0.0.1:1"],
          "url_pattern": "/x/{nope}"
        }
      ]
    }
  ]
}
"#;

/// Diagnostic lines `FILE:LINE:COL: $.path: reason` for `file`: (line, col, rest).
fn diagnostics(out: &str, file: &str) -> Vec<(u32, u32, String)> {
    out.lines()
        .filter_map(|l| l.strip_prefix(file)?.strip_prefix(':').map(str::to_string))
        .filter_map(|rest| {
            let mut parts = rest.splitn(3, ':');
            let line = parts.next()?.parse().ok()?;
            let col = parts.next()?.parse().ok()?;
            Some((line, col, parts.next()?.trim().to_string()))
        })
        .collect()
}

#[test]
fn check_lists_several_errors_at_once_with_file_line_col_and_exits_1() {
    let out = check_file(TWO_ERRORS, &[]);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.code, 1, "{all}");
    let diags = diagnostics(&all, out.path.to_str().unwrap());
    let first = diags.iter().find(|d| d.2.starts_with("$.endpoints[0]"));
    let second = diags.iter().find(|d| d.2.starts_with("$.endpoints[1]"));
    let (Some(first), Some(second)) = (first, second) else {
        panic!("want diagnostics for both endpoints, got:\n{all}");
    };
    assert!(
        (4..=7).contains(&first.0),
        "endpoint 0 error on line {}: {all}",
        first.0
    );
    assert!(
        (8..=16).contains(&second.0),
        "endpoint 1 error on line {}: {all}",
        second.0
    );
    assert!(first.1 >= 1 && second.1 >= 1);
    assert!(
        second.2.contains("nope"),
        "the undefined param is not named: {all}"
    );
}

#[test]
fn check_exits_0_on_a_good_file() {
    let b = Backend::json("{}");
    let (code, stdout, stderr) = check(&config_with(&b, &["/a", "/b/{id}"]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}

#[test]
fn check_warns_on_an_unknown_key_with_a_suggestion() {
    let cfg = r#"{
  "version": 3,
  "timout": "3s",
  "@comment": "keys starting with @ are comments",
  "endpoints": []
}
"#;
    let out = check_file(cfg, &[]);
    let all = format!("{}{}", out.stdout, out.stderr);
    // KrakenD: unknown keys are ignored at run time, so this is a warning, not an error.
    assert_eq!(out.code, 0, "{all}");
    let diags = diagnostics(&all, out.path.to_str().unwrap());
    let warn = diags
        .iter()
        .find(|d| d.2.contains("timout"))
        .unwrap_or_else(|| panic!("no diagnostic for the unknown key:\n{all}"));
    assert_eq!(warn.0, 3, "{all}");
    assert!(warn.2.contains("warning"), "{all}");
    assert!(
        warn.2.contains("\"timeout\"")
            || warn.2.contains("`timeout`")
            || warn.2.contains(" timeout"),
        "{all}"
    );
    assert!(
        !all.contains("@comment"),
        "a comment key was reported: {all}"
    );
}

#[test]
fn check_with_a_usage_error_exits_2() {
    let (code, stdout, stderr) = run_cli(&["check", "--no-such-flag"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
}

#[test]
fn check_of_a_missing_file_exits_1() {
    let (code, stdout, stderr) = run_cli(&["check", "-c", "/nonexistent/dir/krakend.json"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
}

#[test]
fn run_refuses_an_invalid_config_and_says_why() {
    let err = Gateway::try_start_with(TWO_ERRORS, &[], &[])
        .err()
        .expect("the gateway started with a broken config");
    assert!(err.contains("$.endpoints[0]"), "{err}");
}

#[test]
fn a_second_instance_on_a_port_in_use_exits_3_and_the_first_keeps_all_the_traffic() {
    let b = Backend::json(r#"{"ok":true}"#);
    let first = Gateway::start(&config_with(&b, &["/a"]));
    let port = first.addr().port().to_string();
    // SO_REUSEPORT would let the second one join and take part of the connections.
    let mut second = std::process::Command::new(common::gateway::binary())
        .args(["run", "-c"])
        .arg(first.config_path())
        .args(["--cores", "1", "-p", &port])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = second.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            panic!("the second instance is still running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.contains("already in use"), "{err}");
    for _ in 0..20 {
        assert_eq!(get(&first.url("/a")).status, 200);
    }
}
