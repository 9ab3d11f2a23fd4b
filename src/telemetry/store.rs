//! One core's metric series: a thread-local map written only by its worker (plain integers
//! and floats in a `RefCell`, no atomics), copied out when the scrape thread asks.

use super::otel::{BackendLabels, EndpointLabels};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// The metric families, named as KrakenD CE's Prometheus exporter names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    ServerDuration,
    ServerSize,
    ProxyDuration,
    BackendDuration,
    ClientDuration,
    ClientStarted,
    ClientFailed,
    ClientTimedOut,
}

impl Family {
    pub const ALL: [Family; 8] = [
        Family::ServerDuration,
        Family::ServerSize,
        Family::ProxyDuration,
        Family::BackendDuration,
        Family::ClientDuration,
        Family::ClientStarted,
        Family::ClientFailed,
        Family::ClientTimedOut,
    ];

    // KrakenD: OTel names with dots as underscores; counters get `_total` from the OTel
    // Prometheus exporter; no unit suffix (krakend-otel sets no unit).
    pub fn name(self) -> &'static str {
        match self {
            Family::ServerDuration => "http_server_duration",
            Family::ServerSize => "http_server_response_size",
            Family::ProxyDuration => "krakend_proxy_duration",
            Family::BackendDuration => "krakend_backend_duration",
            Family::ClientDuration => "http_client_duration",
            Family::ClientStarted => "http_client_request_started_count_total",
            Family::ClientFailed => "http_client_request_failed_count_total",
            Family::ClientTimedOut => "http_client_request_timedout_count_total",
        }
    }

    pub fn is_counter(self) -> bool {
        matches!(
            self,
            Family::ClientStarted | Family::ClientFailed | Family::ClientTimedOut
        )
    }
}

/// The labels of one series, resolved to text only when scraped.
#[derive(Clone, Debug)]
pub enum Labels {
    /// `ep` is None for a request no endpoint matched.
    Server {
        ep: Option<Arc<EndpointLabels>>,
        method: &'static str,
        status: u16,
    },
    Proxy {
        ep: Arc<EndpointLabels>,
        flags: u8,
    },
    Backend {
        b: Arc<BackendLabels>,
        flags: u8,
    },
    Client {
        b: Arc<BackendLabels>,
        host: Arc<str>,
        port: u16,
        status: u16,
    },
}

/// `error`, `canceled`, `complete` of the stage histograms.
pub const ERROR: u8 = 1;
pub const CANCELED: u8 = 2;
pub const COMPLETE: u8 = 4;

/// One series on one core: a histogram (`bounds` not empty) or a counter (`count` only).
#[derive(Clone, Debug)]
pub struct Series {
    pub family: Family,
    pub labels: Labels,
    pub bounds: Arc<[f64]>,
    /// Per bucket (not cumulative), plus one for `+Inf`.
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    family: Family,
    /// The address of the labels' `Arc` (kept alive by the series, so never reused).
    id: usize,
    status: u16,
    small: u8,
    host: u64,
}

// Two words for the hasher instead of one per field: the request path hashes six keys.
impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let tag = (self.family as u64) << 32 | u64::from(self.status) << 8 | u64::from(self.small);
        h.write_u64(self.id as u64 ^ tag.rotate_left(48));
        h.write_u64(self.host);
    }
}

type Map = HashMap<Key, Series, foldhash::fast::FixedState>;

thread_local! {
    // A const initialiser: no lazy-init check on each of the request path's accesses.
    static SERIES: RefCell<Map> =
        const { RefCell::new(Map::with_hasher(foldhash::fast::FixedState::with_seed(0))) };
}

fn record(key: Key, value: f64, labels: impl FnOnce() -> Labels, bounds: &Arc<[f64]>) {
    SERIES.with(|m| {
        let Ok(mut m) = m.try_borrow_mut() else {
            return;
        };
        let s = m.entry(key).or_insert_with(|| Series {
            family: key.family,
            labels: labels(),
            bounds: bounds.clone(),
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        });
        s.count += 1;
        if s.bounds.is_empty() {
            return;
        }
        s.sum += value;
        // OTel buckets are upper-inclusive: `le` holds values <= the bound. A scan from the
        // low end: most values land in the first few buckets, sooner than a binary search.
        let i = s
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(s.bounds.len());
        if let Some(c) = s.counts.get_mut(i) {
            *c += 1;
        }
    });
}

fn no_bounds() -> Arc<[f64]> {
    thread_local! {
        static EMPTY: Arc<[f64]> = Arc::from(Vec::new());
    }
    EMPTY.with(|e| e.clone())
}

/// The methods a server series may carry; any other becomes `_OTHER` (bounded cardinality:
/// a client cannot mint series with made-up methods).
pub fn method_label(m: &[u8]) -> (&'static str, u8) {
    const KNOWN: [&str; 9] = [
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE",
    ];
    for (i, k) in KNOWN.iter().enumerate() {
        if k.as_bytes() == m {
            return (k, i as u8);
        }
    }
    ("_OTHER", 255)
}

