//! Spans on the request path: W3C `traceparent` in and out, ids from a per-core RNG, and a
//! bounded per-core buffer the OTLP exporter thread drains.
//!
//! Cost: a sampled span is one small `Vec` of attributes and two clock reads (vDSO, no
//! syscall); an unsampled one only its ids. A finished span goes into this core's plain
//! `Vec` (no atomic, no lock); every 256 spans, and on the worker's 200 ms tick, the batch is
//! handed to the exporter through this core's bounded channel. A full channel (the exporter
//! is behind, the collector is slow) drops the batch and counts it: requests never wait.

use super::otel::{Sampler, Traces};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};

/// A span's identity as children and backends see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanCtx {
    pub trace: [u8; 16],
    /// All zero for "no parent" (a trace that starts here).
    pub span: [u8; 8],
    pub sampled: bool,
}

/// A request's tracing as it goes down the stages: the enclosing span, and which of the
/// stages below record spans (copied from the plan's `layers`, so no stage looks them up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReqTrace {
    pub ctx: SpanCtx,
    pub proxy: bool,
    pub proxy_headers: bool,
    pub stage: bool,
    pub round_trip: bool,
    pub backend_headers: bool,
}

impl ReqTrace {
    pub fn new(ctx: SpanCtx, t: &Traces) -> ReqTrace {
        ReqTrace {
            ctx,
            proxy: t.proxy,
            proxy_headers: t.proxy_headers,
            stage: t.backend_stage,
            round_trip: t.round_trip,
            backend_headers: t.backend_headers,
        }
    }

    /// The ids of one backend call's spans, chosen before its request is built (its
    /// `traceparent` names the innermost), or None when no span would be its parent.
    pub fn call(&self) -> Option<CallTrace> {
        let stage = self.stage.then(new_span_id);
        let round_trip = self.round_trip.then(new_span_id);
        let span = round_trip.or(stage).unwrap_or(self.ctx.span);
        (span != [0; 8]).then_some(CallTrace {
            parent: self.ctx,
            stage,
            round_trip,
            headers: self.backend_headers,
            sent: SpanCtx { span, ..self.ctx },
        })
    }
}

/// One backend call's spans (see [`ReqTrace::call`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallTrace {
    pub parent: SpanCtx,
    pub stage: Option<[u8; 8]>,
    pub round_trip: Option<[u8; 8]>,
    pub headers: bool,
    /// What the backend's `traceparent` says.
    pub sent: SpanCtx,
}

impl CallTrace {
    /// The same call's trace with a new round trip span (another concurrent copy of the
    /// call), or None when round trips have no spans.
    pub fn another_round_trip(&self) -> Option<CallTrace> {
        self.round_trip?;
        let id = new_span_id();
        Some(CallTrace {
            round_trip: Some(id),
            sent: SpanCtx {
                span: id,
                ..self.sent
            },
            ..*self
        })
    }

    /// The round trip's parent: the backend stage span, else the call's parent.
    pub fn round_trip_parent(&self) -> SpanCtx {
        match self.stage {
            Some(span) => SpanCtx {
                span,
                ..self.parent
            },
            None => self.parent,
        }
    }
}

/// OTel's span kinds (the OTLP enum values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Internal = 1,
    Server = 2,
    Client = 3,
}

/// Text that is the plan's (shared), the request's (its bytes, not copied) or this span's own.
#[derive(Clone, Debug)]
pub enum Text {
    Static(&'static str),
    Shared(Arc<str>),
    Owned(String),
    /// Bytes copied from the request (a header, the target): made UTF-8 when encoded.
    Bytes(bytes::Bytes),
}

impl Text {
    pub fn utf8(&self) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        match self {
            Text::Static(s) => Cow::Borrowed(s),
            Text::Shared(s) => Cow::Borrowed(s),
            Text::Owned(s) => Cow::Borrowed(s),
            Text::Bytes(b) => String::from_utf8_lossy(b),
        }
    }

    /// A copy of request bytes: a span outlives its request, and must not hold the
    /// connection's read buffer (UTF-8 is checked when encoded, off the request path).
    pub fn copy(part: &[u8]) -> Text {
        Text::Bytes(bytes::Bytes::copy_from_slice(part))
    }
}

