//! `telemetry/metrics`: KrakenD's extended metrics on `GET /__stats` of their own listener.
//! Known requests to several endpoints and backends with known statuses, on two cores, and the
//! JSON read back: counters and histogram counts equal what was sent, under krakend-metrics'
//! key names; `collection_time` moves connections into their totals and restarts histograms;
//! the `*_disabled` toggles remove their layer; a bad `listen_address` stops the start.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::backend::{Backend, Reply};
use common::client;
use common::config::{backend, endpoint, service};
use common::gateway::Gateway;
use serde_json::{json, Value};
use std::time::Duration;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

const OK_BODY: &str = r#"{"id":7,"name":"seven"}"#;

/// `/ok*` answers 200 with a small object, `/fail` 500.
fn backend_server() -> Backend {
    Backend::start(|r| {
        if r.path.starts_with("/ok") {
            Reply::json(OK_BODY)
        } else {
            Reply::status(500)
        }
    })
}

/// `/a` calls `/ok`; `/b/{id}` calls `/ok/{id}` and `/fail`; `/c` calls `/fail`.
fn config(b: &Backend, stats: Value) -> Value {
    let mut cfg = service(vec![
        endpoint("/a", "GET", vec![backend(&b.url(), "/ok")]),
        endpoint(
            "/b/{id}",
            "GET",
            vec![backend(&b.url(), "/ok/{id}"), backend(&b.url(), "/fail")],
        ),
        endpoint("/c", "GET", vec![backend(&b.url(), "/fail")]),
    ]);
    cfg["extra_config"] = json!({ "telemetry/metrics": stats });
    cfg
}

/// Two cores, so the page merges two copies.
fn start(cfg: &Value) -> Gateway {
    let path = common::gateway::temp_config_path();
    std::fs::write(&path, cfg.to_string()).unwrap();
    let mut cmd = std::process::Command::new(common::gateway::binary());
    cmd.arg("run")
        .arg("-c")
        .arg(&path)
        .args(["--cores", "2", "-p", "0"]);
    Gateway::spawn(cmd, path).unwrap()
}

