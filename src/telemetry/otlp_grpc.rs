//! OTLP/gRPC: a minimal HTTP/2 client (prior knowledge, cleartext, as krakend-otel's
//! `WithInsecure` exporter) making unary calls to
//! `opentelemetry.proto.collector.{trace,metrics}.v1.*Service/Export` on a kept-alive
//! connection, one stream per export. It honours the peer's flow control and frame size,
//! answers SETTINGS and PING, and decodes every header block (HPACK, [`super::hpack`]) to read
//! `:status` and `grpc-status`. Blocking, on the exporter's own thread; every read is bounded.

use super::hpack;
use super::otlp_wire::{SendError, Signal};
use std::io::{Read, Write};
use std::net::TcpStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Frames we accept up to (our SETTINGS_MAX_FRAME_SIZE, the default).
const OUR_MAX_FRAME: usize = 16_384;
/// What we let the peer send before a WINDOW_UPDATE (its answers are a few bytes).
const OUR_WINDOW: u32 = 1 << 20;
/// The most read while waiting for one answer; past it the collector is misbehaving.
const MAX_READ: usize = 1 << 20;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

fn io(e: std::io::Error) -> SendError {
    SendError::Retry(e.to_string())
}

fn bad(what: &str) -> SendError {
    SendError::Retry(format!("the collector broke HTTP/2: {what}"))
}

/// One HTTP/2 connection to a collector.
pub struct H2 {
    s: TcpStream,
    decoder: hpack::Decoder,
    next_stream: u32,
    /// Our send windows: the connection's, and what a new stream starts with.
    conn_window: i64,
    initial_window: i64,
    max_frame: usize,
}

/// Where one stream's exchange stands.
struct Stream {
    id: u32,
    window: i64,
    fields: Vec<(String, String)>,
    ended: bool,
    read: usize,
}

impl H2 {
    /// Send the preface and our SETTINGS (no push, a large receive window).
    pub fn open(mut s: TcpStream) -> Result<H2, SendError> {
        let mut out = PREFACE.to_vec();
        let mut settings = Vec::new();
        settings.extend_from_slice(&2u16.to_be_bytes()); // ENABLE_PUSH
        settings.extend_from_slice(&0u32.to_be_bytes());
        settings.extend_from_slice(&4u16.to_be_bytes()); // INITIAL_WINDOW_SIZE
        settings.extend_from_slice(&OUR_WINDOW.to_be_bytes());
        frame(&mut out, SETTINGS, 0, 0, &settings);
        // The connection window is raised by WINDOW_UPDATE only.
        frame(
            &mut out,
            WINDOW_UPDATE,
            0,
            0,
            &(OUR_WINDOW - 65_535).to_be_bytes(),
        );
        s.write_all(&out).map_err(io)?;
        Ok(H2 {
            s,
            decoder: hpack::Decoder::default(),
            next_stream: 1,
            conn_window: 65_535,
            initial_window: 65_535,
            max_frame: 16_384,
        })
    }

    /// One unary `Export` call. Ok when the collector answered `grpc-status: 0`.
    pub fn export(
        &mut self,
        authority: &str,
        signal: Signal,
        body: &[u8],
    ) -> Result<(), SendError> {
        let id = self.next_stream;
        if id > (1 << 30) {
            return Err(SendError::Retry("stream ids used up: reconnecting".into()));
        }
        self.next_stream += 2;
        let path = match signal {
            Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        };
        let mut block = Vec::with_capacity(256);
        for (n, v) in [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", authority),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            (
                "user-agent",
                &format!("{} grpc", crate::plan::version_text()),
            ),
        ] {
            hpack::encode(&mut block, n, v);
        }
        if block.len() > self.max_frame {
            return Err(SendError::Fatal("header block larger than a frame".into()));
        }
        let mut out = Vec::with_capacity(block.len() + 9);
        frame(&mut out, HEADERS, END_HEADERS, id, &block);
        self.s.write_all(&out).map_err(io)?;

