//! A minimal HTTP/1.1 client on std::net for driving the gateway: one-shot requests, a
//! keep-alive `Conn`, and `raw` for malformed input. Every read has a timeout.

use super::wire::{self, Reader};
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Read timeout on every client socket.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A response as the client saw it.
#[derive(Clone, Debug)]
pub struct Response {
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    pub status: u16,
    pub reason: String,
    /// Names lower-cased, in order, duplicates kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// First value of a header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        wire::header(&self.headers, name)
    }

    /// Every value of a header, in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        wire::header_all(&self.headers, name)
    }

    /// The body as UTF-8 (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics with the body text when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?} (status {})",
                self.text(),
                self.status
            )
        })
    }

    /// Whether the server announced it will close the connection.
    pub fn says_close(&self) -> bool {
        self.header_all("connection")
            .iter()
            .any(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Split `http://host:port/path?q` into the socket address, the Host value and the target.
pub fn split_url(url: &str) -> (SocketAddr, String, String) {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (authority, target) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let addr = authority
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("bad url {url}"));
    (addr, authority.to_string(), target)
}

/// GET `url` on a fresh connection.
pub fn get(url: &str) -> Response {
    request("GET", url, &[], b"")
}

/// Send one request on a fresh connection; panics on an I/O error (timeouts included).
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    try_request(method, url, headers, body).unwrap_or_else(|e| panic!("{method} {url} failed: {e}"))
}

/// Send one request on a fresh connection.
pub fn try_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let (addr, host, target) = split_url(url);
    let mut conn = Conn::open(addr)?;
    conn.host = host;
    conn.send(method, &target, headers, body)
}

/// Write `bytes` to `addr` and return everything read until the peer closes or the read
/// times out (`READ_TIMEOUT` without new bytes).
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    raw_with_timeout(addr, bytes, READ_TIMEOUT)
}

/// `raw` with a custom idle timeout.
pub fn raw_with_timeout(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> Vec<u8> {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return Vec::new();
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.write_all(bytes);
    let mut reader = Reader::new(stream);
    loop {
        match reader.fill() {
            Ok(0) | Err(_) => return reader.buf,
            Ok(_) => {}
        }
    }
}

/// The status code of the first response line in raw bytes (`HTTP/1.1 400 ...`).
pub fn raw_status(bytes: &[u8]) -> Option<u16> {
    let line = bytes.split(|b| *b == b'\n').next()?;
    let text = String::from_utf8_lossy(line);
    let mut parts = text.split_whitespace();
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// One client connection that can carry several requests (keep-alive, pipelining).
pub struct Conn {
    pub reader: Reader<TcpStream>,
    /// Value of the `Host` header `send` adds.
    pub host: String,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_write_timeout(Some(READ_TIMEOUT))?;
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            reader: Reader::new(stream),
            host: addr.to_string(),
        })
    }

    /// The bytes of a request (adds Host unless given, and Content-Length when there is a
    /// body or the method usually carries one, unless a framing header is given).
    pub fn encode(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Vec<u8> {
        let mut out = format!("{method} {target} HTTP/1.1\r\n").into_bytes();
        let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
        if !has("host") {
            out.extend_from_slice(format!("Host: {}\r\n", self.host).as_bytes());
        }
        for (k, v) in headers {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        let wants_length = !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH");
        if wants_length && !has("content-length") && !has("transfer-encoding") {
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        out
    }

    /// Send one request and read its response (interim 1xx responses skipped).
    pub fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        let bytes = self.encode(method, target, headers, body);
        self.write_raw(&bytes)?;
        self.read_response(method == "HEAD")
    }

    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.reader.stream.write_all(bytes)?;
        self.reader.stream.flush()
    }

    /// The next final response (1xx skipped). `head` = it answers a HEAD request.
    pub fn read_response(&mut self, head: bool) -> io::Result<Response> {
        loop {
            let resp = self.read_any_response(head)?;
            if !(100..200).contains(&resp.status) || resp.status == 101 {
                return Ok(resp);
            }
        }
    }

    /// The next response, interim 1xx included.
    pub fn read_any_response(&mut self, head: bool) -> io::Result<Response> {
        let Some(raw_head) = self.reader.read_head(8 << 20)? else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before a response",
            ));
        };
        let mut slots = [httparse::EMPTY_HEADER; 512];
        let mut parsed = httparse::Response::new(&mut slots);
        let status = parsed.parse(&raw_head).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{e}: {:?}", String::from_utf8_lossy(&raw_head)),
            )
        })?;
        if status.is_partial() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "partial response head",
            ));
        }
        let headers: Vec<(String, String)> = wire::owned_headers(parsed.headers)
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        let code = parsed.code.unwrap_or(0);
        let mut resp = Response {
            version: parsed.version.unwrap_or(1),
            status: code,
            reason: parsed.reason.unwrap_or_default().to_string(),
            headers,
            body: Vec::new(),
        };
        let bodyless = head || (100..200).contains(&code) || code == 204 || code == 304;
        if bodyless {
            return Ok(resp);
        }
        resp.body = if wire::is_chunked(&resp.headers) {
            self.reader.read_chunked()?.0
        } else if let Some(n) = wire::content_length(&resp.headers) {
            self.reader.read_exact_body(n)?
        } else {
            self.reader.read_to_close()?
        };
        Ok(resp)
    }

    /// Whether the server closes this connection within `wait` (EOF or reset seen).
    /// Bytes that arrive meanwhile are kept in the buffer.
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let _ = self
            .reader
            .stream
            .set_read_timeout(Some(Duration::from_millis(50)));
        let closed = loop {
            match self.reader.fill() {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break true,
            }
            if Instant::now() >= deadline {
                break false;
            }
        };
        let _ = self.reader.stream.set_read_timeout(Some(READ_TIMEOUT));
        closed
    }

    /// Half-close our side (no more requests).
    pub fn shutdown_write(&mut self) {
        let _ = self.reader.stream.shutdown(Shutdown::Write);
    }
}
