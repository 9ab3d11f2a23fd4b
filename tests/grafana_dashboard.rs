//! KrakenD's published Grafana dashboard for its Prometheus exporter works on ours: every
//! metric name and label its panels' PromQL reads (`tests/grafana/krakend-for-prometheus.tsv`,
//! copied from krakend/telemetry-dashboards with its commit) is in a scrape of a gateway that
//! served ok, failed and timed-out backend calls. `tests/grafana/check.py` reads the scrape
//! with Python's `prometheus_client` parser. The panels that cannot work are listed below with
//! exactly what they miss, so a regression and a newly working panel both fail this test.
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
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Go runtime metrics: there is no Go runtime to report (the README says which process figures
/// `process_metrics` gives instead).
const GO: &[(&str, &[&str])] = &[
    ("Avg memory in use", &["go_memstats_alloc_bytes"]),
    ("Reserved memory", &["go_memstats_sys_bytes"]),
    ("Go Routines", &["go_goroutines"]),
    ("GC Duration", &["go_gc_duration_seconds_sum"]),
    ("GC Per Second", &["go_gc_duration_seconds_count"]),
    ("GC Quantiles", &["go_gc_duration_seconds"]),
    ("Used Memory", &["go_memstats_alloc_bytes"]),
    ("Allocated Memory", &["go_memstats_alloc_bytes_total"]),
    ("Frees", &["go_memstats_frees_total"]),
    ("Allocated objects", &["go_memstats_heap_objects"]),
    ("Released memory", &["go_memstats_heap_released_bytes"]),
    (
        "Heap memory",
        &[
            "go_memstats_heap_idle_bytes",
            "go_memstats_heap_inuse_bytes",
        ],
    ),
    (
        "Stack memory",
        &[
            "go_memstats_stack_inuse_bytes",
            "go_memstats_stack_sys_bytes",
        ],
    ),
    ("OS Threads", &["go_threads"]),
    ("Goroutines", &["go_goroutines"]),
];

/// Backend-client figures the exporter does not record yet (krakend-otel's instrumented
/// transport: response sizes, body reads, connection, DNS and TLS timings, cancellations).
const NOT_BUILT: &[(&str, &[&str])] = &[
    (
        "Avg backend traffic",
        &[
            "http_client_response_size_count",
            "http_client_response_size_sum",
        ],
    ),
    (
        "Received Content Length",
        &["http_client_response_size_sum"],
    ),
    (
        "No Content Length Count",
        &["http_client_response_no_content_length_total"],
    ),
    (
        "Average Content Length",
        &[
            "http_client_response_size_count",
            "http_client_response_size_sum",
        ],
    ),
    (
        "Read Content Size",
        &["http_client_request_read_size_hist_sum"],
    ),
    (
        "Avg Read Content Size",
        &[
            "http_client_request_read_size_hist_count",
            "http_client_request_read_size_hist_sum",
        ],
    ),
    (
        "Response Size Heat Map [Backends]",
        &["http_client_response_size_bucket"],
    ),
    (
        "Started vs Canceled",
        &["http_client_request_canceled_count_total"],
    ),
    (
        "Requests Details p95",
        &[
            "http_client_request_dns_duration_bucket",
            "http_client_request_get_conn_duration_bucket",
            "http_client_request_tls_duration_bucket",
        ],
    ),
    (
        "Avg Request Times",
        &[
            "http_client_request_dns_duration_count",
            "http_client_request_dns_duration_sum",
            "http_client_request_get_conn_duration_count",
            "http_client_request_get_conn_duration_sum",
            "http_client_request_tls_duration_count",
            "http_client_request_tls_duration_sum",
        ],
    ),
    ("Response Size p95", &["http_client_response_size_bucket"]),
];

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A gateway with the Prometheus exporter and an endpoint whose backends answer, fail to
/// connect, and stall past the timeout, after the traffic: its scrape.
fn scrape_after_traffic() -> String {
    let ok = Backend::start(|r| {
        if r.path.starts_with("/slow") {
            Reply::json("{}").delay(Duration::from_secs(2))
        } else {
            Reply::json(r#"{"id":1}"#)
        }
    });
    let closed = format!("http://127.0.0.1:{}", free_port());
    let port = free_port();
    let mut slow = endpoint("/slow", "GET", vec![backend(&ok.url(), "/slow")]);
    slow["timeout"] = json!("300ms");
    let mut cfg = service(vec![
        endpoint(
            "/items/{id}",
            "GET",
            vec![backend(&ok.url(), "/i/{id}"), backend(&closed, "/down")],
        ),
        slow,
    ]);
    cfg["extra_config"] = json!({"telemetry/opentelemetry": {
        "exporters": {"prometheus": [{"name": "p", "port": port, "listen_ip": "127.0.0.1"}]}
    }});
    let g = Gateway::start(&cfg.to_string());
    for i in 0..3 {
        client::get(&g.url(&format!("/items/{i}")));
    }
    client::get(&g.url("/slow"));
    client::get(&g.url("/nowhere"));
    let r = client::get(&format!("http://127.0.0.1:{port}/metrics"));
    assert_eq!(r.status, 200);
    r.text()
}

fn check(scrape: &str) -> BTreeMap<String, Vec<String>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/grafana");
    let mut child = Command::new("/usr/bin/python3")
        .arg(format!("{dir}/check.py"))
        .arg(format!("{dir}/krakend-for-prometheus.tsv"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 (with python3-prometheus-client, as .ci/run installs)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "check.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let missing = v
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_str().unwrap().to_string())
                .collect();
            (k.clone(), missing)
        })
        .collect()
}

#[test]
fn every_panel_of_krakends_dashboard_finds_its_metrics_and_labels_but_the_go_runtime_and_client_details(
) {
    let report = check(&scrape_after_traffic());
    assert!(report.len() > 70, "fixture not read: {report:?}");
    let expected: BTreeMap<&str, Vec<String>> = GO
        .iter()
        .chain(NOT_BUILT)
        .map(|(panel, m)| (*panel, m.iter().map(|s| s.to_string()).collect()))
        .collect();
    let mut wrong = Vec::new();
    for (panel, missing) in &report {
        let want = expected.get(panel.as_str()).cloned().unwrap_or_default();
        if *missing != want {
            wrong.push(format!("{panel}: misses {missing:?}, expected {want:?}"));
        }
    }
    for panel in expected.keys() {
        if !report.contains_key(*panel) {
            wrong.push(format!("{panel}: listed here, not in the fixture"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
