//! The HTTP/1.1 client exchange with a backend: checkout, write, read within the deadline,
//! return to the pool, retry once on a stale reused connection, follow redirects (<= 10, as
//! Go's client does for KrakenD). A host name's addresses are tried in order (Go's dialer).

use super::dial::{dial, Candidates};
use super::pool::{Conn, Key, Pool};
use super::target::{literal, Addrs};
use super::{dns, BackendError, BackendResponse, OutRequest, Target};
use crate::http::body::BodyDecoder;
use crate::http::response::parse_response;
use crate::http::{write, Framing, Headers, HttpError, Limits};
use crate::runtime::{clock, timer};
use bytes::{Bytes, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Per-call settings, taken from the plan (borrowed for the call: nothing is cloned).
#[derive(Clone, Debug)]
pub struct CallOpts<'p> {
    /// How `https://` backends are called; None: https is refused (no config compiled).
    pub tls: Option<&'p crate::tls::client::TlsClient>,
    /// The whole call (all redirects included) must finish by then.
    pub deadline: Instant,
    pub dial_timeout: Option<Duration>,
    pub response_header_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub keep_alive: bool,
    pub max_idle: usize,
    pub max_body: usize,
    pub limits: Limits,
    /// Go's transport: ask for gzip (`Accept-Encoding: gzip`) and unzip transparently, unless
    /// `disable_compression` or the request already says what it accepts.
    pub compression: bool,
}

const MAX_REDIRECTS: usize = 10;

/// Call `target`, follow redirects, and buffer the whole body.
pub async fn call(
    pool: &Pool,
    target: &Target,
    req: &OutRequest,
    opts: &CallOpts<'_>,
) -> Result<BackendResponse, BackendError> {
    let mut s = call_stream(pool, target, req, opts).await?;
    let mut body = BytesMut::new();
    while !s.next_chunk(&mut body, opts.max_body).await? {}
    let (status, headers, url) = (
        s.status,
        std::mem::take(&mut s.headers),
        std::mem::take(&mut s.url),
    );
    s.finish(pool);
    Ok(BackendResponse {
        url,
        status,
        headers,
        body: body.freeze(),
    })
}

/// Call `target` and follow redirects; the body is left on the connection to be streamed.
pub async fn call_stream(
    pool: &Pool,
    target: &Target,
    req: &OutRequest,
    opts: &CallOpts<'_>,
) -> Result<Streaming, BackendError> {
    // The first hop borrows the plan's target and request; only a redirect owns new ones.
    let mut hop: Option<(Target, OutRequest)> = None;
    for _ in 0..=MAX_REDIRECTS {
        let (cur_target, cur_req) = match &hop {
            Some((t, r)) => (t, r),
            None => (target, req),
        };
        let mut s = exchange(pool, cur_target, cur_req, opts).await?;
        let Some(next) = redirect(s.status, &s.headers, cur_target, cur_req) else {
            // Only an error message quotes the URL: don't format it for a success.
            if !matches!(s.status, 200 | 201) {
                s.url = format!(
                    "{}://{}{}",
                    cur_target.scheme(),
                    cur_target.authority,
                    cur_req.path_and_query
                );
            }
            return Ok(s);
        };
        let next = next?;
        // Drain the redirect's body so the connection can be reused.
        let mut sink = BytesMut::new();
        while !s.next_chunk(&mut sink, opts.max_body).await? {
            sink.clear();
        }
        s.finish(pool);
        hop = Some(next);
    }
    Err(BackendError::TooManyRedirects)
}

