//! Configuration, in KrakenD Enterprise's vocabulary.
//!
//! Connections are declared once, at the service level, in EE's `redis` namespace:
//!
//! ```json
//! "extra_config": {
//!   "redis": {
//!     "connection_pools": [
//!       { "name": "shared", "address": "10.0.0.5:6379", "password": "s3cret", "db": 2,
//!         "dial_timeout": "5s", "read_timeout": "250ms", "write_timeout": "250ms" }
//!     ]
//!   }
//! }
//! ```
//!
//! and a rate-limit block names one with EE's `connection_name`:
//!
//! ```json
//! "qos/ratelimit/router": { "max_rate": 100, "capacity": 100,
//!                           "connection_name": "shared", "on_failure": "local" }
//! ```
//!
//! Keys of a pool: `name` and `address` (`host:port`) are required; `password`, `user_name`,
//! `db` (0), `client_name`, `dial_timeout` (5s) as in EE; `read_timeout` and `write_timeout`
//! (250ms) are ours: EE has no such keys, and a Redis that does not answer a lease within them
//! counts as down. EE's pool-tuning keys (`pool_size`, `max_retries`, `conn_max_idle_time`,
//! ...) are accepted and ignored: one connection per limit is all a lease needs. `tls` is
//! refused rather than ignored (we would send the password in clear), as are `clusters`
//! when a limit names one, and any unknown key (EE's schema refuses those too).
//!
//! Keys of the rate-limit block: `connection_name` (EE; its deprecated `connection_pool` is
//! read too) and what to do when Redis is down or slow: `on_failure`: `"local"` (default:
//! keep serving under this process's own limit) or `"deny"` (fail closed: the endpoint
//! answers 503 and a limited backend call fails until Redis is back). EE's boolean
//! `on_failure_allow` is read too: `false` means deny and `true` means local (EE lets
//! requests through unlimited; we keep the local limit, which is never less safe).

use std::time::Duration;

use serde_json::{Map, Value};

use super::client::ConnectOptions;
use crate::config::duration::parse_go_duration;

/// KrakenD EE's (go-redis') dial timeout.
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Ours: well above a healthy Redis' sub-millisecond answer, short enough that a stalled one
/// costs at most a quarter second of empty local buckets before the fallback applies.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_millis(250);

/// What a rate limit does while Redis is down or slow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// Keep serving under the process's own (local) limit.
    #[default]
    Local,
    /// Reject every request the limit covers until Redis answers again.
    Deny,
}

/// The service-level `redis` namespace, compiled: the named connections.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pools {
    pools: Vec<(String, ConnectOptions)>,
    clusters: Vec<String>,
}

impl Pools {
    pub fn get(&self, name: &str) -> Option<&ConnectOptions> {
        self.pools.iter().find(|(n, _)| n == name).map(|(_, o)| o)
    }
}

/// What one rate limit needs to lease from Redis.
#[derive(Clone, Debug, PartialEq)]
pub struct RedisSettings {
    /// The `connection_name` it refers to.
    pub connection_name: String,
    pub connect: ConnectOptions,
    pub on_failure: OnFailure,
}

/// Both halves at once: the service-level `redis` namespace (`None` when absent) and one
/// rate-limit block. `Ok(None)`: the block names no connection, so the limit stays local.
pub fn compile(
    service_redis: Option<&Value>,
    rate_limit: &Value,
) -> Result<Option<RedisSettings>, String> {
    let pools = match service_redis {
        Some(v) => compile_pools(v)?,
        None => Pools::default(),
    };
    compile_link(rate_limit, &pools)
}

/// Compile the service-level `redis` namespace.
pub fn compile_pools(fragment: &Value) -> Result<Pools, String> {
    let obj = fragment
        .as_object()
        .ok_or("redis: expected an object with \"connection_pools\"")?;
    let mut pools = Pools::default();
    for (key, value) in obj {
        match key.as_str() {
            "connection_pools" => {
                let list = value
                    .as_array()
                    .ok_or("redis.connection_pools: expected an array")?;
                for (i, item) in list.iter().enumerate() {
                    let at = format!("redis.connection_pools[{i}]");
                    let (name, opts) = compile_pool(item, &at)?;
                    if pools.get(&name).is_some() || pools.clusters.contains(&name) {
                        return Err(format!("{at}.name: {name:?} is declared twice"));
                    }
                    pools.pools.push((name, opts));
                }
            }
            "clusters" => {
                let list = value
                    .as_array()
                    .ok_or("redis.clusters: expected an array")?;
                for (i, item) in list.iter().enumerate() {
                    let name = item
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or(format!("redis.clusters[{i}].name: expected a string"))?;
                    pools.clusters.push(name.to_owned());
                }
            }
            // KrakenD: the schema allows comment-like keys starting with @ $ _ #.
            k if k.starts_with(['@', '$', '_', '#']) => {}
            other => return Err(format!("redis.{other}: unknown key")),
        }
    }
    Ok(pools)
}

