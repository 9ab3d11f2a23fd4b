//! `telemetry/opentelemetry` with the `prometheus` exporter: `GET /metrics` scraped during a
//! run and read with a real Prometheus text-format parser (Python's `prometheus_client`, as
//! `.ci/run` installs it): counts per route, status and backend equal what the test sent, one
//! series per label set with two cores serving.
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
use std::io::Write;
use std::process::{Command, Stdio};

/// A port free right now on 127.0.0.1 (for the metrics listener).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn start(cfg: &Value, cores: &str) -> Gateway {
    let path = common::gateway::temp_config_path();
    std::fs::write(&path, cfg.to_string()).unwrap();
    let mut cmd = Command::new(common::gateway::binary());
    cmd.arg("run")
        .arg("-c")
        .arg(&path)
        .args(["--cores", cores, "-p", "0"]);
    Gateway::spawn(cmd, path).unwrap()
}

/// One parsed sample.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: serde_json::Map<String, Value>,
    value: f64,
}

const PARSER: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append({"family": fam.name, "type": fam.type, "name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;

/// Parse a scrape with prometheus_client (Debian's `python3-prometheus-client` first).
fn parse(text: &str) -> Vec<Sample> {
    let python = ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import prometheus_client"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("no python3 with prometheus_client (apt-get install python3-prometheus-client)");
    let mut child = Command::new(python)
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused the scrape: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| Sample {
            name: s["name"].as_str().unwrap().to_string(),
            labels: s["labels"].as_object().unwrap().clone(),
            value: s["value"].as_f64().unwrap(),
        })
        .collect()
}

/// The samples named `name` whose labels include every pair of `want`.
fn find<'a>(samples: &'a [Sample], name: &str, want: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            want.iter()
                .all(|(k, v)| s.labels.get(*k).and_then(Value::as_str) == Some(*v))
        })
        .collect()
}

/// The single sample matching, with its value.
fn one(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    let found = find(samples, name, want);
    assert_eq!(
        found.len(),
        1,
        "expected one {name} sample with {want:?} (cores merged), got {found:#?}"
    );
    found[0].value
}

fn scrape(port: u16) -> String {
    let r = client::get(&format!("http://127.0.0.1:{port}/metrics"));
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        r.header("content-type")
    );
    r.text()
}

fn otel(port: u16, extra: Value) -> Value {
    let mut v = json!({"exporters": {"prometheus": [{"name": "local", "port": port, "listen_ip": "127.0.0.1"}]}});
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v
}

#[test]
fn scrape_counts_every_request_once_per_route_status_and_backend_across_two_cores() {
    const ITEM: &str = r#"{"id":1,"name":"widget"}"#;
    let b = Backend::start(|r| {
        if r.path.starts_with("/i/") {
            Reply::json(ITEM)
        } else {
            Reply::status(500)
        }
    });
    let port = free_port();
    let mut cfg = service(vec![
        endpoint("/items/{id}", "GET", vec![backend(&b.url(), "/i/{id}")]),
        endpoint("/fail", "GET", vec![backend(&b.url(), "/f")]),
    ]);
    cfg["extra_config"] = json!({"telemetry/opentelemetry": otel(port, json!({}))});
    let gw = start(&cfg, "2");
    // Fresh connections, so SO_REUSEPORT spreads them over both cores.
    for i in 0..20 {
        assert_eq!(client::get(&gw.url(&format!("/items/{i}"))).status, 200);
    }
    for _ in 0..3 {
        assert_eq!(client::get(&gw.url("/fail")).status, 500);
    }
    for _ in 0..2 {
        assert_eq!(client::get(&gw.url("/nowhere")).status, 404);
        assert_eq!(client::get(&gw.url("/__health")).status, 200);
    }
    let text = scrape(port);
    let s = parse(&text);

    let items = [
        ("http_route", "/items/:id"),
        ("http_request_method", "GET"),
        ("http_response_status_code", "200"),
    ];
    assert_eq!(one(&s, "http_server_duration_count", &items), 20.0);
    // The histogram's buckets hold every observation: +Inf equals the count.
    let inf = [items.as_slice(), &[("le", "+Inf")]].concat();
    assert_eq!(one(&s, "http_server_duration_bucket", &inf), 20.0);
    assert_eq!(
        find(&s, "http_server_duration_bucket", &items).len(),
        21,
        "KrakenD's 20 time buckets and +Inf"
    );
    assert_eq!(one(&s, "http_server_response_size_count", &items), 20.0);
    let body_len = r#"{"id":1,"name":"widget"}"#.len() as f64;
    assert_eq!(
        one(&s, "http_server_response_size_sum", &items),
        20.0 * body_len
    );
    let fail = [
        ("http_route", "/fail"),
        ("http_response_status_code", "500"),
    ];
    assert_eq!(one(&s, "http_server_duration_count", &fail), 3.0);
    assert_eq!(
        one(
            &s,
            "http_server_duration_count",
            &[
                ("http_route", "404 Not Found"),
                ("http_response_status_code", "404")
            ]
        ),
        2.0
    );
    // `/__health` is in the default skip_paths.
    assert!(find(
        &s,
        "http_server_duration_count",
        &[("http_route", "/__health")]
    )
    .is_empty());
    assert_eq!(
        find(&s, "http_server_duration_count", &[])
            .iter()
            .map(|s| s.value)
            .sum::<f64>(),
        25.0,
        "every request but the skipped health checks"
    );

    // The proxy stage: one series per endpoint and outcome.
    let proxy_ok = [
        ("http_route", "/items/:id"),
        ("error", "false"),
        ("complete", "true"),
    ];
    assert_eq!(one(&s, "krakend_proxy_duration_count", &proxy_ok), 20.0);
    let proxy_err = [("http_route", "/fail"), ("error", "true")];
    assert_eq!(one(&s, "krakend_proxy_duration_count", &proxy_err), 3.0);

    // The backend stage, labelled with the backend's template and its endpoint.
    let addr = b.url();
    let backend_ok = [
        ("http_route", "/i/:id"),
        ("krakend_endpoint_route", "/items/:id"),
        ("krakend_endpoint_method", "GET"),
        ("server_address", addr.as_str()),
        ("error", "false"),
        ("complete", "true"),
    ];
    assert_eq!(one(&s, "krakend_backend_duration_count", &backend_ok), 20.0);
    let backend_err = [("http_route", "/f"), ("error", "true")];
    assert_eq!(one(&s, "krakend_backend_duration_count", &backend_err), 3.0);

    // The HTTP client: one round trip per call, with the backend's status.
    let client_ok = [
        ("http_route", "/i/:id"),
        ("server_address", "127.0.0.1"),
        ("http_response_status_code", "200"),
    ];
    assert_eq!(
        one(&s, "http_client_request_started_count_total", &client_ok),
        20.0
    );
    assert_eq!(one(&s, "http_client_duration_count", &client_ok), 20.0);
    let client_500 = [("http_route", "/f"), ("http_response_status_code", "500")];
    assert_eq!(
        one(&s, "http_client_request_started_count_total", &client_500),
        3.0
    );
    assert!(find(&s, "http_client_request_failed_count_total", &[]).is_empty());

    // A second scrape sees the same counts plus what came after (never per-core halves).
    assert_eq!(client::get(&gw.url("/items/x")).status, 200);
    let s = parse(&scrape(port));
    assert_eq!(one(&s, "http_server_duration_count", &items), 21.0);
}

