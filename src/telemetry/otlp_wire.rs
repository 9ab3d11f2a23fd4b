//! Sending one OTLP export request: OTLP/HTTP (`POST /v1/traces`, `/v1/metrics`,
//! `application/x-protobuf`) over a kept-alive HTTP/1.1 connection, or OTLP/gRPC (see
//! [`super::otlp_grpc`]). Blocking std sockets with timeouts: this runs on an exporter
//! thread, never on an event loop. Every read is bounded: a collector that answers garbage or
//! floods costs an error, not memory.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a response read (head and body); past it the answer is garbage.
const MAX_RESPONSE: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Metrics,
}

impl Signal {
    fn http_path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
        }
    }
}

#[derive(Debug)]
pub enum SendError {
    /// Worth another try later (no connection, timeout, 429/502/503/504, UNAVAILABLE).
    Retry(String),
    /// The collector refused this request: sending it again would not help.
    Fatal(String),
}

/// One collector, and the connection to it (opened on first use, reopened after a failure).
pub struct Conn {
    host: String,
    port: u16,
    http: bool,
    stream: Option<TcpStream>,
    h2: Option<super::otlp_grpc::H2>,
}

impl Conn {
    pub fn new(host: &str, port: u16, http: bool) -> Conn {
        Conn {
            host: host.to_string(),
            port,
            http,
            stream: None,
            h2: None,
        }
    }

    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Send one export request and read its answer.
    pub fn send(&mut self, signal: Signal, body: &[u8]) -> Result<(), SendError> {
        // A kept-alive connection the collector closed meanwhile fails at once: one more try
        // on a fresh connection before reporting.
        let reused = self.stream.is_some() || self.h2.is_some();
        let r = self.send_once(signal, body);
        match r {
            Err(SendError::Retry(_)) if reused => self.send_once(signal, body),
            r => r,
        }
    }

    fn send_once(&mut self, signal: Signal, body: &[u8]) -> Result<(), SendError> {
        if !self.http {
            let mut h2 = match self.h2.take() {
                Some(h) => h,
                None => super::otlp_grpc::H2::open(self.connect()?)?,
            };
            let r = h2.export(&self.authority(), signal, body);
            // A refused call leaves the connection as good as it was; anything else drops it.
            if matches!(r, Ok(()) | Err(SendError::Fatal(_))) {
                self.h2 = Some(h2);
            }
            return r;
        }
        let mut stream = match self.stream.take() {
            Some(s) => s,
            None => self.connect()?,
        };
        let keep = http_exchange(&mut stream, &self.authority(), signal, body)?;
        if keep {
            self.stream = Some(stream);
        }
        Ok(())
    }

    fn connect(&self) -> Result<TcpStream, SendError> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| SendError::Retry(format!("cannot resolve {}: {e}", self.host)))?
            .collect();
        let mut last = format!("{} has no address", self.host);
        for a in addrs {
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(s) => {
                    let _ = s.set_read_timeout(Some(IO_TIMEOUT));
                    let _ = s.set_write_timeout(Some(IO_TIMEOUT));
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = format!("cannot connect to {a}: {e}"),
            }
        }
        Err(SendError::Retry(last))
    }
}

fn io(e: std::io::Error) -> SendError {
    SendError::Retry(e.to_string())
}

/// POST the body; Ok(keep-alive) on a 2xx answer.
fn http_exchange(
    s: &mut TcpStream,
    authority: &str,
    signal: Signal,
    body: &[u8],
) -> Result<bool, SendError> {
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {}\r\n\
         Content-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        signal.http_path(),
        crate::plan::version_text(),
        body.len()
    );
    s.write_all(head.as_bytes()).map_err(io)?;
    s.write_all(body).map_err(io)?;
    let (status, keep) = read_http_response(s)?;
    match status {
        200..=299 => Ok(keep),
        429 | 502 | 503 | 504 => Err(SendError::Retry(format!("the collector answered {status}"))),
        _ => Err(SendError::Fatal(format!("the collector answered {status}"))),
    }
}

