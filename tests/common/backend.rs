//! `Backend`: a real HTTP/1.1 server on 127.0.0.1:0 inside the test process (std::net and
//! threads). It records every request and answers from a handler closure, and can misbehave
//! on purpose (delay, close, reset, garbage, stall, idle close) to test the gateway's client.

use super::wire::{self, Reader};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often blocked reads and sleeps wake up to look at the shutdown flag.
const POLL: Duration = Duration::from_millis(20);

/// One request as the backend received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path part of the request target (before `?`), as sent.
    pub path: String,
    /// Raw query (after `?`); empty when there is none.
    pub query: String,
    /// Header fields in arrival order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The de-chunked body.
    pub body: Vec<u8>,
    /// Raw trailer lines of a chunked body (empty otherwise).
    pub trailers: Vec<u8>,
    /// 0 for the first accepted connection, then 1, 2...
    pub conn_id: usize,
}

impl Recorded {
    /// First value of a header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        wire::header(&self.headers, name)
    }

    /// Every value of a header (case-insensitive).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        wire::header_all(&self.headers, name)
    }

    /// Query pairs in order, not percent-decoded.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (p.to_string(), String::new()),
            })
            .collect()
    }
}

/// What the connection does besides (or instead of) sending a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write the response.
    Respond,
    /// SO_LINGER 0 then drop: the peer sees a TCP RST.
    Reset,
    /// Write these bytes, then close.
    Garbage(Vec<u8>),
    /// Never answer; hold the connection until the backend is dropped.
    Stall,
}

/// The backend's answer to one request.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send the body with `Transfer-Encoding: chunked` instead of `Content-Length`.
    pub chunked: bool,
    /// Send neither length nor chunked: the body ends when the connection closes.
    pub close_delimited: bool,
    /// Wait this long before acting.
    pub delay: Duration,
    /// Close the connection after the response.
    pub close: bool,
    /// Also announce the close with `Connection: close`.
    pub close_header: bool,
    /// After this response, close the connection if no new request starts within this time.
    pub idle_close: Option<Duration>,
    /// Write the response in pieces of this many bytes with this pause between them, so the
    /// reader sees heads and chunk-size lines split across reads.
    pub trickle: Option<(usize, Duration)>,
    pub action: Action,
}

impl Reply {
    /// A response with this status, no headers and an empty body.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            chunked: false,
            close_delimited: false,
            delay: Duration::ZERO,
            close: false,
            close_header: false,
            idle_close: None,
            trickle: None,
            action: Action::Respond,
        }
    }

    /// 200 `application/json` with this body.
    pub fn json(body: &str) -> Reply {
        Reply::status(200)
            .header("Content-Type", "application/json")
            .body(body)
    }

    /// 200 `text/plain` with this body.
    pub fn text(body: &str) -> Reply {
        Reply::status(200)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(body)
    }

    /// Reset the connection (RST) instead of answering.
    pub fn reset() -> Reply {
        Reply {
            action: Action::Reset,
            ..Reply::status(0)
        }
    }

    /// Write raw bytes (not HTTP) and close.
    pub fn garbage(bytes: &[u8]) -> Reply {
        Reply {
            action: Action::Garbage(bytes.to_vec()),
            ..Reply::status(0)
        }
    }

    /// Never answer (until the backend is dropped).
    pub fn stall() -> Reply {
        Reply {
            action: Action::Stall,
            ..Reply::status(0)
        }
    }

    /// Send the response `piece` bytes at a time, pausing `pause` between pieces.
    pub fn trickle(mut self, piece: usize, pause: Duration) -> Reply {
        self.trickle = Some((piece.max(1), pause));
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl AsRef<[u8]>) -> Reply {
        self.body = body.as_ref().to_vec();
        self
    }

    pub fn chunked(mut self) -> Reply {
        self.chunked = true;
        self
    }

    /// No Content-Length, no chunking: the body is delimited by closing the connection.
    pub fn close_delimited(mut self) -> Reply {
        self.close_delimited = true;
        self.close = true;
        self
    }

    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    /// Close after the response without saying so (no `Connection: close`).
    pub fn close(mut self) -> Reply {
        self.close = true;
        self
    }

    /// Close after the response and send `Connection: close`.
    pub fn close_with_header(mut self) -> Reply {
        self.close = true;
        self.close_header = true;
        self
    }

    /// Close the keep-alive connection when it stays idle this long after the response.
    pub fn idle_close(mut self, after: Duration) -> Reply {
        self.idle_close = Some(after);
        self
    }
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// State shared by the accept loop, the connection threads and the test.
struct Shared {
    stop: AtomicBool,
    accepted: AtomicUsize,
    requests: Mutex<Vec<Recorded>>,
    conns: Mutex<Vec<JoinHandle<()>>>,
    handler: Box<Handler>,
}

/// A running fixture server; dropping it stops it and joins every thread.
pub struct Backend {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Backend {
    /// Start a backend that answers every request with `handler`.
    pub fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Backend {
        Backend::start_on("127.0.0.1:0", handler)
    }

