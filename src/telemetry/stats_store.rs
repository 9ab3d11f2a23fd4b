//! One core's `telemetry/metrics` series: a thread-local map written only by its worker (plain
//! integers in a `RefCell`, no atomics), copied out when the `/__stats` thread asks, as
//! [`super::store`] does for Prometheus. Everything here only ever grows; the windows KrakenD
//! clears every `collection_time` are cut by the stats thread from two copies.
//!
//! Histograms keep, instead of go-metrics' random sample of 1028 values, a count, sum, sum of
//! squares, min, max and log-linear buckets (16 per power of two): percentiles come from every
//! value, within 1/32 (about 3%) of the true one.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// What one entry counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `krakend.router.response.<endpoint>.{status.<code>.count,size,time}`: one entry per
    /// endpoint, so a response costs one map lookup.
    Router,
    /// `krakend.proxy.{requests,latency}.layer.pipe.name.<endpoint>...`, with
    /// [`super::store::COMPLETE`] / [`super::store::ERROR`] flags.
    Pipe(u8),
    /// `krakend.proxy.{requests,latency}.layer.backend.name.<url_pattern>...`.
    Backend(u8),
}

/// A histogram that only grows. `buckets[i]` counts the values whose [`bucket`] is `i`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hist {
    pub count: u64,
    pub sum: f64,
    pub sumsq: f64,
    pub min: u64,
    pub max: u64,
    pub buckets: Vec<u64>,
}

impl Hist {
    pub fn add(&mut self, v: u64) {
        if self.count == 0 || v < self.min {
            self.min = v;
        }
        if v > self.max {
            self.max = v;
        }
        self.count += 1;
        let f = v as f64;
        self.sum += f;
        self.sumsq += f * f;
        let i = bucket(v);
        if i >= self.buckets.len() {
            // Grown to the largest value seen: a latency series spans a few hundred buckets.
            self.buckets.resize(i + 1, 0);
        }
        if let Some(b) = self.buckets.get_mut(i) {
            *b += 1;
        }
    }

    /// Add another core's copy of the same series.
    pub fn merge(&mut self, o: &Hist) {
        if o.count == 0 {
            return;
        }
        if self.count == 0 || o.min < self.min {
            self.min = o.min;
        }
        self.max = self.max.max(o.max);
        self.count += o.count;
        self.sum += o.sum;
        self.sumsq += o.sumsq;
        if o.buckets.len() > self.buckets.len() {
            self.buckets.resize(o.buckets.len(), 0);
        }
        for (a, b) in self.buckets.iter_mut().zip(&o.buckets) {
            *a += b;
        }
    }
}

const SUB: u32 = 4;

/// Log-linear bucket of `v`: exact below 16, then 16 buckets per power of two.
pub fn bucket(v: u64) -> usize {
    if v < (1 << SUB) {
        return v as usize;
    }
    let e = 63 - v.leading_zeros();
    let mantissa = (v >> (e - SUB)) as usize & ((1 << SUB) - 1);
    (((e - SUB + 1) as usize) << SUB) + mantissa
}

/// The smallest value of bucket `i` (as u128: the bound past the last bucket is 2^64).
pub fn bucket_floor(i: usize) -> u128 {
    if i < (1 << SUB) {
        return i as u128;
    }
    let group = (i >> SUB) as u32;
    let mantissa = (i & ((1 << SUB) - 1)) as u128;
    ((1u128 << SUB) + mantissa) << (group - 1)
}

/// One series on one core.
#[derive(Clone, Debug)]
pub struct Entry {
    pub kind: Kind,
    /// The endpoint (`/users/{id}`) or the backend's `url_pattern` as lura holds it.
    pub name: Arc<str>,
    /// Handler time (router) or latency (pipe, backend), in nanoseconds; its count is the
    /// `requests` counter.
    pub hist: Hist,
    /// Router only: body bytes, and answers by status.
    pub size: Hist,
    pub statuses: Vec<(u16, u64)>,
}

impl Entry {
    /// Add another core's copy of the same series.
    pub fn merge(&mut self, o: &Entry) {
        self.hist.merge(&o.hist);
        self.size.merge(&o.size);
        for (code, n) in &o.statuses {
            add_status(&mut self.statuses, *code, *n);
        }
    }
}

fn add_status(statuses: &mut Vec<(u16, u64)>, code: u16, n: u64) {
    // A handful of statuses per endpoint: a scan beats hashing.
    match statuses.iter_mut().find(|(c, _)| *c == code) {
        Some((_, count)) => *count += n,
        None => statuses.push((code, n)),
    }
}

