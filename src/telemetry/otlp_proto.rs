//! OTLP protobuf, written by hand: `ExportTraceServiceRequest` and
//! `ExportMetricsServiceRequest` (opentelemetry-proto v1), only the fields we send. The same
//! bytes go over OTLP/HTTP and, framed, over gRPC.
//!
//! Spans are the volume: their attributes are written with lengths computed ahead (no scratch
//! buffer, no copy per level), each span once into a reused buffer, and the request's outer
//! messages around them without copying the batch again and again.

use super::otel::Resource;
use super::store::{Family, Labels, Series, CANCELED, COMPLETE, ERROR};
use super::trace::{SpanRec, Text, Val};

/// krakend-otel's instrumentation scope name.
const SCOPE: &str = "io.krakend.krakend-otel";

// ---- wire primitives ----

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn bytes_field(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    key(out, field, 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    key(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

fn double(out: &mut Vec<u8>, field: u32, v: f64) {
    fixed64(out, field, v.to_bits());
}

fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
    key(out, field, 0);
    varint(out, v);
}

/// A nested message: written into a scratch buffer, then length-prefixed.
fn message(out: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    body(&mut inner);
    bytes_field(out, field, &inner);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// The size of a length-delimited field of `n` bytes (field numbers below 16).
fn field_len(n: usize) -> usize {
    1 + varint_len(n as u64) + n
}

// ---- common ----

/// One `KeyValue` whose `AnyValue` is `av_len` bytes, written by `av`.
fn kv(out: &mut Vec<u8>, field: u32, k: &str, av_len: usize, av: impl FnOnce(&mut Vec<u8>)) {
    let len = field_len(k.len()) + field_len(av_len);
    key(out, field, 2);
    varint(out, len as u64);
    bytes_field(out, 1, k.as_bytes());
    key(out, 2, 2);
    varint(out, av_len as u64);
    av(out);
}

fn key_value(out: &mut Vec<u8>, field: u32, k: &str, v: &Val) {
    match v {
        Val::Text(t) => {
            let s = t.utf8();
            kv(out, field, k, field_len(s.len()), |o| {
                bytes_field(o, 1, s.as_bytes())
            });
        }
        Val::Addr(a) => {
            let s = a.to_string();
            kv(out, field, k, field_len(s.len()), |o| {
                bytes_field(o, 1, s.as_bytes())
            });
        }
        Val::Bool(b) => kv(out, field, k, 2, |o| uint(o, 2, u64::from(*b))),
        Val::Int(i) => kv(out, field, k, 1 + varint_len(*i as u64), |o| {
            uint(o, 3, *i as u64)
        }),
        Val::F64(f) => kv(out, field, k, 9, |o| double(o, 4, *f)),
        Val::List(items) => {
            // ArrayValue { repeated AnyValue values = 1 }, each AnyValue a string_value.
            let inner: usize = items.iter().map(|s| field_len(field_len(s.len()))).sum();
            kv(out, field, k, field_len(inner), |o| {
                key(o, 5, 2);
                varint(o, inner as u64);
                for s in items {
                    key(o, 1, 2);
                    varint(o, field_len(s.len()) as u64);
                    bytes_field(o, 1, s.as_bytes());
                }
            });
        }
    }
}

fn resource(out: &mut Vec<u8>, r: &Resource) {
    message(out, 1, |res| {
        let s = |t: &str| Val::Text(Text::Owned(t.to_string()));
        key_value(res, 1, "service.name", &s(&r.service_name));
        key_value(res, 1, "service.version", &s(&r.service_version));
        if let Some(env) = &r.deploy_env {
            key_value(res, 1, "deployment.environment", &s(env));
        }
    });
}

fn scope(out: &mut Vec<u8>) {
    message(out, 1, |s| {
        bytes_field(s, 1, SCOPE.as_bytes());
        bytes_field(s, 2, crate::VERSION.as_bytes());
    });
}

// ---- traces ----

/// String attributes encoded once, as a span's `attributes` (field 9) entries: written into
/// each export verbatim.
pub fn fixed_attrs(attrs: &[(&str, &str)]) -> std::sync::Arc<[u8]> {
    let mut out = Vec::new();
    for (k, v) in attrs {
        let v = v.as_bytes();
        kv(&mut out, 9, k, field_len(v.len()), |o| bytes_field(o, 1, v));
    }
    out.into()
}

/// One `ExportTraceServiceRequest` holding `spans`.
pub fn traces(r: &Resource, spans: &[SpanRec]) -> Vec<u8> {
    // ScopeSpans.spans (field 2), each span written once into a reused buffer.
    let mut body = Vec::with_capacity(spans.len() * 450);
    let mut one = Vec::with_capacity(1024);
    for sp in spans {
        one.clear();
        span(&mut one, sp);
        bytes_field(&mut body, 2, &one);
    }
    let mut head = Vec::with_capacity(256);
    resource(&mut head, r); // ResourceSpans.resource (1)
    let mut sc = Vec::with_capacity(64);
    scope(&mut sc); // ScopeSpans.scope (1)
    let scope_spans = sc.len() + body.len();
    let resource_spans = head.len() + field_len(scope_spans);
    let mut out = Vec::with_capacity(field_len(resource_spans));
    key(&mut out, 1, 2);
    varint(&mut out, resource_spans as u64);
    out.extend_from_slice(&head);
    key(&mut out, 2, 2);
    varint(&mut out, scope_spans as u64);
    out.extend_from_slice(&sc);
    out.extend_from_slice(&body);
    out
}

fn span(out: &mut Vec<u8>, s: &SpanRec) {
    bytes_field(out, 1, &s.trace);
    bytes_field(out, 2, &s.id);
    if s.parent != [0; 8] {
        bytes_field(out, 4, &s.parent);
    }
    bytes_field(out, 5, s.name.utf8().as_bytes());
    uint(out, 6, s.kind as u64);
    fixed64(out, 7, s.start_ns);
    fixed64(out, 8, s.end_ns.max(s.start_ns));
    if let Some(fixed) = &s.fixed {
        out.extend_from_slice(fixed);
    }
    for (k, v) in &s.attrs {
        key_value(out, 9, &k.utf8(), v);
    }
    if let Some(status) = &s.status {
        message(out, 15, |st| match status {
            None => uint(st, 3, 1),
            Some(msg) => {
                bytes_field(st, 2, msg.as_bytes());
                uint(st, 3, 2);
            }
        });
    }
}

// ---- metrics ----

/// The OTel instrument name of a family (Prometheus shows it with underscores).
pub fn otel_name(f: Family) -> &'static str {
    match f {
        Family::ServerDuration => "http.server.duration",
        Family::ServerSize => "http.server.response.size",
        Family::ProxyDuration => "krakend.proxy.duration",
        Family::BackendDuration => "krakend.backend.duration",
        Family::ClientDuration => "http.client.duration",
        Family::ClientStarted => "http.client.request.started.count",
        Family::ClientFailed => "http.client.request.failed.count",
        Family::ClientTimedOut => "http.client.request.timedout.count",
    }
}

/// One series merged over the cores.
pub struct MergedSeries {
    pub family: Family,
    pub attrs: Vec<(&'static str, Val)>,
    pub bounds: std::sync::Arc<[f64]>,
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

/// Merge every core's copy into one series per family and attribute set.
pub fn merge(series: &[Series]) -> Vec<MergedSeries> {
    use std::collections::BTreeMap;
    let mut by: BTreeMap<(Family, String), MergedSeries> = BTreeMap::new();
    for s in series {
        let k = (s.family, super::scrape::label_text(&s.labels));
        let m = by.entry(k).or_insert_with(|| MergedSeries {
            family: s.family,
            attrs: attributes(&s.labels),
            bounds: s.bounds.clone(),
            counts: vec![0; s.counts.len()],
            sum: 0.0,
            count: 0,
        });
        if m.bounds == s.bounds {
            for (a, b) in m.counts.iter_mut().zip(&s.counts) {
                *a += b;
            }
        } else if let Some(inf) = m.counts.last_mut() {
            *inf += s.count;
        }
        m.sum += s.sum;
        m.count += s.count;
    }
    by.into_values().collect()
}

/// One `ExportMetricsServiceRequest`: every series, cumulative since `start_ns`.
pub fn metrics(r: &Resource, series: &[MergedSeries], start_ns: u64, now_ns: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(series.len() * 300 + 256);
    message(&mut out, 1, |rm| {
        resource(rm, r);
        message(rm, 2, |sm| {
            scope(sm);
            for f in Family::ALL {
                let rows: Vec<&MergedSeries> = series.iter().filter(|s| s.family == f).collect();
                if rows.is_empty() {
                    continue;
                }
                message(sm, 2, |m| {
                    bytes_field(m, 1, otel_name(f).as_bytes());
                    if f.is_counter() {
                        // Sum: data points, cumulative (2), monotonic.
                        message(m, 7, |sum| {
                            for s in &rows {
                                message(sum, 1, |dp| {
                                    for (k, v) in &s.attrs {
                                        key_value(dp, 7, k, v);
                                    }
                                    fixed64(dp, 2, start_ns);
                                    fixed64(dp, 3, now_ns);
                                    // as_int is sfixed64.
                                    fixed64(dp, 6, s.count);
                                });
                            }
                            uint(sum, 2, 2);
                            uint(sum, 3, 1);
                        });
                    } else {
                        message(m, 9, |h| {
                            for s in &rows {
                                message(h, 1, |dp| histogram_point(dp, s, start_ns, now_ns));
                            }
                            uint(h, 2, 2);
                        });
                    }
                });
            }
        });
    });
    out
}

fn histogram_point(dp: &mut Vec<u8>, s: &MergedSeries, start_ns: u64, now_ns: u64) {
    for (k, v) in &s.attrs {
        key_value(dp, 9, k, v);
    }
    fixed64(dp, 2, start_ns);
    fixed64(dp, 3, now_ns);
    fixed64(dp, 4, s.count);
    double(dp, 5, s.sum);
    // Packed repeated fixed64 and double.
    let mut counts = Vec::with_capacity(s.counts.len() * 8);
    for c in &s.counts {
        counts.extend_from_slice(&c.to_le_bytes());
    }
    bytes_field(dp, 6, &counts);
    let mut bounds = Vec::with_capacity(s.bounds.len() * 8);
    for b in s.bounds.iter() {
        bounds.extend_from_slice(&b.to_bits().to_le_bytes());
    }
    bytes_field(dp, 7, &bounds);
}

/// The attributes of one series, named as krakend-otel names them (the Prometheus labels,
/// with their dots and types).
fn attributes(l: &Labels) -> Vec<(&'static str, Val)> {
    let text = |s: &str| Val::Text(Text::Owned(s.to_string()));
    let flags = |v: &mut Vec<(&'static str, Val)>, f: u8| {
        v.push(("error", Val::Bool(f & ERROR != 0)));
        v.push(("canceled", Val::Bool(f & CANCELED != 0)));
        v.push(("complete", Val::Bool(f & COMPLETE != 0)));
    };
    let backend = |b: &super::otel::BackendLabels| {
        vec![
            ("http.request.method", text(&b.method)),
            ("http.route", text(&b.route)),
            ("krakend.endpoint", text(&b.endpoint)),
            ("krakend.endpoint_method", text(&b.endpoint_method)),
        ]
    };
    match l {
        Labels::Server { ep, method, status } => vec![
            // KrakenD: a request no endpoint matched reports this route.
            (
                "http.route",
                text(ep.as_ref().map_or("404 Not Found", |e| &e.route)),
            ),
            ("http.request.method", text(method)),
            ("http.response.status_code", Val::Int(i64::from(*status))),
        ],
        Labels::Proxy { ep, flags: f } => {
            let mut v = vec![
                ("http.route", text(&ep.route)),
                ("http.request.method", text(&ep.method)),
            ];
            flags(&mut v, *f);
            v
        }
        Labels::Backend { b, flags: f } => {
            let mut v = backend(b);
            v.push(("server.address", text(&b.server_address)));
            flags(&mut v, *f);
            v
        }
        Labels::Client {
            b,
            host,
            port,
            status,
        } => {
            let mut v = backend(b);
            v.push(("server.address", text(host)));
            v.push(("server.port", Val::Int(i64::from(*port))));
            v.push(("http.response.status_code", Val::Int(i64::from(*status))));
            v.push(("clientname", text(&b.route)));
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_computed_ahead_match_what_is_written() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::MAX] {
            let mut out = Vec::new();
            varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
        }
        let vals = [
            Val::Text(Text::Owned("x".repeat(200))),
            Val::Bool(true),
            Val::Int(-1),
            Val::F64(0.5),
            Val::List(vec!["a".into(), "b".repeat(300)]),
            Val::Addr("127.0.0.1:80".parse().unwrap()),
        ];
        for v in &vals {
            let mut fast = Vec::new();
            key_value(&mut fast, 9, "k", v);
            // The same message built the slow way: nested scratch buffers.
            let mut slow = Vec::new();
            message(&mut slow, 9, |kv| {
                bytes_field(kv, 1, b"k");
                message(kv, 2, |a| match v {
                    Val::Text(t) => bytes_field(a, 1, t.utf8().as_bytes()),
                    Val::Addr(x) => bytes_field(a, 1, x.to_string().as_bytes()),
                    Val::Bool(b) => uint(a, 2, u64::from(*b)),
                    Val::Int(i) => uint(a, 3, *i as u64),
                    Val::F64(f) => double(a, 4, *f),
                    Val::List(items) => message(a, 5, |arr| {
                        for s in items {
                            message(arr, 1, |e| bytes_field(e, 1, s.as_bytes()));
                        }
                    }),
                });
            });
            assert_eq!(fast, slow, "{v:?}");
        }
    }

    #[test]
    fn varints_encode_as_protobuf_does() {
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, vec![0xac, 0x02]);
        let mut out = Vec::new();
        uint(&mut out, 6, 2);
        assert_eq!(out, vec![0x30, 0x02]);
    }
}
