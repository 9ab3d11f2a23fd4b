//! The per-connection server loop: read and parse request heads, read bodies (Content-Length
//! or chunked, `Expect: 100-continue`), hand each request to the gateway, write responses in
//! order (pipelining), keep the connection alive or close it, and enforce the timeouts.
//!
//! Generic over the [`Transport`]: a plain `TcpStream`, or a TLS stream once
//! `crate::http::accept` has done the handshake (and picked HTTP/1.1 by ALPN; a second
//! protocol's loop would sit beside this one there).

use super::body::BodyDecoder;
use super::request::{parse_request, RequestHead};
use super::{write, Framing, HttpError, Version};
use crate::gateway::{self, Response};
use crate::plan::Timeout;
use crate::runtime::{clock, idle, timer, Worker};
use bytes::{Bytes, BytesMut};
use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A byte stream the HTTP/1.1 loop can serve: reads and writes with owned buffers, plus
/// what the between-requests wait needs.
pub trait Transport: AsyncReadRent + AsyncWriteRent {
    /// Requests on it came over TLS (`security/http`'s redirect and HSTS need to know).
    const TLS: bool;
    /// The TCP socket underneath: readiness waits, `TCP_NODELAY`, the idle sweep's fd.
    fn tcp(&self) -> &TcpStream;
    /// Whether bytes were already read from the socket but not yet handed out (TLS records
    /// decrypted ahead): waiting for readability would then wait for nothing.
    fn buffered(&mut self) -> bool;
    /// The socket itself when bytes written go straight to it (no TLS records): a response
    /// can then be sent behind the next read (see [`read_behind`]).
    fn plain(&mut self) -> Option<&mut TcpStream>;
}

impl Transport for TcpStream {
    const TLS: bool = false;
    fn tcp(&self) -> &TcpStream {
        self
    }
    fn buffered(&mut self) -> bool {
        false
    }
    fn plain(&mut self) -> Option<&mut TcpStream> {
        Some(self)
    }
}

impl Transport for crate::tls::stream::TlsStream<rustls::ServerConnection> {
    const TLS: bool = true;
    fn tcp(&self) -> &TcpStream {
        crate::tls::stream::TlsStream::tcp(self)
    }
    fn buffered(&mut self) -> bool {
        crate::tls::stream::TlsStream::buffered(self)
    }
    fn plain(&mut self) -> Option<&mut TcpStream> {
        None
    }
}

/// Why reading stopped.
enum ReadEnd {
    Eof,
    Timeout,
    Io,
}

async fn fill<S: Transport>(
    stream: &mut S,
    buf: &mut BytesMut,
    deadline: Option<Instant>,
) -> Result<usize, ReadEnd> {
    let mut b = std::mem::take(buf);
    if b.capacity() == b.len() {
        // An empty buffer (a connection woken from its quiet wait) starts small: a burst of
        // closing idle clients must not cost 4 KB each.
        let grow = if b.is_empty() {
            HOT_READ
        } else {
            b.len().clamp(4096, 64 * 1024)
        };
        b.reserve(grow);
    }
    // monoio reads into the start of a buffer: append through a slice over the spare capacity,
    // or a head split across two reads would be overwritten.
    let len = b.len();
    let (res, b) = match deadline {
        None => stream.read(b.slice_mut(len..)).await,
        Some(d) => {
            if d <= clock::now() {
                return Err(ReadEnd::Timeout);
            }
            // An absolute deadline: `timeout_at` costs no clock read (`timeout` costs one).
            match timer::timeout_at(d, stream.read(b.slice_mut(len..))).await {
                Ok(r) => r,
                Err(_) => return Err(ReadEnd::Timeout),
            }
        }
    };
    *buf = b.into_inner();
    match res {
        Ok(0) => Err(ReadEnd::Eof),
        Ok(n) => Ok(n),
        Err(_) => Err(ReadEnd::Io),
    }
}

/// What the first, buffered read on a kept-alive connection saw.
enum Hot {
    /// Bytes of the next request are in the buffer.
    Data,
    /// Nothing within [`HOT_WAIT`]: switch to waiting without a buffer.
    Quiet,
    /// EOF, an error, or the idle timeout: close.
    Closed,
}