/// What Go's client does with a 3xx: the next target and request, or None to return it as is.
/// A redirect to a host name is looked up by the resolver; the next exchange waits for it.
fn redirect(
    status: u16,
    headers: &Headers,
    target: &Target,
    req: &OutRequest,
) -> Option<Result<(Target, OutRequest), BackendError>> {
    if !matches!(status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let loc = headers.get("location")?;
    Some(follow(status, loc, target, req))
}

fn follow(
    status: u16,
    loc: &[u8],
    target: &Target,
    req: &OutRequest,
) -> Result<(Target, OutRequest), BackendError> {
    let loc = std::str::from_utf8(loc)
        .map_err(|_| BackendError::BadRedirect(String::from_utf8_lossy(loc).into()))?;
    let absolute = match loc.strip_prefix("http://") {
        Some(rest) => Some((rest, false)),
        None => loc.strip_prefix("https://").map(|rest| (rest, true)),
    };
    let (next_target, path) = if let Some((rest, https)) = absolute {
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (rest.get(..i).unwrap_or(rest), rest.get(i..).unwrap_or("/")),
            None => (rest, "/"),
        };
        let (host, port) = split_authority(authority, if https { 443 } else { 80 })
            .ok_or_else(|| BackendError::BadRedirect(loc.into()))?;
        let addrs = match literal(host, port) {
            Some(a) => Addrs::Fixed(a),
            None => Addrs::Name(dns::lookup_once(host), port),
        };
        (
            Target {
                authority: authority.to_string(),
                addrs,
                tls: https.then(|| super::target::tls_name(host)),
            },
            path.to_string(),
        )
    } else if loc.starts_with('/') && !loc.starts_with("//") {
        (target.clone(), loc.to_string())
    } else {
        // Protocol-relative or relative-path locations.
        return Err(BackendError::BadRedirect(loc.into()));
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path
    };
    let mut next = req.clone();
    next.path_and_query = path;
    // Go: 301/302/303 turn a non-GET/HEAD request into a GET without body; 307/308 keep both.
    if matches!(status, 301..=303) {
        if !matches!(&next.method[..], b"GET" | b"HEAD") {
            next.method = Bytes::from_static(b"GET");
        }
        next.body = Bytes::new();
        next.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(b"content-type"));
    }
    // Go drops credentials when the redirect leaves the original host.
    if next_target.authority != target.authority {
        next.headers.retain(|(n, _)| {
            !n.eq_ignore_ascii_case(b"authorization") && !n.eq_ignore_ascii_case(b"cookie")
        });
    }
    // Go's client sends the previous URL as Referer on the redirected request.
    next.headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case(b"referer"));
    let referer = format!(
        "{}://{}{}",
        target.scheme(),
        target.authority,
        req.path_and_query
    );
    next.headers
        .push((Bytes::from_static(b"Referer"), Bytes::from(referer)));
    Ok((next_target, next))
}

fn split_authority(a: &str, default_port: u16) -> Option<(&str, u16)> {
    if let Some(rest) = a.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = rest.get(..end)?;
        let port = match rest.get(end + 1..)?.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => default_port,
        };
        return Some((host, port));
    }
    match a.rsplit_once(':') {
        Some((h, p)) => Some((h, p.parse().ok()?)),
        None => Some((a, default_port)),
    }
}

fn idempotent(method: &[u8]) -> bool {
    matches!(
        method,
        b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE" | b"PUT" | b"DELETE"
    )
}

