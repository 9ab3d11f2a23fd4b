//! Cluster-wide limits: an endpoint (`qos/ratelimit/router`) or backend
//! (`qos/ratelimit/proxy`) limit whose block names a Redis connection (`connection_name`)
//! has its `max_rate` shared by every gateway process pointing at that Redis.
//!
//! The per-core shards and the [`ProcessBucket`](super::ProcessBucket) are unchanged; only
//! what fills the bucket changes. A background feeder thread (`redis::feeder`) leases
//! batches of tokens from one Redis key per limit (one script call per batch, never per
//! request) and deposits them; the bucket's own clock refill is off while Redis answers.
//! See `DESIGN.md` beside this file for the bound and the failure modes.
//!
//! Life cycle: [`ClusterLimit`] is compiled with the plan (so `proxy check` sees the same
//! errors) but its feeder starts only when `proxy run` calls [`start`] on a plan it is about
//! to serve. It lives in the reload registry beside its limiter, so a reload that keeps the
//! limit keeps the feeder; the last plan using it stops the feeder when dropped, without
//! waiting for the thread (that may happen on an event loop).

use super::{now_ns, Limiter};
use crate::redis::{self, ClusterBucket, Feeder, FeederConfig, LocalBucket, OnFailure};
use crate::redis::{Pools, RedisSettings};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long `proxy run` waits, at startup and on reload, for each new feeder's first lease
/// attempt before serving: on loopback or a LAN it answers in a millisecond, so traffic meets
/// a bucket already fed from Redis (no startup burst); a Redis that does not answer costs at
/// most this, then the limit serves under its fallback until it does.
const FIRST_LEASE_WAIT: Duration = Duration::from_secs(1);

/// The Redis side of one limit.
pub struct ClusterLimit {
    link: Arc<Link>,
    settings: RedisSettings,
    key: String,
    feeder: OnceLock<Feeder>,
}

impl std::fmt::Debug for ClusterLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterLimit")
            .field("key", &self.key)
            .field("connection_name", &self.settings.connection_name)
            .field("on_failure", &self.settings.on_failure)
            .finish()
    }
}

/// What the feeder thread holds: the limiter it fills and the deny switch. Not the
/// [`ClusterLimit`] itself, which owns the feeder (no cycle: dropping the limit stops it).
struct Link {
    limiter: Arc<Limiter>,
    /// Set while Redis is down and `on_failure` is `deny`: the guard refuses everything.
    deny: AtomicBool,
    on_failure: OnFailure,
    /// `GET /path` or the backend's place, for log lines.
    label: String,
    announced: AtomicBool,
}

impl LocalBucket for Link {
    fn level(&self) -> u64 {
        self.limiter.bucket().level() as u64
    }

    fn deposit(&self, tokens: u64) -> u64 {
        self.limiter.bucket().deposit(tokens)
    }

    fn set_healthy(&self, healthy: bool) {
        let bucket = self.limiter.bucket();
        if healthy {
            // Clock refill off first, then drop what the clock earned: from here on this
            // process spends only tokens Redis granted (a new bucket starts full; spending
            // that on top of the shared bucket would let N processes burst N × capacity).
            bucket.set_fed_externally(true, now_ns());
            bucket.drain();
            self.deny.store(false, Ordering::Release);
            if !self.announced.swap(true, Ordering::Relaxed) {
                crate::info!(
                    "rate limit {}: max_rate is cluster-wide (tokens leased from Redis)",
                    self.label
                );
            }
        } else {
            self.deny
                .store(self.on_failure == OnFailure::Deny, Ordering::Release);
            bucket.set_fed_externally(false, now_ns());
        }
    }
}

impl ClusterLimit {
    /// The Redis side of `limiter`, leasing from `key` (the same in every process).
    /// Nothing connects until [`start`].
    fn new(limiter: Arc<Limiter>, settings: RedisSettings, key: String, label: String) -> Self {
        let on_failure = settings.on_failure;
        ClusterLimit {
            link: Arc::new(Link {
                limiter,
                // Fail closed means closed until Redis has answered once.
                deny: AtomicBool::new(on_failure == OnFailure::Deny),
                on_failure,
                label,
                announced: AtomicBool::new(false),
            }),
            settings,
            key,
            feeder: OnceLock::new(),
        }
    }

    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.link.limiter
    }

    /// One line for `proxy check -d`: where the limit leases from and what it does without.
    pub fn describe(&self) -> String {
        let on_failure = match self.settings.on_failure {
            OnFailure::Local => "local",
            OnFailure::Deny => "deny",
        };
        format!(
            "{}: max_rate cluster-wide on redis {:?} ({}), key {:?}, on_failure {on_failure}",
            self.link.label, self.settings.connection_name, self.settings.connect.address, self.key
        )
    }

    /// The Redis key of the shared bucket.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether the guard must refuse every request (Redis down, `on_failure: deny`). One
    /// relaxed load of a line written only when Redis' health changes.
    #[inline]
    pub fn denies(&self) -> bool {
        self.link.deny.load(Ordering::Relaxed)
    }

    /// Start the feeder thread, once (a limit kept across a reload is already started).
    /// Returns whether this call started it.
    fn start(&self) -> Result<bool, String> {
        if self.feeder.get().is_some() {
            return Ok(false);
        }
        let bucket = self.link.limiter.bucket();
        let (rate, capacity) = (bucket.rate(), bucket.capacity());
        let cluster = ClusterBucket::new(self.settings.connect.clone(), &self.key, rate, capacity)?;
        let feeder = redis::spawn(
            cluster,
            Arc::clone(&self.link),
            FeederConfig::for_rate(rate, capacity),
        )
        .map_err(|e| {
            format!(
                "rate limit {}: cannot start its Redis feeder: {e}",
                self.key
            )
        })?;
        // Only `proxy run`'s main thread starts feeders, so no other call races this one.
        Ok(self.feeder.set(feeder).is_ok())
    }

    fn answered_once(&self) -> bool {
        self.feeder
            .get()
            .is_some_and(|f| f.state().leases() + f.state().failures() > 0)
    }
}