/// EE keys that tune go-redis' pool and retries: no meaning for one lease connection.
const IGNORED_POOL_KEYS: &[&str] = &[
    "pool_size",
    "pool_timeout",
    "max_active_conns",
    "max_idle_conns",
    "min_idle_conns",
    "max_retries",
    "min_retry_backoff",
    "max_retry_backoff",
    "conn_max_idle_time",
    "conn_max_life_time",
    "opentelemetry",
];

fn compile_pool(item: &Value, at: &str) -> Result<(String, ConnectOptions), String> {
    let obj = item
        .as_object()
        .ok_or(format!("{at}: expected an object"))?;
    let name = string(obj, "name", at)?.ok_or(format!("{at}.name: required"))?;
    if name.is_empty() {
        return Err(format!("{at}.name: must not be empty"));
    }
    let address = string(obj, "address", at)?.ok_or(format!("{at}.address: required"))?;
    check_address(&address).map_err(|e| format!("{at}.address: {e}"))?;
    let mut opts = ConnectOptions::new(address);
    opts.password = string(obj, "password", at)?.filter(|p| !p.is_empty());
    opts.user = string(obj, "user_name", at)?.filter(|u| !u.is_empty());
    opts.client_name = string(obj, "client_name", at)?.filter(|c| !c.is_empty());
    if let Some(db) = obj.get("db") {
        opts.db = db
            .as_u64()
            .and_then(|d| u32::try_from(d).ok())
            .ok_or(format!("{at}.db: expected a non-negative integer"))?;
    }
    for (key, slot) in [
        ("dial_timeout", &mut opts.dial_timeout),
        ("read_timeout", &mut opts.read_timeout),
        ("write_timeout", &mut opts.write_timeout),
    ] {
        if let Some(text) = string(obj, key, at)? {
            let d = parse_go_duration(&text).map_err(|e| format!("{at}.{key}: {e}"))?;
            if d.is_zero() {
                return Err(format!("{at}.{key}: must be more than 0"));
            }
            *slot = d;
        }
    }
    for key in obj.keys() {
        match key.as_str() {
            "name" | "address" | "password" | "user_name" | "client_name" | "db"
            | "dial_timeout" | "read_timeout" | "write_timeout" => {}
            "tls" => {
                return Err(format!(
                    "{at}.tls: TLS to Redis is not supported; refusing rather than sending the password in clear"
                ))
            }
            k if IGNORED_POOL_KEYS.contains(&k) || k.starts_with(['@', '$', '_', '#']) => {}
            other => return Err(format!("{at}.{other}: unknown key")),
        }
    }
    Ok((name, opts))
}