#[derive(Clone, Debug)]
pub enum Val {
    Text(Text),
    Int(i64),
    Bool(bool),
    F64(f64),
    /// A header's values (`http.request.header.*`).
    List(Vec<String>),
    /// Written as `ip:port` when encoded.
    Addr(std::net::SocketAddr),
}

/// A finished span, as the exporter encodes it.
#[derive(Clone, Debug)]
pub struct SpanRec {
    pub trace: [u8; 16],
    pub id: [u8; 8],
    pub parent: [u8; 8],
    pub kind: Kind,
    pub name: Text,
    pub start_ns: u64,
    pub end_ns: u64,
    pub attrs: Vec<(Text, Val)>,
    /// Attributes encoded at plan time (see `otlp_proto::fixed_attrs`).
    pub fixed: Option<Arc<[u8]>>,
    /// None: unset; Some(None): ok; Some(Some(msg)): error.
    pub status: Option<Option<String>>,
}

/// A span being recorded. Unsampled spans keep their ids (for children and `traceparent`)
/// and record nothing.
pub struct Span {
    rec: Option<Box<SpanRec>>,
    ctx: SpanCtx,
}

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Span {
    /// A child of `parent` with a fresh id.
    pub fn start(parent: &SpanCtx, kind: Kind, name: impl FnOnce() -> Text) -> Span {
        Span::with_id(parent, new_span_id(), kind, name)
    }

    /// A child of `parent` with an id chosen earlier (sent to a backend before the call).
    pub fn with_id(parent: &SpanCtx, id: [u8; 8], kind: Kind, name: impl FnOnce() -> Text) -> Span {
        let ctx = SpanCtx {
            trace: parent.trace,
            span: id,
            sampled: parent.sampled,
        };
        let rec = parent.sampled.then(|| {
            Box::new(SpanRec {
                trace: parent.trace,
                id,
                parent: parent.span,
                kind,
                name: name(),
                start_ns: now_ns(),
                end_ns: 0,
                attrs: Vec::with_capacity(8),
                fixed: None,
                status: None,
            })
        });
        Span { rec, ctx }
    }

    pub fn ctx(&self) -> SpanCtx {
        self.ctx
    }

    pub fn recording(&self) -> bool {
        self.rec.is_some()
    }

    /// Attributes encoded at plan time.
    pub fn fixed(&mut self, attrs: &Arc<[u8]>) {
        if let Some(r) = &mut self.rec {
            r.fixed = Some(attrs.clone());
        }
    }

    pub fn attr(&mut self, key: &'static str, val: Val) {
        if let Some(r) = &mut self.rec {
            r.attrs.push((Text::Static(key), val));
        }
    }

    pub fn text(&mut self, key: &'static str, val: impl FnOnce() -> Text) {
        if let Some(r) = &mut self.rec {
            r.attrs.push((Text::Static(key), Val::Text(val())));
        }
    }

    /// `http.request.header.<name>` (or response) for each header, values grouped by name.
    pub fn headers<'h>(
        &mut self,
        prefix: &'static str,
        headers: impl Iterator<Item = (&'h [u8], &'h [u8])>,
    ) {
        let Some(r) = &mut self.rec else { return };
        let mut seen: Vec<(String, Vec<String>)> = Vec::new();
        for (n, v) in headers {
            let name = String::from_utf8_lossy(n).to_ascii_lowercase();
            let v = String::from_utf8_lossy(v).into_owned();
            match seen.iter_mut().find(|(k, _)| *k == name) {
                Some((_, vs)) => vs.push(v),
                None => seen.push((name, vec![v])),
            }
        }
        for (k, vs) in seen {
            r.attrs
                .push((Text::Owned(format!("{prefix}{k}")), Val::List(vs)));
        }
    }

    /// Set the status: `None` is ok, `Some(msg)` an error.
    pub fn status(&mut self, err: Option<String>) {
        if let Some(r) = &mut self.rec {
            r.status = Some(err);
        }
    }

    /// End the span and hand it to this core's buffer.
    pub fn end(mut self) {
        if let Some(mut r) = self.rec.take() {
            r.end_ns = now_ns();
            push(*r);
        }
    }
}

