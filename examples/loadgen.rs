//! An open-loop HTTP/1.1 load generator for `loadtest/run`: one thread, one monoio event loop
//! (io_uring, epoll when the kernel refuses it), keep-alive GETs at a fixed rate, latency
//! percentiles without coordinated omission. Not part of the gateway.
//!
//! `loadgen --url http://127.0.0.1:PORT/path --conns N --rate R --duration SECS [--warmup SECS]`
//!
//! Request `i` of the whole run is *scheduled* at `t0 + i/R` and belongs to connection
//! `i mod N`. A connection sends a request when its time comes, or as soon as its previous
//! response is complete when it is late; latency is `response complete - scheduled time`, so a
//! stall of the server shows up in the tail instead of being hidden by the generator waiting.
//! Requests of the first `--warmup` seconds are sent but not recorded. At the end one JSON
//! line goes to stdout:
//! `{"requests":..,"achieved_rps":..,"errors":..,"non2xx":..,"p50_us":..,"p90_us":..,
//! "p99_us":..,"p999_us":..,"max_us":..,...}` plus the generator's own sending delay
//! (`send_p50_us`, `send_p99_us`: how late requests left compared with their schedule).
//!
//! Timing: monoio's timer wheel has 1 ms ticks, far too coarse to pace requests 30 µs apart.
//! One pacer task releases due requests to the connections and, when the next one is in the
//! future, sleeps on a `timerfd` armed to that instant (hrtimer precision, no timer slack) that
//! the event loop polls like any socket, minus the usual wake-up latency, which it then yields
//! away (see [`pacer`]). No busy spinning beyond that: the generator shares its core with the
//! mock backends in `loadtest/run`, and a spinning client would steal their CPU.
//!
//! CPU: on a VM most of the cost per request is the kernel's (loopback TCP, the timer
//! interrupt and the idle wake-up of each precisely timed send): about 20 µs per request at
//! 30k req/s. `--batch-us T` wakes only on a T µs grid and sends every request due by then
//! (latency still counts from each one's own schedule, so the grid shows up as up to T µs of
//! sender delay): about 14 µs per request at T = 50. `send_p50_us`/`send_p99_us` report the
//! sender delay either way.

use bytes::Bytes;
use clap::Parser;
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use std::cell::RefCell;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{FromRawFd, RawFd};
use std::process::ExitCode;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// A response larger than this is an error (the generator keeps whole responses in memory).
const MAX_RESPONSE: usize = 64 << 20;

#[derive(Parser, Debug)]
#[command(about = "Open-loop HTTP/1.1 keep-alive GET load generator (one JSON line out)")]
struct Args {
    /// Target, `http://HOST:PORT/path` (plain HTTP only).
    #[arg(long)]
    url: String,
    /// Keep-alive connections; request i goes to connection i mod N.
    #[arg(long, default_value_t = 64)]
    conns: usize,
    /// Total requests per second over all connections.
    #[arg(long)]
    rate: f64,
    /// Recorded seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before recording starts.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// After the last scheduled request, wait at most this long for outstanding responses;
    /// the ones still missing are counted as errors (`timeouts`).
    #[arg(long, default_value_t = 2.0)]
    drain: f64,
    /// Wake the sender only on a grid of this many µs (0: at each request's own time).
    #[arg(long, default_value_t = 0)]
    batch_us: u64,
    /// An extra request header line (`Name: value`), sent on every request; repeatable.
    #[arg(long = "header")]
    headers: Vec<String>,
}

/// The parsed `--url`.
struct Target {
    addr: SocketAddr,
    request: Bytes,
}

