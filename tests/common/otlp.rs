//! An OTLP receiver for tests: a Python child process that decodes what the gateway pushes
//! with the official protobuf definitions (`opentelemetry-proto`, as `.ci/run` installs it)
//! and prints one JSON line per export request. HTTP (`/v1/traces`, `/v1/metrics`) or gRPC
//! (`TraceService/Export`, `MetricsService/Export`, with `grpcio`).

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

const RECEIVER: &str = r#"
import json, sys, threading
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as ms

mode = sys.argv[1]          # http | grpc
answer = sys.argv[2]        # ok | 503 | garbage | reset
lock = threading.Lock()

def val(v):
    k = v.WhichOneof("value")
    if k == "array_value":
        return [val(x) for x in v.array_value.values]
    return getattr(v, k) if k else None

def attrs(kvs):
    return {kv.key: val(kv.value) for kv in kvs}

def emit(obj):
    with lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

def traces(body):
    req = ts.ExportTraceServiceRequest()
    req.ParseFromString(body)
    out = []
    for rs in req.resource_spans:
        res = attrs(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append({"resource": res, "scope": ss.scope.name, "trace_id": s.trace_id.hex(),
                    "span_id": s.span_id.hex(), "parent": s.parent_span_id.hex(), "name": s.name,
                    "kind": s.kind, "start": s.start_time_unix_nano, "end": s.end_time_unix_nano,
                    "attrs": attrs(s.attributes), "status": s.status.code, "message": s.status.message,
                    "dups": sorted({kv.key for kv in s.attributes if [a.key for a in s.attributes].count(kv.key) > 1})})
    emit({"signal": "traces", "spans": out})

def metrics(body):
    req = ms.ExportMetricsServiceRequest()
    req.ParseFromString(body)
    out = []
    for rm in req.resource_metrics:
        res = attrs(rm.resource.attributes)
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                if kind == "histogram":
                    pts = [{"attrs": attrs(p.attributes), "count": p.count, "sum": p.sum,
                            "buckets": list(p.bucket_counts), "bounds": list(p.explicit_bounds)}
                           for p in m.histogram.data_points]
                    temporality = m.histogram.aggregation_temporality
                else:
                    pts = [{"attrs": attrs(p.attributes), "count": p.as_int} for p in m.sum.data_points]
                    temporality = m.sum.aggregation_temporality
                out.append({"resource": res, "name": m.name, "kind": kind, "points": pts,
                            "temporality": temporality})
    emit({"signal": "metrics", "metrics": out})

if mode == "http":
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def log_message(self, *a): pass
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Type") != "application/x-protobuf":
                emit({"signal": "bad-content-type", "value": self.headers.get("Content-Type")})
            if answer == "reset":
                self.connection.close()
                emit({"signal": "refused", "path": self.path})
                return
            if answer == "garbage":
                self.wfile.write(b"\x00\x01garbage\r\n\r\n")
                self.wfile.flush()
                self.connection.close()
                emit({"signal": "refused", "path": self.path})
                return
            if answer == "503":
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                emit({"signal": "refused", "path": self.path})
                return
            if self.path == "/v1/traces":
                traces(body)
            elif self.path == "/v1/metrics":
                metrics(body)
            else:
                emit({"signal": "unknown-path", "path": self.path})
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()
    class S(ThreadingHTTPServer):
        # A gateway stopping mid-export resets its connection: not worth a traceback.
        def handle_error(self, *a): pass
    srv = S(("127.0.0.1", 0), H)
    print(json.dumps({"port": srv.server_address[1]}), flush=True)
    srv.serve_forever()
else:
    import grpc
    from concurrent import futures
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as tsg
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as msg
    class T(tsg.TraceServiceServicer):
        def Export(self, request, context):
            if answer == "unavailable":
                emit({"signal": "refused", "path": "traces"})
                context.abort(grpc.StatusCode.UNAVAILABLE, "down for a test")
            traces(request.SerializeToString())
            return ts.ExportTraceServiceResponse()
    class M(msg.MetricsServiceServicer):
        def Export(self, request, context):
            if answer == "unavailable":
                emit({"signal": "refused", "path": "metrics"})
                context.abort(grpc.StatusCode.UNAVAILABLE, "down for a test")
            metrics(request.SerializeToString())
            return ms.ExportMetricsServiceResponse()
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    tsg.add_TraceServiceServicer_to_server(T(), srv)
    msg.add_MetricsServiceServicer_to_server(M(), srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    print(json.dumps({"port": port}), flush=True)
    srv.wait_for_termination()
"#;

/// A python3 that can import `modules`, or None (a clear skip outside CI; a failure in CI,
/// which installs them).
pub fn python_with(modules: &str) -> Option<&'static str> {
    let found = ["python3", "/usr/bin/python3"].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", &format!("import {modules}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        let msg = format!(
            "no python3 can import {modules} (pip install opentelemetry-proto grpcio; .ci/run does)"
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
    }
    found
}

pub struct OtlpReceiver {
    child: Child,
    pub port: u16,
    lines: Receiver<Value>,
    pub seen: Vec<Value>,
}

impl OtlpReceiver {
    /// Start a receiver (`mode`: http or grpc; `answer`: ok, 503, garbage, reset,
    /// unavailable). None when Python or its packages are missing outside CI.
    pub fn start(mode: &str, answer: &str) -> Option<OtlpReceiver> {
        let modules = if mode == "grpc" {
            "opentelemetry.proto, grpc"
        } else {
            "opentelemetry.proto"
        };
        let python = python_with(modules)?;
        let mut child = Command::new(python)
            .args(["-c", RECEIVER, mode, answer])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the OTLP receiver");
        let stdout = child.stdout.take().expect("receiver stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the OTLP receiver did not start");
        let port = first["port"].as_u64().expect("receiver port") as u16;
        Some(OtlpReceiver {
            child,
            port,
            lines: rx,
            seen: Vec::new(),
        })
    }

    /// Wait until `done` holds for everything received so far (or panic after `limit`).
    pub fn wait(&mut self, limit: Duration, done: impl Fn(&[Value]) -> bool) -> &[Value] {
        let until = Instant::now() + limit;
        loop {
            if done(&self.seen) {
                return &self.seen;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!("timed out waiting for OTLP data; got {:#?}", self.seen);
            }
            if let Ok(v) = self
                .lines
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                self.seen.push(v);
            }
        }
    }

    /// Everything received within `d` from now.
    pub fn collect_for(&mut self, d: Duration) -> &[Value] {
        let until = Instant::now() + d;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            if let Ok(v) = self.lines.recv_timeout(left) {
                self.seen.push(v);
            }
        }
        &self.seen
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Value> {
        spans(&self.seen)
    }
}

pub fn spans(seen: &[Value]) -> Vec<Value> {
    seen.iter()
        .filter(|v| v["signal"] == "traces")
        .flat_map(|v| v["spans"].as_array().cloned().unwrap_or_default())
        .collect()
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