        // The gRPC message: uncompressed flag, length, protobuf.
        let len =
            u32::try_from(body.len()).map_err(|_| SendError::Fatal("export too large".into()))?;
        let mut msg = Vec::with_capacity(body.len() + 5);
        msg.push(0);
        msg.extend_from_slice(&len.to_be_bytes());
        msg.extend_from_slice(body);
        let mut st = Stream {
            id,
            window: self.initial_window,
            fields: Vec::new(),
            ended: false,
            read: 0,
        };
        let mut sent = 0usize;
        while sent < msg.len() {
            let room = self.conn_window.min(st.window).max(0) as usize;
            let n = (msg.len() - sent).min(self.max_frame).min(room);
            if n == 0 {
                // Blocked by flow control: read until the peer opens a window.
                self.read_frame(&mut st)?;
                if st.ended {
                    break;
                }
                continue;
            }
            let last = sent + n == msg.len();
            let mut out = Vec::with_capacity(n + 9);
            let chunk = msg.get(sent..sent + n).unwrap_or(&[]);
            frame(&mut out, DATA, if last { END_STREAM } else { 0 }, id, chunk);
            self.s.write_all(&out).map_err(io)?;
            sent += n;
            self.conn_window -= n as i64;
            st.window -= n as i64;
        }
        while !st.ended {
            self.read_frame(&mut st)?;
        }
        verdict(&st.fields)
    }

    /// Read and handle one frame.
    fn read_frame(&mut self, st: &mut Stream) -> Result<(), SendError> {
        let (kind, flags, stream, payload) = self.next_frame(st)?;
        match kind {
            DATA => {
                let n = payload.len() as u32;
                if n > 0 {
                    // Keep both receive windows open: answers are tiny, but a connection
                    // lives for many exports.
                    let mut out = Vec::with_capacity(26);
                    frame(&mut out, WINDOW_UPDATE, 0, 0, &n.to_be_bytes());
                    if stream == st.id && flags & END_STREAM == 0 {
                        frame(&mut out, WINDOW_UPDATE, 0, stream, &n.to_be_bytes());
                    }
                    self.s.write_all(&out).map_err(io)?;
                }
                if stream == st.id && flags & END_STREAM != 0 {
                    st.ended = true;
                }
            }
            HEADERS => {
                let block = self.header_block(st, flags, payload)?;
                // Every block is decoded, to keep the dynamic table in step.
                let fields = self.decoder.decode(&block).map_err(|e| bad(&e))?;
                if stream == st.id {
                    st.fields.extend(fields);
                    if flags & END_STREAM != 0 {
                        st.ended = true;
                    }
                }
            }
            SETTINGS if flags & ACK == 0 => {
                if payload.len() % 6 != 0 {
                    return Err(bad("SETTINGS of a bad length"));
                }
                for s in payload.chunks_exact(6) {
                    let (Some(id), Some(v)) = (be16(s), s.get(2..).and_then(be32)) else {
                        continue;
                    };
                    match id {
                        4 => {
                            let delta = i64::from(v) - self.initial_window;
                            self.initial_window = i64::from(v);
                            st.window += delta;
                        }
                        5 => self.max_frame = (v as usize).clamp(16_384, 1 << 24),
                        _ => {}
                    }
                }
                let mut out = Vec::with_capacity(9);
                frame(&mut out, SETTINGS, ACK, 0, &[]);
                self.s.write_all(&out).map_err(io)?;
            }
            PING if flags & ACK == 0 => {
                let mut out = Vec::with_capacity(17);
                frame(&mut out, PING, ACK, 0, &payload);
                self.s.write_all(&out).map_err(io)?;
            }
            WINDOW_UPDATE => {
                let inc = be32(&payload).ok_or_else(|| bad("short WINDOW_UPDATE"))? & 0x7fff_ffff;
                if stream == 0 {
                    self.conn_window += i64::from(inc);
                } else if stream == st.id {
                    st.window += i64::from(inc);
                }
            }
            GOAWAY => {
                return Err(SendError::Retry(
                    "the collector closed the connection (GOAWAY)".into(),
                ))
            }
            RST_STREAM if stream == st.id => {
                let code = be32(&payload).unwrap_or(0);
                return Err(SendError::Retry(format!(
                    "the collector reset the call (code {code})"
                )));
            }
            PUSH_PROMISE => return Err(bad("PUSH_PROMISE though push is off")),
            CONTINUATION => return Err(bad("CONTINUATION without HEADERS")),
            _ => {}
        }
        Ok(())
    }

    /// A HEADERS frame's block, without padding and priority, with its CONTINUATIONs.
    fn header_block(
        &mut self,
        st: &mut Stream,
        flags: u8,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, SendError> {
        let mut p = payload.as_slice();
        let mut pad = 0usize;
        if flags & PADDED != 0 {
            let (&n, rest) = p.split_first().ok_or_else(|| bad("short HEADERS"))?;
            pad = usize::from(n);
            p = rest;
        }
        if flags & PRIORITY != 0 {
            p = p.get(5..).ok_or_else(|| bad("short HEADERS"))?;
        }
        let end = p
            .len()
            .checked_sub(pad)
            .ok_or_else(|| bad("HEADERS padding"))?;
        let mut block = p.get(..end).unwrap_or(&[]).to_vec();
        let mut done = flags & END_HEADERS != 0;
        while !done {
            let (kind, f, _, more) = self.next_frame(st)?;
            if kind != CONTINUATION {
                return Err(bad("HEADERS not followed by CONTINUATION"));
            }
            block.extend_from_slice(&more);
            done = f & END_HEADERS != 0;
        }
        Ok(block)
    }

    fn next_frame(&mut self, st: &mut Stream) -> Result<(u8, u8, u32, Vec<u8>), SendError> {
        let mut head = [0u8; 9];
        self.s.read_exact(&mut head).map_err(io)?;
        let [l0, l1, l2, kind, flags, s0, s1, s2, s3] = head;
        let len = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
        if len > OUR_MAX_FRAME {
            return Err(bad("a frame larger than allowed"));
        }
        st.read += len + 9;
        if st.read > MAX_READ {
            return Err(bad("too much data for one answer"));
        }
        let stream = u32::from_be_bytes([s0, s1, s2, s3]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        self.s.read_exact(&mut payload).map_err(io)?;
        Ok((kind, flags, stream, payload))
    }
}

fn be16(b: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(..2)?.try_into().ok()?))
}