/// One request on one connection, up to the response head, with a single retry on a fresh
/// connection when a reused one fails before any response byte (the backend closed it as we
/// sent).
async fn exchange(
    pool: &Pool,
    target: &Target,
    req: &OutRequest,
    opts: &CallOpts<'_>,
) -> Result<Streaming, BackendError> {
    // A name's latest answer, held for this exchange (the resolver may swap in a new one).
    let answer;
    let cands = match &target.addrs {
        Addrs::Fixed(a) => Candidates::One(*a),
        Addrs::Name(entry, port) => {
            answer = entry
                .get(opts.deadline)
                .await
                .ok_or(BackendError::Timeout)?;
            match &*answer {
                Ok(ips) => Candidates::Ips(ips, *port),
                Err(e) => return Err(BackendError::Resolve(e.clone())),
            }
        }
    };
    let authority = target.authority.as_str();
    const CLOSE: (&[u8], &[u8]) = (b"Connection", b"close");
    const GZIP: (&[u8], &[u8]) = (b"Accept-Encoding", b"gzip");
    let is_head = &req.method[..] == b"HEAD";
    // Go asks for gzip itself only when the request says nothing about encodings or ranges.
    let gzip = opts.compression
        && !is_head
        && !req.headers.iter().any(|(n, _)| {
            // The length first: a call per comparison showed up, and most names differ in it.
            (n.len() == 15 && n.eq_ignore_ascii_case(b"accept-encoding"))
                || (n.len() == 5 && n.eq_ignore_ascii_case(b"range"))
        });
    let extra: &[(&[u8], &[u8])] = match (!opts.keep_alive, gzip) {
        (false, false) => &[],
        (true, false) => &[CLOSE],
        (false, true) => &[GZIP],
        (true, true) => &[CLOSE, GZIP],
    };
    let needs_length =
        !req.body.is_empty() || matches!(&req.method[..], b"POST" | b"PUT" | b"PATCH");
    // Sized once: growing it showed up as reallocations on every call.
    let head_len = 64
        + req.method.len()
        + req.path_and_query.len()
        + authority.len()
        + req
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .chain(extra.iter().map(|(n, v)| n.len() + v.len() + 4))
            .sum::<usize>();
    let mut wire = Vec::with_capacity(head_len + req.body.len());
    write::request_head(
        &mut wire,
        &req.method,
        req.path_and_query.as_bytes(),
        authority.as_bytes(),
        &req.headers,
        extra,
        needs_length.then_some(req.body.len()),
    );
    wire.extend_from_slice(&req.body);

    // A kept-alive connection to any of the addresses, in order.
    let key_for = |addr| Key {
        addr,
        tls: target.tls.clone(),
    };
    let idle = (0..cands.len())
        .filter_map(|i| cands.get(i))
        .find_map(|addr| {
            let key = key_for(addr);
            pool.take(&key, opts.idle_timeout).map(|(s, b)| (s, b, key))
        });
    if let Some((stream, buf, key)) = idle {
        match send_and_read_head(stream, buf, wire, is_head, opts).await {
            Ok(s) => return Ok(s.at(key, gzip)),
            Err(f) => {
                let retry = !f.got_bytes
                    && idempotent(&req.method)
                    && !matches!(f.error, BackendError::Timeout);
                match f.wire {
                    Some(w) if retry => wire = w,
                    _ => return Err(f.error),
                }
            }
        }
    }
    let (tcp, addr) = dial(&cands, opts).await?;
    let stream = match &target.tls {
        None => Conn::Plain(tcp),
        Some(name) => {
            let client = opts.tls.ok_or_else(|| {
                BackendError::Tls("no TLS client configuration could be built".into())
            })?;
            let s = crate::tls::client::connect(tcp, name, client, Some(opts.deadline))
                .await
                .map_err(|e| match e {
                    crate::tls::client::ConnectError::Handshake(io)
                        if io.kind() == std::io::ErrorKind::TimedOut =>
                    {
                        BackendError::Timeout
                    }
                    other => BackendError::Tls(other.to_string()),
                })?;
            Conn::Tls(Box::new(s))
        }
    };
    send_and_read_head(stream, BytesMut::new(), wire, is_head, opts)
        .await
        .map(|s| s.at(key_for(addr), gzip))
        .map_err(|f| f.error)
}

/// A backend response whose head has arrived; the body is read with [`Streaming::next_chunk`].
pub struct Streaming {
    /// The URL called (after redirects), for error messages: set only when the status is not
    /// a KrakenD success (200/201).
    pub url: String,
    pub status: u16,
    pub headers: Headers,
    pub framing: Framing,
    keep_alive: bool,
    decoder: BodyDecoder,
    stream: Conn,
    buf: BytesMut,
    key: Key,
    deadline: Instant,
    done: bool,
    reuse: bool,
    max_idle: usize,
    /// We asked for gzip and got it: the body is unzipped before anyone sees it (Go's
    /// transport does the same for KrakenD).
    gunzip: bool,
}

