//! Per-core keep-alive pool of backend connections, keyed by socket address.
//!
//! Rules (the ones monoio-http-client gets wrong, see platform notes): a connection goes back
//! only after a complete, cleanly framed response that allowed keep-alive; before reuse it is
//! probed with a non-blocking `MSG_PEEK`, so a connection the backend closed while idle is
//! dropped instead of failing the next request; idle connections older than
//! `idle_connection_timeout` are dropped.

use monoio::net::TcpStream;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Idle time after which a pooled connection is probed before reuse.
const PROBE_AFTER: Duration = Duration::from_millis(50);

struct Idle {
    stream: TcpStream,
    since: Instant,
}

/// Keyed by address with a linear scan: a core talks to a handful of backend addresses, and
/// hashing a `SocketAddr` (SipHash) twice per request cost more than the scan.
#[derive(Default)]
pub struct Pool {
    idle: RefCell<Vec<(SocketAddr, Vec<Idle>)>>,
}

impl Pool {
    pub fn new() -> Self {
        Pool::default()
    }

    /// The most recently used live connection to `addr`, if any.
    pub fn take(&self, addr: &SocketAddr, idle_timeout: Option<Duration>) -> Option<TcpStream> {
        let mut map = self.idle.try_borrow_mut().ok()?;
        let list = map.iter_mut().find(|(a, _)| a == addr).map(|(_, l)| l)?;
        while let Some(idle) = list.pop() {
            let age = idle.since.elapsed();
            if idle_timeout.is_some_and(|t| age > t) {
                continue;
            }
            // The probe is a syscall: under load a connection comes back within microseconds
            // and backends close idle connections after seconds, so only a connection that
            // sat idle for a while is probed. A closed one caught in between costs an
            // idempotent request one retry on a fresh connection (as with Go's client).
            if age < PROBE_AFTER || is_alive(&idle.stream) {
                return Some(idle.stream);
            }
        }
        None
    }

    /// Return a connection for reuse; dropped (closed) when `max_idle` are already parked.
    pub fn put(&self, addr: SocketAddr, stream: TcpStream, max_idle: usize) {
        let Ok(mut map) = self.idle.try_borrow_mut() else {
            return;
        };
        let i = match map.iter().position(|(a, _)| *a == addr) {
            Some(i) => i,
            None => {
                map.push((addr, Vec::new()));
                map.len() - 1
            }
        };
        let Some((_, list)) = map.get_mut(i) else {
            return;
        };
        if list.len() < max_idle {
            list.push(Idle {
                stream,
                since: Instant::now(),
            });
        }
    }

    /// Number of parked connections to `addr` (for tests and metrics).
    pub fn idle_count(&self, addr: &SocketAddr) -> usize {
        self.idle
            .try_borrow()
            .map(|m| {
                m.iter()
                    .find(|(a, _)| a == addr)
                    .map_or(0, |(_, l)| l.len())
            })
            .unwrap_or(0)
    }
}

/// An idle keep-alive connection must have nothing to read: EOF means the backend closed it,
/// and unsolicited bytes mean it is out of sync. Only "would block" proves it usable.
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