impl Target {
    fn parse(url: &str, headers: &[String]) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(format!("{url}: no host"));
        }
        let with_port = if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("{authority}: {e}"))?
            .next()
            .ok_or_else(|| format!("{authority}: no address"))?;
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\n");
        for h in headers {
            if h.contains(['\r', '\n']) {
                return Err(format!("--header {h:?}: no line breaks"));
            }
            request.push_str(h);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        Ok(Target {
            addr,
            request: Bytes::from(request.into_bytes()),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Histogram

/// Log-linear histogram of nanoseconds: exact below 256 ns, then 128 buckets per power of two,
/// so a bucket is at most 1/128 (0.8%) of its values wide. Fixed memory (about 60 KB) however
/// long the run.
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

const SUB_BITS: u32 = 8; // 2^8 values exact, then 2^(8-1) buckets per octave
const HALF: u64 = 1 << (SUB_BITS - 1);

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            counts: vec![0; Self::index(u64::MAX) + 1],
            total: 0,
            max: 0,
        }
    }

    fn index(v: u64) -> usize {
        let msb = 63 - v.max(1).leading_zeros();
        if msb < SUB_BITS {
            return v as usize;
        }
        let shift = msb - (SUB_BITS - 1);
        let top = v >> shift; // in [HALF, 2 * HALF)
        ((1u64 << SUB_BITS) + u64::from(shift - 1) * HALF + (top - HALF)) as usize
    }

    /// The smallest value and the width of bucket `i` (inverse of `index`).
    fn bucket(i: usize) -> (u64, u64) {
        let i = i as u64;
        if i < (1 << SUB_BITS) {
            return (i, 1);
        }
        let j = i - (1 << SUB_BITS);
        let shift = j / HALF + 1;
        let top = HALF + j % HALF;
        (top << shift, 1 << shift)
    }

    fn record(&mut self, ns: u64) {
        if let Some(c) = self.counts.get_mut(Self::index(ns)) {
            *c += 1;
            self.total += 1;
            self.max = self.max.max(ns);
        }
    }

    /// The value at quantile `q` (0..=1) in nanoseconds: the middle of the bucket holding the
    /// `ceil(q * total)`-th smallest value, never above the largest value recorded.
    fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (low, width) = Self::bucket(i);
                return Some((low + width / 2).min(self.max));
            }
        }
        Some(self.max)
    }
}

// ---------------------------------------------------------------------------------------------
// Precise wake-ups

/// A `timerfd` the event loop waits on. monoio 0.2 offers readiness waits (`readable`: an
/// io_uring POLL_ADD, or epoll) only on its socket types, so the timer descriptor is held in a
/// `TcpStream`; nothing but `readable` is ever called on it, and dropping it closes the fd.
struct Ticker {
    fd: RawFd,
    stream: TcpStream,
}

impl Ticker {
    fn new() -> io::Result<Ticker> {
        // SAFETY: a plain system call with constant arguments; no memory is passed.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nobody else; its ownership moves into
        // the stream, which only polls it for readability and closes it when dropped.
        let std = unsafe { std::net::TcpStream::from_raw_fd(fd) };
        let stream = TcpStream::from_std(std)?;
        Ok(Ticker { fd, stream })
    }

