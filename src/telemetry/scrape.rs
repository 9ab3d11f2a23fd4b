//! `GET /metrics`: one std thread per Prometheus listener, off every event loop. A scrape asks
//! each core for a copy of its series through that core's mailbox, merges the copies into one
//! series per label set, and writes Prometheus text format 0.0.4.

use super::otel::Exporter;
use super::store::{Family, Labels, Series, CANCELED, COMPLETE, ERROR};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{sync_channel, Receiver, Sender, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

/// A question to one core: where to send a copy of its series (Prometheus' or `/__stats`').
pub enum Ask {
    Series(SyncSender<Vec<Series>>),
    Stats(SyncSender<super::stats_store::Copy>),
}

/// Each worker's side: answer the questions that arrived (called from a task on its loop).
/// False once no scrape thread can ask any more.
pub fn answer(rx: &Receiver<Ask>) -> bool {
    loop {
        match rx.try_recv() {
            Ok(Ask::Series(reply)) => {
                let _ = reply.send(super::store::snapshot());
            }
            Ok(Ask::Stats(reply)) => {
                let _ = reply.send(super::stats_store::snapshot());
            }
            Err(TryRecvError::Empty) => return true,
            Err(TryRecvError::Disconnected) => return false,
        }
    }
}

/// How long a scrape waits for one core before it uses that core's previous copy.
const CORE_WAIT: Duration = Duration::from_millis(500);

/// The cores' mailboxes and each core's last copy (a core that does not answer in time is
/// merged from it: counters never go backwards).
pub(crate) struct Cores<T> {
    asks: Vec<Sender<Ask>>,
    last: Vec<T>,
    ask: fn(SyncSender<T>) -> Ask,
    /// The copy a stopped core left (at shutdown), if any.
    retired: fn(usize) -> Option<T>,
}

impl<T: Clone + Default> Cores<T> {
    pub(crate) fn new(
        asks: Vec<Sender<Ask>>,
        ask: fn(SyncSender<T>) -> Ask,
        retired: fn(usize) -> Option<T>,
    ) -> Cores<T> {
        let last = vec![T::default(); asks.len()];
        Cores {
            asks,
            last,
            ask,
            retired,
        }
    }

    /// Every core's copy: fresh where the core answered in time, else its last one.
    pub(crate) fn collect(&mut self) -> &[T] {
        let mut waiting = Vec::with_capacity(self.asks.len());
        for tx in &self.asks {
            let (reply, rx) = sync_channel(1);
            waiting.push(tx.send((self.ask)(reply)).ok().map(|_| rx));
        }
        for (i, rx) in waiting.into_iter().enumerate() {
            // A stopped core is merged from the copy it left.
            let fresh = rx
                .and_then(|rx| rx.recv_timeout(CORE_WAIT).ok())
                .or_else(|| (self.retired)(i));
            if let (Some(copy), Some(slot)) = (fresh, self.last.get_mut(i)) {
                *slot = copy;
            }
        }
        &self.last
    }
}

/// Bind every exporter's listener (an address in use is a startup error) and serve each on its
/// own thread. `asks` holds one mailbox per core.
pub fn start(exporters: &[Exporter], asks: Vec<Sender<Ask>>) -> Result<(), String> {
    let mut bound = Vec::new();
    for e in exporters {
        let l = TcpListener::bind(e.addr).map_err(|err| {
            format!(
                "telemetry/opentelemetry: cannot listen on {}: {err}",
                e.addr
            )
        })?;
        bound.push((l, e.process_metrics));
    }
    for (l, process) in bound {
        // Each listener asks the cores on its own (no lock between listeners).
        let mut cores = Cores::new(asks.clone(), Ask::Series, super::store::retired);
        std::thread::Builder::new()
            .name("proxy-metrics".into())
            .spawn(move || serve(l, process, &mut cores))
            .map_err(|e| format!("telemetry/opentelemetry: cannot start its thread: {e}"))?;
    }
    Ok(())
}

fn serve(l: TcpListener, process: bool, cores: &mut Cores<Vec<Series>>) {
    for conn in l.incoming() {
        let Ok(mut conn) = conn else { continue };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = conn.set_write_timeout(Some(Duration::from_secs(5)));
        let Some((method, path)) = read_target(&mut conn) else {
            continue;
        };
        if path != "/metrics" || (method != "GET" && method != "HEAD") {
            let _ = respond(&mut conn, "404 Not Found", "404 page not found\n");
            continue;
        }
        let series: Vec<Series> = cores.collect().iter().flatten().cloned().collect();
        let mut body = render(&series);
        if process {
            process_metrics(&mut body);
        }
        let _ = respond(&mut conn, "200 OK", &body);
    }
}

/// The method and path of a request, read up to the end of its head (at most 8 KiB).
pub(crate) fn read_target(conn: &mut TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 || buf.len() > 8192 {
            return None;
        }
        buf.extend_from_slice(chunk.get(..n)?);
    }
    let line = buf.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    let (method, target) = (parts.next()?, parts.next()?);
    let path = target.split('?').next().unwrap_or(target);
    Some((method.to_string(), path.to_string()))
}