/// A busy connection is read straight away into a small buffer (one io_uring op per
/// request). Boxed by the caller and dropped before the quiet wait, so its timer and buffer
/// (about 2.2 KB) are only held for [`HOT_WAIT`]. With `behind`, `out` holds the last
/// response, not yet written: it is sent together with this read ([`read_behind`]).
async fn hot_read<S: Transport>(
    stream: &mut S,
    buf: &mut BytesMut,
    idle: Option<Instant>,
    out: &mut Vec<u8>,
    behind: Option<Pending<'_>>,
) -> Hot {
    let hot_until = clock::after(HOT_WAIT);
    let first = match (hot_until, idle) {
        (Some(h), Some(i)) => Some(h.min(i)),
        (h, i) => h.or(i),
    };
    // The last request's buffer is taken up again: nothing else holds it once that request is
    // done, so `reserve` reclaims it in place, and splitting the next head off it allocates
    // nothing either (a fresh buffer cost two allocations per request: its own, and the
    // shared state its first split creates).
    buf.reserve(HOT_READ);
    let res = match behind {
        Some(p) => match read_behind(stream, buf, first, out, p).await {
            Some(r) => r,
            None => return Hot::Closed,
        },
        None => fill(stream, buf, first).await,
    };
    match res {
        Ok(_) => Hot::Data,
        Err(ReadEnd::Timeout) if idle.is_none_or(|i| clock::now() < i) => Hot::Quiet,
        Err(_) => Hot::Closed,
    }
}

/// Send the response in `out` and read the next request, both submitted at once; the send is
/// collected only after the read has ended. monoio completes an operation nobody waits on
/// without waking anyone, so the send's completion costs no wake-up and poll of the
/// connection's task (it did on every response), and the send and the read go to the kernel
/// in the same `io_uring_enter`. `None` when the response could not be written (close).
///
/// A send normally takes the whole response at once (at most [`SEND_BEHIND_MAX`] into a send
/// queue the client has acknowledged: it sent this request after reading the last answer).
/// If it did not (memory pressure, or a client that pipelines and does not read), the rest
/// must be written before the client can answer: a read still pending after [`SEND_CHECK`]
/// has the send looked at and finished, and the read goes on.
async fn read_behind<S: Transport>(
    stream: &mut S,
    buf: &mut BytesMut,
    first: Option<Instant>,
    out: &mut Vec<u8>,
    pending: Pending<'_>,
) -> Option<Result<usize, ReadEnd>> {
    let wd = pending.wd;
    let mut pending = Some(pending);
    let Some(tcp) = stream.plain() else {
        // Only plain streams send behind; a TLS one writes first.
        if !flush(stream, out, wd).await {
            return None;
        }
        drop(pending);
        return Some(fill(stream, buf, first).await);
    };
    let data = std::mem::take(out);
    let tcp: *mut TcpStream = tcp;
    // SAFETY: monoio's `write` submits the send when it is called; the future it returns owns
    // the operation (a clone of the fd, and the buffer) and never touches the stream again
    // (monoio's own `Split` relies on the same), so the read below may borrow the stream
    // meanwhile. `send` is declared after `stream`'s borrow and dropped before it ends.
    let send = unsafe { &mut *tcp }.write(data);
    let mut send = std::pin::pin!(send);
    // No deadline inside: the read is timed here, so that the check below does not cancel it.
    let read = fill(stream, buf, None);
    let mut read = std::pin::pin!(read);
    let check = clock::after(SEND_CHECK).filter(|c| first.is_none_or(|f| *c < f));
    let mut sent = None;
    let res = match check {
        Some(c) => match timer::timeout_at(c, read.as_mut()).await {
            Ok(r) => Some(r),
            Err(_) => {
                sent = Some(collect(send.as_mut(), tcp, wd).await?);
                pending = None;
                match first {
                    Some(f) => timer::timeout_at(f, read.as_mut()).await.ok(),
                    None => Some(read.as_mut().await),
                }
            }
        },
        None => match first {
            Some(f) => timer::timeout_at(f, read.as_mut()).await.ok(),
            None => Some(read.as_mut().await),
        },
    };
    // Collected also when the read ended in EOF or an error: a client that half-closed after
    // its request still gets the answer.
    *out = match sent {
        Some(d) => d,
        None => collect(send, tcp, wd).await?,
    };
    drop(pending);
    Some(res.unwrap_or(Err(ReadEnd::Timeout)))
}

