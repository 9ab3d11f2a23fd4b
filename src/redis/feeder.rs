//! The feeder: a background thread that keeps a process-local bucket topped up with tokens
//! leased from a [`ClusterBucket`], and switches it to its fallback when Redis fails.
//!
//! The loop: when the local level is below the low-water mark, lease one batch and deposit
//! what was granted (what a full local bucket refuses goes straight back to Redis); when the
//! shared bucket is empty, wait one batch time; when Redis fails, report unhealthy once, log
//! once, and retry with exponential backoff (each retry dials again) until a lease succeeds.
//!
//! # Batch sizing and accuracy
//! The admitted rate cannot exceed the limit because of batching: the script in Redis is the
//! only place tokens are created, every process spends only tokens it was granted, and the
//! grants over any interval add up to at most `capacity + rate * elapsed` (Redis' clock). A
//! batch only decides how many granted tokens sit unspent in one process at a time. With
//! [`FeederConfig::for_rate`], a batch is the tokens of 10 ms of the limit (at least 1, at
//! most half the capacity) and the low-water mark equals one batch, so each process holds
//! outside its per-core shards at most about two batches, 20 ms of the limit: N processes under-use the limit by at most
//! N × 2 % of one second's tokens at the moment the load moves between them, and never
//! over-use it. The cost is about one script call per batch: a process that spends tokens
//! at the full limit makes `rate / batch` calls per second (100 with the defaults), one
//! whose shared bucket is empty waits one batch time between calls (again at most 100 per
//! second), and one whose local level stays above the mark makes none.
//!
//! # Failure
//! Any lease error (dial, read or write timeout, connection reset, a refused script) makes the
//! feeder call `set_healthy(false)` and log one warning; the caller then applies its
//! fallback (`on_failure`: the local limit, or deny). The first lease that succeeds again
//! calls `set_healthy(true)` and logs once. A Redis that answers but slower than the read
//! timeout counts as down.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::bucket::ClusterBucket;

/// What the feeder needs from the process-wide bucket it feeds. Called from the feeder
/// thread only, hence `Send + Sync` (the bucket is shared with the workers).
pub trait LocalBucket: Send + Sync {
    /// Tokens available now in the process-wide bucket (not counting those already handed
    /// to per-core shards).
    fn level(&self) -> u64;
    /// Add tokens granted by Redis; returns how many it accepted. A full bucket may refuse
    /// some: the feeder gives those back to Redis and waits before leasing again.
    fn deposit(&self, tokens: u64) -> u64;
    /// `true`: Redis is reachable; the bucket is fed by [`LocalBucket::deposit`] only.
    /// `false`: Redis failed; apply the fallback (refill locally at the local limit, or deny
    /// everything when configured to fail closed). Called once per change, and once after
    /// the first lease attempt.
    fn set_healthy(&self, healthy: bool);
}

impl<T: LocalBucket + ?Sized> LocalBucket for Arc<T> {
    fn level(&self) -> u64 {
        (**self).level()
    }
    fn deposit(&self, tokens: u64) -> u64 {
        (**self).deposit(tokens)
    }
    fn set_healthy(&self, healthy: bool) {
        (**self).set_healthy(healthy)
    }
}

/// How the feeder paces itself. [`FeederConfig::for_rate`] gives the documented defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct FeederConfig {
    /// Tokens asked for in one lease.
    pub batch: u64,
    /// Lease when the local level is below this.
    pub low_water: u64,
    /// How often the level is checked while it is above the mark.
    pub poll: Duration,
    /// First and longest wait between retries while Redis is down.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl FeederConfig {
    /// Batch = 10 ms of tokens (1 ..= capacity / 2), low-water mark = one batch, poll = half
    /// the time one batch lasts at the limit (1 ms ..= 20 ms), backoff 50 ms doubling to 2 s.
    pub fn for_rate(rate: f64, capacity: u64) -> FeederConfig {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            1.0
        };
        let per_10ms = (rate / 100.0).ceil();
        let max_batch = (capacity / 2).max(1);
        let batch = if per_10ms >= max_batch as f64 {
            max_batch
        } else {
            (per_10ms as u64).max(1)
        };
        let batch_secs = batch as f64 / rate / 2.0;
        let poll = Duration::from_secs_f64(batch_secs.clamp(0.001, 0.020));
        FeederConfig {
            batch,
            low_water: batch,
            poll,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
        }
    }
}

/// Shared between the feeder thread and whoever watches it.
#[derive(Debug, Default)]
pub struct FeederState {
    stop: AtomicBool,
    healthy: AtomicBool,
    granted: AtomicU64,
    returned: AtomicU64,
    leases: AtomicU64,
    failures: AtomicU64,
}