/// A span dropped before its end: its call was cancelled (a concurrent copy that lost, a
/// client gone). Recorded as such, as KrakenD's spans end with a cancelled context.
impl Drop for Span {
    fn drop(&mut self) {
        if let Some(mut r) = self.rec.take() {
            r.end_ns = now_ns();
            r.attrs.push((Text::Static("canceled"), Val::Bool(true)));
            r.status = Some(Some("canceled".to_string()));
            push(*r);
        }
    }
}

/// The context a request's first span starts under: the client's `traceparent` when honoured
/// and valid (its trace id kept, its span the parent), else a new trace. Sampled as `sampler`
/// says.
pub fn root(t: &Traces, traceparent: Option<&[u8]>) -> SpanCtx {
    let parent = traceparent
        .filter(|_| t.extract)
        .and_then(parse_traceparent);
    let trace = match &parent {
        Some(p) => p.trace,
        None => new_trace_id(),
    };
    let sampled = match (t.sampler, &parent) {
        (Sampler::Always, _) => true,
        (Sampler::Never, _) => false,
        (Sampler::Ratio(_), Some(p)) => p.sampled,
        (Sampler::Ratio(r), None) => ratio_samples(&trace, r),
    };
    SpanCtx {
        trace,
        span: parent.map_or([0; 8], |p| p.span),
        sampled,
    }
}

/// OTel's `TraceIDRatioBased`: the trace id's last 8 bytes, as a number, below the share.
fn ratio_samples(trace: &[u8; 16], rate: f64) -> bool {
    let mut low = [0u8; 8];
    low.copy_from_slice(trace.get(8..16).unwrap_or(&[0; 8]));
    let x = u64::from_be_bytes(low) >> 1;
    let bound = (rate * (1u64 << 63) as f64) as u64;
    x < bound
}

/// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`; ids of all zeros are invalid.
pub fn parse_traceparent(v: &[u8]) -> Option<SpanCtx> {
    let v = v.trim_ascii();
    // Version 00 is exactly 55 bytes; a later version may append fields after a dash.
    let (head, rest) = v.split_at_checked(55)?;
    if !(rest.is_empty() || rest.first() == Some(&b'-')) {
        return None;
    }
    let mut parts = head.split(|b| *b == b'-');
    let (ver, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let ver = hex_n::<1>(ver)?;
    // Version ff is forbidden; version 00 has nothing after the flags.
    if ver == [0xff] || (ver == [0] && !rest.is_empty()) {
        return None;
    }
    let trace = hex_n::<16>(trace)?;
    let span = hex_n::<8>(span)?;
    let flags = hex_n::<1>(flags)?;
    if trace == [0; 16] || span == [0; 8] {
        return None;
    }
    Some(SpanCtx {
        trace,
        span,
        sampled: flags.first().is_some_and(|f| f & 1 == 1),
    })
}

fn hex_n<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let d = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let [a, b] = pair else { return None };
        *o = d(*a)? << 4 | d(*b)?;
    }
    Some(out)
}

/// The `traceparent` value naming `ctx` as the parent.
pub fn traceparent(ctx: &SpanCtx) -> bytes::Bytes {
    let mut out = Vec::with_capacity(55);
    out.extend_from_slice(b"00-");
    push_hex(&mut out, &ctx.trace);
    out.push(b'-');
    push_hex(&mut out, &ctx.span);
    out.extend_from_slice(if ctx.sampled { b"-01" } else { b"-00" });
    bytes::Bytes::from(out)
}

pub fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    let nib = |n: u8| if n < 10 { b'0' + n } else { b'a' + n - 10 };
    for b in bytes {
        out.push(nib(b >> 4));
        out.push(nib(b & 15));
    }
}

// ---- ids: wyrand per core, seeded once from the OS ----

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most `b.len()` bytes into the buffer it is given.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    let s = u64::from_ne_bytes(b);
    if n == 8 && s != 0 {
        s
    } else {
        // No getrandom: the clock and this thread's stack address differ per core and run.
        now_ns() ^ (&b as *const _ as u64).rotate_left(32)
    }
}

fn next_u64() -> u64 {
    RNG.with(|s| {
        let v = s.get().wrapping_add(0xa076_1d64_78bd_642f);
        s.set(v);
        let t = (v as u128).wrapping_mul((v ^ 0xe703_7ed1_a0b4_28db) as u128);
        (t as u64) ^ ((t >> 64) as u64)
    })
}

