//! `GET /__stats` on `telemetry/metrics`' own listener, off every event loop: one thread
//! accepts, another owns the state (the cores' mailboxes, the last collection tick) and
//! answers it over a channel, so neither needs a lock. Each page merges the cores' copies
//! and writes go-metrics' expvar JSON under KrakenD's key names.

use super::scrape::{read_target, Ask, Cores};
use super::stats::Stats;
use super::stats_store::{bucket_floor, Copy, Entry, Hist, Kind};
use super::store::{COMPLETE, ERROR};
use crate::plan::PlanHandle;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{channel, sync_channel, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bind the listener (an address in use is a startup error) and start its two threads.
pub fn start(cfg: &Stats, asks: Vec<Sender<Ask>>, plan: PlanHandle) -> Result<(), String> {
    let l = TcpListener::bind(cfg.addr).map_err(|e| {
        format!(
            "{}: cannot listen on {} (listen_address): {e}",
            super::stats::NS,
            cfg.addr
        )
    })?;
    let (tx, rx) = channel();
    let state = State {
        cores: Cores::new(asks, Ask::Stats, |_| None),
        cfg: cfg.clone(),
        plan,
        base: BTreeMap::new(),
        base_conn: (0, 0),
        gauge: (0, 0),
    };
    let spawn = |name: &str| std::thread::Builder::new().name(name.into());
    spawn("proxy-stats")
        .spawn(move || state.run(rx))
        .map_err(|e| format!("{}: cannot start its thread: {e}", super::stats::NS))?;
    spawn("proxy-stats-http")
        .spawn(move || serve(l, tx))
        .map_err(|e| format!("{}: cannot start its thread: {e}", super::stats::NS))?;
    Ok(())
}

fn serve(l: TcpListener, pages: Sender<SyncSender<String>>) {
    for conn in l.incoming() {
        let Ok(mut conn) = conn else { continue };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = conn.set_write_timeout(Some(Duration::from_secs(5)));
        let Some((method, path)) = read_target(&mut conn) else {
            continue;
        };
        // KrakenD: a gin engine with only `GET /__stats`, trailing-slash redirects and 405s.
        let _ = match (path.as_str(), method.as_str()) {
            ("/__stats", "GET") => {
                let (reply, page) = sync_channel(1);
                if pages.send(reply).is_err() {
                    return;
                }
                match page.recv() {
                    Ok(body) => respond(&mut conn, "200 OK", JSON, &[], &body),
                    Err(_) => return,
                }
            }
            ("/__stats", _) => respond(
                &mut conn,
                "405 Method Not Allowed",
                TEXT,
                &[],
                "405 method not allowed",
            ),
            ("/__stats/", m) => {
                let status = if m == "GET" {
                    "301 Moved Permanently"
                } else {
                    "307 Temporary Redirect"
                };
                respond(&mut conn, status, TEXT, &[("Location", "/__stats")], "")
            }
            _ => respond(&mut conn, "404 Not Found", TEXT, &[], "404 page not found"),
        };
    }
}

const JSON: &str = "application/json; charset=utf-8";
const TEXT: &str = "text/plain";

fn respond(
    conn: &mut TcpStream,
    status: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    conn.write_all(body.as_bytes())
}

type Merged = BTreeMap<(Kind, Arc<str>), Entry>;

struct State {
    cores: Cores<Copy>,
    cfg: Stats,
    plan: PlanHandle,
    /// The merged histograms at the last tick: each page shows what came after (KrakenD
    /// clears its histograms every `collection_time`).
    base: Merged,
    /// Connected and disconnected totals at the last tick, and what the last window added.
    base_conn: (u64, u64),
    gauge: (u64, u64),
}

impl State {
    fn run(mut self, pages: Receiver<SyncSender<String>>) {
        let mut next = Instant::now() + self.cfg.collection;
        loop {
            let wait = next.saturating_duration_since(Instant::now());
            match pages.recv_timeout(wait) {
                Ok(reply) => {
                    let _ = reply.send(self.page());
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.tick();
                    next += self.cfg.collection;
                    // A stalled thread catches up in one step, not a burst of empty windows.
                    let now = Instant::now();
                    if next < now {
                        next = now + self.cfg.collection;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn merge(&mut self) -> (Merged, (u64, u64)) {
        let mut m = Merged::new();
        let mut conn = (0, 0);
        for copy in self.cores.collect() {
            conn.0 += copy.connected;
            conn.1 += copy.disconnected;
            for e in &copy.entries {
                match m.entry((e.kind, e.name.clone())) {
                    std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().merge(e),
                    std::collections::btree_map::Entry::Vacant(v) => {
                        v.insert(e.clone());
                    }
                }
            }
        }
        (m, conn)
    }

    /// KrakenD's collection tick: `Aggregate` moves the connection counters into their
    /// `-total` and `-gauge` keys, and `TakeSnapshot` clears every histogram.
    fn tick(&mut self) {
        let (m, conn) = self.merge();
        self.gauge = (conn.0 - self.base_conn.0, conn.1 - self.base_conn.1);
        self.base_conn = conn;
        self.base = m;
    }

    fn page(&mut self) -> String {
        let (m, conn) = self.merge();
        let mut keys: BTreeMap<String, Val> = BTreeMap::new();
        let args: Vec<String> = std::env::args().collect();
        keys.insert("cmdline".into(), Val::Raw(json_strings(&args)));
        // KrakenD: the router's connection counters exist even with `router_disabled`.
        let r = "krakend.router.";
        let now = (
            conn.0.saturating_sub(self.base_conn.0),
            conn.1.saturating_sub(self.base_conn.1),
        );
        for (k, v) in [
            ("connected", now.0),
            ("disconnected", now.1),
            ("connected-total", self.base_conn.0),
            ("disconnected-total", self.base_conn.1),
            ("connected-gauge", self.gauge.0),
            ("disconnected-gauge", self.gauge.1),
        ] {
            keys.insert(format!("{r}{k}"), Val::Int(v));
        }
        self.registered(&mut keys);
        let empty = Hist::default();
        for ((kind, name), e) in &m {
            let base = self.base.get(&(*kind, name.clone()));
            let (base_hist, base_size) = base.map_or((&empty, &empty), |b| (&b.hist, &b.size));
            match kind {
                Kind::Router => {
                    for (code, n) in &e.statuses {
                        let k = format!("{r}response.{name}.status.{code}.count");
                        keys.insert(k, Val::Int(*n));
                    }
                    let size = format!("{r}response.{name}.size");
                    hist(&mut keys, &size, &e.size, base_size);
                    let time = format!("{r}response.{name}.time");
                    hist(&mut keys, &time, &e.hist, base_hist);
                }
                Kind::Pipe(f) | Kind::Backend(f) => {
                    let labels = proxy_labels(*kind, name, *f);
                    let k = format!("krakend.proxy.requests.{labels}");
                    keys.insert(k, Val::Int(e.hist.count));
                    let latency = format!("krakend.proxy.latency.{labels}");
                    hist(&mut keys, &latency, &e.hist, base_hist);
                }
            }
        }
        for (name, _, v) in super::scrape::process_rows() {
            let name = name.trim_start_matches("process_");
            keys.insert(format!("proxy.process.{name}"), Val::Float(v));
        }
        let mut out = String::with_capacity(64 * keys.len() + 16);
        out.push_str("{\n");
        for (i, (k, v)) in keys.iter().enumerate() {
            if i > 0 {
                out.push_str(",\n");
            }
            out.push_str(&json_string(k));
            out.push_str(": ");
            match v {
                Val::Int(n) => out.push_str(&n.to_string()),
                Val::Float(f) => out.push_str(&float(*f)),
                Val::Raw(s) => out.push_str(s),
            }
        }
        out.push_str("\n}\n");
        out
    }

    /// KrakenD registers every endpoint's and backend's keys when it builds the handlers, so
    /// they read 0 before any request.
    fn registered(&self, keys: &mut BTreeMap<String, Val>) {
        let plan = self.plan.load();
        let empty = Hist::default();
        for ep in &plan.endpoints {
            let name = &ep.stats_name;
            if self.cfg.router {
                let r = format!("krakend.router.response.{name}");
                keys.insert(format!("{r}.status"), Val::Int(0));
                hist(keys, &format!("{r}.size"), &empty, &empty);
                hist(keys, &format!("{r}.time"), &empty, &empty);
            }
            let mut layers = Vec::new();
            if self.cfg.proxy {
                layers.push((Kind::Pipe(0), name.clone()));
            }
            if self.cfg.backend {
                layers.extend(
                    ep.backends
                        .iter()
                        .map(|b| (Kind::Backend(0), b.stats_name.clone())),
                );
            }
            for (kind, name) in layers {
                for f in [0, ERROR, COMPLETE, ERROR | COMPLETE] {
                    let labels = proxy_labels(kind, &name, f);
                    keys.insert(format!("krakend.proxy.requests.{labels}"), Val::Int(0));
                    hist(
                        keys,
                        &format!("krakend.proxy.latency.{labels}"),
                        &empty,
                        &empty,
                    );
                }
            }
        }
    }
}

enum Val {
    Int(u64),
    Float(f64),
    Raw(String),
}

fn proxy_labels(kind: Kind, name: &str, flags: u8) -> String {
    let layer = if matches!(kind, Kind::Pipe(_)) {
        "pipe"
    } else {
        "backend"
    };
    format!(
        "layer.{layer}.name.{name}.complete.{}.error.{}",
        flags & COMPLETE != 0,
        flags & ERROR != 0
    )
}

/// go-metrics' percentiles in exp's labels.
const PERCENTILES: [(f64, &str); 5] = [
    (0.5, "50"),
    (0.75, "75"),
    (0.95, "95"),
    (0.99, "99"),
    (0.999, "999"),
];

/// One histogram as exp publishes it: `count`, `min`, `max`, `mean`, `std-dev` and the
/// percentiles, of the values since the last tick (`now` less `base`).
fn hist(keys: &mut BTreeMap<String, Val>, name: &str, now: &Hist, base: &Hist) {
    let w = Window::new(now, base);
    keys.insert(format!("{name}.count"), Val::Int(w.count));
    let n = w.count as f64;
    let (mean, std) = if w.count == 0 {
        (0.0, 0.0)
    } else {
        let mean = w.sum / n;
        (mean, (w.sumsq / n - mean * mean).max(0.0).sqrt())
    };
    keys.insert(format!("{name}.min"), Val::Float(w.min as f64));
    keys.insert(format!("{name}.max"), Val::Float(w.max as f64));
    keys.insert(format!("{name}.mean"), Val::Float(mean));
    keys.insert(format!("{name}.std-dev"), Val::Float(std));
    for (p, label) in PERCENTILES {
        keys.insert(
            format!("{name}.{label}-percentile"),
            Val::Float(w.percentile(p)),
        );
    }
}

/// The values a histogram took since the last tick.
struct Window {
    count: u64,
    sum: f64,
    sumsq: f64,
    min: u64,
    max: u64,
    buckets: Vec<u64>,
}

impl Window {
    fn new(now: &Hist, base: &Hist) -> Window {
        let buckets: Vec<u64> = now
            .buckets
            .iter()
            .enumerate()
            .map(|(i, c)| c.saturating_sub(base.buckets.get(i).copied().unwrap_or(0)))
            .collect();
        let count = now.count.saturating_sub(base.count);
        let (mut min, mut max) = (now.min, now.max);
        if base.count > 0 && count > 0 {
            // Before the tick the extremes may have been other values: this window's are
            // read from its buckets, kept within the all-time ones.
            let lo = buckets.iter().position(|c| *c > 0).unwrap_or(0);
            let hi = buckets.iter().rposition(|c| *c > 0).unwrap_or(0);
            min = u64::try_from(bucket_floor(lo))
                .unwrap_or(u64::MAX)
                .max(now.min);
            max = u64::try_from(bucket_floor(hi + 1) - 1)
                .unwrap_or(u64::MAX)
                .min(now.max);
        }
        if count == 0 {
            (min, max) = (0, 0);
        }
        Window {
            count,
            sum: (now.sum - base.sum).max(0.0),
            sumsq: (now.sumsq - base.sumsq).max(0.0),
            min,
            max,
            buckets,
        }
    }

    /// go-metrics' `SamplePercentile`: the value at rank p·(n+1), interpolated between
    /// neighbours, clamped to the first and last.
    fn percentile(&self, p: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let n = self.count as f64;
        let pos = p * (n + 1.0);
        if pos < 1.0 {
            return self.min as f64;
        }
        if pos >= n {
            return self.max as f64;
        }
        let rank = pos.floor() as u64;
        let (lower, upper) = (self.at(rank), self.at(rank + 1));
        lower + (pos - pos.floor()) * (upper - lower)
    }

    /// The value of rank `k` (1-based): its bucket's middle, within the window's extremes.
    fn at(&self, k: u64) -> f64 {
        let mut seen = 0;
        for (i, c) in self.buckets.iter().enumerate() {
            seen += c;
            if seen >= k {
                let lo = bucket_floor(i) as f64;
                let hi = (bucket_floor(i + 1) - 1) as f64;
                return ((lo + hi) / 2.0).clamp(self.min as f64, self.max as f64);
            }
        }
        self.max as f64
    }
}

fn float(f: f64) -> String {
    if f.is_finite() {
        format!("{f}")
    } else {
        "0".into()
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn json_strings(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist_of(values: &[u64]) -> Hist {
        let mut h = Hist::default();
        for v in values {
            h.add(*v);
        }
        h
    }

    #[test]
    fn small_values_give_go_metrics_exact_figures() {
        let h = hist_of(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        let w = Window::new(&h, &Hist::default());
        assert_eq!((w.count, w.min, w.max), (10, 1, 10));
        // go-metrics: pos = 0.5 * 11 = 5.5 -> 5 + 0.5 * (6 - 5).
        assert_eq!(w.percentile(0.5), 5.5);
        assert_eq!(w.percentile(0.99), 10.0);
    }

    #[test]
    fn large_percentiles_are_within_a_thirty_second() {
        let values: Vec<u64> = (1..=1000).map(|i| i * 1_000_003).collect();
        let w = Window::new(&hist_of(&values), &Hist::default());
        for (p, _) in PERCENTILES {
            let pos = p * 1001.0;
            let truth = pos.floor() * 1_000_003.0 + (pos - pos.floor()) * 1_000_003.0;
            let got = w.percentile(p);
            assert!((got - truth).abs() <= truth / 32.0, "{p}: {got} vs {truth}");
        }
    }

    #[test]
    fn a_window_holds_only_what_came_after_the_tick() {
        let base = hist_of(&[1_000, 2_000_000]);
        let mut now = base.clone();
        now.add(50_000);
        now.add(60_000);
        let w = Window::new(&now, &base);
        assert_eq!(w.count, 2);
        assert!(w.min >= 50_000 * 15 / 16 && w.min <= 50_000, "{}", w.min);
        assert!(w.max >= 60_000 && w.max <= 60_000 * 17 / 16, "{}", w.max);
        let empty = Window::new(&base, &base);
        assert_eq!((empty.count, empty.min, empty.max), (0, 0, 0));
        assert_eq!(empty.percentile(0.5), 0.0);
    }

    #[test]
    fn proxy_keys_read_as_krakend_writes_them() {
        assert_eq!(
            proxy_labels(Kind::Backend(0), "/u/{{.Id}}", COMPLETE),
            "layer.backend.name./u/{{.Id}}.complete.true.error.false"
        );
        assert_eq!(
            proxy_labels(Kind::Pipe(0), "/a", ERROR),
            "layer.pipe.name./a.complete.false.error.true"
        );
    }
}
