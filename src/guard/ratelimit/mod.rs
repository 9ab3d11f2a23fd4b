//! Rate limits, as KrakenD CE's `krakend-ratelimit` defines them, exact per process on a
//! thread-per-core runtime. See `DESIGN.md` beside this file.
//!
//! - [`process::ProcessBucket`]: the process-wide token bucket (atomics; feedable from outside).
//! - [`shard::Limiter`]: per-core shards that borrow from it in small batches.
//! - [`clients::ClientTable`]: per-client buckets, lock-free, bounded memory.
//! - [`router`]: `qos/ratelimit/router` (endpoint level: 503 / 429).
//! - [`registry`]: limits that survive a reload when their config is unchanged.
//! - [`cluster`]: `connection_name`: a limit's `max_rate` shared by all processes on Redis.
//!
//! The backend level (`qos/ratelimit/proxy`) lives beside the backend (`backend::ratelimit`).

pub mod clients;
pub mod cluster;
pub mod config;
pub mod process;
pub mod registry;
pub mod router;
pub mod shard;

pub use process::ProcessBucket;
pub use shard::Limiter;

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// KrakenD's error text for a refused call (`krakendrate.ErrLimited`, spelling included).
// KrakenD: "exceded" is KrakenD's spelling; it shows in `return_error_msg` bodies.
pub const ERR_LIMITED: &str = "rate limit exceded";

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the process's rate-limit epoch (monotonic; a vDSO read, no syscall).
#[inline]
pub fn now_ns() -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

static WORKERS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static CORE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// How many event loops run (set once at startup, before the plan is compiled): the number
/// of shards each limit gets. Unset: the machine's parallelism.
pub fn set_workers(n: usize) {
    WORKERS.store(n, Ordering::Relaxed);
}

pub fn workers() -> usize {
    match WORKERS.load(Ordering::Relaxed) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Called by worker `i` on its own thread: it owns shard `i` of every limit.
pub fn set_core(i: usize) {
    CORE.with(|c| c.set(i));
}

/// This thread's shard index (`usize::MAX` off the event loops: no shard, direct path).
#[inline]
pub fn core() -> usize {
    CORE.with(|c| c.get())
}
