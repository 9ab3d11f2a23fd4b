//! The rate-limit blocks of krakend.json, read as krakend-ratelimit reads them
//! (`router/router.go` `ConfigGetter`, `proxy/proxy.go`), with its defaults. Where KrakenD
//! silently misreads a value that guards access, we refuse it at startup instead (README,
//! "Where we differ").

use crate::config::duration::parse_go_duration;
use serde_json::{Map, Value};
use std::time::Duration;

/// `qos/ratelimit/router`, rates per second (after `every`), defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct RouterConfig {
    /// 0 = no endpoint limit.
    pub max_rate: f64,
    pub capacity: u64,
    /// 0 = no per-client limit.
    pub client_max_rate: f64,
    pub client_capacity: u64,
    pub strategy: Option<Strategy>,
    /// `key`: a header name (`header`, and `ip`'s optional header) or a param name.
    pub key: String,
    pub every: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    Ip,
    Header,
    Param,
}

/// `qos/ratelimit/proxy`: rate per second and burst, defaults applied (rate 0 = off).
#[derive(Clone, Debug, PartialEq)]
pub struct ProxyConfig {
    pub max_rate: f64,
    pub capacity: u64,
}

fn object<'a>(v: &'a Value, ns: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{ns}: must be an object"))
}

/// A rate: a finite number ≥ 0 (KrakenD ignores any other type, which would turn the limit
/// off without a word: refused here).
fn rate(m: &Map<String, Value>, key: &str, ns: &str) -> Result<f64, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(0.0),
        Some(v) => match v.as_f64() {
            Some(r) if r.is_finite() && r >= 0.0 => Ok(r),
            _ => Err(format!("{ns}.{key}: must be a number ≥ 0, got {v}")),
        },
    }
}

/// A capacity: a number ≥ 0, truncated to an integer (KrakenD: `uint64(float64)`).
fn capacity(m: &Map<String, Value>, key: &str, ns: &str) -> Result<u64, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => match v.as_f64() {
            Some(c) if c.is_finite() && c >= 0.0 => Ok(c.min(u64::MAX as f64) as u64),
            _ => Err(format!("{ns}.{key}: must be a number ≥ 0, got {v}")),
        },
    }
}

