//! `qos/ratelimit/proxy`: a backend's own limit. Over it, the call fails without reaching the
//! backend (KrakenD's `rate limit exceded` error), so the endpoint answers 500 or a partial
//! response like for any failing backend. Exact per process (see `guard::ratelimit`).

use crate::guard::ratelimit::cluster::{self, ClusterLimit};
use crate::guard::ratelimit::config::ProxyConfig;
use crate::guard::ratelimit::{self, registry, Limiter};
use crate::redis::Pools;
use std::sync::Arc;

#[derive(Debug)]
pub struct BackendLimit {
    limiter: Arc<Limiter>,
    /// Set when `connection_name` makes the limit cluster-wide (its limiter is `limiter`).
    cluster: Option<Arc<ClusterLimit>>,
}

impl BackendLimit {
    /// Compile the block of backend `place` (endpoint and index). None when `max_rate` is 0.
    /// `pools`: the service-level `redis` connections, for a block naming one.
    pub fn compile(
        v: &serde_json::Value,
        place: &str,
        pools: &Pools,
    ) -> Result<Option<BackendLimit>, String> {
        let c = ProxyConfig::parse(v)?;
        let id = format!("proxy {place} {v}");
        let make = || {
            Limiter::new(
                c.max_rate,
                c.capacity,
                ratelimit::workers(),
                ratelimit::now_ns(),
            )
        };
        let cluster = cluster::compile(v, pools, ProxyConfig::NS, &id, place, c.max_rate, make)?;
        if let Some(cl) = cluster {
            let limiter = Arc::clone(cl.limiter());
            return Ok(Some(BackendLimit {
                limiter,
                cluster: Some(cl),
            }));
        }
        if c.max_rate <= 0.0 {
            return Ok(None);
        }
        let limiter = registry::shared(id, make);
        Ok(Some(BackendLimit {
            limiter,
            cluster: None,
        }))
    }

    /// Take a token for one call on this core (none while a cluster-wide limit with
    /// `on_failure: deny` has lost Redis).
    #[inline]
    pub fn admit(&self) -> bool {
        !self.cluster.as_ref().is_some_and(|c| c.denies())
            && self.limiter.admit(ratelimit::core(), ratelimit::now_ns)
    }

    /// The Redis side, when the limit is cluster-wide.
    pub fn cluster(&self) -> Option<&Arc<ClusterLimit>> {
        self.cluster.as_ref()
    }

    pub fn flush(&self, core: usize, now: u64) {
        self.limiter.flush(core, now);
    }

    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
    }
}
