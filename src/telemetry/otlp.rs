//! The OTLP exporters: std threads, off every event loop.
//!
//! One collector thread drains the cores' span queues ([`super::trace`]), encodes batches of
//! at most [`MAX_BATCH`] spans once, and offers each batch to every exporter that takes
//! traces. Each exporter has its own thread and a bounded queue of encoded batches, so a slow
//! or dead collector only delays (and, once its queue is full, drops) its own data. Every
//! `period` an exporter that takes metrics asks the cores for their series (as a Prometheus
//! scrape does), merges them and pushes them, cumulative. A failed push is retried with a
//! doubling backoff (a few times for a span batch, which is then dropped and counted; metrics
//! are simply sent again at the next period: they are cumulative). Drops are reported as one
//! warning line at most once a second.

use super::otel::{Otel, OtlpExporter, Resource};
use super::otlp_proto;
use super::otlp_wire::{Conn, SendError, Signal};
use super::scrape::{Ask, Cores};
use super::store::Series;
use super::trace::{self, SpanRec};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Spans in one export request (OTel SDK's default batch size is 512).
pub const MAX_BATCH: usize = 512;
/// Spans the collector thread holds while it encodes: beyond, the cores' queues fill and drop.
const MAX_PENDING: usize = 4 * MAX_BATCH;
/// Encoded batches waiting per exporter.
const EXPORTER_QUEUE: usize = 8;
/// How long the collector waits for more spans before it sends a partial batch.
const LINGER: Duration = Duration::from_millis(200);
/// Tries per span batch before it is dropped.
const TRIES: u32 = 4;
const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Spans dropped anywhere after the cores (an exporter's full queue, a batch given up on).
static DROPPED_EXPORT: AtomicU64 = AtomicU64::new(0);
/// Shutdown: send what is held now, once, without waiting for a batch to fill.
static STOP: AtomicBool = AtomicBool::new(false);
/// The collector handed its last batches over.
static COLLECTED: AtomicBool = AtomicBool::new(false);
/// Exporter threads running, and those that sent their last data.
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static FINISHED: AtomicUsize = AtomicUsize::new(0);

/// At exit: the exporters send what they hold (one try each, no backoff, the metrics once
/// more); wait for them at most `limit`, so a dead collector cannot hold the process.
pub fn shutdown(limit: Duration) {
    STOP.store(true, Ordering::Relaxed);
    let start = Instant::now();
    while FINISHED.load(Ordering::Relaxed) < RUNNING.load(Ordering::Relaxed)
        && start.elapsed() < limit
    {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Start the exporters of `o` (once, at startup). `asks` are the cores' mailboxes.
pub fn start(o: &Otel, asks: &[Sender<Ask>]) -> Result<(), String> {
    if o.otlp.is_empty() {
        return Ok(());
    }
    let start_ns = trace::now_ns();
    let mut trace_queues = Vec::new();
    if !o.otlp.iter().any(|e| e.traces && o.traces.is_some()) {
        COLLECTED.store(true, Ordering::Relaxed);
    }
    for (i, e) in o.otlp.iter().enumerate() {
        let queue = if e.traces && o.traces.is_some() {
            let (tx, rx) = sync_channel::<Arc<Batch>>(EXPORTER_QUEUE);
            trace_queues.push(tx);
            Some(rx)
        } else {
            None
        };
        let cores = e
            .metrics
            .then(|| Cores::new(asks.to_vec(), Ask::Series, super::store::retired));
        let mut ex = Exporter {
            cfg: e.clone(),
            resource: o.resource.clone(),
            conn: Conn::new(&e.host, e.port, e.use_http),
            cores,
            start_ns,
            last_error: None,
        };
        RUNNING.fetch_add(1, Ordering::Relaxed);
        std::thread::Builder::new()
            .name(format!("proxy-otlp-{i}"))
            .spawn(move || {
                ex.run(queue);
                FINISHED.fetch_add(1, Ordering::Relaxed);
            })
            .map_err(|err| format!("telemetry/opentelemetry: cannot start its thread: {err}"))?;
    }
    if !trace_queues.is_empty() {
        let sink = trace::install();
        let resource = o.resource.clone();
        std::thread::Builder::new()
            .name("proxy-otlp".into())
            .spawn(move || collect(sink, &resource, &trace_queues))
            .map_err(|err| format!("telemetry/opentelemetry: cannot start its thread: {err}"))?;
    }
    Ok(())
}

/// The collector thread: cores' batches in, encoded export requests out.
fn collect(sink: &trace::Sink, resource: &Resource, exporters: &[SyncSender<Arc<Batch>>]) {
    let mut queues: Vec<Receiver<Vec<SpanRec>>> = Vec::new();
    let mut pending: Vec<SpanRec> = Vec::with_capacity(MAX_PENDING);
    let mut oldest: Option<Instant> = None;
    let mut reported = 0u64;
    let mut last_report = Instant::now();
    loop {
        let stopping = STOP.load(Ordering::Relaxed);
        sink.adopt(&mut queues);
        queues.retain(|rx| loop {
            if pending.len() >= MAX_PENDING {
                return true;
            }
            match rx.try_recv() {
                Ok(batch) => {
                    oldest.get_or_insert_with(Instant::now);
                    pending.extend(batch);
                }
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        });
        let due = stopping || oldest.is_some_and(|t| t.elapsed() >= LINGER);
        while pending.len() >= MAX_BATCH || (due && !pending.is_empty()) {
            let n = pending.len().min(MAX_BATCH);
            let body = Arc::new(Batch {
                body: otlp_proto::traces(resource, pending.get(..n).unwrap_or(&[])),
                spans: n as u64,
            });
            pending.drain(..n);
            for tx in exporters {
                if tx.try_send(body.clone()).is_err() {
                    DROPPED_EXPORT.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }
        if pending.is_empty() {
            oldest = None;
        }
        let dropped = sink.dropped.load(Ordering::Relaxed) + DROPPED_EXPORT.load(Ordering::Relaxed);
        if dropped > reported && last_report.elapsed() >= Duration::from_secs(1) {
            crate::warn!(
                "[SERVICE: OpenTelemetry] {} spans dropped: the OTLP exporter is behind (its queue is full or its collector does not answer)",
                dropped - reported
            );
            reported = dropped;
            last_report = Instant::now();
        }
        if stopping {
            COLLECTED.store(true, Ordering::Relaxed);
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One encoded export request and the spans it holds.
struct Batch {
    body: Vec<u8>,
    spans: u64,
}

struct Exporter {
    cfg: OtlpExporter,
    resource: Resource,
    conn: Conn,
    cores: Option<Cores<Vec<Series>>>,
    start_ns: u64,
    /// The last failure logged, and when (one line per failure kind, at most every 10 s).
    last_error: Option<(String, Instant)>,
}

impl Exporter {
    fn run(&mut self, queue: Option<Receiver<Arc<Batch>>>) {
        let mut next_metrics = Instant::now() + self.cfg.period;
        let mut queue = queue;
        loop {
            if STOP.load(Ordering::Relaxed) && COLLECTED.load(Ordering::Relaxed) {
                return self.finish(queue.as_ref());
            }
            // Short waits: a shutdown is seen within 100 ms.
            let wait = next_metrics
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100));
            match &queue {
                Some(rx) => match rx.recv_timeout(wait) {
                    Ok(batch) => self.send_spans(&batch),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => queue = None,
                },
                None if self.cores.is_some() => std::thread::sleep(wait),
                None => return,
            }
            if Instant::now() >= next_metrics {
                self.send_metrics();
                next_metrics = Instant::now() + self.cfg.period;
            }
        }
    }

    /// The last batches, one try each, and the metrics' last totals.
    fn finish(&mut self, queue: Option<&Receiver<Arc<Batch>>>) {
        if let Some(rx) = queue {
            while let Ok(batch) = rx.try_recv() {
                if self.conn.send(Signal::Traces, &batch.body).is_err() {
                    break;
                }
            }
        }
        self.send_metrics();
    }

    fn send_spans(&mut self, batch: &Batch) {
        let mut backoff = BACKOFF_START;
        for attempt in 1..=TRIES {
            if attempt > 1 && STOP.load(Ordering::Relaxed) {
                break;
            }
            match self.conn.send(Signal::Traces, &batch.body) {
                Ok(()) => return,
                Err(SendError::Fatal(e)) => {
                    self.log(&format!("traces refused: {e}; the batch is dropped"));
                    break;
                }
                Err(SendError::Retry(e)) => {
                    self.log(&format!("cannot send traces: {e}"));
                    if attempt < TRIES {
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                    }
                }
            }
        }
        DROPPED_EXPORT.fetch_add(batch.spans, Ordering::Relaxed);
    }

    fn send_metrics(&mut self) {
        let Some(cores) = &mut self.cores else { return };
        let all: Vec<Series> = cores.collect().iter().flatten().cloned().collect();
        let series = otlp_proto::merge(&all);
        if series.is_empty() {
            return;
        }
        let body = otlp_proto::metrics(&self.resource, &series, self.start_ns, trace::now_ns());
        // Cumulative: a failed push loses nothing, the next one carries the totals.
        match self.conn.send(Signal::Metrics, &body) {
            Ok(()) => {}
            Err(SendError::Fatal(e)) | Err(SendError::Retry(e)) => {
                self.log(&format!("cannot send metrics: {e}; sent again next period"))
            }
        }
    }

    fn log(&mut self, what: &str) {
        let quiet = self
            .last_error
            .as_ref()
            .is_some_and(|(w, at)| w == what && at.elapsed() < Duration::from_secs(10));
        if quiet {
            return;
        }
        crate::warn!(
            "[SERVICE: OpenTelemetry] exporter {:?} ({}:{}): {what}",
            self.cfg.name,
            self.cfg.host,
            self.cfg.port
        );
        self.last_error = Some((what.to_string(), Instant::now()));
    }
}
