//! `telemetry/opentelemetry` with `exporters.otlp` over gRPC (`use_http: false`, KrakenD's
//! default): a grpcio server in Python, with the official service definitions, receives the
//! exports of our HTTP/2 client. Large span batches cross HTTP/2 flow control and frame
//! limits; a collector answering UNAVAILABLE is retried and changes no answer.
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
use common::otlp::{spans, OtlpReceiver};
use serde_json::{json, Value};
use std::time::Duration;

fn gateway(b: &Backend, port: u16, extra: Value) -> Gateway {
    let mut cfg = service(vec![endpoint(
        "/items/{id}",
        "GET",
        vec![backend(&b.url(), "/i/{id}")],
    )]);
    let mut e = json!({"name": "grpc", "host": "127.0.0.1", "port": port});
    if let (Some(o), Value::Object(x)) = (e.as_object_mut(), extra) {
        o.extend(x);
    }
    cfg["extra_config"] = json!({"telemetry/opentelemetry": {"exporters": {"otlp": [e]}}});
    Gateway::start(&cfg.to_string())
}

#[test]
fn spans_and_metrics_arrive_over_grpc_linked_and_counted() {
    let Some(mut rx) = OtlpReceiver::start("grpc", "ok") else {
        return;
    };
    let b = Backend::start(|_| Reply::json(r#"{"id":1}"#));
    let gw = gateway(&b, rx.port, json!({"custom_metric_reporting_period": 1}));
    for i in 0..3 {
        assert_eq!(client::get(&gw.url(&format!("/items/{i}"))).status, 200);
    }
    let started = |s: &[Value]| {
        s.iter()
            .rev()
            .find(|v| v["signal"] == "metrics")
            .and_then(|m| {
                m["metrics"]
                    .as_array()?
                    .iter()
                    .find(|m| m["name"] == "http.client.request.started.count")?["points"][0]
                    ["count"]
                    .as_u64()
            })
    };
    let seen = rx.wait(Duration::from_secs(10), |s| {
        spans(s).len() >= 12 && started(s) == Some(3)
    });
    let all = spans(seen);
    assert_eq!(all.len(), 12, "{all:#?}");
    let rts: Vec<&Value> = all
        .iter()
        .filter(|s| s["attrs"]["krakend.stage"] == "backend-request")
        .collect();
    let ids: Vec<String> = b
        .requests()
        .iter()
        .map(|r| r.header("traceparent").unwrap()[36..52].to_string())
        .collect();
    for rt in rts {
        assert!(
            ids.contains(&rt["span_id"].as_str().unwrap().to_string()),
            "{rt:#}"
        );
        let stage = all.iter().find(|s| s["span_id"] == rt["parent"]).unwrap();
        assert_eq!(stage["attrs"]["krakend.stage"], "backend");
    }
}

#[test]
fn batches_larger_than_the_http2_window_arrive_whole() {
    let Some(mut rx) = OtlpReceiver::start("grpc", "ok") else {
        return;
    };
    let b = Backend::start(|_| Reply::json(r#"{"id":1}"#));
    let gw = gateway(&b, rx.port, json!({"disable_metrics": true}));
    // 400 requests, 1,600 spans: batches of 512 spans are well over 64 KiB, and over one
    // 16 KiB frame.
    let mut conn = common::client::Conn::open(gw.addr()).unwrap();
    for i in 0..400 {
        let r = conn.send("GET", &format!("/items/{i}"), &[], b"").unwrap();
        assert_eq!(r.status, 200);
    }
    let seen = rx.wait(Duration::from_secs(20), |s| spans(s).len() >= 1600);
    assert_eq!(spans(seen).len(), 1600);
    let biggest = seen
        .iter()
        .filter(|v| v["signal"] == "traces")
        .map(|v| v["spans"].as_array().unwrap().len())
        .max()
        .unwrap();
    assert!(biggest > 200, "{biggest}");
}

#[test]
fn a_collector_answering_unavailable_is_retried_and_changes_no_answer() {
    let Some(mut rx) = OtlpReceiver::start("grpc", "unavailable") else {
        return;
    };
    let b = Backend::start(|_| Reply::json(r#"{"id":1}"#));
    let gw = gateway(&b, rx.port, json!({"custom_metric_reporting_period": 1}));
    for i in 0..50 {
        let r = client::get(&gw.url(&format!("/items/{i}")));
        assert_eq!((r.status, r.text().as_str()), (200, r#"{"id":1}"#));
    }
    let seen = rx.wait(Duration::from_secs(10), |s| {
        s.iter().filter(|v| v["path"] == "traces").count() >= 2
    });
    assert!(spans(seen).is_empty());
    assert!(gw.output().contains("grpc-status 14"), "{}", gw.output());
}

#[test]
fn a_grpc_exporter_pointed_at_an_http1_server_fails_cleanly_and_changes_no_answer() {
    let Some(rx) = OtlpReceiver::start("http", "ok") else {
        return;
    };
    let b = Backend::start(|_| Reply::json(r#"{"id":1}"#));
    let gw = gateway(&b, rx.port, json!({"custom_metric_reporting_period": 1}));
    for i in 0..50 {
        let r = client::get(&gw.url(&format!("/items/{i}")));
        assert_eq!((r.status, r.text().as_str()), (200, r#"{"id":1}"#));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let out = gw.output();
    assert!(out.contains("cannot send"), "{out}");
    assert_eq!(client::get(&gw.url("/items/1")).status, 200);
}