fn text(v: &Value) -> String {
    // KrakenD: fmt.Sprintf("%v", v).
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// KrakenD's default burst: the rate, or 1 below a rate of 1.
fn default_capacity(rate: f64) -> u64 {
    if rate < 1.0 {
        1
    } else {
        rate.min(u64::MAX as f64) as u64
    }
}

impl RouterConfig {
    pub const NS: &'static str = "qos/ratelimit/router";

    pub fn parse(v: &Value) -> Result<RouterConfig, String> {
        let ns = Self::NS;
        let m = object(v, ns)?;
        let mut max_rate = rate(m, "max_rate", ns)?;
        let mut client_max_rate = rate(m, "client_max_rate", ns)?;
        let mut capacity_v = capacity(m, "capacity", ns)?;
        let mut client_capacity = capacity(m, "client_capacity", ns)?;
        // KrakenD: an unparsable `every`, or one under a second, is one second.
        let every = m
            .get("every")
            .and_then(|v| parse_go_duration(&text(v)).ok())
            .filter(|d| *d >= Duration::from_secs(1))
            .unwrap_or(Duration::from_secs(1));
        // KrakenD: rates are per `every`, converted to per second; capacities are not scaled.
        let factor = 1.0 / every.as_secs_f64();
        max_rate *= factor;
        client_max_rate *= factor;
        if capacity_v == 0 {
            // KrakenD: `max_rate: 50, every: "10m"` without a capacity bursts 1.
            capacity_v = default_capacity(max_rate);
        }
        if client_capacity == 0 {
            // KrakenD checks `max_rate` here (a slip): without an endpoint limit every client
            // gets a burst of 1. We follow the documented default, `client_max_rate`.
            client_capacity = default_capacity(client_max_rate);
        }
        let strategy = match m.get("strategy").map(text) {
            None => None,
            Some(s) => Some(match s.to_ascii_lowercase().as_str() {
                "ip" => Strategy::Ip,
                "header" => Strategy::Header,
                "param" => Strategy::Param,
                _ => {
                    return Err(format!(
                        "{ns}.strategy: unknown strategy {s:?} (ip, header or param); KrakenD \
                         would drop the per-client limit with a warning"
                    ))
                }
            }),
        };
        let key = m.get("key").map(text).unwrap_or_default();
        if client_max_rate > 0.0 {
            match strategy {
                None => {
                    return Err(format!(
                        "{ns}: client_max_rate needs a strategy (ip, header or param); KrakenD \
                         would drop the per-client limit with a warning"
                    ))
                }
                Some(Strategy::Header | Strategy::Param) if key.is_empty() => {
                    return Err(format!(
                        "{ns}.key: the header or param naming the client is missing; KrakenD \
                         would answer 429 to every request"
                    ))
                }
                _ => {}
            }
        }
        Ok(RouterConfig {
            max_rate,
            capacity: capacity_v,
            client_max_rate,
            client_capacity,
            strategy,
            key,
            every,
        })
    }
}

impl ProxyConfig {
    pub const NS: &'static str = "qos/ratelimit/proxy";

    pub fn parse(v: &Value) -> Result<ProxyConfig, String> {
        let ns = Self::NS;
        let m = object(v, ns)?;
        let mut max_rate = rate(m, "max_rate", ns)?;
        let mut capacity_v = capacity(m, "capacity", ns)?;
        // KrakenD: sub-second `every` is allowed here; an unparsable one is a second.
        if let Some(v) = m.get("every") {
            let every = parse_go_duration(&text(v)).unwrap_or(Duration::from_secs(1));
            if every.is_zero() {
                // KrakenD divides by zero: an infinite rate, no limit at all.
                return Err(format!("{ns}.every: must be longer than 0"));
            }
            max_rate /= every.as_secs_f64();
        }
        if capacity_v == 0 {
            capacity_v = default_capacity(max_rate);
        }
        Ok(ProxyConfig {
            max_rate,
            capacity: capacity_v,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn router_defaults_follow_krakend() {
        let c = RouterConfig::parse(&json!({"max_rate": 50, "every": "10m"})).unwrap();
        assert!((c.max_rate - 50.0 / 600.0).abs() < 1e-12);
        assert_eq!(c.capacity, 1, "capacity is not scaled by every");
        let c = RouterConfig::parse(&json!({"max_rate": 10, "every": "100ms"})).unwrap();
        assert_eq!((c.max_rate, c.capacity), (10.0, 10), "every under 1s is 1s");
        let c = RouterConfig::parse(&json!({"max_rate": 7.9, "every": "nonsense"})).unwrap();
        assert_eq!((c.max_rate, c.capacity), (7.9, 7));
        let c =
            RouterConfig::parse(&json!({"client_max_rate": 4, "strategy": "IP", "capacity": 3.7}))
                .unwrap();
        assert_eq!(c.strategy, Some(Strategy::Ip));
        assert_eq!((c.capacity, c.client_capacity), (3, 4));
    }

    #[test]
    fn router_blocks_krakend_would_silently_weaken_are_refused() {
        for bad in [
            json!({"max_rate": "100"}),
            json!({"max_rate": -1}),
            json!({"client_max_rate": 5}),
            json!({"client_max_rate": 5, "strategy": "cookie"}),
            json!({"client_max_rate": 5, "strategy": "header"}),
            json!({"client_max_rate": 5, "strategy": "param", "key": ""}),
            json!([1]),
        ] {
            assert!(RouterConfig::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn proxy_every_may_be_sub_second() {
        let c = ProxyConfig::parse(&json!({"max_rate": 1, "every": "100ms"})).unwrap();
        assert_eq!((c.max_rate, c.capacity), (10.0, 10));
        let c = ProxyConfig::parse(&json!({"max_rate": 0.5})).unwrap();
        assert_eq!((c.max_rate, c.capacity), (0.5, 1));
        assert!(ProxyConfig::parse(&json!({"max_rate": 1, "every": "0s"})).is_err());
    }
}