/// Wait for a send made behind a read to finish, and write what it left (a partial send).
async fn collect(
    send: std::pin::Pin<&mut impl std::future::Future<Output = monoio::BufResult<usize, Vec<u8>>>>,
    tcp: *mut TcpStream,
    wd: WriteLimit,
) -> Option<Vec<u8>> {
    let until = match wd {
        WriteLimit::Until(d) => d,
        WriteLimit::Stall(d) => clock::after(d),
    };
    // Done by now as a rule: then no timer is armed.
    let (res, data) = match until {
        Some(t) => timer::timeout_at(t, send).await.ok()?,
        None => send.await,
    };
    let n = res.ok().filter(|&n| n > 0)?;
    if n >= data.len() {
        return Some(data);
    }
    // SAFETY: as in `read_behind`: the pending read's future does not touch the stream.
    let rest = timed_write(unsafe { &mut *tcp }, data.slice(n..), wd).await?;
    Some(rest.into_inner())
}

/// A response at most this long is sent behind the next read ([`read_behind`]): it fits the
/// first segment buffer of an empty send queue, so one send takes it whole.
const SEND_BEHIND_MAX: usize = 8 * 1024;
/// How long a read made together with a send may wait before the send is looked at.
const SEND_CHECK: Duration = Duration::from_millis(50);

/// How long a kept-alive connection keeps a read (and its buffer) pending before it switches
/// to waiting for readability without a buffer.
const HOT_WAIT: Duration = Duration::from_millis(500);
/// The buffer of a first read: most request heads (a browser's too) fit; it grows on demand.
const HOT_READ: usize = 1024;
/// At most this many hot reads per worker (about 2.2 KB each: the read future with monoio's
/// 640-byte timer, and the buffer); beyond it connections wait quietly straight away, which
/// costs one more io_uring op per request. 10,000 clients connecting at once then pin about
/// 4.5 MB for half a second, not 22 MB.
const HOT_MAX: usize = 2048;

/// Counts a hot read for as long as it is pending, also when its future is dropped (shutdown).
struct HotSlot<'a>(&'a std::cell::Cell<usize>);

impl<'a> HotSlot<'a> {
    fn take(count: &'a std::cell::Cell<usize>) -> HotSlot<'a> {
        count.set(count.get() + 1);
        HotSlot(count)
    }
}

impl Drop for HotSlot<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// A quiet connection waits for readability: no buffer pinned in the kernel, only the
/// readiness op (about 100 bytes, inline in the task) and, with an idle deadline, an entry in
/// the worker's idle set (about 45 bytes; see [`crate::runtime::idle`] for why not a timer).
/// Returns false when the connection should close.
// Not an `async fn`: its arguments would be kept in the future across the wait; only the
// stream and the idle entry need to be (the task stays in a smaller allocation class).
fn quiet_wait<'a>(
    stream: &'a TcpStream,
    until: Option<Instant>,
    worker: &'a Worker,
) -> impl std::future::Future<Output = bool> + 'a {
    use std::os::fd::AsRawFd;
    let entry = until.and_then(|d| idle::register(&worker.idle, d, stream.as_raw_fd()));
    // Inline, not boxed: a long-lived small box lands in pages shared with the requests'
    // short-lived objects of its size class, and pins them (measured: about 400 bytes
    // more resident per idle connection than the box itself).
    async move {
        // The idle sweep ends this wait by shutting the socket down once the deadline passes.
        let ready = stream.readable(true).await.is_ok();
        ready && entry.is_none_or(|e| !e.passed(clock::now()))
    }
}

fn deadline(from: Instant, d: Duration) -> Option<Instant> {
    // A configured duration may be absurdly large: no deadline instead of overflowing (a
    // panic here would take the whole core down).
    from.checked_add(d)
}