fn be32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len();
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// The answer's `:status` and `grpc-status` (OTLP's retryable codes are retried).
fn verdict(fields: &[(String, String)]) -> Result<(), SendError> {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match get(":status") {
        Some("200") => {}
        Some(s) => {
            let msg = format!("the collector answered HTTP {s}");
            return Err(match s {
                "429" | "502" | "503" | "504" => SendError::Retry(msg),
                _ => SendError::Fatal(msg),
            });
        }
        None => return Err(bad("no :status")),
    }
    let code: u32 = get("grpc-status")
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| bad("no grpc-status"))?;
    if code == 0 {
        return Ok(());
    }
    let msg = format!(
        "the collector answered grpc-status {code} {:?}",
        get("grpc-message").unwrap_or("")
    );
    // CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, OUT_OF_RANGE, UNAVAILABLE,
    // DATA_LOSS: OTLP's retryable codes.
    if matches!(code, 1 | 4 | 8 | 10 | 11 | 14 | 15) {
        Err(SendError::Retry(msg))
    } else {
        Err(SendError::Fatal(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_status_decides_the_outcome() {
        let f = |s: &str, g: Option<&str>| {
            let mut v = vec![(":status".to_string(), s.to_string())];
            if let Some(g) = g {
                v.push(("grpc-status".into(), g.into()));
            }
            verdict(&v)
        };
        assert!(f("200", Some("0")).is_ok());
        assert!(matches!(f("200", Some("14")), Err(SendError::Retry(_))));
        assert!(matches!(f("200", Some("3")), Err(SendError::Fatal(_))));
        assert!(matches!(f("200", None), Err(SendError::Retry(_))));
        assert!(matches!(f("503", None), Err(SendError::Retry(_))));
    }
}
