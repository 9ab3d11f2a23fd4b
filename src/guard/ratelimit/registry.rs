//! Limits that survive a reload: a plan compiled by SIGHUP gets the same limiter (and its
//! state) as the previous plan for a limit whose identity (endpoint method and path, the
//! backend's place, the limit's own config) is unchanged; anything else starts full. Only
//! plan compilation touches this (the main thread), never the request path.

use arc_swap::ArcSwap;
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

type Map = HashMap<String, Weak<dyn Any + Send + Sync>>;

static LIVE: OnceLock<ArcSwap<Map>> = OnceLock::new();

/// The live limiter for `key`, or a new one from `make`.
pub fn shared<T: Any + Send + Sync>(key: String, make: impl FnOnce() -> T) -> Arc<T> {
    let live = LIVE.get_or_init(|| ArcSwap::from_pointee(HashMap::new()));
    if let Some(found) = live
        .load()
        .get(&key)
        .and_then(Weak::upgrade)
        .and_then(|a| a.downcast::<T>().ok())
    {
        return found;
    }
    let fresh = Arc::new(make());
    let weak: Weak<dyn Any + Send + Sync> = {
        let any: Arc<dyn Any + Send + Sync> = fresh.clone();
        Arc::downgrade(&any)
    };
    live.rcu(|m| {
        // Forget limiters no plan uses any more.
        let mut m: Map = m
            .iter()
            .filter(|(_, w)| w.strong_count() > 0)
            .map(|(k, w)| (k.clone(), w.clone()))
            .collect();
        m.insert(key.clone(), weak.clone());
        m
    });
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_key_gets_the_same_limiter_while_one_is_alive() {
        let a = shared("registry-test-a".into(), || 1u32);
        let b = shared("registry-test-a".into(), || 2u32);
        assert!(Arc::ptr_eq(&a, &b));
        drop((a, b));
        assert_eq!(*shared("registry-test-a".into(), || 3u32), 3);
    }
}