/// How long writing one response may take.
#[derive(Clone, Copy)]
enum WriteLimit {
    /// Everything written by this instant (a configured `write_timeout`, as Go).
    Until(Option<Instant>),
    /// Each write must make progress within this (the default): a client that stops reading
    /// is dropped, a long stream to a client that reads is not.
    Stall(Duration),
}

impl WriteLimit {
    fn starting_now(t: Timeout) -> WriteLimit {
        match t {
            Timeout::Total(d) => WriteLimit::Until(deadline(clock::now(), d)),
            Timeout::Stall(d) => WriteLimit::Stall(d),
        }
    }
}

/// Serve one client connection until it closes, errs, times out or the worker shuts down.
///
/// Between requests a connection is first "hot" (a buffered read, see [`hot_read`]), then after
/// [`HOT_WAIT`] "quiet" (a readability wait without a buffer, see [`quiet_wait`]). Each phase
/// and the request's future — head, body, gateway, backend calls, about 4.7 KB — live in
/// their own boxes, so a quiet connection costs this task (about 380 bytes with the readiness
/// wait inline), monoio's 56-byte shared fd and its idle-set entry: measured 630 B of RSS per idle
/// connection before the idle timeout applied by default, about 45 B more since.
// Not an `async fn`: its arguments would be moved into locals of the future beside the
// captured originals, and rustc keeps both (120 bytes more per connection); an `async move`
// block works on the captures themselves.
#[allow(clippy::manual_async_fn)]
pub fn serve<S: Transport>(
    mut stream: S,
    peer: SocketAddr,
    worker: Rc<Worker>,
) -> impl std::future::Future<Output = ()> {
    async move {
        let _ = stream.tcp().set_nodelay(true);
        let mut buf = BytesMut::new();
        // The response buffer, kept while the connection is busy: one allocation per connection
        // instead of one per response.
        let mut out: Vec<u8> = Vec::new();
        // `out` holds a response still to be written (sent behind the next read).
        let mut behind: Option<Pending<'_>> = None;
        loop {
            let waiting = buf.is_empty() && !stream.buffered();
            let idle = if waiting {
                deadline(clock::now(), worker.plan().server.timeouts.idle.0)
            } else {
                None
            };
            let hot = if waiting && worker.hot.get() < HOT_MAX {
                let _slot = HotSlot::take(&worker.hot);
                Box::pin(hot_read(
                    &mut stream,
                    &mut buf,
                    idle,
                    &mut out,
                    behind.take(),
                ))
                .await
            } else {
                // Boxed: rare (a pipelined request, too many hot reads), and this task's size is
                // what a quiet connection costs.
                if let Some(p) = behind.take() {
                    if !Box::pin(flush(&mut stream, &mut out, p.wd)).await {
                        return;
                    }
                }
                // Not waiting: a pipelined request, or TLS records that carried more than the
                // last one, are already here.
                if waiting {
                    Hot::Quiet
                } else {
                    Hot::Data
                }
            };
            match hot {
                Hot::Data => {}
                Hot::Closed => return,
                Hot::Quiet => {
                    // An empty buffer may still hold the last request's allocation (the head was
                    // split off it): release it for the wait.
                    buf = BytesMut::new();
                    out = Vec::new();
                    if !quiet_wait(stream.tcp(), idle, &worker).await {
                        return;
                    }
                }
            }
            match Box::pin(request(&mut stream, &mut buf, &mut out, peer, &worker)).await {
                After::Close => return,
                After::Next => {}
                After::Behind(wd) => {
                    behind = Some(Pending {
                        wd,
                        inflight: &worker.inflight,
                    })
                }
            }
            if worker.shutting_down() {
                if let Some(p) = behind.take() {
                    let _ = Box::pin(flush(&mut stream, &mut out, p.wd)).await;
                }
                return;
            }
        }
    }
}

/// Write the response left in `out` (the buffer comes back for the next one).
async fn flush<S: Transport>(stream: &mut S, out: &mut Vec<u8>, wd: WriteLimit) -> bool {
    match timed_write(stream, std::mem::take(out), wd).await {
        Some(b) => {
            *out = b;
            true
        }
        None => false,
    }
}