#[test]
fn layers_toggles_skip_paths_and_buckets_shape_the_scrape() {
    let b = Backend::json(r#"{"ok":true}"#);
    let port = free_port();
    let mut cfg = service(vec![
        endpoint("/a", "GET", vec![backend(&b.url(), "/x")]),
        endpoint("/quiet", "GET", vec![backend(&b.url(), "/x")]),
    ]);
    let layers = json!({
        "layers": {"proxy": {"disable_metrics": true},
                   "backend": {"metrics": {"disable_stage": true, "round_trip": false}}},
        "skip_paths": ["/quiet"],
        "histograms": {"time_buckets": [0.5, 1.0]},
    });
    cfg["extra_config"] = json!({"telemetry/opentelemetry": otel(port, layers)});
    let gw = start(&cfg, "1");
    for path in ["/a", "/a", "/quiet", "/__health"] {
        assert_eq!(client::get(&gw.url(path)).status, 200);
    }
    let s = parse(&scrape(port));
    assert_eq!(
        one(&s, "http_server_duration_count", &[("http_route", "/a")]),
        2.0
    );
    assert!(find(
        &s,
        "http_server_duration_count",
        &[("http_route", "/quiet")]
    )
    .is_empty());
    // skip_paths replaces the defaults: the health check is reported (gin's route is not an
    // endpoint's, so KrakenD names it "404 Not Found").
    assert_eq!(
        one(
            &s,
            "http_server_duration_count",
            &[
                ("http_route", "404 Not Found"),
                ("http_response_status_code", "200")
            ]
        ),
        1.0
    );
    assert_eq!(
        find(&s, "http_server_duration_bucket", &[("http_route", "/a")]).len(),
        3,
        "two configured buckets and +Inf"
    );
    for gone in [
        "krakend_proxy_duration_count",
        "krakend_backend_duration_count",
        "http_client_duration_count",
        "http_client_request_started_count_total",
    ] {
        assert!(find(&s, gone, &[]).is_empty(), "{gone} should be off");
    }
}

#[test]
fn process_metrics_and_a_404_for_other_paths_on_the_metrics_listener() {
    let b = Backend::json("{}");
    let port = free_port();
    let mut cfg = service(vec![endpoint("/a", "GET", vec![backend(&b.url(), "/x")])]);
    let mut o = otel(port, json!({}));
    o["exporters"]["prometheus"][0]["process_metrics"] = json!(true);
    cfg["extra_config"] = json!({"telemetry/opentelemetry": o});
    let _gw = start(&cfg, "1");
    let s = parse(&scrape(port));
    let rss = one(&s, "process_resident_memory_bytes", &[]);
    assert!(rss > 1_000_000.0, "{rss}");
    assert!(one(&s, "process_open_fds", &[]) >= 3.0);
    let r = client::get(&format!("http://127.0.0.1:{port}/other"));
    assert_eq!(r.status, 404);
}

#[test]
fn a_metrics_port_in_use_stops_the_gateway_at_startup() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let b = Backend::json("{}");
    let mut cfg = service(vec![endpoint("/a", "GET", vec![backend(&b.url(), "/x")])]);
    cfg["extra_config"] = json!({"telemetry/opentelemetry": otel(port, json!({}))});
    let path = common::gateway::temp_config_path();
    std::fs::write(&path, cfg.to_string()).unwrap();
    let mut cmd = Command::new(common::gateway::binary());
    cmd.arg("run").arg("-c").arg(&path).args(["-p", "0"]);
    let err = Gateway::spawn(cmd, path).err().expect("must not start");
    assert!(err.contains("cannot listen on"), "{err}");
}
