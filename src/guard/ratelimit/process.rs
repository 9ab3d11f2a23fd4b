//! The process-wide token bucket: one per limit, shared by every core through atomics, touched
//! only when a core's shard borrows or returns a batch (never once per request). Sans-io: every
//! method that depends on time takes `now` (nanoseconds on any monotonic scale).
//!
//! It refills itself from the clock ("local refill"), or, when fed externally (a background
//! thread leasing tokens from a cluster-wide store such as Redis), only from [`ProcessBucket::deposit`];
//! [`ProcessBucket::set_fed_externally`] switches between the two (false = the fallback to the local limit).
//!
//! Invariant (the burst bound): `level + held <= capacity`, where `held` counts the tokens lent
//! to shards (an upper bound of what they still hold). So the tokens available anywhere in the
//! process never exceed `capacity`, however they are spread over the cores.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Fixed point: one token is `UNIT` units, so refills of a fraction of a token are not lost.
pub const UNIT: u64 = 1 << 20;

/// The smallest clock step a local refill credits: bounds the refill CAS traffic on the shared
/// line to 50,000 a second whatever the rate (no credit is lost: the remainder carries over).
const MIN_REFILL_NS: u64 = 20_000;

const NS_PER_S: u128 = 1_000_000_000;

/// A token bucket shared by all cores. See the module docs.
#[derive(Debug)]
pub struct ProcessBucket {
    /// Tokens in the bucket, in `UNIT`s.
    level: AtomicU64,
    /// The clock time up to which local refill has been credited.
    last: AtomicU64,
    /// Whole tokens lent to shards and not yet accounted for.
    held: AtomicU64,
    fed: AtomicBool,
    capacity: u64,
    /// Tokens per second times `UNIT`.
    rate_units: u64,
    rate: f64,
}

impl ProcessBucket {
    /// A full bucket refilling at `rate` tokens a second (clamped to at least 1e-9, as KrakenD
    /// does) up to `capacity` tokens (at least 1). `now` starts the refill clock.
    pub fn new(rate: f64, capacity: u64, now: u64) -> ProcessBucket {
        let rate = if rate.is_finite() {
            rate.max(1e-9)
        } else {
            1e-9
        };
        let capacity = capacity.max(1);
        let rate_units = (rate * UNIT as f64).round().max(1.0) as u64;
        ProcessBucket {
            level: AtomicU64::new(capacity.saturating_mul(UNIT)),
            last: AtomicU64::new(now),
            held: AtomicU64::new(0),
            fed: AtomicBool::new(false),
            capacity,
            rate_units,
            rate,
        }
    }

    /// The configured rate, tokens per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The burst size, in tokens.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Tokens in the process bucket now (not counting what shards hold), without refilling.
    pub fn level(&self) -> f64 {
        self.level.load(Ordering::Relaxed) as f64 / UNIT as f64
    }

    /// Whole tokens lent to shards (an upper bound of what they hold).
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// Whether tokens come only from [`ProcessBucket::deposit`].
    pub fn is_fed_externally(&self) -> bool {
        self.fed.load(Ordering::Acquire)
    }

    /// External feed on (true): the clock no longer refills; only `deposit` adds tokens.
    /// Off (false, the fallback): local refill resumes from `now`, so the time spent fed is not
    /// credited twice.
    pub fn set_fed_externally(&self, fed: bool, now: u64) {
        if !fed {
            self.last.store(now, Ordering::Release);
        }
        self.fed.store(fed, Ordering::Release);
    }