/// `http_server_duration` and `http_server_response_size` for one request.
pub fn server(
    ep: Option<&Arc<EndpointLabels>>,
    method: &[u8],
    status: u16,
    secs: f64,
    size: u64,
    time: &Arc<[f64]>,
    sizes: &Arc<[f64]>,
) {
    let (method, small) = method_label(method);
    let id = ep.map_or(0, |e| Arc::as_ptr(e) as usize);
    let labels = || Labels::Server {
        ep: ep.cloned(),
        method,
        status,
    };
    let key = |family| Key {
        family,
        id,
        status,
        small,
        host: 0,
    };
    record(key(Family::ServerDuration), secs, labels, time);
    record(key(Family::ServerSize), size as f64, labels, sizes);
}

/// `krakend_proxy_duration` for one pipe.
pub fn proxy(ep: &Arc<EndpointLabels>, flags: u8, secs: f64, time: &Arc<[f64]>) {
    let key = Key {
        family: Family::ProxyDuration,
        id: Arc::as_ptr(ep) as usize,
        status: 0,
        small: flags,
        host: 0,
    };
    let labels = || Labels::Proxy {
        ep: ep.clone(),
        flags,
    };
    record(key, secs, labels, time);
}

/// `krakend_backend_duration` for one backend stage.
pub fn backend(b: &Arc<BackendLabels>, flags: u8, secs: f64, time: &Arc<[f64]>) {
    let key = Key {
        family: Family::BackendDuration,
        id: Arc::as_ptr(b) as usize,
        status: 0,
        small: flags,
        host: 0,
    };
    let labels = || Labels::Backend {
        b: b.clone(),
        flags,
    };
    record(key, secs, labels, time);
}

/// How one HTTP round trip to a backend ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundTrip {
    Status(u16),
    Failed,
    TimedOut,
}

/// `http_client_*` for one round trip to `authority` (host:port or host).
pub fn client(
    b: &Arc<BackendLabels>,
    authority: &str,
    end: RoundTrip,
    secs: f64,
    time: &Arc<[f64]>,
) {
    use std::hash::BuildHasher;
    let host = foldhash::fast::FixedState::default().hash_one(authority);
    // KrakenD: a failed round trip reports status 0.
    let status = match end {
        RoundTrip::Status(s) => s,
        _ => 0,
    };
    let labels = || {
        let (name, port) = split_authority(authority);
        Labels::Client {
            b: b.clone(),
            host: name.into(),
            port,
            status,
        }
    };
    let key = |family| Key {
        family,
        id: Arc::as_ptr(b) as usize,
        status,
        small: 0,
        host,
    };
    let none = no_bounds();
    record(key(Family::ClientStarted), 1.0, labels, &none);
    if !matches!(end, RoundTrip::Status(_)) {
        record(key(Family::ClientFailed), 1.0, labels, &none);
    }
    if end == RoundTrip::TimedOut {
        record(key(Family::ClientTimedOut), 1.0, labels, &none);
    }
    record(key(Family::ClientDuration), secs, labels, time);
}

/// `server_address` and `server_port` as krakend-otel computes them.
// KrakenD: `requestServerAndPort` keeps port 80 when the URL's port parses and sets 0 when it
// does not (its error check is inverted): an explicit port reads 80, none reads 0.
fn split_authority(a: &str) -> (&str, u16) {
    match a.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()) => (h, 80),
        _ => (a, 0),
    }
}

/// A copy of this core's series, for the scrape thread.
pub fn snapshot() -> Vec<Series> {
    SERIES.with(|m| m.borrow().values().cloned().collect())
}

// Taken once per core as it stops, and by an exporter's last push: never on a request.
#[allow(clippy::disallowed_types)]
static RETIRED: std::sync::Mutex<Vec<(usize, Vec<Series>)>> = std::sync::Mutex::new(Vec::new());

/// A stopping worker leaves its last copy (core `core`), for the exporters' final push.
pub fn retire(core: usize) {
    let copy = snapshot();
    if let Ok(mut r) = RETIRED.lock() {
        r.push((core, copy));
    }
}

/// The copy core `core` left as it stopped.
pub fn retired(core: usize) -> Option<Vec<Series>> {
    let r = RETIRED.lock().ok()?;
    r.iter()
        .rev()
        .find(|(c, _)| *c == core)
        .map(|(_, s)| s.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_values_up_to_their_bound() {
        let bounds: Arc<[f64]> = Arc::from(vec![0.1, 0.2]);
        let ep = Arc::new(EndpointLabels::new("/a", "GET", None));
        for v in [0.05, 0.1, 0.15, 0.3] {
            proxy(&ep, COMPLETE, v, &bounds);
        }
        let s = snapshot();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].counts, vec![2, 1, 1]);
        assert_eq!(s[0].count, 4);
    }

    #[test]
    fn ports_read_as_krakend_reports_them() {
        assert_eq!(split_authority("backend:8080"), ("backend", 80));
        assert_eq!(split_authority("backend"), ("backend", 0));
    }
}
