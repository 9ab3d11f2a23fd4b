//! `security/bot-detector` (KrakenD CE, krakend-botdetector): rejects requests whose
//! `User-Agent` looks like a bot with a bare 403, at service level (before routing) or on one
//! endpoint.
//!
//! The verdict for one User-Agent, in KrakenD's order: empty → `empty_user_agent_is_bot`;
//! in `allow` (exact) → not a bot; in `deny` (exact) → bot; any of `patterns` matches
//! anywhere in it (Go `MatchString`, unanchored) → bot; else not a bot.
//!
//! Compiled once: the exact lists are hash sets, every pattern goes into one `RegexSet` (one
//! scan of the User-Agent for all of them, instead of KrakenD's one scan per pattern).
//! With `cache_size` > 0, verdicts are kept in a per-core cache owned by the worker thread
//! (no lock, no shared write): two generations of at most ⌈cache_size/2⌉ entries each, a hit
//! in the old one moving it to the young one, the old one dropped when the young one fills —
//! an O(1) approximation of KrakenD's LRU, bounded to about `cache_size` entries per core.

use regex::bytes::RegexSet;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

pub const NS: &str = "security/bot-detector";

/// User-Agents longer than this are classified every time, never cached: the cache holds at
/// most `cache_size` keys of this size per core, whatever clients send.
pub const MAX_CACHED_UA: usize = 512;

pub struct BotDetector {
    allow: HashSet<Box<[u8]>>,
    deny: HashSet<Box<[u8]>>,
    patterns: Option<RegexSet>,
    empty_is_bot: bool,
    cache_size: usize,
    /// Key of this detector's cache on each core.
    id: u64,
    /// Dropped with the detector (a plan reload): each core then drops its cache for `id` the
    /// next time it creates one.
    alive: Arc<()>,
}

impl std::fmt::Debug for BotDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotDetector")
            .field("allow", &self.allow.len())
            .field("deny", &self.deny.len())
            .field("patterns", &self.patterns.as_ref().map_or(0, RegexSet::len))
            .field("empty_is_bot", &self.empty_is_bot)
            .field("cache_size", &self.cache_size)
            .finish()
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn strings(v: &serde_json::Value, key: &str) -> Result<Vec<String>, String> {
    match v.get(key) {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{key}: expected an array of strings, found {x}"))
            })
            .collect(),
        Some(other) => Err(format!(
            "{key}: expected an array of strings, found {other}"
        )),
    }
}

impl BotDetector {
    /// Compile the namespace's block. KrakenD logs a bad block (a pattern that does not
    /// compile, a negative `cache_size`, a wrong type) and runs WITHOUT the detector; here the
    /// config is refused, so a typo never turns bot protection off.
    pub fn compile(v: &serde_json::Value) -> Result<BotDetector, String> {
        if !v.is_object() {
            return Err(format!("{NS}: expected an object, found {v}"));
        }
        let allow = strings(v, "allow")?;
        let deny = strings(v, "deny")?;
        let patterns = strings(v, "patterns")?;
        let empty_is_bot = match v.get("empty_user_agent_is_bot") {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!(
                    "empty_user_agent_is_bot: expected true or false, found {other}"
                ))
            }
        };
        let cache_size = match v.get("cache_size") {
            None | Some(serde_json::Value::Null) => 0,
            Some(n) => n
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    format!("cache_size: expected a whole number of entries (0 or more), found {n}")
                })?,
        };
        let patterns = if patterns.is_empty() {
            None
        } else {
            for (i, p) in patterns.iter().enumerate() {
                if let Err(e) = regex::bytes::Regex::new(p) {
                    return Err(format!("patterns[{i}] {p:?}: {e}"));
                }
            }
            Some(RegexSet::new(&patterns).map_err(|e| format!("patterns: {e}"))?)
        };
        let set = |l: Vec<String>| l.into_iter().map(|s| s.into_bytes().into()).collect();
        Ok(BotDetector {
            allow: set(allow),
            deny: set(deny),
            patterns,
            empty_is_bot,
            cache_size,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            alive: Arc::new(()),
        })
    }

    /// The verdict for this User-Agent, without the cache.
    pub fn classify(&self, ua: &[u8]) -> bool {
        // KrakenD: `empty_user_agent_is_bot` answers for an empty or missing header before
        // the allow list is read.
        if ua.is_empty() {
            return self.empty_is_bot;
        }
        if self.allow.contains(ua) {
            return false;
        }
        if self.deny.contains(ua) {
            return true;
        }
        self.patterns.as_ref().is_some_and(|p| p.is_match(ua))
    }

    /// The verdict for a request's first `User-Agent` value (Go's `Header.Get`), through this
    /// core's cache when `cache_size` > 0.
    pub fn is_bot(&self, ua: Option<&[u8]>) -> bool {
        let ua = ua.unwrap_or_default();
        if self.cache_size == 0 || ua.is_empty() || ua.len() > MAX_CACHED_UA {
            return self.classify(ua);
        }
        CACHES.with(|c| {
            let Ok(mut caches) = c.try_borrow_mut() else {
                return self.classify(ua);
            };
            if !caches.contains_key(&self.id) {
                // A new detector on this core (start or reload): drop caches of dead ones.
                caches.retain(|_, (alive, _)| alive.strong_count() > 0);
                let fresh = (Arc::downgrade(&self.alive), Verdicts::new(self.cache_size));
                caches.insert(self.id, fresh);
            }
            let Some((_, cache)) = caches.get_mut(&self.id) else {
                return self.classify(ua);
            };
            if let Some(v) = cache.get(ua) {
                return v;
            }
            let v = self.classify(ua);
            cache.put(ua, v);
            v
        })
    }
}

