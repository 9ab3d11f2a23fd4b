//! `telemetry/opentelemetry` with `exporters.otlp` over OTLP/HTTP: a receiver in Python
//! decodes what arrives with the official protobuf definitions. Spans link server → proxy →
//! backend stage → round trip, keep a client's trace id, and the backend receives a
//! `traceparent` naming the round trip span; metrics arrive with the counts sent; a collector
//! that is down or broken changes no answer.
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
use std::time::{Duration, Instant};

fn gateway(b: &Backend, otel: Value) -> Gateway {
    let mut cfg = service(vec![
        endpoint("/items/{id}", "GET", vec![backend(&b.url(), "/i/{id}")]),
        endpoint(
            "/two",
            "GET",
            vec![backend(&b.url(), "/a"), backend(&b.url(), "/b")],
        ),
        json!({"endpoint": "/raw", "output_encoding": "no-op",
               "backend": [{"host": [b.url()], "url_pattern": "/r", "encoding": "no-op"}]}),
    ]);
    cfg["name"] = json!("my-gateway");
    cfg["extra_config"] = json!({"telemetry/opentelemetry": otel});
    Gateway::start(&cfg.to_string())
}

fn otlp(port: u16, extra: Value) -> Value {
    let mut e = json!({"name": "local", "host": "127.0.0.1", "port": port, "use_http": true});
    if let (Some(o), Value::Object(x)) = (e.as_object_mut(), extra) {
        o.extend(x);
    }
    e
}

fn by_stage<'a>(spans: &'a [Value], stage: &str) -> Vec<&'a Value> {
    spans
        .iter()
        .filter(|s| s["attrs"]["krakend.stage"] == stage)
        .collect()
}

const PARENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";

