//! `telemetry/opentelemetry` compiled: which layers record metrics, the histogram buckets, the
//! skipped paths, and the Prometheus listeners. OTLP exporters (metrics and traces) are not
//! built: `check` warns and they are ignored.

use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

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
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FileExporters {
    prometheus: Vec<FilePrometheus>,
    otlp: Vec<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FilePrometheus {
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
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FileBackendLayer {
    metrics: Option<FileBackendMetrics>,
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
}

impl Otel {
    /// Compile the namespace. `None` when no Prometheus exporter serves metrics: nothing would
    /// read them (OTLP is not built), so nothing is recorded.
    pub fn compile(v: &serde_json::Value) -> Result<Option<Otel>, String> {
        let f: FileOtel = serde_json::from_value(v.clone()).map_err(|e| format!("{NS}: {e}"))?;
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
        if exporters.is_empty() {
            return Ok(None);
        }
        let layers = f.layers.unwrap_or_default();
        let global = !layers.global.is_some_and(|g| g.disable_metrics);
        let proxy = !layers.proxy.is_some_and(|g| g.disable_metrics);
        // KrakenD: without `layers.backend.metrics` every backend metric is on; given, each
        // flag reads as written (an omitted `round_trip` is false).
        let (backend_stage, round_trip) = match layers.backend.and_then(|b| b.metrics) {
            None => (true, true),
            Some(m) => (!m.disable_stage, m.round_trip),
        };
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
        Ok(Some(Otel {
            global,
            proxy,
            backend_stage,
            round_trip,
            skip_paths,
            time_buckets: buckets(hist.time_buckets, TIME_BUCKETS, "time_buckets")?,
            size_buckets: buckets(hist.size_buckets, SIZE_BUCKETS, "size_buckets")?,
            exporters,
        }))
    }

    pub fn skips(&self, endpoint: &str) -> bool {
        self.skip_paths.iter().any(|p| p == endpoint)
    }
}

/// `proxy check` warnings for what this namespace asks and is not built.
pub fn warnings(v: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    let otlp = v
        .pointer("/exporters/otlp")
        .and_then(|o| o.as_array())
        .is_some_and(|a| !a.is_empty());
    if otlp {
        out.push(
            "exporters.otlp is not built yet and is ignored: no metrics or traces are pushed \
             over OTLP (the Prometheus exporter is built)"
                .to_string(),
        );
    }
    let prom = v
        .pointer("/exporters/prometheus")
        .and_then(|o| o.as_array())
        .is_some_and(|a| !a.is_empty());
    if !prom {
        out.push(
            "no exporters.prometheus: nothing is exported (OTLP is not built yet)".to_string(),
        );
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
}

impl EndpointLabels {
    pub fn new(path: &str, method: &str, otel: Option<&Otel>) -> EndpointLabels {
        EndpointLabels {
            route: gin_route(path).into(),
            method: method.into(),
            skip: otel.is_some_and(|o| o.skips(&gin_route(path))),
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
        BackendLabels {
            route: template_route(url_pattern).into(),
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
        let o = Otel::compile(&v).unwrap().unwrap();
        assert_eq!(o.exporters[0].addr.port(), 9090);
        assert!(o.global && o.proxy && o.backend_stage && o.round_trip);
        assert!(o.skips("/__health"));
        assert_eq!(o.time_buckets.len(), 20);
        assert_eq!(o.size_buckets.len(), 15);
        let v = serde_json::json!({"exporters": {"prometheus": [{"port": 1}]},
            "layers": {"backend": {"metrics": {"disable_stage": true}}}});
        let o = Otel::compile(&v).unwrap().unwrap();
        assert!(!o.backend_stage && !o.round_trip);
    }

    #[test]
    fn without_prometheus_nothing_is_recorded() {
        let v = serde_json::json!({"exporters": {"otlp": [{"host": "x"}]}});
        assert!(Otel::compile(&v).unwrap().is_none());
        assert!(warnings(&v)[0].contains("otlp is not built"));
    }
}