/// The status of one HTTP/1.1 response, its body read and discarded (bounded), and whether
/// the connection stays open.
fn read_http_response(s: &mut TcpStream) -> Result<(u16, bool), SendError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 16 * 1024 {
            return Err(SendError::Retry(
                "the collector's answer has no end of head".into(),
            ));
        }
        let n = s.read(&mut chunk).map_err(io)?;
        if n == 0 {
            return Err(SendError::Retry(
                "the collector closed the connection".into(),
            ));
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
    };
    let head = std::str::from_utf8(buf.get(..head_end).unwrap_or(&[]))
        .map_err(|_| SendError::Retry("the collector's answer is not HTTP".into()))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            SendError::Retry(format!(
                "the collector's answer is not HTTP: {status_line:?}"
            ))
        })?;
    let mut length = None;
    let mut chunked = false;
    let mut keep = status_line.starts_with("HTTP/1.1");
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("content-length") {
            length = v.parse::<usize>().ok();
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.to_ascii_lowercase().contains("chunked");
        } else if k.eq_ignore_ascii_case("connection") {
            keep = !v.eq_ignore_ascii_case("close");
        }
    }
    let mut rest = buf.split_off(head_end);
    if chunked {
        read_chunked(s, &mut rest)?;
    } else if let Some(len) = length {
        if len > MAX_RESPONSE {
            return Err(SendError::Retry(
                "the collector's answer is too large".into(),
            ));
        }
        while rest.len() < len {
            let n = s.read(&mut chunk).map_err(io)?;
            if n == 0 {
                return Err(SendError::Retry(
                    "the collector closed the connection".into(),
                ));
            }
            rest.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        }
    } else {
        // Neither: the body runs to the end of the connection.
        keep = false;
        loop {
            let n = s.read(&mut chunk).map_err(io)?;
            if n == 0 {
                break;
            }
            if rest.len() + n > MAX_RESPONSE {
                return Err(SendError::Retry(
                    "the collector's answer is too large".into(),
                ));
            }
            rest.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        }
    }
    Ok((status, keep))
}

/// Read a chunked body to its last chunk (sizes only are parsed; trailers skipped).
fn read_chunked(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), SendError> {
    let mut chunk = [0u8; 4096];
    let mut pos = 0usize;
    loop {
        // A size line.
        let line_end = loop {
            if let Some(i) = find(buf.get(pos..).unwrap_or(&[]), b"\r\n") {
                break pos + i;
            }
            fill(s, buf, &mut chunk)?;
        };
        let line = std::str::from_utf8(buf.get(pos..line_end).unwrap_or(&[])).unwrap_or("");
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| SendError::Retry("the collector's chunked answer is garbled".into()))?;
        pos = line_end + 2;
        if size == 0 {
            // Trailers end with an empty line.
            while find(buf.get(pos..).unwrap_or(&[]), b"\r\n").is_none() {
                fill(s, buf, &mut chunk)?;
            }
            return Ok(());
        }
        if pos + size > MAX_RESPONSE {
            return Err(SendError::Retry(
                "the collector's answer is too large".into(),
            ));
        }
        while buf.len() < pos + size + 2 {
            fill(s, buf, &mut chunk)?;
        }
        pos += size + 2;
    }
}

fn fill(s: &mut TcpStream, buf: &mut Vec<u8>, chunk: &mut [u8]) -> Result<(), SendError> {
    if buf.len() > MAX_RESPONSE {
        return Err(SendError::Retry(
            "the collector's answer is too large".into(),
        ));
    }
    let n = s.read(chunk).map_err(io)?;
    if n == 0 {
        return Err(SendError::Retry(
            "the collector closed the connection".into(),
        ));
    }
    buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
    Ok(())
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