impl Drop for ClusterLimit {
    fn drop(&mut self) {
        if let Some(f) = self.feeder.take() {
            f.detach();
        }
    }
}

/// Start the feeders of `limits` that are not running yet, then wait (at most
/// [`FIRST_LEASE_WAIT`]) until each new one has tried its first lease. Called by `proxy
/// run` on the main thread, at startup and on reload; never by `proxy check`.
pub fn start<'a>(limits: impl IntoIterator<Item = &'a Arc<ClusterLimit>>) -> Result<(), String> {
    let mut started = Vec::new();
    for l in limits {
        if l.start()? {
            started.push(Arc::clone(l));
        }
    }
    let deadline = Instant::now() + FIRST_LEASE_WAIT;
    while !started.iter().all(|l| l.answered_once()) {
        if Instant::now() >= deadline {
            crate::warn!(
                "redis: no answer to the first lease within {FIRST_LEASE_WAIT:?}; serving \
                 under each limit's on_failure until Redis answers"
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// The Redis key of a limit: the same in every process that serves the same endpoint.
pub fn redis_key(what: &str) -> String {
    format!("proxy:rl:{what}")
}

/// The cluster side of a rate-limit block, if it names a connection; `limiter` makes the
/// process-wide limiter (shared with the previous plan when nothing about it changed).
/// `id` identifies the block in the reload registry; `what` names the limit in Redis and in
/// logs (`GET /path`). `ns` prefixes error messages.
pub fn compile(
    block: &serde_json::Value,
    pools: &Pools,
    ns: &str,
    id: &str,
    what: &str,
    max_rate: f64,
    limiter: impl FnOnce() -> Limiter,
) -> Result<Option<Arc<ClusterLimit>>, String> {
    let Some(settings) =
        redis::config::compile_link(block, pools).map_err(|e| format!("{ns}: {e}"))?
    else {
        return Ok(None);
    };
    if max_rate <= 0.0 {
        return Err(format!(
            "{ns}: connection_name makes max_rate cluster-wide, and this block has no max_rate \
             (client_max_rate stays per process)"
        ));
    }
    // The connection's settings are part of the identity: a reload that points the limit at
    // another Redis (or changes its password) starts a new feeder.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let c = &settings.connect;
    (&c.address, &c.user, &c.password, c.db, &c.client_name).hash(&mut h);
    (c.dial_timeout, c.read_timeout, c.write_timeout).hash(&mut h);
    let reg = format!("{id} cluster {:x}", h.finish());
    let key = redis_key(what);
    let label = what.to_string();
    Ok(Some(super::registry::shared(reg, move || {
        ClusterLimit::new(Arc::new(limiter()), settings, key, label)
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pools() -> Pools {
        let service =
            json!({ "connection_pools": [ { "name": "shared", "address": "127.0.0.1:1" } ] });
        redis::config::compile_pools(&service).unwrap()
    }

    fn cluster(block: serde_json::Value, id: &str) -> Result<Option<Arc<ClusterLimit>>, String> {
        let rate = block["max_rate"].as_f64().unwrap_or(0.0);
        compile(&block, &pools(), "ns", id, "GET /x", rate, || {
            Limiter::new(rate.max(1.0), 10, 1, 0)
        })
    }

    #[test]
    fn only_a_block_naming_a_connection_is_cluster_wide() {
        assert!(cluster(json!({ "max_rate": 10 }), "t1").unwrap().is_none());
        let c = cluster(json!({ "max_rate": 10, "connection_name": "shared" }), "t2")
            .unwrap()
            .unwrap();
        assert_eq!(c.key(), "proxy:rl:GET /x");
        let e = cluster(json!({ "max_rate": 10, "connection_name": "nope" }), "t3").unwrap_err();
        assert!(e.starts_with("ns: connection_name \"nope\""), "{e}");
        let e = cluster(
            json!({ "client_max_rate": 10, "strategy": "ip", "connection_name": "shared" }),
            "t4",
        )
        .unwrap_err();
        assert!(e.contains("no max_rate"), "{e}");
    }

    #[test]
    fn switching_to_redis_drops_the_local_tokens_and_deny_closes_until_redis_answers() {
        let c = cluster(
            json!({ "max_rate": 10, "connection_name": "shared", "on_failure": "deny" }),
            "t5",
        )
        .unwrap()
        .unwrap();
        assert!(c.denies(), "fail closed until the first lease");
        let bucket = c.limiter().bucket();
        assert_eq!(bucket.level(), 10.0, "a new bucket starts full");
        c.link.set_healthy(true);
        assert!(!c.denies());
        assert!(bucket.is_fed_externally());
        assert_eq!(
            bucket.level(),
            0.0,
            "local tokens never add to the cluster's"
        );
        assert_eq!(c.link.deposit(3), 3);
        c.link.set_healthy(false);
        assert!(c.denies());
        assert!(!bucket.is_fed_externally(), "the local refill resumes");
    }

    #[test]
    fn on_failure_local_falls_back_to_the_local_limit_without_denying() {
        let c = cluster(json!({ "max_rate": 10, "connection_name": "shared" }), "t6")
            .unwrap()
            .unwrap();
        assert!(!c.denies());
        c.link.set_healthy(true);
        c.link.set_healthy(false);
        assert!(!c.denies());
        assert!(!c.limiter().bucket().is_fed_externally());
    }
}
