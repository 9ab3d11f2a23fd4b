//! One core's store of one bucket: responses by key (method, host, path and query, plus the
//! request's values of the headers the response varies on), LRU-bounded by items and bytes.
//!
//! `Vary` is remembered per URL by a marker item ("this URL varies on these headers"), so a
//! lookup knows which request headers to put in the key before it has seen a response. The
//! marker counts as an item and its bytes like any other. Keys hash with std's keyed SipHash:
//! they carry client-chosen paths, so a fixed hash would let a client flood one bucket.

use super::fresh::Freshness;
use crate::http::Headers;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// A stored backend response, as the client read it (body de-chunked and unzipped).
#[derive(Debug)]
pub struct Stored {
    pub status: u16,
    pub headers: Headers,
    pub body: Bytes,
}

enum Value {
    Response(Rc<Stored>, Freshness),
    /// The lowercase header names this URL's responses vary on.
    Vary(Vec<String>),
}

struct Slot {
    value: Value,
    size: usize,
    tick: u64,
}

pub enum Lookup {
    Miss,
    Fresh(Rc<Stored>),
    /// Stored but not fresh: reusable only after the backend confirms it (304).
    Stale(Rc<Stored>),
}

/// Per-item bookkeeping counted against `max_size` besides the key, headers and body.
const OVERHEAD: usize = 96;

pub struct Store {
    map: HashMap<String, Slot>,
    /// Least recently used first.
    order: BTreeMap<u64, String>,
    tick: u64,
    bytes: usize,
    /// How many `Vary` markers are stored.
    markers: usize,
    max_items: usize,
    max_size: usize,
}

fn header_values<'a>(req: &'a [(Bytes, Bytes)], name: &'a str) -> impl Iterator<Item = &'a [u8]> {
    req.iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| &v[..])
}

impl Stored {
    /// A response to keep: its fields and body copied out of the buffers they were read into
    /// (a header slice pins the connection's whole 8 KiB read buffer; a body, its capacity),
    /// so a stored entry costs what `max_size` counts.
    pub fn compact(status: u16, headers: &Headers, body: &[u8]) -> Stored {
        let mut all = bytes::BytesMut::with_capacity(
            headers
                .0
                .iter()
                .map(|h| h.name.len() + h.value.len())
                .sum::<usize>(),
        );
        let mut fields = Vec::with_capacity(headers.0.len());
        for h in &headers.0 {
            all.extend_from_slice(&h.name);
            let name = all.split().freeze();
            all.extend_from_slice(&h.value);
            let value = all.split().freeze();
            fields.push(crate::http::Header { name, value });
        }
        Stored {
            status,
            headers: Headers(fields),
            body: Bytes::copy_from_slice(body),
        }
    }
}