/// A response in `out` not yet written: its write limit, and the worker's count of requests
/// in flight, which it still counts in until it is written (a draining worker waits for it).
struct Pending<'a> {
    wd: WriteLimit,
    inflight: &'a std::cell::Cell<usize>,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.inflight.set(self.inflight.get().saturating_sub(1));
    }
}

/// What a served request leaves to the connection loop.
enum After {
    Close,
    Next,
    /// Keep the connection; the response is in `out`, to be sent behind the next read.
    Behind(WriteLimit),
}

impl After {
    fn keep(keep: bool) -> After {
        if keep {
            After::Next
        } else {
            After::Close
        }
    }
}

/// Read one request head (the first bytes are ready or buffered), then serve it. Returns
/// what the connection does next: close, read the next request, or send this answer behind
/// that read.
async fn request<S: Transport>(
    stream: &mut S,
    buf: &mut BytesMut,
    out: &mut Vec<u8>,
    peer: SocketAddr,
    worker: &Worker,
) -> After {
    let started = clock::now();
    let plan = worker.plan();
    let server = &plan.server;
    let head_deadline = deadline(started, server.timeouts.header.0);
    if buf.is_empty() && fill(stream, buf, head_deadline).await.is_err() {
        return After::Close;
    }
    let head = loop {
        match parse_request(buf, &server.limits) {
            Ok(Some(h)) => break h,
            Ok(None) => {}
            Err(e) => {
                let _ = write_error(stream, out, &e).await;
                return After::Close;
            }
        }
        match fill(stream, buf, head_deadline).await {
            Ok(_) => {}
            Err(ReadEnd::Timeout) => {
                let _ = write_status(stream, out, 408, "408 Request Timeout").await;
                return After::Close;
            }
            Err(_) => return After::Close,
        }
    };
    worker.inflight.set(worker.inflight.get() + 1);
    let mut head = head;
    head.tls = S::TLS;
    let after = serve_one(stream, buf, out, head, peer, worker, &plan, started).await;
    // A response left to be sent behind is still in flight: its [`Pending`] ends the count.
    if !matches!(after, After::Behind(_)) {
        worker.inflight.set(worker.inflight.get().saturating_sub(1));
    }
    after
}

/// Read the body, call the gateway, write the response (or leave it to be sent behind the
/// next read). Returns what the connection does next.
#[allow(clippy::too_many_arguments)]
async fn serve_one<S: Transport>(
    stream: &mut S,
    buf: &mut BytesMut,
    out: &mut Vec<u8>,
    head: RequestHead,
    peer: SocketAddr,
    worker: &Worker,
    plan: &crate::plan::Plan,
    started: Instant,
) -> After {
    let server = &plan.server;
    let body = if head.framing == Framing::None {
        Bytes::new()
    } else {
        if head.expect_continue && buf.is_empty() {
            let (r, _) = stream
                .write_all(&b"HTTP/1.1 100 Continue\r\n\r\n"[..])
                .await;
            if r.is_err() {
                return After::Close;
            }
        }
        let body_timeout = server.timeouts.body.0;
        let mut decoder = BodyDecoder::new(head.framing);
        let mut body = BytesMut::new();
        loop {
            match decoder.decode(buf, &mut body, server.limits.max_body_bytes) {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => {
                    let _ = write_error(stream, out, &e).await;
                    return After::Close;
                }
            }
            match fill(stream, buf, body_timeout.deadline(started)).await {
                Ok(_) => {}
                Err(ReadEnd::Timeout) => {
                    let _ = write_status(stream, out, 408, "408 Request Timeout").await;
                    return After::Close;
                }
                Err(_) => return After::Close,
            }
        }
        body.freeze()
    };
    let mut resp = gateway::handle(plan, &worker.ctx, &head, body, peer).await;
    let keep = head.keep_alive && !resp.close && !worker.shutting_down();
    let is_head = &head.method[..] == b"HEAD";
    if server.access_log
        && crate::log::access_log_enabled()
        && !server
            .logger_skip_paths
            .iter()
            .any(|p| p.as_bytes() == head.path())
    {
        crate::log::access(
            resp.status,
            started.elapsed(),
            &peer.ip(),
            &head.method,
            head.path(),
        );
    }
    let wd = WriteLimit::starting_now(server.timeouts.write.0);
    // Sent behind the next read only when the client waits for this answer before it sends
    // again (nothing of a next request has come) and the bytes go straight to the socket.
    let end = End {
        wd,
        keep,
        behind: keep && !S::TLS && buf.is_empty(),
    };
    match resp.stream.take() {
        None => write_response(stream, out, &resp, head.version, is_head, end).await,
        Some(s) => {
            let max = server.backend.max_body;
            stream_response(
                stream,
                out,
                &resp,
                *s,
                head.version,
                is_head,
                end,
                max,
                worker,
            )
            .await
        }
    }
}