#[test]
fn spans_link_server_proxy_backend_and_round_trip_and_the_backend_gets_the_round_trip_id() {
    let Some(mut rx) = OtlpReceiver::start("http", "ok") else {
        return;
    };
    let b = Backend::start(|_| Reply::json(r#"{"id":1}"#));
    let gw = gateway(
        &b,
        json!({"service_version": "9.9", "deploy_env": "test",
               "exporters": {"otlp": [otlp(rx.port, json!({"disable_metrics": true}))]}}),
    );
    let tp = format!("00-{PARENT_TRACE}-{PARENT_SPAN}-01");
    let r = client::request(
        "GET",
        &gw.url("/items/7"),
        &[("traceparent", &tp), ("tracestate", "vendor=x")],
        b"",
    );
    assert_eq!(r.status, 200);
    let seen = rx.wait(Duration::from_secs(10), |s| spans(s).len() >= 4);
    let all = spans(seen);
    assert_eq!(all.len(), 4, "{all:#?}");
    let server = by_stage(&all, "global");
    let proxy = by_stage(&all, "proxy");
    let stage = by_stage(&all, "backend");
    let rt = by_stage(&all, "backend-request");
    assert_eq!(
        (server.len(), proxy.len(), stage.len(), rt.len()),
        (1, 1, 1, 1),
        "{all:#?}"
    );
    let (server, proxy, stage, rt) = (server[0], proxy[0], stage[0], rt[0]);
    // The client's trace id is kept and its span is the server span's parent.
    for s in [server, proxy, stage, rt] {
        assert_eq!(s["trace_id"], PARENT_TRACE, "{s:#}");
        assert_eq!(s["dups"], json!([]), "one value per attribute: {s:#}");
    }
    assert_eq!(server["parent"], PARENT_SPAN);
    assert_eq!(proxy["parent"], server["span_id"]);
    assert_eq!(stage["parent"], proxy["span_id"]);
    assert_eq!(rt["parent"], stage["span_id"]);
    // Kinds: server, internal, internal, client.
    assert_eq!(
        (&server["kind"], &proxy["kind"], &stage["kind"], &rt["kind"]),
        (&json!(2), &json!(1), &json!(1), &json!(3))
    );
    // Names and attributes as krakend-otel sets them.
    assert_eq!(server["name"], "/items/7");
    assert_eq!(server["attrs"]["http.route"], "/items/:id");
    assert_eq!(server["attrs"]["http.request.method"], "GET");
    assert_eq!(server["attrs"]["http.response.status_code"], 200);
    assert_eq!(server["attrs"]["url.full"], "/items/7");
    assert_eq!(server["status"], 1);
    assert_eq!(proxy["name"], "/items/:id");
    assert_eq!(proxy["attrs"]["complete"], true);
    assert_eq!(stage["name"], "/i/:id");
    assert_eq!(stage["attrs"]["krakend.endpoint"], "/items/:id");
    assert_eq!(stage["attrs"]["http.route"], "/i/:id");
    assert_eq!(rt["attrs"]["http.response.status_code"], 200);
    assert_eq!(
        rt["attrs"]["url.full"],
        format!("http://{}/i/7", b.host_port())
    );
    // Each span lies within its parent's time.
    for (outer, inner) in [(server, proxy), (proxy, stage), (stage, rt)] {
        assert!(
            outer["start"].as_u64() <= inner["start"].as_u64(),
            "{outer:#} {inner:#}"
        );
        assert!(
            inner["end"].as_u64() <= outer["end"].as_u64(),
            "{outer:#} {inner:#}"
        );
    }
    // The resource: service_name falls back to the service's name.
    assert_eq!(server["resource"]["service.name"], "my-gateway");
    assert_eq!(server["resource"]["service.version"], "9.9");
    assert_eq!(server["resource"]["deployment.environment"], "test");
    // The backend saw the round trip span as its parent, and the client's tracestate.
    let got = b.last_request();
    let want = format!("00-{PARENT_TRACE}-{}-01", rt["span_id"].as_str().unwrap());
    assert_eq!(got.header_all("traceparent"), vec![want.as_str()]);
    assert_eq!(got.header("tracestate"), Some("vendor=x"));
}

#[test]
fn a_request_without_traceparent_starts_a_trace_and_each_backend_gets_its_own_span() {
    let Some(mut rx) = OtlpReceiver::start("http", "ok") else {
        return;
    };
    let b = Backend::start(|r| Reply::json(&format!(r#"{{"{}":1}}"#, &r.path[1..])));
    let gw = gateway(
        &b,
        json!({"exporters": {"otlp": [otlp(rx.port, json!({"disable_metrics": true}))]}}),
    );
    assert_eq!(client::get(&gw.url("/two")).status, 200);
    let seen = rx.wait(Duration::from_secs(10), |s| spans(s).len() >= 6);
    let all = spans(seen);
    let server = by_stage(&all, "global")[0];
    assert_eq!(server["parent"], "", "a new trace has a root span");
    let rts = by_stage(&all, "backend-request");
    assert_eq!(rts.len(), 2, "{all:#?}");
    let mut sent: Vec<String> = b
        .requests()
        .iter()
        .map(|r| r.header("traceparent").unwrap().to_string())
        .collect();
    sent.sort();
    let mut want: Vec<String> = rts
        .iter()
        .map(|s| {
            format!(
                "00-{}-{}-01",
                server["trace_id"].as_str().unwrap(),
                s["span_id"].as_str().unwrap()
            )
        })
        .collect();
    want.sort();
    assert_eq!(sent, want);
}

#[test]
fn trace_sample_rate_zero_sends_no_spans_but_still_propagates_unsampled() {
    let Some(mut rx) = OtlpReceiver::start("http", "ok") else {
        return;
    };
    let b = Backend::start(|_| Reply::json(r#"{"id":1}"#));
    let gw = gateway(
        &b,
        json!({"trace_sample_rate": 0,
               "exporters": {"otlp": [otlp(rx.port, json!({"disable_metrics": true}))]}}),
    );
    for i in 0..5 {
        assert_eq!(client::get(&gw.url(&format!("/items/{i}"))).status, 200);
    }
    let seen = rx.collect_for(Duration::from_millis(1500));
    assert!(spans(seen).is_empty(), "{seen:#?}");
    let tp = b.last_request().header("traceparent").unwrap().to_string();
    assert!(tp.starts_with("00-") && tp.ends_with("-00"), "{tp}");
}

#[test]
fn metrics_arrive_with_the_counts_sent_and_krakend_names() {
    let Some(mut rx) = OtlpReceiver::start("http", "ok") else {
        return;
    };
    let b = Backend::start(|_| Reply::json(r#"{"id":1}"#));
    let gw = gateway(
        &b,
        json!({"exporters": {"otlp": [otlp(rx.port, json!({"disable_traces": true, "custom_metric_reporting_period": 1}))]}}),
    );
    for i in 0..7 {
        assert_eq!(client::get(&gw.url(&format!("/items/{i}"))).status, 200);
    }
    let count = |seen: &[Value]| -> Option<u64> {
        let last = seen.iter().rev().find(|v| v["signal"] == "metrics")?;
        let m = last["metrics"]
            .as_array()?
            .iter()
            .find(|m| m["name"] == "http.server.duration")?;
        m["points"]
            .as_array()?
            .iter()
            .find(|p| p["attrs"]["http.route"] == "/items/:id")
            .and_then(|p| p["count"].as_u64())
    };
    let seen = rx.wait(Duration::from_secs(10), |s| count(s) == Some(7));
    let last = seen
        .iter()
        .rev()
        .find(|v| v["signal"] == "metrics")
        .unwrap();
    let ms = last["metrics"].as_array().unwrap();
    let find = |n: &str| {
        ms.iter()
            .find(|m| m["name"] == n)
            .unwrap_or_else(|| panic!("{n}: {ms:#?}"))
    };
    let server = find("http.server.duration");
    assert_eq!(server["kind"], "histogram");
    assert_eq!(server["temporality"], 2, "cumulative");
    let p = &server["points"][0];
    assert_eq!(p["attrs"]["http.response.status_code"], 200);
    assert_eq!(
        p["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .sum::<u64>(),
        7
    );
    let started = find("http.client.request.started.count");
    assert_eq!(started["kind"], "sum");
    assert_eq!(started["points"][0]["count"], 7);
    assert_eq!(find("krakend.backend.duration")["points"][0]["count"], 7);
    assert_eq!(find("krakend.proxy.duration")["points"][0]["count"], 7);
    assert_eq!(last["metrics"][0]["resource"]["service.name"], "my-gateway");
    // Only metrics: no span was sent.
    assert!(spans(&rx.seen).is_empty());
}

/// Requests through a gateway whose collector is `otel`'s, timed.
fn timed_requests(gw: &Gateway, n: usize) -> Duration {
    let mut worst = Duration::ZERO;
    for i in 0..n {
        let t = Instant::now();
        let r = client::get(&gw.url(&format!("/items/{i}")));
        worst = worst.max(t.elapsed());
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), r#"{"id":1}"#);
    }
    worst
}

#[test]
fn a_collector_that_is_down_changes_no_answer_nor_latency() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let b = Backend::start(|_| Reply::json(r#"{"id":1}"#));
    let gw = gateway(
        &b,
        json!({"exporters": {"otlp": [otlp(port, json!({"custom_metric_reporting_period": 1}))]}}),
    );
    let worst = timed_requests(&gw, 300);
    assert!(worst < Duration::from_millis(500), "{worst:?}");
    // The exporter says why nothing arrives (and the log stays readable: not one line per
    // request).
    std::thread::sleep(Duration::from_millis(1500));
    let out = gw.output();
    assert!(out.contains("cannot send"), "{out}");
    assert!(out.matches("cannot send traces").count() < 5, "{out}");
}

#[test]
fn a_collector_that_answers_503_or_garbage_or_resets_changes_no_answer() {
    for answer in ["503", "garbage", "reset"] {
        let Some(mut rx) = OtlpReceiver::start("http", answer) else {
            return;
        };
        let b = Backend::start(|_| Reply::json(r#"{"id":1}"#));
        let gw = gateway(
            &b,
            json!({"exporters": {"otlp": [otlp(rx.port, json!({"custom_metric_reporting_period": 1}))]}}),
        );
        let worst = timed_requests(&gw, 100);
        assert!(worst < Duration::from_millis(500), "{answer}: {worst:?}");
        // The exporter did try (and retried the span batch).
        let seen = rx.wait(Duration::from_secs(10), |s| {
            s.iter().filter(|v| v["signal"] == "refused").count() >= 2
        });
        assert!(spans(seen).is_empty());
        assert_eq!(client::get(&gw.url("/items/1")).status, 200);
    }
}

#[test]
fn skip_paths_and_layer_toggles_leave_out_their_spans() {
    let Some(mut rx) = OtlpReceiver::start("http", "ok") else {
        return;
    };
    let b = Backend::start(|_| Reply::json(r#"{"id":1}"#));
    let gw = gateway(
        &b,
        json!({"skip_paths": ["/two"],
               "layers": {"proxy": {"disable_traces": true},
                          "backend": {"traces": {"disable_stage": true, "round_trip": true}}},
               "exporters": {"otlp": [otlp(rx.port, json!({"disable_metrics": true}))]}}),
    );
    assert_eq!(client::get(&gw.url("/two")).status, 200);
    assert_eq!(client::get(&gw.url("/items/1")).status, 200);
    let seen = rx.wait(Duration::from_secs(10), |s| spans(s).len() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    let all = spans(seen);
    assert_eq!(all.len(), 2, "{all:#?}");
    let server = by_stage(&all, "global")[0];
    let rt = by_stage(&all, "backend-request")[0];
    assert_eq!(server["name"], "/items/1");
    // No proxy or backend stage span: the round trip hangs from the server span.
    assert_eq!(rt["parent"], server["span_id"]);
    // A skipped path is not propagated either.
    let skipped: Vec<_> = b
        .requests()
        .into_iter()
        .filter(|r| r.path == "/a")
        .collect();
    assert_eq!(skipped[0].header("traceparent"), None);
}

#[test]
fn a_no_op_endpoint_links_its_round_trip_to_a_recorded_backend_span() {
    let Some(mut rx) = OtlpReceiver::start("http", "ok") else {
        return;
    };
    let b = Backend::start(|_| Reply::text("raw"));
    let gw = gateway(
        &b,
        json!({"exporters": {"otlp": [otlp(rx.port, json!({"disable_metrics": true}))]}}),
    );
    assert_eq!(client::get(&gw.url("/raw")).text(), "raw");
    let seen = rx.wait(Duration::from_secs(10), |s| spans(s).len() >= 3);
    let all = spans(seen);
    let server = by_stage(&all, "global")[0];
    let stage = by_stage(&all, "backend")[0];
    let rt = by_stage(&all, "backend-request")[0];
    assert_eq!(stage["parent"], server["span_id"]);
    assert_eq!(rt["parent"], stage["span_id"]);
    let tp = b.last_request().header("traceparent").unwrap().to_string();
    assert!(tp.contains(rt["span_id"].as_str().unwrap()), "{tp}");
}

#[test]
fn disable_propagation_ignores_the_clients_traceparent() {
    let Some(mut rx) = OtlpReceiver::start("http", "ok") else {
        return;
    };
    let b = Backend::start(|_| Reply::json(r#"{"id":1}"#));
    let gw = gateway(
        &b,
        json!({"layers": {"global": {"disable_propagation": true}},
               "exporters": {"otlp": [otlp(rx.port, json!({"disable_metrics": true}))]}}),
    );
    let tp = format!("00-{PARENT_TRACE}-{PARENT_SPAN}-01");
    let r = client::request("GET", &gw.url("/items/1"), &[("traceparent", &tp)], b"");
    assert_eq!(r.status, 200);
    let seen = rx.wait(Duration::from_secs(10), |s| spans(s).len() >= 4);
    let server = by_stage(&spans(seen), "global")[0].clone();
    assert_ne!(server["trace_id"], PARENT_TRACE);
    assert_eq!(server["parent"], "");
    assert!(!b
        .last_request()
        .header("traceparent")
        .unwrap()
        .contains(PARENT_TRACE));
}

#[test]
fn a_collector_that_never_answers_makes_the_gateway_drop_spans_and_say_so() {
    // Accepts connections (the kernel's backlog) and never reads or answers.
    let stall = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = stall.local_addr().unwrap().port();
    let b = Backend::start(|_| Reply::json(r#"{"id":1}"#));
    let gw = gateway(
        &b,
        json!({"exporters": {"otlp": [otlp(port, json!({"disable_metrics": true}))]}}),
    );
    // 4 spans a request: far more than the queues hold while the exporter waits 5 s.
    let mut conn = client::Conn::open(gw.addr()).unwrap();
    let started = Instant::now();
    let mut worst = Duration::ZERO;
    for i in 0..4000 {
        let t = Instant::now();
        let r = conn.send("GET", &format!("/items/{i}"), &[], b"").unwrap();
        worst = worst.max(t.elapsed());
        assert_eq!(r.status, 200);
    }
    assert!(worst < Duration::from_millis(500), "{worst:?}");
    let until = started + Duration::from_secs(15);
    while !gw.output().contains("spans dropped") && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = gw.output();
    assert!(out.contains("spans dropped"), "{out}");
    // At most one line a second.
    let lines = out.matches("spans dropped").count();
    let secs = started.elapsed().as_secs() + 1;
    assert!(lines as u64 <= secs, "{lines} lines in {secs} s");
    drop(stall);
}

#[test]
fn the_last_spans_and_metrics_are_sent_when_the_gateway_stops() {
    let Some(mut rx) = OtlpReceiver::start("http", "ok") else {
        return;
    };
    let b = Backend::start(|_| Reply::json(r#"{"id":1}"#));
    // A metric period far longer than the test: only the shutdown sends metrics.
    let mut gw = gateway(
        &b,
        json!({"metric_reporting_period": 3600, "exporters": {"otlp": [otlp(rx.port, json!({}))]}}),
    );
    assert_eq!(client::get(&gw.url("/items/1")).status, 200);
    let status = gw.stop();
    assert!(status.success(), "{status:?}");
    let seen = rx.wait(Duration::from_secs(5), |s| {
        spans(s).len() >= 4 && s.iter().any(|v| v["signal"] == "metrics")
    });
    assert_eq!(spans(seen).len(), 4);
}

#[test]
fn report_headers_adds_the_request_headers_to_the_server_and_round_trip_spans() {
    let Some(mut rx) = OtlpReceiver::start("http", "ok") else {
        return;
    };
    let b = Backend::start(|_| Reply::json(r#"{"id":1}"#));
    let gw = gateway(
        &b,
        json!({"layers": {"global": {"report_headers": true},
                          "backend": {"traces": {"round_trip": true, "report_headers": true}}},
               "exporters": {"otlp": [otlp(rx.port, json!({"disable_metrics": true}))]}}),
    );
    let r = client::request(
        "GET",
        &gw.url("/items/1"),
        &[("X-Team", "a"), ("X-Team", "b")],
        b"",
    );
    assert_eq!(r.status, 200);
    let seen = rx.wait(Duration::from_secs(10), |s| spans(s).len() >= 4);
    let all = spans(seen);
    let server = by_stage(&all, "global")[0];
    assert_eq!(
        server["attrs"]["http.request.header.x-team"],
        json!(["a", "b"])
    );
    let rt = by_stage(&all, "backend-request")[0];
    assert_eq!(
        rt["attrs"]["http.request.header.traceparent"][0]
            .as_str()
            .unwrap()
            .len(),
        55
    );
}

#[test]
fn each_concurrent_call_is_its_own_round_trip_span_and_the_losers_are_canceled() {
    let Some(mut rx) = OtlpReceiver::start("http", "ok") else {
        return;
    };
    // The first call to arrive answers at once; the two others after 300 ms, too late.
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let b = Backend::start(move |_| {
        if n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            Reply::json(r#"{"id":1}"#)
        } else {
            Reply::json(r#"{"id":2}"#).delay(Duration::from_millis(300))
        }
    });
    let mut ep = endpoint("/c", "GET", vec![backend(&b.url(), "/c")]);
    ep["concurrent_calls"] = json!(3);
    let mut cfg = service(vec![ep]);
    cfg["extra_config"] = json!({"telemetry/opentelemetry":
        {"exporters": {"otlp": [otlp(rx.port, json!({"disable_metrics": true}))]}}});
    let gw = Gateway::start(&cfg.to_string());
    assert_eq!(client::get(&gw.url("/c")).status, 200);
    let seen = rx.wait(Duration::from_secs(10), |s| {
        by_stage(&spans(s), "backend-request").len() >= 3
    });
    let all = spans(seen);
    let rts = by_stage(&all, "backend-request");
    let mut ids: Vec<&str> = rts.iter().map(|s| s["span_id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "{rts:#?}");
    let mut sent: Vec<String> = b
        .requests()
        .iter()
        .map(|r| r.header("traceparent").unwrap()[36..52].to_string())
        .collect();
    sent.sort();
    assert_eq!(sent, ids);
    let canceled = rts
        .iter()
        .filter(|s| s["attrs"]["canceled"] == true)
        .count();
    assert_eq!(canceled, 2, "{rts:#?}");
}