impl Streaming {
    fn at(mut self, key: Key, asked_gzip: bool) -> Streaming {
        self.key = key;
        let gzipped = self
            .headers
            .get("content-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"gzip"));
        if asked_gzip && gzipped && self.framing != Framing::None {
            self.gunzip = true;
            // Go: an unzipped response loses its Content-Encoding and Content-Length.
            self.headers.0.retain(|h| {
                !h.name.eq_ignore_ascii_case(b"content-encoding")
                    && !h.name.eq_ignore_ascii_case(b"content-length")
            });
        }
        self
    }

    /// How the body is relayed to a client: an unzipped body has no known length.
    pub fn relay_framing(&self) -> Framing {
        if self.gunzip {
            Framing::Chunked
        } else {
            self.framing
        }
    }

    /// Append the next decoded body bytes to `out`. Returns true once the body is complete.
    /// `max` caps the total decoded (and unzipped) body.
    pub async fn next_chunk(
        &mut self,
        out: &mut BytesMut,
        max: usize,
    ) -> Result<bool, BackendError> {
        if !self.gunzip {
            return self.next_raw(out, max).await;
        }
        // gzip: collect the compressed body, then unzip it in one go, bounded by `max` so a
        // small bomb cannot expand without limit.
        let mut zipped = BytesMut::new();
        while !self.next_raw(&mut zipped, max).await? {}
        if self.done && zipped.is_empty() {
            return Ok(true);
        }
        let mut plain = Vec::new();
        let mut reader =
            std::io::Read::take(flate2::read::GzDecoder::new(&zipped[..]), max as u64 + 1);
        std::io::Read::read_to_end(&mut reader, &mut plain)
            .map_err(|_| BackendError::Protocol(HttpError::BadResponse("invalid gzip body")))?;
        if plain.len() > max {
            return Err(BackendError::TooLarge);
        }
        out.extend_from_slice(&plain);
        self.gunzip = false;
        Ok(true)
    }

    async fn next_raw(&mut self, out: &mut BytesMut, max: usize) -> Result<bool, BackendError> {
        if self.done {
            return Ok(true);
        }
        loop {
            let before = out.len();
            match self.decoder.decode(&mut self.buf, out, max) {
                Ok(true) => {
                    self.done = true;
                    return Ok(true);
                }
                Ok(false) => {}
                Err(HttpError::BodyTooLarge) => return Err(BackendError::TooLarge),
                Err(e) => return Err(BackendError::Protocol(e)),
            }
            if out.len() > before {
                return Ok(false);
            }
            if fill(&mut self.stream, &mut self.buf, self.deadline).await? == 0 {
                self.decoder.eof().map_err(BackendError::Protocol)?;
                self.done = true;
                // The backend closed: the connection is gone either way.
                self.keep_alive = false;
                return Ok(true);
            }
        }
    }

    /// Give the connection back to the pool if the exchange ended cleanly and may be reused.
    /// Leftover bytes after a complete response mean the backend is out of sync: never reuse.
    pub fn finish(mut self, pool: &Pool) {
        if self.done
            && !self.stream.buffered()
            && self.reuse
            && self.keep_alive
            && self.buf.is_empty()
            && self.framing != Framing::CloseDelimited
        {
            pool.put(self.key, self.stream, self.buf, self.max_idle);
        }
    }
}

/// Write the request and read the response head. The error carries whether any response byte
/// had arrived (after that, a retry could duplicate the request's effect).
/// A failed exchange: whether any response byte had arrived (after that, a retry could
/// duplicate the request's effect), and the request bytes back when they can be resent.
struct SendFailure {
    error: BackendError,
    got_bytes: bool,
    wire: Option<Vec<u8>>,
}

async fn send_and_read_head(
    mut stream: Conn,
    mut buf: BytesMut,
    wire: Vec<u8>,
    is_head: bool,
    opts: &CallOpts<'_>,
) -> Result<Streaming, SendFailure> {
    let fail = |error, got_bytes, wire| SendFailure {
        error,
        got_bytes,
        wire,
    };
    // Nothing is sent once the deadline has passed (a timed-out write may still go out). In
    // the poll that built the request, so the clock reading is the one already made.
    if opts.deadline <= clock::now() {
        return Err(fail(BackendError::Timeout, false, Some(wire)));
    }
    let header_deadline;
    let mut whole = true;
    let wire = match &mut stream {
        Conn::Plain(tcp) if wire.len() <= SEND_BEHIND_MAX => {
            header_deadline = header_deadline_from_now(opts);
            let tcp: *mut TcpStream = tcp;
            // SAFETY: monoio's `write` submits the send when it is called; the future it
            // returns owns the operation (a clone of the fd, and the buffer) and never touches
            // the stream again (monoio's own `Split` relies on the same), so the read below may
            // borrow the stream meanwhile. `send` is declared after `stream` and dropped first.
            let send = unsafe { &mut *tcp }.write(wire);
            let first = fill(&mut stream, &mut buf, header_deadline).await;
            let got = !buf.is_empty();
            // Done by now unless the read ended early (timeout, reset): a send still pending
            // then is not waited for (dropping it cancels it).
            let (sent, wire) = match timer::timeout_at(header_deadline, send).await {
                Ok(r) => r,
                Err(_) => {
                    let error = first.err().unwrap_or(BackendError::Timeout);
                    return Err(fail(error, got, None));
                }
            };
            match (first, sent) {
                (_, Err(e)) => {
                    return Err(fail(BackendError::Io(e), got, (!got).then_some(wire)));
                }
                (Ok(0), _) => return Err(fail(eof(), false, Some(wire))),
                (Err(e), _) => return Err(fail(e, got, None)),
                // Part of the request went out and the backend answered anyway (an early
                // error): read the answer, but the connection is out of step with it.
                (Ok(_), Ok(n)) => whole = n == wire.len(),
            }
            wire
        }
        _ => {
            let wire = match timer::timeout_at(opts.deadline, stream.write_all(wire)).await {
                Err(_) => return Err(fail(BackendError::Timeout, false, None)),
                Ok((Err(e), w)) => return Err(fail(BackendError::Io(e), false, Some(w))),
                Ok((Ok(_), w)) => w,
            };
            header_deadline = header_deadline_from_now(opts);
            wire
        }
    };
    let head = loop {
        match parse_response(&mut buf, is_head, &opts.limits) {
            Ok(Some(h)) => break h,
            Ok(None) => {}
            Err(e) => return Err(fail(BackendError::Protocol(e), true, None)),
        }
        let got = !buf.is_empty();
        match fill(&mut stream, &mut buf, header_deadline).await {
            Ok(0) => return Err(fail(eof(), got, (!got).then_some(wire))),
            Ok(_) => {}
            Err(e) => return Err(fail(e, got, None)),
        }
    };
    Ok(Streaming {
        url: String::new(),
        status: head.status,
        framing: head.framing,
        keep_alive: head.keep_alive,
        decoder: BodyDecoder::new(head.framing),
        headers: head.headers,
        stream,
        buf,
        key: Key {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            tls: None,
        },
        deadline: opts.deadline,
        done: false,
        reuse: opts.keep_alive && whole,
        max_idle: opts.max_idle,
        gunzip: false,
    })
}

/// A request at most this long is sent "behind" the first read of its response: the send and
/// the read are submitted together, and the send's completion wakes nobody (it is collected
/// when the answer has come). That saves a wake-up of the calling task per request. Bounded
/// so that one send always takes the whole request: a pooled connection's send queue is empty
/// when it is reused (the backend has answered, so it has read and acknowledged the last
/// request), and a few KB fit in any socket's send buffer.
const SEND_BEHIND_MAX: usize = 4096;

/// The deadline for the response head, counted from now (Go: `ResponseHeaderTimeout` runs
/// from the end of writing the request), within the call's.
fn header_deadline_from_now(opts: &CallOpts<'_>) -> Instant {
    opts.response_header_timeout
        .and_then(clock::after)
        .map_or(opts.deadline, |d| d.min(opts.deadline))
}

fn eof() -> BackendError {
    BackendError::Io(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "EOF",
    ))
}