/// How a response ends: its write limit, whether the connection is kept, and whether its last
/// write may be left to go behind the next read.
#[derive(Clone, Copy)]
struct End {
    wd: WriteLimit,
    keep: bool,
    behind: bool,
}

impl End {
    /// Write `data`, the response's last bytes (or leave them in `out` to be sent behind).
    async fn last<S: Transport>(self, stream: &mut S, out: &mut Vec<u8>, data: Vec<u8>) -> After {
        let behind = self.behind && data.len() <= SEND_BEHIND_MAX;
        *out = data;
        if behind {
            After::Behind(self.wd)
        } else if flush(stream, out, self.wd).await {
            After::keep(self.keep)
        } else {
            After::Close
        }
    }
}

async fn write_response<S: Transport>(
    stream: &mut S,
    out: &mut Vec<u8>,
    resp: &Response,
    version: Version,
    is_head: bool,
    end: End,
) -> After {
    out.clear();
    // 1xx, 204 and 304 carry no body and no Content-Length.
    let bodiless = matches!(resp.status, 100..=199 | 204 | 304);
    let length = if bodiless {
        None
    } else {
        Some(resp.body.len())
    };
    let send_body = !is_head && !bodiless && !resp.body.is_empty();
    let inline = resp.body.len() <= 64 * 1024;
    // One allocation for head and body: the head is a status line, a few fields and the
    // compiled lines (reserving the body alone made the head's growth a realloc and a copy of
    // the body per response).
    let head_guess = 128
        + resp.lines.iter().map(|l| l.len()).sum::<usize>()
        + resp
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum::<usize>();
    if send_body && inline {
        out.reserve(head_guess + resp.body.len());
    } else {
        out.reserve(head_guess);
    }
    write::response_head_lines(
        out,
        version,
        resp.status,
        &resp.headers,
        &resp.lines,
        length,
        false,
        end.keep,
    );
    let head_buf = std::mem::take(out);
    if send_body && !inline {
        match timed_write(stream, head_buf, end.wd).await {
            Some(b) => *out = b,
            None => return After::Close,
        }
        return match timed_write(stream, resp.body.clone(), end.wd).await {
            Some(_) => After::keep(end.keep),
            None => After::Close,
        };
    }
    let mut all = head_buf;
    if send_body {
        all.extend_from_slice(&resp.body);
    }
    end.last(stream, out, all).await
}

