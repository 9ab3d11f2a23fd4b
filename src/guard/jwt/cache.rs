//! The per-core cache of verified tokens: a token seen before costs one hash of its bytes and
//! one comparison, not a signature check. Owned by the worker thread (no lock, no shared
//! write), keyed by the whole token (hashed with a per-process random seed, and compared in
//! full on a hit, so a hash collision can never lend one token's claims to another).
//!
//! Entries live until the token's `exp` (plus leeway): a hit re-checks the time, so an
//! expired token is refused even if still cached. Bounded: two generations of at most
//! `CAPACITY / 2` entries each (a hit in the old one moves it to the young one; the old one is
//! dropped when the young one fills), and tokens over `MAX_CACHED_TOKEN` bytes are never kept.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Weak};

/// Entries per validator per core (both generations).
pub const CAPACITY: usize = 4096;
/// Longer tokens are verified every time.
pub const MAX_CACHED_TOKEN: usize = 4096;

/// What a verified token was found to grant, kept with its validity window.
pub struct Entry<T> {
    pub exp_ms: Option<i64>,
    pub nbf_ms: Option<i64>,
    pub value: Rc<T>,
}

impl<T> Clone for Entry<T> {
    fn clone(&self) -> Self {
        Entry {
            exp_ms: self.exp_ms,
            nbf_ms: self.nbf_ms,
            value: self.value.clone(),
        }
    }
}

type Map<T> = HashMap<Box<[u8]>, Entry<T>, foldhash::fast::RandomState>;

/// Two generations of entries.
pub struct Generations<T> {
    half: usize,
    young: Map<T>,
    old: Map<T>,
}

impl<T> Generations<T> {
    pub fn new(capacity: usize) -> Self {
        Generations {
            half: capacity.div_ceil(2).max(1),
            young: Map::default(),
            old: Map::default(),
        }
    }

    pub fn get(&mut self, token: &[u8]) -> Option<Entry<T>> {
        if let Some(e) = self.young.get(token) {
            return Some(e.clone());
        }
        let e = self.old.remove(token)?;
        self.put(token, e.clone());
        Some(e)
    }

    pub fn put(&mut self, token: &[u8], e: Entry<T>) {
        if token.len() > MAX_CACHED_TOKEN {
            return;
        }
        if self.young.len() >= self.half {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(token.into(), e);
    }

    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One core's caches: per validator id, its liveness token and its entries.
pub type Caches<T> = RefCell<HashMap<u64, (Weak<()>, Generations<T>)>>;

/// This core's caches, one per live validator (by id); a validator dropped by a reload
/// leaves its cache to be swept when a new one first caches on this core.
pub struct PerCore<T: 'static> {
    caches: &'static std::thread::LocalKey<Caches<T>>,
}

impl<T: 'static> PerCore<T> {
    pub const fn new(caches: &'static std::thread::LocalKey<Caches<T>>) -> Self {
        PerCore { caches }
    }

    /// Run `f` on this core's cache for validator `id` (created on first use). None when the
    /// cache is busy (re-entered), which never happens on one event loop but costs nothing.
    pub fn with<R>(
        &self,
        id: u64,
        alive: &Arc<()>,
        f: impl FnOnce(&mut Generations<T>) -> R,
    ) -> Option<R> {
        self.caches.with(|c| {
            let mut caches = c.try_borrow_mut().ok()?;
            if !caches.contains_key(&id) {
                caches.retain(|_, (a, _)| a.strong_count() > 0);
                caches.insert(id, (Arc::downgrade(alive), Generations::new(CAPACITY)));
            }
            caches.get_mut(&id).map(|(_, g)| f(g))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(v: u32) -> Entry<u32> {
        Entry {
            exp_ms: None,
            nbf_ms: None,
            value: Rc::new(v),
        }
    }

    #[test]
    fn the_cache_stays_bounded_and_keeps_recently_used_tokens() {
        let mut g = Generations::new(4);
        g.put(b"a", entry(1));
        g.put(b"b", entry(2));
        g.put(b"c", entry(3)); // young full: a, b become old
        assert_eq!(*g.get(b"a").unwrap().value, 1); // moved back to young
        for i in 0..100u32 {
            g.put(format!("t{i}").as_bytes(), entry(i));
            assert!(g.len() <= 4);
        }
        assert!(g.get(b"b").is_none());
    }

    #[test]
    fn tokens_are_compared_in_full_and_long_ones_are_not_kept() {
        let mut g = Generations::new(8);
        g.put(b"token-1", entry(1));
        assert!(g.get(b"token-2").is_none());
        let long = vec![b'x'; MAX_CACHED_TOKEN + 1];
        g.put(&long, entry(9));
        assert!(g.get(&long).is_none());
    }
}
