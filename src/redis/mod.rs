//! Cluster-wide rate limits on Redis: N gateway processes share one token bucket.
//!
//! KrakenD CE counts per instance, so N instances behind a balancer admit N × the limit;
//! KrakenD EE fixes that with Redis. Here the process-wide bucket of a rate limit stops
//! refilling itself and is fed instead with batches of tokens *leased* from a bucket in Redis:
//! one atomic script call per batch, never per request, and nothing of this on an event loop.
//!
//! - [`resp`]: the RESP2 wire format, sans-io, bounded, never panicking on bad bytes.
//! - [`client`]: a blocking connection with dial/read/write timeouts, AUTH, SELECT, PING and
//!   `EVALSHA` falling back to `EVAL` on `NOSCRIPT`.
//! - [`bucket`]: [`ClusterBucket`], the shared bucket (one Lua script, Redis' clock).
//! - [`feeder`]: the background loop that keeps a local bucket topped up and reports when
//!   Redis is down so the caller falls back ([`OnFailure`]).
//! - [`config`]: KrakenD EE's `redis` connection pools and `connection_name`.
//!
//! # Wiring it to a process-wide bucket
//! `guard::ratelimit::cluster` does this for `qos/ratelimit/router` and `qos/ratelimit/proxy`
//! blocks that name a connection; in outline:
//! ```ignore
//! use proxy::redis::{self, ClusterBucket, FeederConfig, LocalBucket};
//!
//! // At plan time: the service-level "redis" namespace and the endpoint's rate-limit block.
//! let Some(settings) = redis::config::compile(service_redis, rate_limit_block)? else {
//!     return Ok(/* a purely local limit */);
//! };
//! // Startup: one bucket per limit; the key must be the same in every process and unique
//! // per limit, e.g. "proxy:rl:" + method + " " + endpoint path.
//! let bucket = ClusterBucket::new(settings.connect, key, max_rate_per_sec, capacity)?;
//! let fed = Fed { bucket: Arc::clone(&process_bucket), deny, on_failure: settings.on_failure };
//! let feeder = redis::spawn(bucket, fed, FeederConfig::for_rate(max_rate_per_sec, capacity))?;
//! // Keep `feeder` alive as long as the limit; dropping it stops the thread.
//!
//! // The process-wide bucket of `qos/ratelimit/router` (guard/ratelimit/process.rs).
//! struct Fed { bucket: Arc<ProcessBucket>, deny: Arc<AtomicBool>, on_failure: OnFailure }
//! impl LocalBucket for Fed {
//!     fn level(&self) -> u64 { self.bucket.level() as u64 }
//!     fn deposit(&self, n: u64) -> u64 { self.bucket.deposit(n) }   // the accepted count
//!     fn set_healthy(&self, healthy: bool) {
//!         // true: stop refilling locally, take only deposits.
//!         // false: refill at the local max_rate again (OnFailure::Local), or, for
//!         //        OnFailure::Deny, the guard rejects every request until set_healthy(true).
//!         self.bucket.set_fed_externally(healthy, now_ns());
//!         self.deny.store(!healthy && self.on_failure == OnFailure::Deny, Relaxed);
//!     }
//! }
//! ```
//! The feeder calls `set_healthy` once after its first lease attempt and then only on a
//! change, so a bucket can start in its fallback mode (the local limit) and switch to Redis
//! when the first lease succeeds. Only the limit's `max_rate` is cluster-wide; per-client
//! limits (`client_max_rate`) stay per process.

pub mod bucket;
pub mod client;
pub mod config;
pub mod feeder;
pub mod resp;

pub use bucket::ClusterBucket;
pub use client::{Client, ConnectOptions};
pub use config::{OnFailure, Pools, RedisSettings};
pub use feeder::{run, spawn, Feeder, FeederConfig, FeederState, LocalBucket};

/// Why a Redis call failed. Every variant means "no tokens from Redis this time".
#[derive(Debug)]
pub enum RedisError {
    /// Could not resolve or dial the address within the dial timeout.
    Connect(String),
    /// The read or write timeout passed: Redis is down or too slow.
    Timeout,
    /// The connection broke (reset, closed by the server).
    Io(std::io::Error),
    Closed,
    /// The bytes were not RESP2.
    Protocol(String),
    /// Redis answered with an error (`-ERR ...`, a refused AUTH, a failing script).
    Server(String),
    /// A well-formed reply of the wrong shape.
    Unexpected(String),
}

impl std::fmt::Display for RedisError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedisError::Connect(e) => write!(f, "cannot connect: {e}"),
            RedisError::Timeout => f.write_str("timed out"),
            RedisError::Io(e) => write!(f, "connection error: {e}"),
            RedisError::Closed => f.write_str("connection closed by the server"),
            RedisError::Protocol(e) => write!(f, "protocol error: {e}"),
            RedisError::Server(e) => write!(f, "server error: {e}"),
            RedisError::Unexpected(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for RedisError {}

impl From<std::io::Error> for RedisError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            // std reports an expired socket timeout as WouldBlock on Unix.
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => RedisError::Timeout,
            _ => RedisError::Io(e),
        }
    }
}

impl From<resp::ProtocolError> for RedisError {
    fn from(e: resp::ProtocolError) -> Self {
        RedisError::Protocol(e.to_string())
    }
}