    /// Like `start`, listening on `addr` (another loopback address, or a chosen port).
    pub fn start_on(
        addr: &str,
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> Backend {
        let listener = TcpListener::bind(addr).expect("bind backend");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("backend addr");
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            accepted: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            conns: Mutex::new(Vec::new()),
            handler: Box::new(handler),
        });
        let acc_shared = Arc::clone(&shared);
        let acceptor = thread::spawn(move || accept_loop(&listener, &acc_shared));
        Backend {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// A backend that always answers 200 `application/json` with `body`.
    pub fn json(body: &str) -> Backend {
        let body = body.to_string();
        Backend::start(move |_| Reply::json(&body))
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT` (a host entry without scheme).
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// The last request received; panics when there is none.
    pub fn last_request(&self) -> Recorded {
        self.requests()
            .pop()
            .expect("the backend received no request")
    }

    /// TCP connections accepted so far.
    pub fn connections_accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        let conns = self
            .shared
            .conns
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default();
        for c in conns {
            let _ = c.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let id = shared.accepted.fetch_add(1, Ordering::SeqCst);
                let conn_shared = Arc::clone(shared);
                let handle = thread::spawn(move || {
                    let _ = serve(stream, id, &conn_shared);
                });
                if let Ok(mut conns) = shared.conns.lock() {
                    conns.push(handle);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// A socket whose reads wake up every [`POLL`] to honour shutdown and the idle deadline.
struct Polled {
    stream: TcpStream,
    shared: Arc<Shared>,
    idle_deadline: Option<Instant>,
}

impl Read for Polled {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.stream.read(out) {
                // EINTR after a stop/continue of the test process (signal(7)): read again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if self.shared.stop.load(Ordering::SeqCst) {
                        return Err(io::Error::other("backend shutting down"));
                    }
                    if self.idle_deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(io::Error::other("idle keep-alive connection closed"));
                    }
                }
                other => return other,
            }
        }
    }
}

/// Sleep `d`, waking early when the backend stops. Returns false when stopped.
fn sleep_unless_stopped(d: Duration, shared: &Shared) -> bool {
    let end = Instant::now() + d;
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        thread::sleep(POLL.min(end - now));
    }
}

fn serve(stream: TcpStream, conn_id: usize, shared: &Arc<Shared>) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(POLL))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let _ = stream.set_nodelay(true);
    let mut writer = stream.try_clone()?;
    let mut reader = Reader::new(Polled {
        stream,
        shared: Arc::clone(shared),
        idle_deadline: None,
    });
    let mut idle_close: Option<Duration> = None;
    loop {
        reader.stream.idle_deadline = match idle_close {
            Some(d) if reader.buf.is_empty() => Some(Instant::now() + d),
            _ => None,
        };
        let Some(head) = reader.read_head(1 << 20)? else {
            return Ok(());
        };
        reader.stream.idle_deadline = None;
        let mut slots = [httparse::EMPTY_HEADER; 256];
        let mut req = httparse::Request::new(&mut slots);
        if req
            .parse(&head)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?
            .is_partial()
        {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "partial head"));
        }
        let headers = wire::owned_headers(req.headers);
        let method = req.method.unwrap_or_default().to_string();
        let target = req.path.unwrap_or_default().to_string();
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (target.clone(), String::new()),
        };
        if wire::header(&headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let (body, trailers) = if wire::is_chunked(&headers) {
            reader.read_chunked()?
        } else {
            (
                reader.read_exact_body(wire::content_length(&headers).unwrap_or(0))?,
                Vec::new(),
            )
        };
        let recorded = Recorded {
            method,
            path,
            query,
            headers,
            body,
            trailers,
            conn_id,
        };
        if let Ok(mut all) = shared.requests.lock() {
            all.push(recorded.clone());
        }
        let reply = (shared.handler)(&recorded);
        if !sleep_unless_stopped(reply.delay, shared) {
            return Ok(());
        }
        match &reply.action {
            Action::Respond => {}
            Action::Reset => {
                let _ = socket2::SockRef::from(&writer).set_linger(Some(Duration::ZERO));
                return Ok(());
            }
            Action::Garbage(bytes) => {
                writer.write_all(bytes)?;
                writer.flush()?;
                let _ = writer.shutdown(std::net::Shutdown::Both);
                return Ok(());
            }
            Action::Stall => {
                while sleep_unless_stopped(Duration::from_secs(1), shared) {}
                return Ok(());
            }
        }
        let wire = encode(&reply, recorded.method == "HEAD");
        match reply.trickle {
            None => writer.write_all(&wire)?,
            Some((piece, pause)) => {
                let _ = socket2::SockRef::from(&writer).set_nodelay(true);
                for part in wire.chunks(piece) {
                    writer.write_all(part)?;
                    writer.flush()?;
                    std::thread::sleep(pause);
                }
            }
        }
        writer.flush()?;
        if reply.close {
            let _ = writer.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }
        idle_close = reply.idle_close;
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        418 => "I'm a teapot",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// The response bytes for `reply` (`head_only` for answers to HEAD).
fn encode(reply: &Reply, head_only: bool) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status)).into_bytes();
    let user_framed = reply.headers.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
    });
    for (k, v) in &reply.headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    let bodyless = reply.status == 204 || reply.status == 304 || (100..200).contains(&reply.status);
    if !user_framed && !bodyless && !reply.close_delimited {
        if reply.chunked {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        } else {
            out.extend_from_slice(format!("Content-Length: {}\r\n", reply.body.len()).as_bytes());
        }
    }
    if reply.close_header {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if head_only || bodyless {
        return out;
    }
    if reply.chunked && !user_framed {
        // Two chunks (when possible) so the reader really has to reassemble.
        let mid = reply.body.len() / 2;
        for part in [&reply.body[..mid], &reply.body[mid..]] {
            if !part.is_empty() {
                out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                out.extend_from_slice(part);
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else {
        out.extend_from_slice(&reply.body);
    }
    out
}
