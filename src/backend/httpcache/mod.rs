//! `qos/http-cache`: an RFC 9111 private cache of one backend's GET/HEAD responses, inside the
//! HTTP client (KrakenD: krakend-httpcache over gregjones/httpcache). Each core keeps its own
//! store (`Rc`/`RefCell` in a thread local, no lock): see README "HTTP cache: per core" for the
//! measurements behind that choice. Every store is LRU-bounded by items and bytes.

pub mod fresh;
mod store;

pub use store::{Lookup, Store, Stored};

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

/// Bounds of one store when the config gives none. KrakenD's `{}` is an unbounded map; here
/// every store is bounded (per core).
pub const DEFAULT_MAX_ITEMS: usize = 1_000;
pub const DEFAULT_MAX_SIZE: usize = 32 << 20;
/// krakend/lru refuses a smaller `max_size`.
const MIN_SIZE: u64 = 1024;

/// One cache bucket's identity and bounds. Stores live per core, keyed by this (the bucket
/// of a backend dies with its plan on reload, and so do its stores).
#[derive(Debug)]
pub struct Bucket {
    pub max_items: usize,
    pub max_size: usize,
}

/// The compiled block of one backend.
#[derive(Debug, Clone)]
pub struct HttpCache {
    bucket: Arc<Bucket>,
}

pub const NS: &str = "qos/http-cache";

static SHARED: OnceLock<Arc<Bucket>> = OnceLock::new();
static SHARED_CAPPED: OnceLock<Arc<Bucket>> = OnceLock::new();

fn count(v: &serde_json::Value, key: &str) -> Result<Option<u64>, String> {
    match v.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(x) => x
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("{NS}: {key} must be a non-negative integer, got {x}")),
    }
}

impl HttpCache {
    /// Compile the block: `{}` (a private bucket), `shared`, `max_items` + `max_size`.
    pub fn compile(v: &serde_json::Value) -> Result<HttpCache, String> {
        if !v.is_object() {
            return Err(format!("{NS}: expected an object, got {v}"));
        }
        let shared = match v.get("shared") {
            None | Some(serde_json::Value::Null) => false,
            Some(x) => x
                .as_bool()
                .ok_or_else(|| format!("{NS}: shared must be a boolean, got {x}"))?,
        };
        let items = count(v, "max_items")?.filter(|&n| n > 0);
        let size = count(v, "max_size")?.filter(|&n| n > 0);
        // KrakenD silently falls back to an unbounded cache when only one is set, and fails
        // to build the LRU (a nil cache) under 1024 bytes: both are refused here.
        let caps = match (items, size) {
            (None, None) => None,
            (Some(i), Some(s)) if s >= MIN_SIZE => Some((i, s)),
            (Some(_), Some(s)) => {
                return Err(format!(
                    "{NS}: max_size must be at least {MIN_SIZE} bytes, got {s}"
                ))
            }
            _ => {
                return Err(format!(
                    "{NS}: max_items and max_size go together (set both or neither)"
                ))
            }
        };
        let make = |(i, s): (u64, u64)| {
            Arc::new(Bucket {
                max_items: usize::try_from(i).unwrap_or(usize::MAX),
                max_size: usize::try_from(s).unwrap_or(usize::MAX),
            })
        };
        let default = (DEFAULT_MAX_ITEMS as u64, DEFAULT_MAX_SIZE as u64);
        let bucket = match (shared, caps) {
            (false, c) => make(c.unwrap_or(default)),
            // KrakenD: one global bucket for every shared backend; the capped one takes the
            // bounds of whichever backend configures it first.
            (true, None) => Arc::clone(SHARED.get_or_init(|| make(default))),
            (true, Some(c)) => Arc::clone(SHARED_CAPPED.get_or_init(|| make(c))),
        };
        Ok(HttpCache { bucket })
    }

    /// Run `f` on this core's store of the bucket (created empty on first use).
    pub fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        STORES.with(|stores| {
            let mut stores = stores.borrow_mut();
            let id = Arc::as_ptr(&self.bucket) as usize;
            let alive = stores
                .get(&id)
                .is_some_and(|(w, _)| Weak::ptr_eq(w, &Arc::downgrade(&self.bucket)));
            if !alive {
                // A new bucket (startup or reload): drop the stores of buckets gone with an
                // old plan, so reloads do not pile them up.
                stores.retain(|_, (w, _)| w.strong_count() > 0);
                let store = Store::new(self.bucket.max_items, self.bucket.max_size);
                stores.insert(id, (Arc::downgrade(&self.bucket), store));
            }
            match stores.get_mut(&id) {
                Some((_, s)) => f(s),
                // Unreachable (inserted above); a throwaway store keeps this panic-free.
                None => f(&mut Store::new(0, 0)),
            }
        })
    }
}

thread_local! {
    /// This core's stores, by bucket address (the `Weak` tells a live bucket from a dead one
    /// whose address was reused).
    static STORES: RefCell<HashMap<usize, (Weak<Bucket>, Store)>> = RefCell::new(HashMap::new());
}

/// Wall-clock now in ms since the epoch (`Date` / `Expires` are wall-clock dates).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bounds_go_together_and_have_a_floor() {
        assert!(HttpCache::compile(&json!({})).is_ok());
        assert!(HttpCache::compile(&json!({"max_items": 10, "max_size": 4096})).is_ok());
        let e = HttpCache::compile(&json!({"max_items": 10})).unwrap_err();
        assert!(e.contains("together"), "{e}");
        let e = HttpCache::compile(&json!({"max_items": 10, "max_size": 100})).unwrap_err();
        assert!(e.contains("at least 1024"), "{e}");
        assert!(HttpCache::compile(&json!({"shared": "yes"})).is_err());
        assert!(HttpCache::compile(&json!([])).is_err());
    }

    #[test]
    fn shared_backends_share_one_bucket_private_ones_do_not() {
        let a = HttpCache::compile(&json!({"shared": true})).unwrap();
        let b = HttpCache::compile(&json!({"shared": true})).unwrap();
        let c = HttpCache::compile(&json!({})).unwrap();
        let d = HttpCache::compile(&json!({})).unwrap();
        assert!(Arc::ptr_eq(&a.bucket, &b.bucket));
        assert!(!Arc::ptr_eq(&c.bucket, &d.bucket));
    }
}