/// Read the Redis keys of one rate-limit block and resolve its connection.
pub fn compile_link(rate_limit: &Value, pools: &Pools) -> Result<Option<RedisSettings>, String> {
    let Some(obj) = rate_limit.as_object() else {
        return Err("rate limit: expected an object".into());
    };
    let name = match (
        string(obj, "connection_name", "rate limit")?,
        string(obj, "connection_pool", "rate limit")?,
    ) {
        (Some(a), Some(b)) if a != b => {
            return Err(format!(
                "connection_name {a:?} and connection_pool {b:?} disagree; set only connection_name"
            ))
        }
        (Some(a), _) => a,
        (None, Some(b)) => b,
        (None, None) => {
            if obj.contains_key("on_failure") || obj.contains_key("on_failure_allow") {
                return Err("on_failure applies only with a connection_name".into());
            }
            return Ok(None);
        }
    };
    let on_failure = match (obj.get("on_failure"), obj.get("on_failure_allow")) {
        (Some(_), Some(_)) => {
            return Err("set on_failure or on_failure_allow, not both".into());
        }
        (Some(v), None) => match v.as_str() {
            Some("local") => OnFailure::Local,
            Some("deny") => OnFailure::Deny,
            _ => {
                return Err(format!(
                    "on_failure: expected \"local\" or \"deny\", got {v}"
                ))
            }
        },
        // KrakenD: EE's on_failure_allow=true lets requests through unlimited; the local
        // limit is the closest safe reading. false is EE's fail-closed.
        (None, Some(v)) => match v.as_bool() {
            Some(true) => OnFailure::Local,
            Some(false) => OnFailure::Deny,
            None => return Err(format!("on_failure_allow: expected true or false, got {v}")),
        },
        (None, None) => OnFailure::Local,
    };
    if pools.clusters.contains(&name) {
        return Err(format!(
            "connection_name {name:?} is a Redis Cluster, which is not supported; declare it in redis.connection_pools"
        ));
    }
    let connect = pools.get(&name).cloned().ok_or_else(|| {
        let known: Vec<&str> = pools.pools.iter().map(|(n, _)| n.as_str()).collect();
        if known.is_empty() {
            format!(
                "connection_name {name:?}: no service-level redis.connection_pools are declared"
            )
        } else {
            format!(
                "connection_name {name:?} is not declared in redis.connection_pools (declared: {})",
                known.join(", ")
            )
        }
    })?;
    Ok(Some(RedisSettings {
        connection_name: name,
        connect,
        on_failure,
    }))
}

fn string(obj: &Map<String, Value>, key: &str, at: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("{at}.{key}: expected a string, got {other}")),
    }
}

