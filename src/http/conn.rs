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
}

impl Transport for TcpStream {
    const TLS: bool = false;
    fn tcp(&self) -> &TcpStream {
        self
    }
    fn buffered(&mut self) -> bool {
        false
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
/// (about 2.2 KB) are only held for [`HOT_WAIT`].
async fn hot_read<S: Transport>(stream: &mut S, buf: &mut BytesMut, idle: Option<Instant>) -> Hot {
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
    match fill(stream, buf, first).await {
        Ok(_) => Hot::Data,
        Err(ReadEnd::Timeout) if idle.is_none_or(|i| clock::now() < i) => Hot::Quiet,
        Err(_) => Hot::Closed,
    }
}

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
/// their own boxes, so a quiet connection costs this task (480 bytes with the readiness wait
/// inline), monoio's 56-byte shared fd and its idle-set entry: measured 630 B of RSS per idle
/// connection before the idle timeout applied by default, about 45 B more since.
pub async fn serve<S: Transport>(mut stream: S, peer: SocketAddr, worker: Rc<Worker>) {
    let _ = stream.tcp().set_nodelay(true);
    let mut buf = BytesMut::new();
    // The response buffer, kept while the connection is busy: one allocation per connection
    // instead of one per response.
    let mut out: Vec<u8> = Vec::new();
    loop {
        if buf.is_empty() {
            let idle = deadline(clock::now(), worker.plan().server.timeouts.idle.0);
            let hot = if stream.buffered() {
                // TLS: a record carried more than the last request; no socket wait needed.
                Hot::Data
            } else if worker.hot.get() < HOT_MAX {
                let _slot = HotSlot::take(&worker.hot);
                Box::pin(hot_read(&mut stream, &mut buf, idle)).await
            } else {
                Hot::Quiet
            };
            match hot {
                Hot::Data => {}
                Hot::Closed => return,
                Hot::Quiet => {
                    // An empty buffer may still hold the last request's allocation (the
                    // head was split off it): release it for the wait.
                    buf = BytesMut::new();
                    out = Vec::new();
                    if !quiet_wait(stream.tcp(), idle, &worker).await {
                        return;
                    }
                }
            }
        }
        if !Box::pin(request(&mut stream, &mut buf, &mut out, peer, &worker)).await
            || worker.shutting_down()
        {
            return;
        }
    }
}

/// Read one request head (the first bytes are ready or buffered), then serve it. Returns
/// whether the connection may carry another request.
async fn request<S: Transport>(
    stream: &mut S,
    buf: &mut BytesMut,
    out: &mut Vec<u8>,
    peer: SocketAddr,
    worker: &Worker,
) -> bool {
    let started = clock::now();
    let plan = worker.plan();
    let server = &plan.server;
    let head_deadline = deadline(started, server.timeouts.header.0);
    if buf.is_empty() && fill(stream, buf, head_deadline).await.is_err() {
        return false;
    }
    let head = loop {
        match parse_request(buf, &server.limits) {
            Ok(Some(h)) => break h,
            Ok(None) => {}
            Err(e) => {
                let _ = write_error(stream, out, &e).await;
                return false;
            }
        }
        match fill(stream, buf, head_deadline).await {
            Ok(_) => {}
            Err(ReadEnd::Timeout) => {
                let _ = write_status(stream, out, 408, "408 Request Timeout").await;
                return false;
            }
            Err(_) => return false,
        }
    };
    worker.inflight.set(worker.inflight.get() + 1);
    let mut head = head;
    head.tls = S::TLS;
    let keep = serve_one(stream, buf, out, head, peer, worker, &plan, started).await;
    worker.inflight.set(worker.inflight.get().saturating_sub(1));
    keep
}

/// Read the body, call the gateway, write the response. Returns whether to keep the connection.
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
) -> bool {
    let server = &plan.server;
    let body = if head.framing == Framing::None {
        Bytes::new()
    } else {
        if head.expect_continue && buf.is_empty() {
            let (r, _) = stream
                .write_all(&b"HTTP/1.1 100 Continue\r\n\r\n"[..])
                .await;
            if r.is_err() {
                return false;
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
                    return false;
                }
            }
            match fill(stream, buf, body_timeout.deadline(started)).await {
                Ok(_) => {}
                Err(ReadEnd::Timeout) => {
                    let _ = write_status(stream, out, 408, "408 Request Timeout").await;
                    return false;
                }
                Err(_) => return false,
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
    match resp.stream.take() {
        None => write_response(stream, out, &resp, head.version, keep, is_head, wd).await && keep,
        Some(s) => {
            let max = server.backend.max_body;
            stream_response(
                stream,
                out,
                &resp,
                *s,
                head.version,
                keep,
                is_head,
                wd,
                max,
                worker,
            )
            .await
        }
    }
}

async fn write_response<S: Transport>(
    stream: &mut S,
    out: &mut Vec<u8>,
    resp: &Response,
    version: Version,
    keep: bool,
    is_head: bool,
    wd: WriteLimit,
) -> bool {
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
        keep,
    );
    if send_body && inline {
        out.extend_from_slice(&resp.body);
    }
    let head_buf = std::mem::take(out);
    match timed_write(stream, head_buf, wd).await {
        Some(b) => *out = b,
        None => return false,
    }
    if send_body && !inline {
        return timed_write(stream, resp.body.clone(), wd).await.is_some();
    }
    true
}

/// `no-op`: relay the backend body as it arrives. A backend Content-Length is kept; otherwise
/// HTTP/1.1 clients get chunked and HTTP/1.0 clients a close-delimited body. Returns whether
/// the client connection may be kept.
#[allow(clippy::too_many_arguments)]
async fn stream_response<S: Transport>(
    stream: &mut S,
    out: &mut Vec<u8>,
    resp: &Response,
    mut backend: crate::backend::client::Streaming,
    version: Version,
    keep: bool,
    is_head: bool,
    wd: WriteLimit,
    max: usize,
    worker: &Worker,
) -> bool {
    let bodiless = is_head || matches!(backend.status, 100..=199 | 204 | 304);
    let (length, chunked, keep) = match backend.relay_framing() {
        _ if bodiless => (None, false, keep),
        Framing::Length(n) => (usize::try_from(n).ok(), false, keep),
        _ if version == Version::Http11 => (None, true, keep),
        _ => (None, false, false),
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
                Err(_) => return false,
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
                buf = match timed_write(stream, buf, wd).await {
                    Some(mut b) => {
                        b.clear();
                        b
                    }
                    None => return false,
                };
            }
        }
    }
    backend.finish(&worker.ctx.pool);
    match timed_write(stream, buf, wd).await {
        Some(mut b) => {
            b.clear();
            *out = b;
            keep
        }
        None => false,
    }
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