/// Read more bytes into `buf` before `deadline`. `Ok(0)` is EOF.
pub(crate) async fn fill(
    stream: &mut Conn,
    buf: &mut BytesMut,
    deadline: Instant,
) -> Result<usize, BackendError> {
    let mut b = std::mem::take(buf);
    if b.capacity() - b.len() < 4096 {
        b.reserve(8192);
    }
    // monoio reads into the start of a buffer: append through a slice over the spare capacity.
    let len = b.len();
    match timer::timeout_at(deadline, stream.read(b.slice_mut(len..))).await {
        Err(_) => Err(BackendError::Timeout),
        Ok((res, b)) => {
            *buf = b.into_inner();
            res.map_err(BackendError::Io)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(
            split_authority("example.com", 80),
            Some(("example.com", 80))
        );
        assert_eq!(
            split_authority("example.com", 443),
            Some(("example.com", 443))
        );
        assert_eq!(
            split_authority("127.0.0.1:8080", 80),
            Some(("127.0.0.1", 8080))
        );
        assert_eq!(split_authority("[::1]:9", 80), Some(("::1", 9)));
        assert_eq!(split_authority("h:notaport", 80), None);
    }

    #[test]
    fn only_idempotent_methods_are_retried() {
        assert!(idempotent(b"GET"));
        assert!(idempotent(b"PUT"));
        assert!(!idempotent(b"POST"));
        assert!(!idempotent(b"PATCH"));
    }
}
