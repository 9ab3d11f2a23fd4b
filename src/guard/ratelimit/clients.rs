//! Per-client buckets (`client_max_rate`): one lock-free table per endpoint, shared by every
//! core, so a client's limit is exact per process whichever cores its connections land on.
//!
//! Each entry is 16 bytes: a keyed 64-bit hash of the client key and the bucket's state as a
//! GCRA "theoretical arrival time" (TAT): a textbook token bucket of `capacity` tokens
//! refilling one token per `interval`, in one atomic word, updated with one CAS per request
//! on the client's own entry (cores contend only when one client is served on several cores
//! at once).
//!
//! Memory is bounded: the table has a fixed number of entries (a power of two), allocated
//! zeroed, so pages become resident only as clients arrive. A key lives in one 8-entry window
//! (two cache lines) chosen by its hash. There is no sweep: a new key takes the window's entry
//! whose bucket has been full the longest (an empty one first). A full bucket's eviction
//! changes no answer (a new bucket starts full), which is KrakenD's TTL rule with a TTL of
//! zero; only when all 8 hold clients still refilling is the one nearest to full evicted
//! (least recently busy), and that client may get up to `capacity` extra at most once.

use std::alloc::{alloc_zeroed, handle_alloc_error, Layout};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// Entries per window.
const WAY: usize = 8;

/// Default hard cap of tracked clients per endpoint (1 MiB of address space).
pub const DEFAULT_ENTRIES: usize = 1 << 16;

#[derive(Debug, Default)]
#[repr(C)]
struct Entry {
    /// Hash of the client key, low bit set; 0 = empty.
    key: AtomicU64,
    /// GCRA: when the bucket will be full again (ns); ≤ now means full.
    tat: AtomicU64,
}

/// A fixed-size table of per-client token buckets.
pub struct ClientTable {
    entries: Box<[Entry]>,
    mask: usize,
    /// Nanoseconds per token.
    interval: u64,
    /// `(capacity - 1) × interval`: how far ahead of now the TAT may be and still admit.
    slack: u64,
    hasher: std::collections::hash_map::RandomState,
}

impl std::fmt::Debug for ClientTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTable")
            .field("entries", &self.entries.len())
            .field("interval", &self.interval)
            .finish()
    }
}

impl ClientTable {
    /// `rate` tokens a second per client, burst `capacity` (at least 1), up to `entries`
    /// clients tracked at once (rounded up to a power of two, at least 8).
    pub fn new(rate: f64, capacity: u64, entries: usize) -> ClientTable {
        let rate = if rate.is_finite() {
            rate.max(1e-9)
        } else {
            1e-9
        };
        let interval = (1e9 / rate).round().clamp(1.0, u64::MAX as f64 / 4.0) as u64;
        let n = entries.max(WAY).next_power_of_two();
        ClientTable {
            entries: zeroed(n),
            mask: n - 1,
            interval,
            slack: capacity.max(1).saturating_sub(1).saturating_mul(interval),
            // Keyed with per-process random keys: nobody can aim keys at one window.
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// How many clients may be tracked at once.
    pub fn entries(&self) -> usize {
        self.entries.len()
    }

    /// Admit one request of client `key` at `now` (ns).
    pub fn admit(&self, key: &[u8], now: u64) -> bool {
        let h = self.hasher.hash_one(key) | 1;
        let base = (h as usize) & self.mask & !(WAY - 1);
        let Some(window) = self.entries.get(base..base + WAY) else {
            return false;
        };
        // A few tries: another core may claim the same entry between our look and our CAS.
        for _ in 0..4 {
            let mut victim: Option<(&Entry, u64, u64)> = None;
            for e in window {
                let k = e.key.load(Ordering::Acquire);
                if k == h {
                    return self.spend(&e.tat, now);
                }
                let tat = if k == 0 {
                    0
                } else {
                    e.tat.load(Ordering::Relaxed)
                };
                if victim.is_none_or(|(_, _, t)| tat < t) {
                    victim = Some((e, k, tat));
                }
            }
            let Some((e, old, _)) = victim else {
                return false;
            };
            if e.key
                .compare_exchange(old, h, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                // A fresh bucket is full: this request takes one token.
                e.tat
                    .store(now.saturating_add(self.interval), Ordering::Release);
                return true;
            }
        }
        false
    }

    /// GCRA: admit when the bucket holds a token (TAT no further ahead than the slack).
    fn spend(&self, tat: &AtomicU64, now: u64) -> bool {
        tat.fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
            let base = t.max(now);
            (base - now <= self.slack).then(|| base.saturating_add(self.interval))
        })
        .is_ok()
    }
}

/// `n` zeroed entries straight from the allocator: untouched pages cost no memory, so an
/// endpoint's table is resident only as far as clients have used it.
fn zeroed(n: usize) -> Box<[Entry]> {
    let Ok(layout) = Layout::array::<Entry>(n) else {
        return Box::default();
    };
    if layout.size() == 0 {
        return Box::default();
    }
    // SAFETY: the layout has a non-zero size. An all-zero `Entry` is two `AtomicU64`s holding
    // 0, a valid value; the pointer comes from the global allocator with exactly this layout
    // (`Layout::array::<Entry>(n)`), which is what `Box<[Entry]>` frees with.
    unsafe {
        let p = alloc_zeroed(layout).cast::<Entry>();
        if p.is_null() {
            handle_alloc_error(layout);
        }
        Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn each_client_gets_its_own_burst_then_its_rate() {
        let t = ClientTable::new(1.0, 5, 1024);
        assert_eq!((0..10).filter(|_| t.admit(b"a", S)).count(), 5);
        assert_eq!((0..10).filter(|_| t.admit(b"b", S)).count(), 5);
        assert!(!t.admit(b"a", S));
        assert!(t.admit(b"a", 2 * S), "one token a second");
        assert!(!t.admit(b"a", 2 * S));
        // Idle 100 s: full again, but never more than the capacity.
        assert_eq!((0..10).filter(|_| t.admit(b"a", 100 * S)).count(), 5);
    }

    #[test]
    fn a_flood_of_new_keys_stays_within_the_table_and_spares_a_busy_client() {
        let t = ClientTable::new(10.0, 10, 1 << 10);
        let mut now = S;
        let mut normal = 0;
        for i in 0..200_000u64 {
            now += 10_000;
            assert!(t.admit(&i.to_le_bytes(), now));
            if i % 100 == 0 && t.admit(b"normal", now) {
                normal += 1;
            }
        }
        // 2 s of 10/s plus the burst of 10, whatever the flood did.
        assert!((28..=31).contains(&normal), "{normal}");
        assert_eq!(t.entries(), 1024);
    }

    #[test]
    fn capacity_one_admits_exactly_at_the_rate() {
        let t = ClientTable::new(100.0, 1, 64);
        let admitted = (0..100_000u64)
            .filter(|i| t.admit(b"k", i * 100_000))
            .count();
        // 10 s at 100/s.
        assert_eq!(admitted, 1000);
    }
}