fn respond(conn: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body.as_bytes())
}

/// One merged series: label text → (bounds, per-bucket counts, sum, count).
struct Merged {
    bounds: Arc<[f64]>,
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// Merge every core's copy into one series per family and label set, and write them.
pub fn render(series: &[Series]) -> String {
    let mut families: BTreeMap<Family, BTreeMap<String, Merged>> = BTreeMap::new();
    for s in series {
        let labels = label_text(&s.labels);
        let fam = families.entry(s.family).or_default();
        let m = fam.entry(labels).or_insert_with(|| Merged {
            bounds: s.bounds.clone(),
            counts: vec![0; s.counts.len()],
            sum: 0.0,
            count: 0,
        });
        // A reload with other buckets starts new series under the same labels: their counts
        // join the `+Inf` bucket only when the bounds differ.
        if m.bounds == s.bounds {
            for (a, b) in m.counts.iter_mut().zip(&s.counts) {
                *a += b;
            }
        } else if let Some(inf) = m.counts.last_mut() {
            *inf += s.count;
        }
        m.sum += s.sum;
        m.count += s.count;
    }
    let mut out = String::with_capacity(4096);
    for (family, rows) in &families {
        let name = family.name();
        if family.is_counter() {
            out.push_str(&format!("# TYPE {name} counter\n"));
            for (labels, m) in rows {
                out.push_str(&format!("{name}{{{labels}}} {}\n", m.count));
            }
            continue;
        }
        out.push_str(&format!("# TYPE {name} histogram\n"));
        for (labels, m) in rows {
            let mut cumulative = 0u64;
            for (i, c) in m.counts.iter().enumerate() {
                cumulative += c;
                let le = m.bounds.get(i).map_or("+Inf".to_string(), |b| fmt_f64(*b));
                out.push_str(&format!(
                    "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}\n"
                ));
            }
            out.push_str(&format!("{name}_sum{{{labels}}} {}\n", fmt_f64(m.sum)));
            out.push_str(&format!("{name}_count{{{labels}}} {}\n", m.count));
        }
    }
    out
}

fn fmt_f64(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn b(v: bool) -> &'static str {
    if v {
        "true"
    } else {
        "false"
    }
}

/// Label names as krakend-otel's attributes read through the OTel Prometheus exporter (dots
/// become underscores), sorted by name as that exporter writes them.
pub(super) fn label_text(l: &Labels) -> String {
    let mut pairs: Vec<(&str, String)> = match l {
        Labels::Server { ep, method, status } => vec![
            // KrakenD: a request no endpoint matched reports this route.
            (
                "http_route",
                ep.as_ref()
                    .map_or("404 Not Found".to_string(), |e| e.route.to_string()),
            ),
            ("http_request_method", method.to_string()),
            ("http_response_status_code", status.to_string()),
        ],
        Labels::Proxy { ep, flags } => {
            let mut v = vec![
                ("http_route", ep.route.to_string()),
                ("http_request_method", ep.method.to_string()),
            ];
            push_flags(&mut v, *flags);
            v
        }
        Labels::Backend { b: be, flags } => {
            let mut v = backend_pairs(be);
            push_flags(&mut v, *flags);
            v
        }
        Labels::Client {
            b: be,
            host,
            port,
            status,
        } => {
            let mut v = backend_pairs(be);
            // KrakenD: the request's host replaces the config's `server_address`.
            v.retain(|(k, _)| *k != "server_address");
            v.push(("server_address", host.to_string()));
            v.push(("server_port", port.to_string()));
            v.push(("http_response_status_code", status.to_string()));
            v.push(("clientname", be.route.to_string()));
            v
        }
    };
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape(&mut out, v);
        out.push('"');
    }
    out
}