pub fn new_span_id() -> [u8; 8] {
    loop {
        let v = next_u64();
        if v != 0 {
            return v.to_be_bytes();
        }
    }
}

fn new_trace_id() -> [u8; 16] {
    let mut t = [0u8; 16];
    let (a, b) = t.split_at_mut(8);
    a.copy_from_slice(&next_u64().to_be_bytes());
    b.copy_from_slice(&new_span_id());
    t
}

// ---- the per-core buffer and the exporter's side of it ----

/// Spans per batch handed to the exporter, and the most a core holds before handing over.
pub const BATCH: usize = 256;
/// Batches waiting per core: a stalled exporter costs at most 16 × 256 spans a core.
const QUEUE: usize = 16;

/// Where the cores' batches meet the exporter thread.
pub struct Sink {
    // std's Mutex guards the list of new queues: a core takes it once (its first batch), the
    // exporter to move new queues out; never on a request's own path after that.
    #[allow(clippy::disallowed_types)]
    pending: std::sync::Mutex<Vec<Receiver<Vec<SpanRec>>>>,
    pub dropped: AtomicU64,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Called once by the exporter thread before it drains: from then on spans are kept.
pub fn install() -> &'static Sink {
    SINK.get_or_init(|| Sink {
        pending: Default::default(),
        dropped: AtomicU64::new(0),
    })
}

impl Sink {
    /// Move the queues cores registered since the last call into `queues`.
    pub fn adopt(&self, queues: &mut Vec<Receiver<Vec<SpanRec>>>) {
        if let Ok(mut p) = self.pending.lock() {
            queues.append(&mut p);
        }
    }
}

struct Local {
    buf: Vec<SpanRec>,
    tx: Option<SyncSender<Vec<SpanRec>>>,
}

thread_local! {
    static LOCAL: RefCell<Local> = const { RefCell::new(Local { buf: Vec::new(), tx: None }) };
}

fn push(rec: SpanRec) {
    // No exporter (a unit test, a tool): nothing would read the span.
    let Some(sink) = SINK.get() else { return };
    // `try_with`: a span dropped as the thread ends (a task torn down with its runtime) must
    // not touch a thread-local that is gone.
    let full = LOCAL.try_with(|l| {
        let Ok(mut l) = l.try_borrow_mut() else {
            sink.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        l.buf.push(rec);
        l.buf.len() >= BATCH
    });
    if full == Ok(true) {
        flush();
    }
}

/// Hand this core's spans to the exporter (the worker's tick, a full batch).
pub fn flush() {
    let Some(sink) = SINK.get() else { return };
    let _ = LOCAL.try_with(|l| {
        let Ok(mut l) = l.try_borrow_mut() else {
            return;
        };
        if l.buf.is_empty() {
            return;
        }
        if l.tx.is_none() {
            let (tx, rx) = sync_channel(QUEUE);
            if let Ok(mut p) = sink.pending.lock() {
                p.push(rx);
            }
            l.tx = Some(tx);
        }
        let batch = std::mem::replace(&mut l.buf, Vec::with_capacity(BATCH));
        let n = batch.len() as u64;
        if let Some(tx) = &l.tx {
            match tx.try_send(batch) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    sink.dropped.fetch_add(n, Ordering::Relaxed);
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_rejects_bad_input() {
        let v = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let c = parse_traceparent(v).unwrap();
        assert!(c.sampled);
        assert_eq!(&traceparent(&c)[..], &v[..]);
        let unsampled = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        assert!(!parse_traceparent(unsampled).unwrap().sampled);
        for bad in [
            &b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"[..],
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            b"",
        ] {
            assert!(
                parse_traceparent(bad).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // A later version may carry more fields.
        assert!(
            parse_traceparent(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz")
                .is_some()
        );
    }

    #[test]
    fn ratio_sampling_keeps_about_its_share() {
        let kept = (0..10_000)
            .filter(|_| ratio_samples(&new_trace_id(), 0.25))
            .count();
        assert!((2000..3000).contains(&kept), "{kept}");
        assert!(!ratio_samples(&new_trace_id(), 0.0));
    }

    #[test]
    fn ids_are_never_zero_and_differ() {
        let a = new_span_id();
        let b = new_span_id();
        assert_ne!(a, [0; 8]);
        assert_ne!(a, b);
    }
}