thread_local! {
    /// This core's verdict caches, by detector id.
    static CACHES: RefCell<HashMap<u64, (Weak<()>, Verdicts)>> = RefCell::new(HashMap::new());
}

/// A bounded verdict cache: two generations (see the module docs).
pub struct Verdicts {
    half: usize,
    young: HashMap<Box<[u8]>, bool>,
    old: HashMap<Box<[u8]>, bool>,
}

impl Verdicts {
    pub fn new(size: usize) -> Verdicts {
        Verdicts {
            half: size.div_ceil(2).max(1),
            young: HashMap::new(),
            old: HashMap::new(),
        }
    }

    pub fn get(&mut self, ua: &[u8]) -> Option<bool> {
        if let Some(v) = self.young.get(ua) {
            return Some(*v);
        }
        let v = self.old.remove(ua)?;
        self.put(ua, v);
        Some(v)
    }

    pub fn put(&mut self, ua: &[u8], v: bool) {
        if self.young.len() >= self.half {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(ua.into(), v);
    }

    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ce() -> BotDetector {
        // KrakenD CE's own fixture block.
        BotDetector::compile(&json!({
            "deny": ["a", "b"],
            "allow": ["c", "Pingdom.com_bot_version_1.1"],
            "patterns": ["(Pingdom.com_bot_version_).*", "(facebookexternalhit)/.*"],
            "cache_size": 2
        }))
        .unwrap()
    }

    #[test]
    fn allow_wins_over_a_matching_pattern_and_deny_is_exact() {
        let d = ce();
        assert!(!d.classify(b"Pingdom.com_bot_version_1.1"));
        assert!(d.classify(b"Pingdom.com_bot_version_1.14"));
        assert!(d.classify(b"a"));
        assert!(!d.classify(b"ab"));
        assert!(d.classify(b"facebookexternalhit/1.2.3"));
        assert!(!d.classify(b"Mozilla/5.0"));
        assert!(!d.classify(b"c"));
    }

    #[test]
    fn patterns_match_anywhere_in_the_user_agent() {
        let d = BotDetector::compile(&json!({"patterns": ["bot"]})).unwrap();
        assert!(d.classify(b"Mozilla/5.0 (compatible; Googlebot/2.1)"));
    }

    #[test]
    fn an_empty_user_agent_is_a_bot_only_when_configured() {
        let d = ce();
        assert!(!d.is_bot(None));
        assert!(!d.is_bot(Some(b"")));
        let d =
            BotDetector::compile(&json!({"empty_user_agent_is_bot": true, "allow": [""]})).unwrap();
        assert!(d.is_bot(None));
        assert!(d.is_bot(Some(b"")));
    }

    #[test]
    fn cached_verdicts_equal_fresh_ones() {
        let d = ce();
        for ua in [
            &b"a"[..],
            b"x",
            b"facebookexternalhit/1",
            b"x",
            b"a",
            b"y",
            b"z",
        ] {
            assert_eq!(d.is_bot(Some(ua)), d.classify(ua), "{ua:?}");
        }
    }

    #[test]
    fn the_verdict_cache_stays_bounded_and_keeps_what_is_used() {
        let mut c = Verdicts::new(4);
        for i in 0..100u32 {
            c.put(&i.to_be_bytes(), i % 2 == 0);
            // Key 0 is read every time: it never falls out.
            assert_eq!(c.get(&0u32.to_be_bytes()), Some(true), "{i}");
            assert!(c.len() <= 4, "{}", c.len());
        }
        assert_eq!(c.get(&99u32.to_be_bytes()), Some(false));
        assert_eq!(c.get(&5u32.to_be_bytes()), None);
    }

    #[test]
    fn bad_blocks_are_refused_with_the_key() {
        let e = BotDetector::compile(&json!({"patterns": ["(unclosed"]})).unwrap_err();
        assert!(e.contains("patterns[0]"), "{e}");
        let e = BotDetector::compile(&json!({"cache_size": -1})).unwrap_err();
        assert!(e.contains("cache_size"), "{e}");
        let e = BotDetector::compile(&json!({"deny": "a"})).unwrap_err();
        assert!(e.contains("deny"), "{e}");
    }
}
