//! `telemetry/metrics` compiled: KrakenD CE's extended metrics (krakend-metrics), served as
//! `GET /__stats` on their own listener. What each layer records lives in [`super::stats_store`]
//! (per core, plain integers); [`super::stats_serve`] merges the cores and writes the JSON.

use crate::config::duration::parse_go_duration;
use serde::Deserialize;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

pub const NS: &str = "telemetry/metrics";

#[derive(Deserialize, Default)]
#[serde(default)]
struct FileStats {
    collection_time: Option<String>,
    listen_address: Option<String>,
    proxy_disabled: bool,
    router_disabled: bool,
    backend_disabled: bool,
    endpoint_disabled: bool,
}

/// What the request path records for `/__stats`, and where it is served.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// `krakend.router.response.*` (the endpoint handler).
    pub router: bool,
    /// `krakend.proxy.*.layer.pipe.*` (the endpoint's proxy stack).
    pub proxy: bool,
    /// `krakend.proxy.*.layer.backend.*` (each backend).
    pub backend: bool,
    pub addr: SocketAddr,
    /// KrakenD: every `collection_time` the histograms start over and the connection
    /// counters move into their `-total` and `-gauge` keys.
    pub collection: Duration,
}

impl Stats {
    /// Compile the namespace. `None` with `endpoint_disabled`: KrakenD then still collects for
    /// its InfluxDB pusher (`telemetry/influx`, not built here), so nothing would read them.
    pub fn compile(v: &serde_json::Value) -> Result<Option<Stats>, String> {
        let f: FileStats = serde_json::from_value(v.clone()).map_err(|e| format!("{NS}: {e}"))?;
        if f.endpoint_disabled {
            return Ok(None);
        }
        // KrakenD: a duration Go cannot parse silently means the default minute; here it is
        // a startup error like every other bad duration.
        let collection = match f.collection_time.as_deref() {
            None => Duration::from_secs(60),
            Some(s) => parse_go_duration(s).map_err(|e| format!("{NS}: collection_time: {e}"))?,
        };
        if collection.is_zero() {
            // Go's time.NewTicker panics on a zero duration: KrakenD would not start.
            return Err(format!("{NS}: collection_time must be more than zero"));
        }
        let text = f.listen_address.as_deref().unwrap_or(":8090");
        Ok(Some(Stats {
            router: !f.router_disabled,
            proxy: !f.proxy_disabled,
            backend: !f.backend_disabled,
            addr: listen_addr(text)?,
            collection,
        }))
    }
}

/// lura's form of a `url_pattern` (`/users/{id}` → `/users/{{.Id}}`), the name krakend-metrics
/// gives a backend.
// KrakenD: lura's config init rewrites each `{param}` of a backend's url_pattern into a Go
// template with its first letter upper-cased before any backend factory sees it.
pub fn lura_template(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut rest = pattern;
    while let Some((before, after)) = rest.split_once('{') {
        let Some((name, tail)) = after.split_once('}') else {
            break;
        };
        let param = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || "_-.:/".contains(c));
        out.push_str(before);
        if param {
            let mut chars = name.chars();
            out.push_str("{{.");
            out.extend(chars.next().map(|c| c.to_ascii_uppercase()));
            out.push_str(chars.as_str());
            out.push_str("}}");
        } else {
            out.push('{');
            out.push_str(name);
            out.push('}');
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// Go's `http.Server.Addr`: `host:port`, where an empty host means every interface and the
/// host may be a name (resolved once, at startup).
fn listen_addr(text: &str) -> Result<SocketAddr, String> {
    let bad = |why: &str| format!("{NS}: listen_address {text:?} {why}");
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(bad("is not host:port"));
    };
    let port: u16 = port.parse().map_err(|_| bad("has no valid port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| bad("does not resolve"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_follow_krakend_metrics() {
        let s = Stats::compile(&json!({})).unwrap().unwrap();
        assert_eq!(s.addr, "0.0.0.0:8090".parse().unwrap());
        assert_eq!(s.collection, Duration::from_secs(60));
        assert!(s.router && s.proxy && s.backend);
        let s = Stats::compile(&json!({"proxy_disabled": true, "listen_address": "127.0.0.1:9"}))
            .unwrap()
            .unwrap();
        assert!(!s.proxy && s.router);
        assert_eq!(s.addr.port(), 9);
        assert!(Stats::compile(&json!({"endpoint_disabled": true}))
            .unwrap()
            .is_none());
    }

    #[test]
    fn backend_names_read_as_lura_templates() {
        assert_eq!(
            lura_template("/u/{id}/x/{resp0_a}"),
            "/u/{{.Id}}/x/{{.Resp0_a}}"
        );
        assert_eq!(lura_template("/plain"), "/plain");
    }

    #[test]
    fn bad_addresses_and_durations_are_refused() {
        for bad in ["8090", "host:", ":99999", "[::1]"] {
            assert!(
                Stats::compile(&json!({ "listen_address": bad })).is_err(),
                "{bad}"
            );
        }
        assert!(Stats::compile(&json!({"collection_time": "soon"})).is_err());
        assert!(Stats::compile(&json!({"collection_time": "0s"})).is_err());
        assert_eq!(
            listen_addr("[::1]:80").unwrap(),
            "[::1]:80".parse().unwrap()
        );
    }
}