/// `no-op`: relay the backend body as it arrives. A backend Content-Length is kept; otherwise
/// HTTP/1.1 clients get chunked and HTTP/1.0 clients a close-delimited body. Returns what the
/// client connection does next.
#[allow(clippy::too_many_arguments)]
async fn stream_response<S: Transport>(
    stream: &mut S,
    out: &mut Vec<u8>,
    resp: &Response,
    mut backend: crate::backend::client::Streaming,
    version: Version,
    is_head: bool,
    end: End,
    max: usize,
    worker: &Worker,
) -> After {
    let bodiless = is_head || matches!(backend.status, 100..=199 | 204 | 304);
    let (length, chunked, keep) = match backend.relay_framing() {
        _ if bodiless => (None, false, end.keep),
        Framing::Length(n) => (usize::try_from(n).ok(), false, end.keep),
        _ if version == Version::Http11 => (None, true, end.keep),
        _ => (None, false, false),
    };
    let end = End {
        keep,
        behind: end.behind && keep,
        ..end
    };
    out.clear();
    write::response_head_lines(
        out,
        version,
        resp.status,
        &resp.headers,
        &resp.lines,
        length,
        chunked,
        keep,
    );
    let mut buf = std::mem::take(out);
    // No capacity of its own: the decoder hands each piece over by `unsplit` into this empty
    // buffer (O(1), it takes the piece's bytes), so a preallocated one was dropped unused.
    let mut body = BytesMut::new();
    if !bodiless {
        loop {
            body.clear();
            let done = match backend.next_chunk(&mut body, max).await {
                Ok(d) => d,
                // Mid-body failure: the head is (maybe) out; all we can do is cut the connection.
                Err(_) => return After::Close,
            };
            if chunked {
                write::chunk(&mut buf, &body);
            } else {
                buf.extend_from_slice(&body);
            }
            if done {
                if chunked {
                    write::chunk(&mut buf, &[]);
                }
                break;
            }
            if buf.len() >= 8 * 1024 {
                buf = match timed_write(stream, buf, end.wd).await {
                    Some(mut b) => {
                        b.clear();
                        b
                    }
                    None => return After::Close,
                };
            }
        }
    }
    backend.finish(&worker.ctx.pool);
    end.last(stream, out, buf).await
}

/// Write all of `data` within the limit; the buffer comes back on success.
async fn timed_write<S: Transport, B: IoBuf + 'static>(
    stream: &mut S,
    data: B,
    limit: WriteLimit,
) -> Option<B> {
    match limit {
        WriteLimit::Until(None) => {
            let (r, b) = stream.write_all(data).await;
            r.ok().map(|_| b)
        }
        WriteLimit::Until(Some(d)) => {
            if d <= clock::now() {
                return None;
            }
            match timer::timeout_at(d, stream.write_all(data)).await {
                Ok((r, b)) => r.ok().map(|_| b),
                Err(_) => None,
            }
        }
        WriteLimit::Stall(d) => {
            // One write op at a time, so that every one that moves bytes restarts the clock.
            let len = data.bytes_init();
            let mut buf = data;
            let mut done = 0;
            while done < len {
                let write = stream.write(buf.slice(done..));
                let (r, s) = match clock::after(d) {
                    Some(t) => timer::timeout_at(t, write).await.ok()?,
                    // An absurdly large limit: no deadline, as `monoio::time::timeout` did.
                    None => write.await,
                };
                buf = s.into_inner();
                match r {
                    Ok(n) if n > 0 => done += n,
                    _ => return None,
                }
            }
            Some(buf)
        }
    }
}

async fn write_error<S: Transport>(stream: &mut S, out: &mut Vec<u8>, e: &HttpError) -> bool {
    let text = match e.status() {
        431 => "431 Request Header Fields Too Large",
        413 => "413 Request Entity Too Large",
        414 => "414 URI Too Long",
        _ => "400 Bad Request",
    };
    write_status(stream, out, e.status(), text).await
}

/// A plain-text error response, then the connection is closed (Go's behaviour for bad input).
async fn write_status<S: Transport>(
    stream: &mut S,
    out: &mut Vec<u8>,
    status: u16,
    text: &'static str,
) -> bool {
    out.clear();
    write::response_head(
        out,
        Version::Http11,
        status,
        &[(b"Content-Type", b"text/plain; charset=utf-8")],
        Some(text.len()),
        false,
        false,
    );
    out.extend_from_slice(text.as_bytes());
    let buf = std::mem::take(out);
    let limit = WriteLimit::Until(deadline(Instant::now(), Duration::from_secs(5)));
    let ok = timed_write(stream, buf, limit).await.is_some();
    linger(stream).await;
    ok
}

/// Half-close and read what the client still sends (bounded: 64 KiB, 200 ms), so closing with
/// unread input does not turn into a reset that destroys the error response in flight.
async fn linger<S: Transport>(stream: &mut S) {
    let _ = stream.shutdown().await;
    let until = Instant::now().checked_add(Duration::from_millis(200));
    let mut buf = BytesMut::with_capacity(4096);
    let mut drained = 0usize;
    while drained < 64 * 1024 {
        buf.clear();
        match fill(stream, &mut buf, until).await {
            Ok(n) => drained += n,
            Err(_) => break,
        }
    }
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