    /// Add `tokens` leased elsewhere. The bucket never holds more than `capacity` (counting
    /// what shards hold): the surplus is refused. Returns the whole tokens accepted.
    pub fn deposit(&self, tokens: u64) -> u64 {
        let add = tokens.saturating_mul(UNIT);
        let mut accepted = 0;
        let _ = self
            .level
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| {
                let new = l.saturating_add(add).min(self.ceiling()).max(l);
                accepted = (new - l) / UNIT;
                Some(new)
            });
        accepted
    }

    /// Empty the bucket (what shards hold is not touched); returns the whole tokens removed.
    /// For the switch to an external feed: tokens this process earned on its own clock must
    /// not be spent on top of the cluster's (the startup burst: a new bucket starts full).
    pub fn drain(&self) -> u64 {
        self.level.swap(0, Ordering::AcqRel) / UNIT
    }

    /// The most the bucket itself may hold: capacity minus what shards hold.
    fn ceiling(&self) -> u64 {
        self.capacity
            .saturating_sub(self.held.load(Ordering::Acquire))
            .saturating_mul(UNIT)
    }

    /// Credit the time since the last refill (local mode only). At most one caller credits a
    /// given stretch of time: the one whose CAS on `last` succeeds.
    pub fn refill(&self, now: u64) {
        if self.fed.load(Ordering::Acquire) {
            return;
        }
        let last = self.last.load(Ordering::Acquire);
        let Some(elapsed) = now.checked_sub(last) else {
            return;
        };
        if elapsed < MIN_REFILL_NS {
            return;
        }
        let units = elapsed as u128 * self.rate_units as u128 / NS_PER_S;
        // The time those whole units stand for: the remainder stays for the next refill.
        let used = (units * NS_PER_S / self.rate_units as u128).min(elapsed as u128) as u64;
        let units = u64::try_from(units).unwrap_or(u64::MAX);
        if units == 0 {
            return;
        }
        if self
            .last
            .compare_exchange(last, last + used, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let ceiling = self.ceiling();
        let _ = self
            .level
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| {
                // Never below `l`: while a borrow is under way the bucket may briefly sit above
                // the ceiling (its tokens are reserved as held before they leave).
                Some(l.saturating_add(units).min(ceiling).max(l))
            });
    }

    /// Take up to `want` whole tokens (refilling first). Returns how many were taken.
    fn withdraw(&self, want: u64) -> u64 {
        let mut got = 0;
        let _ = self
            .level
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| {
                got = (l / UNIT).min(want);
                (got > 0).then(|| l - got * UNIT)
            });
        got
    }

    /// One token for a caller without a shard: refill, then take one.
    pub fn take(&self, now: u64) -> bool {
        self.refill(now);
        self.withdraw(1) == 1
    }

    /// A shard's borrow: it spent its previous batch of `spent` tokens (no longer held) and
    /// asks for up to `want`. The tokens are counted as held before they leave the bucket, so
    /// the burst bound holds at every instant (a concurrent refill may under-credit instead). Returns how many were lent.
    pub fn borrow(&self, now: u64, want: u64, spent: u64) -> u64 {
        self.release(spent);
        self.refill(now);
        self.held.fetch_add(want, Ordering::AcqRel);
        let got = self.withdraw(want);
        self.release(want - got);
        got
    }

    /// A shard hands back `unspent` tokens of a batch of `batch` it held.
    pub fn give_back(&self, unspent: u64, batch: u64) {
        self.release(batch);
        let add = unspent.min(batch).saturating_mul(UNIT);
        let ceiling = self.ceiling();
        let _ = self
            .level
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| {
                Some(l.saturating_add(add).min(ceiling).max(l))
            });
    }

    fn release(&self, n: u64) {
        if n > 0 {
            let _ = self
                .held
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| {
                    Some(h.saturating_sub(n))
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_new_bucket_is_full_and_refuses_past_capacity() {
        let b = ProcessBucket::new(10.0, 5, 0);
        assert_eq!((0..8).filter(|_| b.take(0)).count(), 5);
    }

    #[test]
    fn refill_credits_elapsed_time_continuously_up_to_capacity() {
        let b = ProcessBucket::new(50.0, 50, 0);
        // Textbook bucket: 50 at once, then 50 a second; idle time while not dry counts too.
        let mut admitted = 0;
        for ms in 0..4000u64 {
            for _ in 0..10 {
                if b.take(ms * 1_000_000) {
                    admitted += 1;
                }
            }
        }
        // 50 + 50/s over 3.999 s.
        assert!((248..=250).contains(&admitted), "{admitted}");
        b.refill(100 * S);
        assert_eq!(b.level(), 50.0);
    }

    #[test]
    fn fractional_refills_are_not_lost() {
        // 0.1 token a second, refilled every 20 µs: a token every 10 s exactly.
        let b = ProcessBucket::new(0.1, 1, 0);
        assert!(b.take(0));
        let mut t = 0;
        let mut admitted = 0;
        while t < 100 * S {
            t += 20_000;
            if b.take(t) {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 10);
    }

    #[test]
    fn borrowed_tokens_count_against_the_burst() {
        let b = ProcessBucket::new(100.0, 10, 0);
        assert_eq!(b.borrow(0, 4, 0), 4);
        assert_eq!(b.held(), 4);
        // Long idle: the bucket refills only to capacity minus what shards hold.
        b.refill(100 * S);
        assert_eq!(b.level(), 6.0);
        // The shard spent its batch and borrows again: 6 + the 4 it no longer holds.
        assert_eq!(b.borrow(100 * S, 4, 4), 4);
        b.refill(200 * S);
        assert_eq!(b.level(), 6.0);
        b.give_back(4, 4);
        assert_eq!((b.level(), b.held()), (10.0, 0));
    }

    #[test]
    fn fed_bucket_ignores_the_clock_and_takes_deposits_up_to_capacity() {
        let b = ProcessBucket::new(10.0, 10, 0);
        b.set_fed_externally(true, 0);
        assert!(b.is_fed_externally());
        assert_eq!((0..20).filter(|_| b.take(0)).count(), 10);
        assert!(!b.take(10 * S), "no local refill while fed");
        assert_eq!(b.deposit(3), 3);
        assert_eq!(b.level(), 3.0);
        assert_eq!(b.deposit(100), 7, "the surplus over capacity is refused");
        assert_eq!((0..20).filter(|_| b.take(10 * S)).count(), 10);
    }

    #[test]
    fn falling_back_to_local_refill_credits_only_time_after_the_switch() {
        let b = ProcessBucket::new(10.0, 100, 0);
        b.set_fed_externally(true, 0);
        assert_eq!((0..200).filter(|_| b.take(0)).count(), 100);
        b.set_fed_externally(false, 5 * S);
        assert!(!b.is_fed_externally());
        assert!(!b.take(5 * S), "the fed period is not credited");
        assert_eq!((0..200).filter(|_| b.take(6 * S)).count(), 10);
    }

    #[test]
    fn draining_empties_the_bucket_but_not_what_shards_hold() {
        let b = ProcessBucket::new(10.0, 10, 0);
        assert_eq!(b.borrow(0, 3, 0), 3);
        b.set_fed_externally(true, 0);
        assert_eq!(b.drain(), 7);
        assert_eq!((b.level(), b.held()), (0.0, 3));
        assert!(!b.take(S), "fed and drained: nothing until a deposit");
        assert_eq!(
            b.deposit(20),
            7,
            "the ceiling still counts what shards hold"
        );
    }

    #[test]
    fn a_clock_going_backwards_credits_nothing() {
        let b = ProcessBucket::new(10.0, 1, 5 * S);
        assert!(b.take(5 * S));
        assert!(!b.take(S));
    }
}