/// `host:port` or `[v6]:port`, with a port that fits in u16 and is not 0.
fn check_address(address: &str) -> Result<(), String> {
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(format!("{address:?} has no port (expected host:port)"));
    };
    if host.is_empty() || host == "[]" {
        return Err(format!("{address:?} has no host (expected host:port)"));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(format!("{address:?}: write an IPv6 address as [addr]:port"));
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(()),
        _ => Err(format!("{address:?} has no valid port")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service() -> Value {
        json!({
            "connection_pools": [
                { "name": "shared", "address": "10.0.0.5:6379", "password": "s3cret", "db": 2,
                  "dial_timeout": "2s", "read_timeout": "100ms", "write_timeout": "150ms",
                  "pool_size": 20, "user_name": "gw", "client_name": "proxy" },
                { "name": "plain", "address": "[::1]:6380" }
            ],
            "clusters": [ { "name": "big", "addresses": ["10.0.0.9:6379"] } ]
        })
    }

    #[test]
    fn a_rate_limit_naming_a_pool_gets_its_connection_settings() {
        let rl = json!({ "max_rate": 10, "connection_name": "shared" });
        let s = compile(Some(&service()), &rl).unwrap().unwrap();
        assert_eq!(s.connection_name, "shared");
        assert_eq!(s.on_failure, OnFailure::Local);
        let c = &s.connect;
        assert_eq!(c.address, "10.0.0.5:6379");
        assert_eq!(c.password.as_deref(), Some("s3cret"));
        assert_eq!(c.user.as_deref(), Some("gw"));
        assert_eq!(c.client_name.as_deref(), Some("proxy"));
        assert_eq!(c.db, 2);
        assert_eq!(c.dial_timeout, Duration::from_secs(2));
        assert_eq!(c.read_timeout, Duration::from_millis(100));
        assert_eq!(c.write_timeout, Duration::from_millis(150));
    }

    #[test]
    fn printed_settings_do_not_show_the_password() {
        let rl = json!({ "max_rate": 10, "connection_name": "shared" });
        let s = compile(Some(&service()), &rl).unwrap().unwrap();
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn defaults_are_db_zero_no_auth_and_the_documented_timeouts() {
        let rl = json!({ "max_rate": 10, "connection_name": "plain" });
        let c = compile(Some(&service()), &rl).unwrap().unwrap().connect;
        assert_eq!((c.db, c.password, c.user), (0, None, None));
        assert_eq!(c.dial_timeout, DEFAULT_DIAL_TIMEOUT);
        assert_eq!(c.read_timeout, Duration::from_millis(250));
        assert_eq!(c.write_timeout, Duration::from_millis(250));
    }

    #[test]
    fn a_rate_limit_without_a_connection_stays_local() {
        assert_eq!(
            compile(Some(&service()), &json!({ "max_rate": 10 })),
            Ok(None)
        );
        assert_eq!(compile(None, &json!({ "max_rate": 10 })), Ok(None));
    }

    #[test]
    fn on_failure_reads_ours_and_ees_spelling() {
        let with = |extra: Value| {
            let mut rl = json!({ "max_rate": 1, "connection_name": "plain" });
            for (k, v) in extra.as_object().unwrap() {
                rl[k] = v.clone();
            }
            compile(Some(&service()), &rl).map(|s| s.unwrap().on_failure)
        };
        assert_eq!(with(json!({ "on_failure": "deny" })), Ok(OnFailure::Deny));
        assert_eq!(with(json!({ "on_failure": "local" })), Ok(OnFailure::Local));
        assert_eq!(
            with(json!({ "on_failure_allow": false })),
            Ok(OnFailure::Deny)
        );
        assert_eq!(
            with(json!({ "on_failure_allow": true })),
            Ok(OnFailure::Local)
        );
        assert!(with(json!({ "on_failure": "allow" })).is_err());
        assert!(with(json!({ "on_failure": "deny", "on_failure_allow": true })).is_err());
        assert!(with(json!({ "on_failure_allow": "yes" })).is_err());
        assert_eq!(
            with(json!({ "connection_pool": "plain" })),
            Ok(OnFailure::Local)
        );
        assert!(with(json!({ "connection_pool": "shared" })).is_err());
    }

    #[test]
    fn mistakes_fail_at_startup_with_the_path() {
        let cases = [
            (
                json!({ "connection_pools": [ { "name": "a" } ] }),
                "address: required",
            ),
            (
                json!({ "connection_pools": [ { "address": "h:1" } ] }),
                "name: required",
            ),
            (
                json!({ "connection_pools": [ { "name": "a", "address": "redis" } ] }),
                "no port",
            ),
            (
                json!({ "connection_pools": [ { "name": "a", "address": "h:99999" } ] }),
                "no valid port",
            ),
            (
                json!({ "connection_pools": [ { "name": "a", "address": "::1:6379" } ] }),
                "IPv6",
            ),
            (
                json!({ "connection_pools": [ { "name": "a", "address": "h:1", "db": -1 } ] }),
                "db",
            ),
            (
                json!({ "connection_pools": [ { "name": "a", "address": "h:1", "read_timeout": "fast" } ] }),
                "read_timeout",
            ),
            (
                json!({ "connection_pools": [ { "name": "a", "address": "h:1", "read_timeout": "0s" } ] }),
                "more than 0",
            ),
            (
                json!({ "connection_pools": [ { "name": "a", "address": "h:1", "tls": {} } ] }),
                "TLS",
            ),
            (
                json!({ "connection_pools": [ { "name": "a", "address": "h:1", "pasword": "x" } ] }),
                "pasword: unknown key",
            ),
            (
                json!({ "connection_pools": [ { "name": "a", "address": "h:1" }, { "name": "a", "address": "h:2" } ] }),
                "twice",
            ),
            (json!({ "connection_pool": [] }), "unknown key"),
            (json!([]), "expected an object"),
        ];
        for (fragment, want) in cases {
            let err = compile_pools(&fragment).unwrap_err();
            assert!(
                err.contains(want),
                "{fragment}: {err:?} should mention {want:?}"
            );
            assert!(err.starts_with("redis"), "{err:?} names where");
        }
    }

    #[test]
    fn naming_an_unknown_or_cluster_connection_fails() {
        let err = compile(Some(&service()), &json!({ "connection_name": "nope" })).unwrap_err();
        assert!(err.contains("declared: shared, plain"), "{err}");
        let err = compile(Some(&service()), &json!({ "connection_name": "big" })).unwrap_err();
        assert!(err.contains("Redis Cluster"), "{err}");
        let err = compile(None, &json!({ "connection_name": "x" })).unwrap_err();
        assert!(err.contains("no service-level"), "{err}");
        let err = compile(None, &json!({ "on_failure": "deny" })).unwrap_err();
        assert!(err.contains("only with a connection_name"), "{err}");
    }
}