    /// Return `after` from now (hrtimer precision). Arming resets the expiration count, so a
    /// timer that fired earlier does not make this wait return at once.
    async fn sleep(&self, after: Duration) -> io::Result<()> {
        let after = after.max(Duration::from_nanos(1)); // zero would disarm the timer
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: libc::time_t::try_from(after.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_nsec: after.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: `spec` is a valid itimerspec on the stack for the duration of the call and
        // the old-value pointer may be null; `fd` stays open as long as `self.stream`.
        let r = unsafe { libc::timerfd_settime(self.fd, 0, &spec, std::ptr::null_mut()) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        self.stream.readable(false).await
    }
}

// ---------------------------------------------------------------------------------------------
// Shared state (one thread: Rc and RefCell)

struct Shared {
    target: Target,
    t0: Instant,
    rate: f64,
    conns: u64,
    batch: Duration,
    /// First recorded request index (the warm-up ends there).
    record_from: u64,
    /// Requests scheduled in the whole run (warm-up included).
    total: u64,
    state: RefCell<State>,
}

#[derive(Default)]
struct Slot {
    /// Requests of this connection whose time has come.
    released: u64,
    waker: Option<Waker>,
}

struct State {
    slots: Vec<Slot>,
    latency: Histogram,
    send_delay: Histogram,
    ok: u64,
    non2xx: u64,
    errors: u64,
    /// Requests finished (answered or failed), warm-up included.
    finished: u64,
    last_done: Option<Instant>,
}

enum Outcome {
    Answered { status: u16, done: Instant },
    Failed,
}

impl Shared {
    /// When request `i` of the run is due.
    fn scheduled(&self, i: u64) -> Instant {
        self.t0 + Duration::from_secs_f64(i as f64 / self.rate)
    }

    fn release(&self, i: u64) {
        let mut st = self.state.borrow_mut();
        if let Some(slot) = st.slots.get_mut((i % self.conns) as usize) {
            slot.released += 1;
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
        }
    }

    /// Wait until the `k`-th request of connection `c` is released.
    async fn released(&self, c: usize, k: u64) {
        std::future::poll_fn(|cx| {
            let mut st = self.state.borrow_mut();
            match st.slots.get_mut(c) {
                Some(slot) if slot.released <= k => {
                    if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        slot.waker = Some(cx.waker().clone());
                    }
                    Poll::Pending
                }
                _ => Poll::Ready(()),
            }
        })
        .await
    }

    fn sent(&self, i: u64, scheduled: Instant, at: Instant) {
        if i >= self.record_from {
            let late = at.saturating_duration_since(scheduled);
            self.state.borrow_mut().send_delay.record(nanos(late));
        }
    }

    fn finish(&self, i: u64, scheduled: Instant, outcome: Outcome) {
        let mut st = self.state.borrow_mut();
        st.finished += 1;
        if i < self.record_from {
            return;
        }
        match outcome {
            Outcome::Answered { status, done } => {
                st.latency
                    .record(nanos(done.saturating_duration_since(scheduled)));
                if (200..300).contains(&status) {
                    st.ok += 1;
                } else {
                    st.non2xx += 1;
                }
                st.last_done = Some(st.last_done.map_or(done, |d| d.max(done)));
            }
            Outcome::Failed => st.errors += 1,
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------------------------------
// Tasks

/// Wake-ups arrive late by the kernel's (and a VM's) timer latency, 20-30 µs here. The pacer
/// arms its timer `lead` early, then yields to the event loop until the request is due. `lead`
/// is the smallest lateness of the last [`LEAD_WINDOW`] wake-ups, so it rarely wakes early and
/// the yielding stays short (each yield is one non-blocking io_uring_enter, which keeps I/O and
/// response timestamps going meanwhile).
const LEAD_WINDOW: u32 = 128;
const MAX_LEAD: Duration = Duration::from_micros(200);

/// Release every request whose time has come; sleep precisely until the next one.
async fn pacer(sh: Rc<Shared>, ticker: Ticker) -> io::Result<Duration> {
    let mut next = 0;
    let mut lead = Duration::ZERO;
    let mut window_min = MAX_LEAD;
    let mut wakes = 0;
    loop {
        let now = Instant::now();
        let mut due = sh.scheduled(next);
        while due <= now {
            sh.release(next);
            next += 1;
            if next >= sh.total {
                return Ok(lead);
            }
            due = sh.scheduled(next);
        }
        if !sh.batch.is_zero() {
            let since = due.saturating_duration_since(sh.t0).as_nanos();
            let grid = sh.batch.as_nanos();
            due = sh.t0
                + Duration::from_nanos(u64::try_from(since.div_ceil(grid) * grid).unwrap_or(0));
        }
        let now = Instant::now();
        let wait = due.saturating_duration_since(now);
        if wait > lead {
            let armed = due - lead;
            ticker.sleep(armed.saturating_duration_since(now)).await?;
            window_min = window_min.min(Instant::now().saturating_duration_since(armed));
            wakes += 1;
            if wakes == LEAD_WINDOW {
                lead = window_min;
                window_min = MAX_LEAD;
                wakes = 0;
            }
        } else {
            YieldNow(false).await;
        }
    }
}

/// Let every other ready task and the driver run once.
struct YieldNow(bool);

impl std::future::Future for YieldNow {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// One keep-alive connection: its requests `c, c + N, c + 2N, ...`, one at a time.
async fn connection(sh: Rc<Shared>, c: usize, mut stream: Option<TcpStream>) {
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut k: u64 = 0;
    loop {
        let i = k * sh.conns + c as u64;
        if i >= sh.total {
            return;
        }
        sh.released(c, k).await;
        let scheduled = sh.scheduled(i);
        let outcome = exchange(&sh, &mut stream, &mut buf, i, scheduled).await;
        sh.finish(i, scheduled, outcome);
        k += 1;
    }
}

async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Send one request and read its response. Any failure drops the connection: the next
/// request opens a new one.
async fn exchange(
    sh: &Shared,
    stream: &mut Option<TcpStream>,
    buf: &mut Vec<u8>,
    i: u64,
    scheduled: Instant,
) -> Outcome {
    if stream.is_none() {
        match connect(sh.target.addr).await {
            Ok(s) => *stream = Some(s),
            Err(_) => return Outcome::Failed,
        }
    }
    let Some(s) = stream.as_mut() else {
        return Outcome::Failed;
    };
    sh.sent(i, scheduled, Instant::now());
    let (r, _) = s.write_all(sh.target.request.clone()).await;
    if r.is_err() {
        *stream = None;
        return Outcome::Failed;
    }
    buf.clear();
    loop {
        if buf.capacity() - buf.len() < 4096 {
            if buf.len() >= MAX_RESPONSE {
                *stream = None;
                return Outcome::Failed;
            }
            buf.reserve(buf.capacity().max(4096));
        }
        // monoio reads into the start of the buffer it is given: append after what we have.
        let len = buf.len();
        let (res, b) = s.read(std::mem::take(buf).slice_mut(len..)).await;
        *buf = b.into_inner();
        let eof = match res {
            Ok(n) => n == 0,
            Err(_) => {
                *stream = None;
                return Outcome::Failed;
            }
        };
        match parse_response(buf, eof) {
            Parsed::Partial if eof => {
                *stream = None;
                return Outcome::Failed;
            }
            Parsed::Partial => {}
            Parsed::Invalid => {
                *stream = None;
                return Outcome::Failed;
            }
            Parsed::Done { status, close, len } => {
                let done = Instant::now();
                // Bytes beyond the response were never asked for: the connection is unusable.
                if close || eof || len != buf.len() {
                    *stream = None;
                }
                return Outcome::Answered { status, done };
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Response framing

#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Partial,
    Invalid,
    /// A whole response of `len` bytes; `close` when the server ends the connection after it.
    Done {
        status: u16,
        close: bool,
        len: usize,
    },
}

/// Frame the response at the start of `buf`: head, then a `Content-Length`, chunked or (at
/// `eof`) close-delimited body. Interim 1xx responses are skipped.
fn parse_response(buf: &[u8], eof: bool) -> Parsed {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut slots);
    let head = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Invalid,
    };
    let status = resp.code.unwrap_or(0);
    let rest = buf.get(head..).unwrap_or_default();
    if (100..200).contains(&status) && status != 101 {
        return match parse_response(rest, eof) {
            Parsed::Done { status, close, len } => Parsed::Done {
                status,
                close,
                len: len + head,
            },
            other => other,
        };
    }
    let mut close = resp.version == Some(0);
    let mut length: Option<usize> = None;
    let mut chunked = false;
    for h in resp.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            match value.parse::<usize>() {
                Ok(n) if length.is_none_or(|l| l == n) => length = Some(n),
                _ => return Parsed::Invalid,
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") && resp.version == Some(0) {
                    close = false;
                }
            }
        }
    }
    if status == 204 || status == 304 {
        return Parsed::Done {
            status,
            close,
            len: head,
        };
    }
    if chunked {
        return match chunked_len(rest) {
            Chunked::Done(n) => Parsed::Done {
                status,
                close,
                len: head + n,
            },
            Chunked::Partial => Parsed::Partial,
            Chunked::Invalid => Parsed::Invalid,
        };
    }
    match length {
        Some(n) if rest.len() >= n => Parsed::Done {
            status,
            close,
            len: head + n,
        },
        Some(_) => Parsed::Partial,
        // No length and not chunked: the body ends when the server closes the connection.
        None if eof => Parsed::Done {
            status,
            close: true,
            len: buf.len(),
        },
        None => Parsed::Partial,
    }
}

enum Chunked {
    Done(usize),
    Partial,
    Invalid,
}

/// The length of a complete chunked body (chunks, last chunk, trailers, final CRLF).
fn chunked_len(body: &[u8]) -> Chunked {
    let mut pos = 0usize;
    loop {
        let Some(rest) = body.get(pos..) else {
            return Chunked::Partial;
        };
        match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete((used, 0))) => {
                let Some(tail) = rest.get(used..) else {
                    return Chunked::Partial;
                };
                if tail.starts_with(b"\r\n") {
                    return Chunked::Done(pos + used + 2);
                }
                return match memchr::memmem::find(tail, b"\r\n\r\n") {
                    Some(end) => Chunked::Done(pos + used + end + 4),
                    None => Chunked::Partial,
                };
            }
            Ok(httparse::Status::Complete((used, size))) => {
                let end = usize::try_from(size)
                    .ok()
                    .and_then(|s| (pos + used).checked_add(s))
                    .and_then(|e| e.checked_add(2));
                let Some(end) = end else {
                    return Chunked::Invalid;
                };
                match body.get(end - 2..end) {
                    None => return Chunked::Partial,
                    Some(b"\r\n") => pos = end,
                    Some(_) => return Chunked::Invalid,
                }
            }
            Ok(httparse::Status::Partial) => return Chunked::Partial,
            Err(_) => return Chunked::Invalid,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Run

struct Settings {
    target: Target,
    conns: usize,
    rate: f64,
    duration: f64,
    warmup: f64,
    drain: f64,
    batch_us: u64,
}

async fn run(cfg: Settings) -> io::Result<serde_json::Value> {
    let ticker = Ticker::new()?;
    // Connect first, so the schedule does not start with the handshakes.
    let mut streams = Vec::with_capacity(cfg.conns);
    for _ in 0..cfg.conns {
        streams.push(
            connect(cfg.target.addr).await.map_err(|e| {
                io::Error::new(e.kind(), format!("connect {}: {e}", cfg.target.addr))
            })?,
        );
    }
    let record_from = (cfg.warmup * cfg.rate).ceil() as u64;
    let total = ((cfg.warmup + cfg.duration) * cfg.rate).ceil() as u64;
    let sh = Rc::new(Shared {
        target: cfg.target,
        t0: Instant::now(),
        rate: cfg.rate,
        conns: cfg.conns as u64,
        batch: Duration::from_micros(cfg.batch_us),
        record_from,
        total,
        state: RefCell::new(State {
            slots: (0..cfg.conns).map(|_| Slot::default()).collect(),
            latency: Histogram::new(),
            send_delay: Histogram::new(),
            ok: 0,
            non2xx: 0,
            errors: 0,
            finished: 0,
            last_done: None,
        }),
    });
    for (c, s) in streams.into_iter().enumerate() {
        monoio::spawn(connection(Rc::clone(&sh), c, Some(s)));
    }
    // A task, not the main future: monoio re-polls a self-woken main future without letting
    // the driver run, so the pacer's yields would starve the connections.
    let lead = monoio::spawn(pacer(Rc::clone(&sh), ticker)).await?;
    let deadline = Instant::now() + Duration::from_secs_f64(cfg.drain);
    while sh.state.borrow().finished < total && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(1)).await;
    }

    let st = sh.state.borrow();
    let window = total - record_from;
    let answered = st.ok + st.non2xx;
    let timeouts = window.saturating_sub(answered + st.errors);
    let start = sh.scheduled(record_from);
    let elapsed = st
        .last_done
        .map_or(0.0, |d| d.saturating_duration_since(start).as_secs_f64())
        .max(cfg.duration);
    let us = |h: &Histogram, q: f64| h.quantile(q).map(|ns| (ns as f64 / 100.0).round() / 10.0);
    Ok(serde_json::json!({
        "requests": answered,
        "achieved_rps": (answered as f64 / elapsed).round(),
        "errors": st.errors + timeouts,
        "timeouts": timeouts,
        "non2xx": st.non2xx,
        "p50_us": us(&st.latency, 0.5),
        "p90_us": us(&st.latency, 0.9),
        "p99_us": us(&st.latency, 0.99),
        "p999_us": us(&st.latency, 0.999),
        "max_us": us(&st.latency, 1.0),
        "send_p50_us": us(&st.send_delay, 0.5),
        "send_p99_us": us(&st.send_delay, 0.99),
        "send_max_us": us(&st.send_delay, 1.0),
        "timer_lead_us": (lead.as_nanos() as f64 / 100.0).round() / 10.0,
        "rate": cfg.rate,
        "conns": cfg.conns,
        "duration_s": cfg.duration,
    }))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let target = match Target::parse(&args.url, &args.headers) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    let positive = |v: f64| v.is_finite() && v > 0.0;
    let not_negative = |v: f64| v.is_finite() && v >= 0.0;
    let valid = positive(args.rate)
        && positive(args.duration)
        && args.conns > 0
        && not_negative(args.warmup)
        && not_negative(args.drain);
    if !valid {
        eprintln!("loadgen: --rate, --duration and --conns must be positive, --warmup and --drain not negative");
        return ExitCode::from(2);
    }
    let settings = Settings {
        target,
        conns: args.conns,
        rate: args.rate,
        duration: args.duration,
        warmup: args.warmup,
        drain: args.drain,
        batch_us: args.batch_us,
    };
    let mut rt = match monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: event loop: {e}");
            return ExitCode::FAILURE;
        }
    };
    let driver = match rt {
        monoio::FusionRuntime::Uring(_) => "io_uring",
        monoio::FusionRuntime::Legacy(_) => "epoll",
    };
    match rt.block_on(run(settings)) {
        Ok(mut report) => {
            if let Some(o) = report.as_object_mut() {
                o.insert("driver".into(), driver.into());
            }
            println!("{report}");
            // Connections still waiting for a stalled server are abandoned, not unwound.
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_within_one_percent_and_invert_the_index() {
        for v in (0..300).chain([1_000, 33_333, 99_999, 1_234_567, 5_000_000_000, u64::MAX]) {
            let (low, width) = Histogram::bucket(Histogram::index(v));
            assert!(low <= v && v - low < width, "{v}: bucket {low}+{width}");
            assert!(
                width == 1 || (width as f64) / (low as f64) <= 1.0 / 128.0,
                "{v}"
            );
        }
    }

    #[test]
    fn quantiles_follow_the_recorded_values() {
        let mut h = Histogram::new();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5).unwrap() as f64;
        let p99 = h.quantile(0.99).unwrap() as f64;
        assert!((p50 / 500_000.0 - 1.0).abs() < 0.01, "{p50}");
        assert!((p99 / 990_000.0 - 1.0).abs() < 0.01, "{p99}");
        assert_eq!(h.quantile(1.0), Some(1_000_000));
    }

    #[test]
    fn responses_are_framed_by_length_chunks_or_close() {
        let cl = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(
            parse_response(cl, false),
            Parsed::Done {
                status: 200,
                close: false,
                len: cl.len()
            }
        );
        assert_eq!(parse_response(&cl[..cl.len() - 1], false), Parsed::Partial);
        let ch =
            b"HTTP/1.1 500 X\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(ch, false),
            Parsed::Done {
                status: 500,
                close: false,
                len: ch.len()
            }
        );
        for cut in 1..ch.len() {
            let got = parse_response(&ch[..cut], false);
            assert_eq!(got, Parsed::Partial, "cut at {cut}");
        }
        let eof = b"HTTP/1.1 200 OK\r\n\r\nuntil close";
        assert_eq!(parse_response(eof, false), Parsed::Partial);
        assert_eq!(
            parse_response(eof, true),
            Parsed::Done {
                status: 200,
                close: true,
                len: eof.len()
            }
        );
        let interim =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
        assert_eq!(
            parse_response(interim, false),
            Parsed::Done {
                status: 204,
                close: true,
                len: interim.len()
            }
        );
        assert_eq!(parse_response(b"garbage\r\n\r\n", false), Parsed::Invalid);
    }
}
