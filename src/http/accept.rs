//! The connection layer: what an accepted TCP connection becomes. Plain HTTP goes straight to
//! the HTTP/1.1 loop; with a `tls` listener the handshake runs first (on this core), then the
//! protocol chosen by ALPN picks the loop. Only `http/1.1` is advertised today; HTTP/2 would
//! be a second arm here with its own loop over the same [`super::conn::Transport`].

use super::conn;
use crate::runtime::Worker;
use crate::tls::server::{accept as tls_accept, Accepted};
use futures_util::future::Either;
use monoio::net::TcpStream;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The most a handshake may take (a stalled one holds a connection and rustls's state).
/// `read_header_timeout` (or its default) applies when shorter, as Go's server counts the
/// handshake in the read of the first request.
const HANDSHAKE_MAX: Duration = Duration::from_secs(10);

/// The task of one accepted connection. Not an `async fn`: one would hold the stream, peer and
/// worker beside the loop's own copies of them (rustc keeps both), 120 bytes more per
/// connection; here the plain loop's future is the task.
pub fn accept(
    tcp: TcpStream,
    peer: SocketAddr,
    worker: Rc<Worker>,
) -> impl std::future::Future<Output = ()> {
    let plan = worker.plan();
    let Some(tls) = plan.server.tls.clone() else {
        drop(plan);
        return Either::Left(conn::serve(tcp, peer, worker));
    };
    let limit = plan.server.timeouts.header.0.min(HANDSHAKE_MAX);
    drop(plan);
    // Boxed: inline, the handshake's and the TLS loop's states (about 2.2 and 2.9 KB) made
    // every connection's task that large, plain HTTP ones included, and an idle plain
    // connection held ~3.9 KB instead of ~0.6 KB. A TLS connection pays one allocation more.
    Either::Right(Box::pin(serve_tls(tcp, peer, worker, tls, limit)))
}

/// The handshake, then the HTTP/1.1 loop over TLS.
async fn serve_tls(
    tcp: TcpStream,
    peer: SocketAddr,
    worker: Rc<Worker>,
    tls: crate::tls::server::TlsListener,
    limit: Duration,
) {
    let _ = tcp.set_nodelay(true);
    let deadline = Instant::now().checked_add(limit);
    match tls_accept(tcp, peer, &tls, deadline).await {
        Accepted::Tls(stream) => match stream.conn().alpn_protocol() {
            None | Some(b"http/1.1") => conn::serve(*stream, peer, worker).await,
            // Not reachable while only http/1.1 is advertised (rustls refuses the rest).
            Some(_) => {}
        },
        Accepted::Closed => {}
    }
}