impl FeederState {
    pub fn new() -> Self {
        Self::default()
    }
    /// Whether the last lease succeeded.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
    /// Tokens granted by Redis so far.
    pub fn granted(&self) -> u64 {
        self.granted.load(Ordering::Relaxed)
    }
    /// Tokens the local bucket refused and the feeder gave back to Redis so far.
    pub fn returned(&self) -> u64 {
        self.returned.load(Ordering::Relaxed)
    }
    /// Script calls that succeeded so far.
    pub fn leases(&self) -> u64 {
        self.leases.load(Ordering::Relaxed)
    }
    /// Lease attempts that failed so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
    /// Ask [`run`] to return; it notices within one sleep slice (at most 20 ms).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// The feeder loop; returns when `state.stop()` is called. Runs on the caller's thread,
/// which must be a plain thread (it blocks on the network): see [`spawn`].
pub fn run<L: LocalBucket + ?Sized>(
    bucket: &mut ClusterBucket,
    local: &L,
    cfg: &FeederConfig,
    state: &FeederState,
) {
    let batch = cfg.batch.max(1);
    let starved_wait = Duration::from_secs_f64((batch as f64 / bucket.rate()).clamp(0.001, 0.050));
    let mut reported: Option<bool> = None;
    let mut backoff = cfg.backoff_min;
    let mut jitter = Jitter::new();
    while !state.stopping() {
        // While healthy, lease only below the mark; while unhealthy, every attempt is a probe.
        let healthy = reported == Some(true);
        if healthy && local.level() >= cfg.low_water {
            sleep(state, cfg.poll);
            continue;
        }
        match bucket.lease(batch) {
            Ok(granted) => {
                state.leases.fetch_add(1, Ordering::Relaxed);
                state.granted.fetch_add(granted, Ordering::Relaxed);
                // The local bucket hears of a change before `healthy()` shows it, so whoever
                // sees the feeder healthy sees the local side told.
                if reported != Some(true) {
                    if reported == Some(false) {
                        crate::info!(
                            "redis {}: lease works again; the cluster-wide limit applies",
                            bucket.key()
                        );
                    }
                    local.set_healthy(true);
                    reported = Some(true);
                }
                state.healthy.store(true, Ordering::Relaxed);
                backoff = cfg.backoff_min;
                let accepted = if granted > 0 {
                    local.deposit(granted).min(granted)
                } else {
                    0
                };
                if accepted < granted {
                    // The local bucket is full (its shards hold the rest): hand the surplus
                    // back so other processes can spend it, and let the level fall first.
                    // Should that call fail, the tokens are lost to the cluster (an
                    // under-use, never an excess); the next lease reports the failure.
                    if bucket.give_back(granted - accepted).is_ok() {
                        state
                            .returned
                            .fetch_add(granted - accepted, Ordering::Relaxed);
                    }
                    sleep(state, cfg.poll);
                } else if granted < batch {
                    // The shared bucket is empty: wait one batch's worth of time. Tokens
                    // keep accruing in Redis meanwhile (up to its capacity, at least two
                    // batches), so waiting loses none; it only caps the calls of a starved
                    // process at one per batch time.
                    sleep(state, starved_wait);
                }
            }
            Err(e) => {
                state.failures.fetch_add(1, Ordering::Relaxed);
                if reported != Some(false) {
                    crate::warn!(
                        "redis {}: lease failed ({e}); using the fallback until Redis answers again",
                        bucket.key()
                    );
                    local.set_healthy(false);
                    reported = Some(false);
                }
                state.healthy.store(false, Ordering::Relaxed);
                sleep(state, jitter.spread(backoff));
                backoff = (backoff * 2).min(cfg.backoff_max);
            }
        }
    }
}

/// A feeder on its own thread, stopped and joined on drop.
pub struct Feeder {
    state: Arc<FeederState>,
    thread: Option<JoinHandle<()>>,
}

/// Start [`run`] on a new thread named `redis-feeder`.
pub fn spawn<L: LocalBucket + 'static>(
    mut bucket: ClusterBucket,
    local: L,
    cfg: FeederConfig,
) -> std::io::Result<Feeder> {
    let state = Arc::new(FeederState::new());
    let shared = Arc::clone(&state);
    let thread = std::thread::Builder::new()
        .name("redis-feeder".into())
        .spawn(move || run(&mut bucket, &local, &cfg, &shared))?;
    Ok(Feeder {
        state,
        thread: Some(thread),
    })
}

impl Feeder {
    pub fn state(&self) -> &FeederState {
        &self.state
    }
    pub fn healthy(&self) -> bool {
        self.state.healthy()
    }

    /// Stop the thread without waiting for it: it notices within one sleep slice, or when
    /// the Redis call it is in returns (bounded by the timeouts). For an owner that must not
    /// block, such as an event loop dropping the last plan that used the limit.
    pub fn detach(mut self) {
        self.state.stop();
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
        }
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.state.stop();
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// Sleep `total`, in slices, returning early when asked to stop (a drop unparks us too).
fn sleep(state: &FeederState, total: Duration) {
    let deadline = Instant::now() + total;
    loop {
        if state.stopping() {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        std::thread::park_timeout((deadline - now).min(Duration::from_millis(20)));
    }
}

/// ±25 % on the backoff, so processes that lost Redis together do not redial in lockstep.
struct Jitter(u64);

impl Jitter {
    fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(1)
            ^ (u64::from(std::process::id()) << 32);
        Jitter(seed | 1)
    }

    fn spread(&mut self, d: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let factor = 0.75 + (self.0 % 1000) as f64 / 2000.0;
        d.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_ten_milliseconds_of_the_rate_bounded_by_half_the_capacity() {
        let c = FeederConfig::for_rate(1000.0, 1000);
        assert_eq!((c.batch, c.low_water), (10, 10));
        assert_eq!(c.poll, Duration::from_millis(5));
        assert_eq!(FeederConfig::for_rate(100.0, 100).batch, 1);
        assert_eq!(FeederConfig::for_rate(5.0, 5).batch, 1);
        assert_eq!(FeederConfig::for_rate(1_000_000.0, 100).batch, 50);
        assert_eq!(FeederConfig::for_rate(1_000_000.0, 1).batch, 1);
        assert_eq!(
            FeederConfig::for_rate(0.5, 1).poll,
            Duration::from_millis(20)
        );
    }

    #[test]
    fn backoff_jitter_stays_within_a_quarter() {
        let mut j = Jitter::new();
        for _ in 0..1000 {
            let d = j.spread(Duration::from_millis(1000));
            assert!(d >= Duration::from_millis(750) && d <= Duration::from_millis(1250));
        }
    }
}
