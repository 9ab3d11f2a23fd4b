//! `telemetry/gelf`: application lines to Graylog as GELF 1.1, over UDP (gzip, chunked past
//! one datagram) or TCP (`enable_tcp`: uncompressed, each message ended by a NUL byte), the
//! framing of Graylog's go-gelf writer that krakend-gelf uses. Runs on the log writer thread.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

/// go-gelf's datagram size (chunk header included) and the GELF chunk limit.
const CHUNK: usize = 1420;
const CHUNK_HEADER: usize = 12;
const MAX_CHUNKS: usize = 128;

enum Conn {
    Udp(UdpSocket),
    Tcp {
        addr: std::net::SocketAddr,
        stream: Option<TcpStream>,
        retry_at: Instant,
    },
}

pub struct Gelf {
    conn: Conn,
    seq: u64,
}

/// The message id of a chunked message: unique per message of this process.
fn message_id(seq: u64) -> [u8; 8] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (nanos ^ seq.rotate_left(32) ^ u64::from(std::process::id())).to_be_bytes()
}

impl Gelf {
    pub fn open(address: &str, tcp: bool) -> Result<Gelf, String> {
        let addr = address
            .to_socket_addrs()
            .map_err(|e| format!("telemetry/gelf.address `{address}`: {e}"))?
            .next()
            .ok_or_else(|| format!("telemetry/gelf.address `{address}`: no address"))?;
        let conn = if tcp {
            // KrakenD: a Graylog that is down at startup does not stop the gateway; we
            // connect on the first line and retry at most once a second.
            Conn::Tcp {
                addr,
                stream: None,
                retry_at: Instant::now(),
            }
        } else {
            let bind = if addr.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let s = UdpSocket::bind(bind).map_err(|e| format!("telemetry/gelf: {e}"))?;
            s.connect(addr)
                .map_err(|e| format!("telemetry/gelf.address `{address}`: {e}"))?;
            Conn::Udp(s)
        };
        Ok(Gelf { conn, seq: 0 })
    }

    /// Send one message (a GELF JSON document).
    pub fn send(&mut self, json: &[u8]) {
        self.seq += 1;
        match &mut self.conn {
            Conn::Udp(s) => {
                let mut gz = flate2::write::GzEncoder::new(
                    Vec::with_capacity(json.len() / 2 + 32),
                    flate2::Compression::default(),
                );
                if gz.write_all(json).is_err() {
                    return;
                }
                let Ok(packed) = gz.finish() else { return };
                if packed.len() <= CHUNK {
                    let _ = s.send(&packed);
                    return;
                }
                let body = CHUNK - CHUNK_HEADER;
                let count = packed.len().div_ceil(body);
                if count > MAX_CHUNKS {
                    // GELF cannot carry it; Graylog would discard it anyway.
                    return;
                }
                let id = message_id(self.seq);
                let mut dgram = Vec::with_capacity(CHUNK);
                for (i, part) in packed.chunks(body).enumerate() {
                    dgram.clear();
                    dgram.extend_from_slice(&[0x1e, 0x0f]);
                    dgram.extend_from_slice(&id);
                    dgram.push(i as u8);
                    dgram.push(count as u8);
                    dgram.extend_from_slice(part);
                    let _ = s.send(&dgram);
                }
            }
            Conn::Tcp {
                addr,
                stream,
                retry_at,
            } => {
                if stream.is_none() && Instant::now() >= *retry_at {
                    *retry_at = Instant::now() + Duration::from_secs(1);
                    if let Ok(s) = TcpStream::connect_timeout(addr, Duration::from_secs(1)) {
                        // A Graylog that stops reading only costs the writer this long.
                        let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
                        let _ = s.set_nodelay(true);
                        *stream = Some(s);
                    }
                }
                if let Some(s) = stream {
                    let ok = s.write_all(json).is_ok() && s.write_all(&[0]).is_ok();
                    if !ok {
                        *stream = None;
                    }
                }
            }
        }
    }
}

/// One GELF 1.1 message as go-gelf's `Writer.Write` builds it from a log line: the first
/// line is the short message, the whole text the full message when there is more than one.
pub fn message(host: &str, facility: &str, text: &str, level: u8, at_secs: f64) -> Vec<u8> {
    let text = text.trim_end_matches('\n');
    let (short, full) = match text.split_once('\n') {
        Some((s, _)) => (s, Some(text)),
        None => (text, None),
    };
    let mut m = serde_json::Map::new();
    m.insert("version".into(), "1.1".into());
    m.insert("host".into(), host.into());
    m.insert("short_message".into(), short.into());
    if let Some(f) = full {
        m.insert("full_message".into(), f.into());
    }
    m.insert("timestamp".into(), at_secs.into());
    m.insert("level".into(), level.into());
    m.insert("facility".into(), facility.into());
    serde_json::to_vec(&serde_json::Value::Object(m)).unwrap_or_default()
}