fn stats(port: u16) -> serde_json::Map<String, Value> {
    let r = client::get(&format!("http://127.0.0.1:{port}/__stats"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    match r.json() {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn int(m: &serde_json::Map<String, Value>, key: &str) -> u64 {
    m.get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no integer {key:?} in {:#?}", keys_like(m, "krakend.")))
}

fn float(m: &serde_json::Map<String, Value>, key: &str) -> f64 {
    m.get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number {key:?}"))
}

fn keys_like<'a>(m: &'a serde_json::Map<String, Value>, part: &str) -> Vec<&'a String> {
    m.keys().filter(|k| k.contains(part)).collect()
}

/// Send the known traffic: 3 × `/a` (200), 2 × `/b/…` (200, one backend failing),
/// 1 × `/c` (500), 1 × an unknown path (404, no endpoint), each on its own connection.
fn send_traffic(g: &Gateway) {
    for _ in 0..3 {
        assert_eq!(client::get(&g.url("/a")).status, 200);
    }
    for id in ["1", "2"] {
        assert_eq!(client::get(&g.url(&format!("/b/{id}"))).status, 200);
    }
    assert_eq!(client::get(&g.url("/c")).status, 500);
    assert_eq!(client::get(&g.url("/nowhere")).status, 404);
}

#[test]
fn stats_count_each_endpoints_statuses_and_each_layers_calls_as_sent() {
    let b = backend_server();
    let port = free_port();
    let cfg = config(&b, json!({"listen_address": format!("127.0.0.1:{port}")}));
    let g = start(&cfg);
    send_traffic(&g);
    let m = stats(port);
    let r = "krakend.router.response.";
    assert_eq!(int(&m, &format!("{r}/a.status.200.count")), 3);
    assert_eq!(int(&m, &format!("{r}/b/{{id}}.status.200.count")), 2);
    assert_eq!(int(&m, &format!("{r}/c.status.500.count")), 1);
    assert!(keys_like(&m, "/nowhere").is_empty());
    // Histograms count every answer; `/a`'s size is its body, every time.
    assert_eq!(int(&m, &format!("{r}/a.time.count")), 3);
    assert_eq!(int(&m, &format!("{r}/a.size.count")), 3);
    let size = client::get(&g.url("/a")).body.len() as f64;
    assert_eq!(float(&m, &format!("{r}/a.size.min")), size);
    assert_eq!(float(&m, &format!("{r}/a.size.max")), size);
    assert_eq!(float(&m, &format!("{r}/a.size.50-percentile")), size);
    assert!(float(&m, &format!("{r}/a.time.max")) > 0.0);
    // KrakenD registers every key up front: the ones never hit read 0.
    assert_eq!(int(&m, &format!("{r}/a.status")), 0);
    let p = "krakend.proxy.";
    assert_eq!(
        int(
            &m,
            &format!("{p}requests.layer.pipe.name./a.complete.true.error.false")
        ),
        3
    );
    assert_eq!(
        int(
            &m,
            &format!("{p}latency.layer.pipe.name./a.complete.true.error.false.count")
        ),
        3
    );
    assert_eq!(
        int(
            &m,
            &format!("{p}requests.layer.pipe.name./a.complete.false.error.true")
        ),
        0
    );
    // Backends are named by lura's url_pattern template; `/fail` serves two endpoints.
    let be = |name: &str, c: bool, e: bool| {
        int(
            &m,
            &format!("{p}requests.layer.backend.name.{name}.complete.{c}.error.{e}"),
        )
    };
    assert_eq!(be("/ok", true, false), 3);
    assert_eq!(be("/ok/{{.Id}}", true, false), 2);
    assert_eq!(be("/fail", false, true), 3);
    assert_eq!(be("/fail", true, false), 0);
    assert_eq!(
        int(
            &m,
            &format!("{p}latency.layer.backend.name./fail.complete.false.error.true.count")
        ),
        3
    );
    // One connection per endpoint request, none yet moved into the totals (60 s window).
    assert_eq!(int(&m, "krakend.router.connected"), 6);
    assert_eq!(int(&m, "krakend.router.disconnected"), 6);
    assert_eq!(int(&m, "krakend.router.connected-total"), 0);
    assert!(m["cmdline"].is_array());
    assert!(float(&m, "proxy.process.resident_memory_bytes") > 0.0);
}

#[test]
fn collection_time_moves_connections_into_totals_and_restarts_histograms() {
    let b = backend_server();
    let port = free_port();
    let cfg = config(
        &b,
        json!({"listen_address": format!("127.0.0.1:{port}"), "collection_time": "200ms"}),
    );
    let g = start(&cfg);
    for _ in 0..2 {
        assert_eq!(client::get(&g.url("/a")).status, 200);
    }
    // Two ticks at least: the first moves the requests into the totals, then a window with
    // none.
    std::thread::sleep(Duration::from_millis(700));
    let m = stats(port);
    assert_eq!(int(&m, "krakend.router.connected-total"), 2);
    assert_eq!(int(&m, "krakend.router.disconnected-total"), 2);
    assert_eq!(int(&m, "krakend.router.connected"), 0);
    assert_eq!(int(&m, "krakend.router.connected-gauge"), 0);
    // Counters keep counting; histograms hold only the current window.
    let r = "krakend.router.response./a";
    assert_eq!(int(&m, &format!("{r}.status.200.count")), 2);
    assert_eq!(int(&m, &format!("{r}.time.count")), 0);
    assert_eq!(float(&m, &format!("{r}.time.max")), 0.0);
    let pipe = "layer.pipe.name./a.complete.true.error.false";
    assert_eq!(int(&m, &format!("krakend.proxy.requests.{pipe}")), 2);
    assert_eq!(int(&m, &format!("krakend.proxy.latency.{pipe}.count")), 0);
    // A request in the new window is its histogram's only value.
    assert_eq!(client::get(&g.url("/a")).status, 200);
    let m = stats(port);
    assert!(int(&m, &format!("{r}.time.count")) <= 1);
    assert_eq!(int(&m, &format!("{r}.status.200.count")), 3);
}

#[test]
fn router_and_backend_disabled_remove_their_keys_and_keep_the_pipe() {
    let b = backend_server();
    let port = free_port();
    let cfg = config(
        &b,
        json!({"listen_address": format!("127.0.0.1:{port}"),
               "router_disabled": true, "backend_disabled": true}),
    );
    let g = start(&cfg);
    send_traffic(&g);
    let m = stats(port);
    assert!(keys_like(&m, "krakend.router.response").is_empty());
    assert!(keys_like(&m, "layer.backend").is_empty());
    // KrakenD: the router's connection counters are registered even when disabled.
    assert_eq!(int(&m, "krakend.router.connected"), 0);
    assert_eq!(
        int(
            &m,
            "krakend.proxy.requests.layer.pipe.name./a.complete.true.error.false"
        ),
        3
    );
}

#[test]
fn proxy_disabled_removes_the_pipe_and_keeps_router_and_backends() {
    let b = backend_server();
    let port = free_port();
    let cfg = config(
        &b,
        json!({"listen_address": format!("127.0.0.1:{port}"), "proxy_disabled": true}),
    );
    let g = start(&cfg);
    send_traffic(&g);
    let m = stats(port);
    assert!(keys_like(&m, "layer.pipe").is_empty());
    assert_eq!(int(&m, "krakend.router.response./a.status.200.count"), 3);
    assert_eq!(
        int(
            &m,
            "krakend.proxy.requests.layer.backend.name./ok.complete.true.error.false"
        ),
        3
    );
}

#[test]
fn the_stats_listener_serves_only_get_stats_as_gin_routes_it() {
    let b = backend_server();
    let port = free_port();
    let g = start(&config(
        &b,
        json!({"listen_address": format!("127.0.0.1:{port}")}),
    ));
    let base = format!("http://127.0.0.1:{port}");
    let r = client::get(&format!("{base}/__stats/"));
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/__stats"));
    let r = client::request("POST", &format!("{base}/__stats"), &[], b"");
    assert_eq!(r.status, 405);
    assert_eq!(client::get(&format!("{base}/metrics")).status, 404);
    // The gateway's own port does not serve it.
    assert_eq!(client::get(&g.url("/__stats")).status, 404);
}

#[test]
fn a_bad_or_taken_listen_address_stops_the_start() {
    let b = backend_server();
    let err = Gateway::try_start_with(
        &config(&b, json!({"listen_address": "no-port"})).to_string(),
        &[],
        &[],
    )
    .err()
    .expect("started with listen_address \"no-port\"");
    assert!(err.contains("listen_address"), "{err}");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = Gateway::try_start_with(
        &config(&b, json!({ "listen_address": addr })).to_string(),
        &[],
        &[],
    )
    .err()
    .expect("started on a taken port");
    assert!(err.contains("telemetry/metrics: cannot listen on"), "{err}");
}

#[test]
fn endpoint_disabled_serves_nothing_and_the_gateway_runs() {
    let b = backend_server();
    let port = free_port();
    let g = start(&config(
        &b,
        json!({"listen_address": format!("127.0.0.1:{port}"), "endpoint_disabled": true}),
    ));
    assert_eq!(client::get(&g.url("/a")).status, 200);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
