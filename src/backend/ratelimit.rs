//! `qos/ratelimit/proxy`: a backend's own limit. Over it, the call fails without reaching the
//! backend (KrakenD's `rate limit exceded` error), so the endpoint answers 500 or a partial
//! response like for any failing backend. Exact per process (see `guard::ratelimit`).

use crate::guard::ratelimit::config::ProxyConfig;
use crate::guard::ratelimit::{self, registry, Limiter};
use std::sync::Arc;

#[derive(Debug)]
pub struct BackendLimit {
    limiter: Arc<Limiter>,
}

impl BackendLimit {
    /// Compile the block of backend `place` (endpoint and index). None when `max_rate` is 0.
    pub fn compile(v: &serde_json::Value, place: &str) -> Result<Option<BackendLimit>, String> {
        let c = ProxyConfig::parse(v)?;
        if c.max_rate <= 0.0 {
            return Ok(None);
        }
        let limiter = registry::shared(format!("proxy {place} {v}"), || {
            Limiter::new(
                c.max_rate,
                c.capacity,
                ratelimit::workers(),
                ratelimit::now_ns(),
            )
        });
        Ok(Some(BackendLimit { limiter }))
    }

    /// Take a token for one call on this core.
    #[inline]
    pub fn admit(&self) -> bool {
        self.limiter.admit(ratelimit::core(), ratelimit::now_ns)
    }

    pub fn flush(&self, core: usize, now: u64) {
        self.limiter.flush(core, now);
    }

    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
    }
}