/// A copy of one core's series.
#[derive(Clone, Debug, Default)]
pub struct Copy {
    pub entries: Vec<Entry>,
    /// Requests that entered an endpoint handler, and those that left it.
    pub connected: u64,
    pub disconnected: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    kind: Kind,
    /// The address of the name's `Arc` (kept alive by the entry, so never reused).
    id: usize,
}

// One word for the hasher instead of one per field.
impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let tag: u64 = match self.kind {
            Kind::Router => 1,
            Kind::Pipe(f) => 2 | u64::from(f) << 8,
            Kind::Backend(f) => 3 | u64::from(f) << 8,
        };
        h.write_u64(self.id as u64 ^ tag.rotate_left(48));
    }
}

struct Core {
    map: HashMap<Key, Entry, foldhash::fast::FixedState>,
    connected: u64,
    disconnected: u64,
}

thread_local! {
    // A const initialiser: no lazy-init check on each of the request path's accesses.
    static CORE: RefCell<Core> = const {
        RefCell::new(Core {
            map: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0)),
            connected: 0,
            disconnected: 0,
        })
    };
}

fn entry<'a>(core: &'a mut Core, kind: Kind, name: &Arc<str>) -> &'a mut Entry {
    let key = Key {
        kind,
        id: Arc::as_ptr(name) as *const u8 as usize,
    };
    core.map.entry(key).or_insert_with(|| Entry {
        kind,
        name: name.clone(),
        hist: Hist::default(),
        size: Hist::default(),
        statuses: Vec::new(),
    })
}

fn with(f: impl FnOnce(&mut Core)) {
    CORE.with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            f(&mut c);
        }
    });
}

/// A request entered an endpoint handler (KrakenD's `RouterMetrics.Connection`).
pub fn connected() {
    with(|c| c.connected += 1);
}

/// The endpoint handler answered: its status, body size and time (KrakenD's response writer
/// metrics), and the matching `Disconnection`.
pub fn response(name: &Arc<str>, status: u16, size: u64, nanos: u64) {
    with(|c| {
        c.disconnected += 1;
        let e = entry(c, Kind::Router, name);
        add_status(&mut e.statuses, status, 1);
        e.size.add(size);
        e.hist.add(nanos);
    });
}

/// One run of an endpoint's proxy stack (`layer.pipe`).
pub fn pipe(name: &Arc<str>, flags: u8, nanos: u64) {
    with(|c| entry(c, Kind::Pipe(flags), name).hist.add(nanos));
}

/// One backend call (`layer.backend`).
pub fn backend(name: &Arc<str>, flags: u8, nanos: u64) {
    with(|c| entry(c, Kind::Backend(flags), name).hist.add(nanos));
}

/// A copy of this core's series, for the stats thread.
pub fn snapshot() -> Copy {
    CORE.with(|c| {
        let c = c.borrow();
        Copy {
            entries: c.map.values().cloned().collect(),
            connected: c.connected,
            disconnected: c.disconnected,
        }
    })
}

/// Nanoseconds since `t`, saturating.
pub fn nanos_since(t: std::time::Instant) -> u64 {
    u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_each_value_lies_in_its_own() {
        let mut last = 0;
        for v in (0..5000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let i = bucket(v);
            assert!(i >= last, "{v}");
            last = i;
            assert!(bucket_floor(i) <= v as u128, "{v}");
            assert!(bucket_floor(i + 1) > v as u128, "{v}");
        }
        // Width at most 1/16 of the floor past the exact range.
        for i in 16..900 {
            let (lo, hi) = (bucket_floor(i), bucket_floor(i + 1));
            assert!((hi - lo) * 16 <= lo, "{i}");
        }
    }

    #[test]
    fn a_core_counts_what_it_records() {
        let name: Arc<str> = Arc::from("/a");
        connected();
        response(&name, 200, 10, 1000);
        connected();
        response(&name, 200, 30, 3000);
        response(&name, 404, 0, 10);
        let s = snapshot();
        assert_eq!((s.connected, s.disconnected), (2, 3));
        let r = s.entries.iter().find(|e| e.kind == Kind::Router).unwrap();
        assert_eq!((r.hist.count, r.hist.min, r.hist.max), (3, 10, 3000));
        assert_eq!((r.size.count, r.size.max), (3, 30));
        assert_eq!(r.statuses, vec![(200, 2), (404, 1)]);
    }
}
