//! Per-core keep-alive pool of backend connections, keyed by socket address.
//!
//! Rules (the ones monoio-http-client gets wrong, see platform notes): a connection goes back
//! only after a complete, cleanly framed response that allowed keep-alive; before reuse it is
//! probed with a non-blocking `MSG_PEEK`, so a connection the backend closed while idle is
//! dropped instead of failing the next request; idle connections older than
//! `idle_connection_timeout` are dropped.
//!
//! TLS connections are pooled the same way, keyed by address and server name: a connection
//! verified for one name is never reused for another.

use crate::runtime::clock;
use crate::tls::stream::TlsStream;
use bytes::BytesMut;
use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;
use monoio::BufResult;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A connection to a backend: plain TCP, or TLS over it.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<rustls::ClientConnection>>),
}

impl Conn {
    /// Decrypted bytes nobody asked for are waiting: after a complete response the
    /// connection is out of sync.
    pub fn buffered(&mut self) -> bool {
        match self {
            Conn::Plain(_) => false,
            Conn::Tls(s) => s.buffered(),
        }
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.tcp(),
        }
    }
}

impl AsyncReadRent for Conn {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Conn::Plain(s) => s.read(buf).await,
            Conn::Tls(s) => s.read(buf).await,
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Conn::Plain(s) => s.readv(buf).await,
            Conn::Tls(s) => s.readv(buf).await,
        }
    }
}

impl AsyncWriteRent for Conn {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Conn::Plain(s) => s.write(buf).await,
            Conn::Tls(s) => s.write(buf).await,
        }
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Conn::Plain(s) => s.writev(buf).await,
            Conn::Tls(s) => s.writev(buf).await,
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush().await,
            Conn::Tls(s) => s.flush().await,
        }
    }

    async fn shutdown(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.shutdown().await,
            Conn::Tls(s) => s.shutdown().await,
        }
    }
}

/// What a pooled connection is for: the address, and for TLS the verified server name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub addr: SocketAddr,
    pub tls: Option<Arc<str>>,
}

/// Idle time after which a pooled connection is probed before reuse.
const PROBE_AFTER: Duration = Duration::from_millis(50);

struct Idle {
    stream: Conn,
    since: Instant,
    /// The connection's read buffer, kept with it: the next exchange reads into it again
    /// (reclaimed in place once the last answer's bytes are dropped) instead of allocating
    /// 8 KB and the shared state of its first split per call. Go's transport keeps a 4 KB
    /// reader and a 4 KB writer per pooled connection likewise.
    buf: BytesMut,
}

/// Keyed by address with a linear scan: a core talks to a handful of backend addresses, and
/// hashing a `SocketAddr` (SipHash) twice per request cost more than the scan.
#[derive(Default)]
pub struct Pool {
    idle: RefCell<Vec<(Key, Vec<Idle>)>>,
}

impl Pool {
    pub fn new() -> Self {
        Pool::default()
    }

    /// The most recently used live connection to `addr`, if any, with its read buffer.
    pub fn take(&self, key: &Key, idle_timeout: Option<Duration>) -> Option<(Conn, BytesMut)> {
        let mut map = self.idle.try_borrow_mut().ok()?;
        let list = map.iter_mut().find(|(a, _)| a == key).map(|(_, l)| l)?;
        while let Some(idle) = list.pop() {
            let age = clock::now().saturating_duration_since(idle.since);
            if idle_timeout.is_some_and(|t| age > t) {
                continue;
            }
            // The probe is a syscall: under load a connection comes back within microseconds
            // and backends close idle connections after seconds, so only a connection that
            // sat idle for a while is probed. A closed one caught in between costs an
            // idempotent request one retry on a fresh connection (as with Go's client).
            if age < PROBE_AFTER || is_alive(idle.stream.tcp()) {
                return Some((idle.stream, idle.buf));
            }
        }
        None
    }

    /// Return a connection (and its emptied read buffer) for reuse; dropped (closed) when
    /// `max_idle` are already parked.
    pub fn put(&self, key: Key, stream: Conn, buf: BytesMut, max_idle: usize) {
        let Ok(mut map) = self.idle.try_borrow_mut() else {
            return;
        };
        let i = match map.iter().position(|(a, _)| *a == key) {
            Some(i) => i,
            None => {
                map.push((key, Vec::new()));
                map.len() - 1
            }
        };
        let Some((_, list)) = map.get_mut(i) else {
            return;
        };
        if list.len() < max_idle {
            list.push(Idle {
                stream,
                since: clock::now(),
                buf,
            });
        }
    }

    /// Number of parked connections to `addr` (for tests and metrics).
    pub fn idle_count(&self, addr: &SocketAddr) -> usize {
        self.idle
            .try_borrow()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k.addr == *addr)
                    .map(|(_, l)| l.len())
                    .sum()
            })
            .unwrap_or(0)
    }
}

/// An idle keep-alive connection must have nothing to read: EOF means the backend closed it,
/// and unsolicited bytes mean it is out of sync. Only "would block" proves it usable. (On a
/// TLS connection a late record, a session ticket say, also counts as bytes: the connection
/// is dropped, which costs one handshake, never a wrong answer.)
fn is_alive(stream: &TcpStream) -> bool {
    let fd = stream.as_raw_fd();
    let mut byte = 0u8;
    // SAFETY: `fd` is an open socket owned by `stream` for the duration of the call, and the
    // buffer is one valid, writable byte.
    let n = unsafe {
        libc::recv(
            fd,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        let err = std::io::Error::last_os_error();
        return err.kind() == std::io::ErrorKind::WouldBlock;
    }
    false
}