fn backend_pairs(be: &super::otel::BackendLabels) -> Vec<(&'static str, String)> {
    vec![
        ("http_request_method", be.method.to_string()),
        ("http_route", be.route.to_string()),
        // KrakenD: krakend-otel's `krakend.endpoint.route` (its first releases said
        // `krakend.endpoint`; KrakenD's Grafana dashboard reads `krakend_endpoint_route`).
        ("krakend_endpoint_route", be.endpoint.to_string()),
        ("krakend_endpoint_method", be.endpoint_method.to_string()),
        ("server_address", be.server_address.to_string()),
    ]
}

fn push_flags(v: &mut Vec<(&'static str, String)>, flags: u8) {
    v.push(("error", b(flags & ERROR != 0).to_string()));
    v.push(("canceled", b(flags & CANCELED != 0).to_string()));
    v.push(("complete", b(flags & COMPLETE != 0).to_string()));
}

fn escape(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// `process_metrics: true`: what Prometheus' Go process collector reports, from /proc.
fn process_metrics(out: &mut String) {
    for (name, kind, v) in process_rows() {
        out.push_str(&format!("# TYPE {name} {kind}\n{name} {}\n", fmt_f64(v)));
    }
}

/// The process' CPU time, memory, start time and descriptors, from /proc: (Prometheus name,
/// type, value).
pub(crate) fn process_rows() -> [(&'static str, &'static str, f64); 6] {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at `state`.
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as f64;
    // utime, stime are fields 14 and 15 of stat (11 and 12 after the state); vsize 23, rss 24;
    // starttime 22.
    let cpu = (num(11) + num(12)) / ticks;
    let vsize = num(20);
    let rss = num(21) * page;
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("btime ")
                    .map(|v| v.trim().parse::<f64>().ok())
            })
        })
        .flatten()
        .unwrap_or(0.0);
    let start = boot + num(19) / ticks;
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        })
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    [
        ("process_cpu_seconds_total", "counter", cpu),
        ("process_resident_memory_bytes", "gauge", rss),
        ("process_virtual_memory_bytes", "gauge", vsize),
        ("process_start_time_seconds", "gauge", start),
        ("process_open_fds", "gauge", fds as f64),
        ("process_max_fds", "gauge", max_fds),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::otel::EndpointLabels;

    fn series(ep: &Arc<EndpointLabels>, counts: Vec<u64>, sum: f64) -> Series {
        Series {
            family: Family::ProxyDuration,
            labels: Labels::Proxy {
                ep: ep.clone(),
                flags: COMPLETE,
            },
            bounds: Arc::from(vec![0.1]),
            count: counts.iter().sum(),
            counts,
            sum,
        }
    }

    #[test]
    fn two_cores_copies_of_one_label_set_render_as_one_series() {
        // Each core compiled its own plan: equal labels behind different `Arc`s.
        let a = Arc::new(EndpointLabels::new("/u/{id}", "GET", None));
        let b = Arc::new(EndpointLabels::new("/u/{id}", "GET", None));
        let text = render(&[series(&a, vec![1, 2], 0.5), series(&b, vec![3, 0], 0.25)]);
        let labels = r#"canceled="false",complete="true",error="false",http_request_method="GET",http_route="/u/:id""#;
        assert!(
            text.contains(&format!(
                "krakend_proxy_duration_bucket{{{labels},le=\"0.1\"}} 4\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "krakend_proxy_duration_bucket{{{labels},le=\"+Inf\"}} 6\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!("krakend_proxy_duration_count{{{labels}}} 6\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("krakend_proxy_duration_sum{{{labels}}} 0.75\n")),
            "{text}"
        );
        assert_eq!(
            text.matches("krakend_proxy_duration_count").count(),
            1,
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape(&mut out, "a\"b\\c\nd");
        assert_eq!(out, r#"a\"b\\c\nd"#);
    }
}
