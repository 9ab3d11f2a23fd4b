//! `telemetry/opentelemetry` compiled: which layers record metrics and traces, the histogram
//! buckets, the skipped paths, the Prometheus listeners and the OTLP exporters (with the
//! resource their data is sent under).

use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub const NS: &str = "telemetry/opentelemetry";

// KrakenD: krakend-otel `config/histogram_buckets.go`.
const TIME_BUCKETS: &[f64] = &[
    0.010, 0.020, 0.050, 0.075, 0.100, 0.125, 0.150, 0.175, 0.200, 0.250, 0.300, 0.350, 0.500,
    0.750, 1.000, 1.500, 2.000, 3.500, 5.000, 10.000,
];
const SIZE_BUCKETS: &[f64] = &[
    128.0, 256.0, 512.0, 1024.0, 4096.0, 8192.0, 16384.0, 32768.0, 65536.0, 262144.0, 524288.0,
    1048576.0, 4194304.0, 16777216.0, 67108864.0,
];

// KrakenD: krakend-otel `config/lura.go` skips these unless `skip_paths` lists others.
const DEFAULT_SKIP: &[&str] = &["/__health", "/__debug/", "/__echo/", "/__stats/"];

#[derive(Deserialize, Default)]
#[serde(default)]
struct FileOtel {
    exporters: FileExporters,
    layers: Option<FileLayers>,
    skip_paths: Vec<String>,
    histograms: Option<FileHistograms>,
    service_name: String,
    service_version: String,
    deploy_env: String,
    metric_reporting_period: Option<u64>,
    trace_sample_rate: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FileExporters {
    prometheus: Vec<FilePrometheus>,
    otlp: Vec<FileOtlp>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FileOtlp {
    name: String,
    host: String,
    port: u16,
    use_http: bool,
    disable_metrics: bool,
    disable_traces: bool,
    // KrakenD: the schema and docs say `custom_metric_reporting_period`; krakend-otel's
    // struct reads `custom_reporting_period`. Either is honoured.
    custom_metric_reporting_period: Option<u64>,
    custom_reporting_period: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FilePrometheus {
    name: String,
    port: Option<u16>,
    listen_ip: Option<String>,
    process_metrics: bool,
    disable_metrics: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FileLayers {
    global: Option<FileToggle>,
    proxy: Option<FileToggle>,
    backend: Option<FileBackendLayer>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FileToggle {
    disable_metrics: bool,
    disable_traces: bool,
    disable_propagation: bool,
    report_headers: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FileBackendLayer {
    metrics: Option<FileBackendMetrics>,
    traces: Option<FileBackendTraces>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FileBackendTraces {
    disable_stage: bool,
    round_trip: bool,
    report_headers: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FileBackendMetrics {
    disable_stage: bool,
    round_trip: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FileHistograms {
    time_buckets: Option<Vec<f64>>,
    size_buckets: Option<Vec<f64>>,
}

/// One Prometheus listener.
#[derive(Clone, Debug, PartialEq)]
pub struct Exporter {
    pub addr: SocketAddr,
    pub process_metrics: bool,
}

/// One OTLP collector to push to.
#[derive(Clone, Debug, PartialEq)]
pub struct OtlpExporter {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub use_http: bool,
    pub metrics: bool,
    pub traces: bool,
    /// How often metrics are pushed (the exporter's own period, else the service's).
    pub period: Duration,
}

/// What the OTLP data is sent as (the OTel resource).
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub service_name: String,
    pub service_version: String,
    pub deploy_env: Option<String>,
}

/// How traces are sampled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampler {
    /// Every request (rate 1 or more).
    Always,
    /// None (rate 0 or less).
    Never,
    /// Parent-based ratio: an incoming `traceparent` decides; else this share of trace ids.
    Ratio(f64),
}

/// Which spans the request path records (only when an OTLP exporter takes traces).
#[derive(Clone, Debug)]
pub struct Traces {
    pub sampler: Sampler,
    /// The server span (layers.global).
    pub global: bool,
    /// Honour an incoming `traceparent` (layers.global.disable_propagation).
    pub extract: bool,
    pub global_headers: bool,
    /// The proxy span (layers.proxy).
    pub proxy: bool,
    pub proxy_headers: bool,
    /// The backend stage span (layers.backend.traces.disable_stage).
    pub backend_stage: bool,
    /// The span of each HTTP round trip (layers.backend.traces.round_trip).
    pub round_trip: bool,
    pub backend_headers: bool,
}

/// What the request path records, and where it is served.
#[derive(Clone, Debug)]
pub struct Otel {
    /// `http_server_*` (layers.global).
    pub global: bool,
    /// `krakend_proxy_duration` (layers.proxy).
    pub proxy: bool,
    /// `krakend_backend_duration` (layers.backend.metrics.disable_stage).
    pub backend_stage: bool,
    /// `http_client_*` (layers.backend.metrics.round_trip).
    pub round_trip: bool,
    pub skip_paths: Vec<String>,
    pub time_buckets: Arc<[f64]>,
    pub size_buckets: Arc<[f64]>,
    pub exporters: Vec<Exporter>,
    /// None when no OTLP exporter takes traces: no span is recorded.
    pub traces: Option<Arc<Traces>>,
    pub otlp: Vec<OtlpExporter>,
    pub resource: Resource,
}

impl Otel {
    /// Compile the namespace. `None` when no exporter reads anything: nothing is recorded.
    /// `name` is the service's `name` (the default `service_name`).
    pub fn compile(v: &serde_json::Value, name: &str) -> Result<Option<Otel>, String> {
        let f: FileOtel = serde_json::from_value(v.clone()).map_err(|e| format!("{NS}: {e}"))?;
        // KrakenD: exporter names are unique across both kinds.
        let mut names = std::collections::HashSet::new();
        for n in f.exporters.otlp.iter().map(|o| &o.name) {
            if !names.insert(n.as_str()) {
                return Err(format!("{NS}: duplicate exporter name {n:?}"));
            }
        }
        for n in f.exporters.prometheus.iter().map(|o| &o.name) {
            if !names.insert(n.as_str()) {
                return Err(format!("{NS}: duplicate exporter name {n:?}"));
            }
        }
        let mut exporters = Vec::new();
        for p in f.exporters.prometheus.iter().filter(|p| !p.disable_metrics) {
            let ip = match p.listen_ip.as_deref().filter(|s| !s.is_empty()) {
                None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                Some(s) => s
                    .parse()
                    .map_err(|_| format!("{NS}: prometheus listen_ip {s:?} is not an IP"))?,
            };
            // KrakenD: port 0 means the default, 9090.
            let port = p.port.filter(|p| *p != 0).unwrap_or(9090);
            exporters.push(Exporter {
                addr: SocketAddr::new(ip, port),
                process_metrics: p.process_metrics,
            });
        }
        // KrakenD: `metric_reporting_period` defaults to 30 s; an exporter's own period counts
        // from one second up.
        let period = Duration::from_secs(f.metric_reporting_period.unwrap_or(30).max(1));
        let mut otlp = Vec::new();
        for o in &f.exporters.otlp {
            otlp.push(otlp_exporter(o, period)?);
        }
        let otlp_metrics = otlp.iter().any(|o| o.metrics);
        let otlp_traces = otlp.iter().any(|o| o.traces);
        if exporters.is_empty() && !otlp_metrics && !otlp_traces {
            return Ok(None);
        }
        let metrics = !exporters.is_empty() || otlp_metrics;
        let layers = f.layers.unwrap_or_default();
        let global = metrics && !layers.global.as_ref().is_some_and(|g| g.disable_metrics);
        let proxy = metrics && !layers.proxy.as_ref().is_some_and(|g| g.disable_metrics);
        let backend = layers.backend.unwrap_or_default();
        // KrakenD: without `layers.backend.metrics` every backend metric is on; given, each
        // flag reads as written (an omitted `round_trip` is false).
        let (backend_stage, round_trip) = match &backend.metrics {
            None => (true, true),
            Some(m) => (!m.disable_stage, m.round_trip),
        };
        let traces = otlp_traces.then(|| {
            let g = layers.global.as_ref();
            let p = layers.proxy.as_ref();
            // KrakenD: the same reading for `layers.backend.traces`.
            let (stage, rt, headers) = match &backend.traces {
                None => (true, true, false),
                Some(t) => (!t.disable_stage, t.round_trip, t.report_headers),
            };
            Arc::new(Traces {
                sampler: sampler(f.trace_sample_rate),
                global: !g.is_some_and(|g| g.disable_traces),
                extract: !g.is_some_and(|g| g.disable_propagation),
                global_headers: g.is_some_and(|g| g.report_headers),
                proxy: !p.is_some_and(|p| p.disable_traces),
                proxy_headers: p.is_some_and(|p| p.report_headers),
                backend_stage: stage,
                round_trip: rt,
                backend_headers: headers,
            })
        });
        let skip_paths = if f.skip_paths.is_empty() {
            DEFAULT_SKIP.iter().map(|s| s.to_string()).collect()
        } else {
            f.skip_paths
        };
        let hist = f.histograms.unwrap_or_default();
        let buckets = |given: Option<Vec<f64>>, default: &[f64], what: &str| {
            let b = given.filter(|b| !b.is_empty()).unwrap_or(default.to_vec());
            if b.windows(2).any(|w| matches!(w, [a, b] if a >= b))
                || b.iter().any(|x| !x.is_finite())
            {
                return Err(format!(
                    "{NS}: histograms.{what} must be finite and increasing"
                ));
            }
            Ok(Arc::<[f64]>::from(b))
        };
        // KrakenD: `service_name` falls back to the service's `name`, then to "KrakenD".
        let service_name = [f.service_name.as_str(), name, "KrakenD"]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or("KrakenD")
            .to_string();
        let service_version = if f.service_version.is_empty() {
            crate::plan::version_text()
        } else {
            f.service_version
        };
        Ok(Some(Otel {
            global,
            proxy,
            backend_stage: metrics && backend_stage,
            round_trip: metrics && round_trip,
            skip_paths,
            time_buckets: buckets(hist.time_buckets, TIME_BUCKETS, "time_buckets")?,
            size_buckets: buckets(hist.size_buckets, SIZE_BUCKETS, "size_buckets")?,
            exporters,
            traces,
            otlp,
            resource: Resource {
                service_name,
                service_version,
                deploy_env: (!f.deploy_env.is_empty()).then_some(f.deploy_env),
            },
        }))
    }

    pub fn skips(&self, endpoint: &str) -> bool {
        self.skip_paths.iter().any(|p| p == endpoint)
    }

    /// A request path in `skip_paths` (an entry ending in `/` covers what is under it).
    // KrakenD: gin's route of a builtin (`/__health`, `/__debug/*param`) meets the skip
    // list like an endpoint's.
    pub fn skips_path(&self, path: &[u8]) -> bool {
        self.skip_paths.iter().any(|p| {
            let p = p.as_bytes();
            path == p || (p.ends_with(b"/") && path.starts_with(p))
        })
    }
}

/// KrakenD (krakend-otel `state.go`): a rate strictly between 0 and 1 samples that share,
/// parent-based; anything else samples every trace, even when the parent said no.
// Not KrakenD: a rate of 0 (or less) samples nothing, as the docs say, where krakend-otel's
// code samples everything.
fn sampler(rate: Option<f64>) -> Sampler {
    match rate.unwrap_or(1.0) {
        r if r.is_nan() => Sampler::Always,
        r if r <= 0.0 => Sampler::Never,
        r if r < 1.0 => Sampler::Ratio(r),
        _ => Sampler::Always,
    }
}

fn otlp_exporter(o: &FileOtlp, period: Duration) -> Result<OtlpExporter, String> {
    // KrakenD: host "localhost" and port 4317 when omitted (4317 with `use_http` too: set
    // 4318 for a collector's HTTP receiver).
    let mut host = if o.host.is_empty() {
        "localhost".to_string()
    } else {
        o.host.clone()
    };
    if let Some(rest) = host.strip_prefix("http://") {
        host = rest.trim_end_matches('/').to_string();
    } else if host.starts_with("https://") {
        return Err(format!(
            "{NS}: exporters.otlp {:?}: TLS to the collector (an https:// host) is not built; \
             use a plain host and a local collector",
            o.name
        ));
    }
    if host.is_empty() || host.contains(['/', ' ']) {
        return Err(format!(
            "{NS}: exporters.otlp {:?}: host {:?} is not a host name",
            o.name, o.host
        ));
    }
    let custom = o
        .custom_metric_reporting_period
        .or(o.custom_reporting_period)
        .filter(|s| *s >= 1);
    Ok(OtlpExporter {
        name: o.name.clone(),
        host,
        port: if o.port == 0 { 4317 } else { o.port },
        use_http: o.use_http,
        metrics: !o.disable_metrics,
        traces: !o.disable_traces,
        period: custom.map_or(period, Duration::from_secs),
    })
}

/// `proxy check` warnings for what this namespace asks and is not built.
pub fn warnings(v: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    let arr = |p: &str| {
        v.pointer(p)
            .and_then(|o| o.as_array())
            .map_or(&[][..], |a| a.as_slice())
    };
    if arr("/exporters/prometheus").is_empty() && arr("/exporters/otlp").is_empty() {
        out.push("no exporters: nothing is exported".to_string());
    }
    out
}

/// The labels of one endpoint's series, built once per plan.
#[derive(Debug)]
pub struct EndpointLabels {
    /// KrakenD: the gin route (`/users/:id`), as krakend-otel reports `http.route`.
    pub route: Arc<str>,
    pub method: Arc<str>,
    /// In `skip_paths`: no server, proxy or backend series.
    pub skip: bool,
    /// The proxy span's fixed attributes, encoded once (OTLP `KeyValue`s).
    pub proxy_span: Arc<[u8]>,
}

/// The labels of one backend's series.
#[derive(Debug)]
pub struct BackendLabels {
    /// KrakenD: lura's template (`/users/{{.Id}}`) normalised to `/users/:id`.
    pub route: Arc<str>,
    pub method: Arc<str>,
    pub endpoint: Arc<str>,
    pub endpoint_method: Arc<str>,
    /// KrakenD: the host for one host; for several, krakend-otel joins an empty copy of the
    /// list (`copy` into a zero-length slice), so the label is empty.
    pub server_address: Arc<str>,
    pub skip: bool,
    /// The backend and round trip spans' fixed attributes, encoded once.
    pub stage_span: Arc<[u8]>,
    pub round_trip_span: Arc<[u8]>,
}

impl EndpointLabels {
    pub fn new(path: &str, method: &str, otel: Option<&Otel>) -> EndpointLabels {
        use super::otlp_proto::fixed_attrs;
        EndpointLabels {
            route: gin_route(path).into(),
            method: method.into(),
            skip: otel.is_some_and(|o| o.skips(&gin_route(path))),
            proxy_span: fixed_attrs(&[("krakend.stage", "proxy"), ("http.request.method", method)]),
        }
    }
}

impl BackendLabels {
    pub fn new(
        ep: &EndpointLabels,
        url_pattern: &str,
        method: &str,
        hosts: &[String],
    ) -> BackendLabels {
        let server_address = match hosts {
            [one] => host_of(one),
            _ => String::new(),
        };
        use super::otlp_proto::fixed_attrs;
        let route = template_route(url_pattern);
        let common = [
            ("http.request.method", method),
            ("http.route", &route),
            ("krakend.endpoint", &ep.route),
            ("krakend.endpoint_method", &ep.method),
        ];
        let with = |more: &[(&str, &str)]| {
            let all: Vec<(&str, &str)> = common.iter().chain(more).copied().collect();
            fixed_attrs(&all)
        };
        BackendLabels {
            stage_span: with(&[
                ("server.address", &server_address),
                ("krakend.stage", "backend"),
            ]),
            // KrakenD: the round trip's `server.address` is the called host (set per span).
            round_trip_span: with(&[("krakend.stage", "backend-request")]),
            route: route.into(),
            method: method.into(),
            endpoint: ep.route.clone(),
            endpoint_method: ep.method.clone(),
            server_address: server_address.into(),
            skip: ep.skip,
        }
    }
}

/// KrakenD's `host` entries keep their scheme (`http://backend:8080`); the label is that text.
fn host_of(h: &str) -> String {
    h.to_string()
}

/// `/users/{id}` → `/users/:id` (the path gin registers).
pub fn gin_route(path: &str) -> String {
    replace_params(path, false)
}

/// `/users/{id}` → `/users/:id`, lower-cased as krakend-otel's `NormalizeURLPattern` does to
/// lura's `{{.Id}}`.
pub fn template_route(pattern: &str) -> String {
    replace_params(pattern, true)
}

fn replace_params(s: &str, lower: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some((before, after)) = rest.split_once('{') {
        let Some((name, tail)) = after.split_once('}') else {
            break;
        };
        out.push_str(before);
        out.push(':');
        if lower {
            out.push_str(&name.to_lowercase());
        } else {
            out.push_str(name);
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_read_as_krakend_reports_them() {
        assert_eq!(gin_route("/users/{id}/x"), "/users/:id/x");
        assert_eq!(template_route("/u/{userId}"), "/u/:userid");
        assert_eq!(template_route("/plain"), "/plain");
    }

    #[test]
    fn defaults_follow_krakend_otel() {
        let v = serde_json::json!({"exporters": {"prometheus": [{"name": "p"}]}});
        let o = Otel::compile(&v, "").unwrap().unwrap();
        assert_eq!(o.exporters[0].addr.port(), 9090);
        assert!(o.global && o.proxy && o.backend_stage && o.round_trip);
        assert!(o.skips("/__health"));
        assert_eq!(o.time_buckets.len(), 20);
        assert_eq!(o.size_buckets.len(), 15);
        let v = serde_json::json!({"exporters": {"prometheus": [{"port": 1}]},
            "layers": {"backend": {"metrics": {"disable_stage": true}}}});
        let o = Otel::compile(&v, "").unwrap().unwrap();
        assert!(!o.backend_stage && !o.round_trip);
    }

    #[test]
    fn without_exporters_nothing_is_recorded() {
        let v = serde_json::json!({"exporters": {}});
        assert!(Otel::compile(&v, "").unwrap().is_none());
        assert!(warnings(&v)[0].contains("nothing is exported"));
        let v = serde_json::json!({"exporters": {"otlp": [{"disable_metrics": true, "disable_traces": true}]}});
        assert!(Otel::compile(&v, "").unwrap().is_none());
    }

    #[test]
    fn otlp_defaults_follow_krakend_otel() {
        let v =
            serde_json::json!({"exporters": {"otlp": [{"name": "a", "disable_metrics": true}]}});
        let o = Otel::compile(&v, "svc").unwrap().unwrap();
        let e = &o.otlp[0];
        assert_eq!(
            (e.host.as_str(), e.port, e.use_http),
            ("localhost", 4317, false)
        );
        assert_eq!(e.period, Duration::from_secs(30));
        // Only traces are read: no metric is recorded.
        assert!(!o.global && !o.proxy && !o.backend_stage && !o.round_trip);
        let t = o.traces.unwrap();
        assert_eq!(t.sampler, Sampler::Always);
        assert!(t.global && t.extract && t.proxy && t.backend_stage && t.round_trip);
        assert_eq!(o.resource.service_name, "svc");
        let v = serde_json::json!({"trace_sample_rate": 0.25, "metric_reporting_period": 5,
            "exporters": {"otlp": [{"name": "a", "host": "http://c", "custom_metric_reporting_period": 2}]}});
        let o = Otel::compile(&v, "").unwrap().unwrap();
        assert_eq!(o.traces.unwrap().sampler, Sampler::Ratio(0.25));
        assert_eq!(o.otlp[0].host, "c");
        assert_eq!(o.otlp[0].period, Duration::from_secs(2));
        assert_eq!(o.resource.service_name, "KrakenD");
        assert_eq!(sampler(Some(0.0)), Sampler::Never);
        assert_eq!(sampler(Some(1.5)), Sampler::Always);
    }

    #[test]
    fn duplicate_exporter_names_are_refused() {
        let v = serde_json::json!({"exporters": {"otlp": [{"name": "a"}], "prometheus": [{"name": "a"}]}});
        assert!(Otel::compile(&v, "").unwrap_err().contains("duplicate"));
    }
}
