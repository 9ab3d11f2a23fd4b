//! `SO_REUSEPORT` listeners: one per worker, all bound to the same port, so the kernel spreads
//! connections across cores and no connection is ever handed between threads.

use socket2::{Domain, Protocol, Socket, Type};
use std::net::{SocketAddr, TcpListener};

/// Bind one listener. Port 0 picks an ephemeral port; bind the others to the port it got.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// `n` listeners on `addr` (the first one decides the port when `addr` has port 0).
///
/// Refuses a port another process already listens on. `SO_REUSEPORT` would let us join its
/// listeners, and the kernel would then split new connections between the two processes —
/// an old instance left running would keep answering part of the traffic with its config.
/// KrakenD fails to start in that case too ("address already in use").
pub fn bind_all(addr: SocketAddr, n: usize) -> std::io::Result<Vec<TcpListener>> {
    if addr.port() != 0 {
        ensure_unclaimed(addr)?;
    }
    let first = bind(addr)?;
    let actual = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..n {
        all.push(bind(SocketAddr::new(addr.ip(), actual.port()))?);
    }
    Ok(all)
}

/// Bind (not listen) a probe socket without `SO_REUSEPORT`: it fails if any socket listens on
/// the port. `SO_REUSEADDR` keeps connections in TIME_WAIT from a previous run out of it.
fn ensure_unclaimed(addr: SocketAddr) -> std::io::Result<()> {
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    probe.set_reuse_address(true)?;
    match probe.bind(&addr.into()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "address already in use (another process listens on this port; proxy does not \
             share it)",
        )),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_listeners_share_the_port_the_first_one_got() {
        let ls = bind_all("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let ports: Vec<u16> = ls.iter().map(|l| l.local_addr().unwrap().port()).collect();
        assert_ne!(ports[0], 0);
        assert!(ports.iter().all(|p| *p == ports[0]));
    }

    #[test]
    fn a_port_another_listener_holds_is_refused_even_with_reuseport() {
        let other = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let taken = other.local_addr().unwrap();
        let err = bind_all(taken, 2).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
        drop(other);
        assert!(
            bind_all(taken, 2).is_ok(),
            "free again once the other one closed"
        );
    }
}