impl Store {
    pub fn new(max_items: usize, max_size: usize) -> Store {
        Store {
            map: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
            bytes: 0,
            markers: 0,
            max_items,
            max_size,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes counted against `max_size`.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The marker's key: `base` and a newline (no URL holds one), so a lookup of a URL that
    /// never varied needs no key of its own.
    fn vary_key(base: &str) -> String {
        let mut k = String::with_capacity(base.len() + 1);
        k.push_str(base);
        k.push('\n');
        k
    }

    /// The response key of `base` for request headers `req` given the varied names: `base`
    /// itself without any.
    fn response_key(base: &str, vary: &[String], req: &[(Bytes, Bytes)]) -> String {
        let mut k = String::with_capacity(base.len() + 16 * vary.len());
        k.push_str(base);
        for name in vary {
            k.push('\n');
            k.push_str(name);
            k.push(':');
            for (i, v) in header_values(req, name).enumerate() {
                if i > 0 {
                    k.push(',');
                }
                k.push_str(&String::from_utf8_lossy(v));
            }
        }
        k
    }

    /// The varied names of `base` (touching its marker), when its responses vary.
    fn varied(&mut self, base: &str) -> Option<Vec<String>> {
        // The common case, no URL varies: no marker key to build.
        if self.markers == 0 {
            return None;
        }
        let vk = Self::vary_key(base);
        let names = match self.map.get(&vk) {
            Some(Slot {
                value: Value::Vary(names),
                ..
            }) => names.clone(),
            _ => return None,
        };
        self.touch(&vk);
        Some(names)
    }

    fn touch(&mut self, key: &str) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(slot) = self.map.get_mut(key) {
            if let Some(k) = self.order.remove(&slot.tick) {
                self.order.insert(tick, k);
            }
            slot.tick = tick;
        }
    }

    /// The stored response for `base` and this request, fresh or stale at `now_ms`.
    pub fn lookup(&mut self, base: &str, req: &[(Bytes, Bytes)], now_ms: u64) -> Lookup {
        let owned = self
            .varied(base)
            .map(|names| Self::response_key(base, &names, req));
        let key = owned.as_deref().unwrap_or(base);
        let found = match self.map.get(key) {
            Some(Slot {
                value: Value::Response(r, f),
                ..
            }) => Some((Rc::clone(r), f.is_fresh(now_ms))),
            _ => None,
        };
        match found {
            None => Lookup::Miss,
            Some((r, fresh)) => {
                self.touch(key);
                if fresh {
                    Lookup::Fresh(r)
                } else {
                    Lookup::Stale(r)
                }
            }
        }
    }

    /// Store `resp` (already judged storable) for `base` and this request. A response larger
    /// than the whole store is not stored (and any older one under its key is dropped).
    pub fn put(&mut self, base: &str, req: &[(Bytes, Bytes)], resp: Stored, fresh: Freshness) {
        let vary: Vec<String> = resp
            .headers
            .get_all("vary")
            .flat_map(|v| v.split(|&c| c == b','))
            .map(|n| String::from_utf8_lossy(n.trim_ascii()).to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect();
        let vk = Self::vary_key(base);
        if vary.is_empty() {
            self.remove_key(&vk);
        } else {
            let size = OVERHEAD + vk.len() + vary.iter().map(|n| n.len() + 8).sum::<usize>();
            self.insert(vk, Value::Vary(vary.clone()), size);
        }
        let key = Self::response_key(base, &vary, req);
        let size = OVERHEAD
            + key.len()
            + resp.body.len()
            + resp
                .headers
                .0
                .iter()
                .map(|h| h.name.len() + h.value.len() + 16)
                .sum::<usize>();
        self.insert(key, Value::Response(Rc::new(resp), fresh), size);
    }

    /// Forget the response for `base` and this request (the backend's newer answer may not be
    /// stored).
    pub fn remove(&mut self, base: &str, req: &[(Bytes, Bytes)]) {
        let key = match self.varied(base) {
            Some(names) => Self::response_key(base, &names, req),
            None => base.to_string(),
        };
        self.remove_key(&key);
    }

    fn remove_key(&mut self, key: &str) {
        if let Some(slot) = self.map.remove(key) {
            self.forget(&slot);
        }
    }

    fn forget(&mut self, slot: &Slot) {
        self.order.remove(&slot.tick);
        self.bytes = self.bytes.saturating_sub(slot.size);
        if matches!(slot.value, Value::Vary(_)) {
            self.markers = self.markers.saturating_sub(1);
        }
    }

    fn insert(&mut self, key: String, value: Value, size: usize) {
        self.remove_key(&key);
        if size > self.max_size || self.max_items == 0 {
            return;
        }
        while !self.map.is_empty()
            && (self.map.len() >= self.max_items || self.bytes + size > self.max_size)
        {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(slot) = self.map.remove(&oldest) {
                self.forget(&slot);
            }
        }
        if matches!(value, Value::Vary(_)) {
            self.markers += 1;
        }
        self.tick += 1;
        self.order.insert(self.tick, key.clone());
        self.bytes += size;
        self.map.insert(
            key,
            Slot {
                value,
                size,
                tick: self.tick,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Header;

    fn resp(body: &str, headers: &[(&str, &str)]) -> Stored {
        Stored {
            status: 200,
            headers: Headers(
                headers
                    .iter()
                    .map(|(n, v)| Header {
                        name: Bytes::copy_from_slice(n.as_bytes()),
                        value: Bytes::copy_from_slice(v.as_bytes()),
                    })
                    .collect(),
            ),
            body: Bytes::copy_from_slice(body.as_bytes()),
        }
    }

    const FOREVER: Freshness = Freshness {
        received_ms: 0,
        initial_age_ms: 0,
        lifetime_ms: u64::MAX,
        must_revalidate: false,
    };

    fn body(l: Lookup) -> Option<String> {
        match l {
            Lookup::Fresh(r) => Some(String::from_utf8_lossy(&r.body).into_owned()),
            _ => None,
        }
    }

    #[test]
    fn the_least_recently_used_item_goes_first() {
        let mut s = Store::new(2, 1 << 20);
        s.put("a", &[], resp("A", &[]), FOREVER);
        s.put("b", &[], resp("B", &[]), FOREVER);
        assert!(body(s.lookup("a", &[], 1)).is_some());
        s.put("c", &[], resp("C", &[]), FOREVER);
        assert_eq!(s.len(), 2);
        assert!(body(s.lookup("b", &[], 1)).is_none(), "b was the oldest");
        assert_eq!(body(s.lookup("a", &[], 1)).as_deref(), Some("A"));
    }

    #[test]
    fn bytes_stay_under_max_size_and_a_huge_response_is_not_stored() {
        let mut s = Store::new(100, 2048);
        let big = "x".repeat(900);
        for k in ["a", "b", "c", "d"] {
            s.put(k, &[], resp(&big, &[]), FOREVER);
            assert!(s.bytes() <= 2048);
        }
        assert_eq!(s.len(), 2);
        s.put("huge", &[], resp(&"y".repeat(4096), &[]), FOREVER);
        assert!(body(s.lookup("huge", &[], 1)).is_none());
        assert!(s.bytes() <= 2048);
    }

    #[test]
    fn vary_separates_entries_by_the_request_header() {
        let mut s = Store::new(10, 1 << 20);
        let en = [(
            Bytes::from_static(b"Accept-Language"),
            Bytes::from_static(b"en"),
        )];
        let fr = [(
            Bytes::from_static(b"accept-language"),
            Bytes::from_static(b"fr"),
        )];
        s.put(
            "u",
            &en,
            resp("EN", &[("Vary", "Accept-Language")]),
            FOREVER,
        );
        assert!(body(s.lookup("u", &fr, 1)).is_none());
        s.put(
            "u",
            &fr,
            resp("FR", &[("Vary", "Accept-Language")]),
            FOREVER,
        );
        assert_eq!(body(s.lookup("u", &en, 1)).as_deref(), Some("EN"));
        assert_eq!(body(s.lookup("u", &fr, 1)).as_deref(), Some("FR"));
        assert!(body(s.lookup("u", &[], 1)).is_none());
    }
}
