//! Host resolution that never blocks an event loop.
//!
//! Configured backend hosts are resolved when the plan is compiled (on the main thread, at
//! startup and on reload). A redirect to a host that is not an IP literal is resolved on a
//! short-lived helper thread whose result the worker awaits by polling a shared slot.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Resolve `host:port` (blocking). For plan compilation only.
pub fn resolve_blocking(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    if let Some(addr) = literal(host, port) {
        return Ok(vec![addr]);
    }
    (host, port)
        .to_socket_addrs()
        .map(|it| it.collect::<Vec<_>>())
        .map_err(|e| format!("cannot resolve {host}: {e}"))
        .and_then(|v| {
            if v.is_empty() {
                Err(format!("cannot resolve {host}: no addresses"))
            } else {
                Ok(v)
            }
        })
}

/// An IP literal (`127.0.0.1`, `[::1]`) or `localhost`, without any lookup.
pub fn literal(host: &str, port: u16) -> Option<SocketAddr> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, port));
    }
    if h.eq_ignore_ascii_case("localhost") {
        return Some(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    None
}

/// Resolve on a helper thread; the calling task sleeps in 1 ms steps until it answers or
/// `limit` passes.
pub async fn resolve_async(
    host: &str,
    port: u16,
    limit: Duration,
) -> Result<Vec<SocketAddr>, String> {
    if let Some(addr) = literal(host, port) {
        return Ok(vec![addr]);
    }
    type Slot = std::sync::OnceLock<Result<Vec<SocketAddr>, String>>;
    let slot: Arc<Slot> = Arc::new(Slot::new());
    let done = Arc::new(AtomicBool::new(false));
    let (s2, d2, h2) = (slot.clone(), done.clone(), host.to_string());
    std::thread::Builder::new()
        .name("proxy-dns".into())
        .spawn(move || {
            let _ = s2.set(resolve_blocking(&h2, port));
            d2.store(true, Ordering::Release);
        })
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let start = std::time::Instant::now();
    while !done.load(Ordering::Acquire) {
        if start.elapsed() > limit {
            return Err(format!("cannot resolve {host}: timeout"));
        }
        monoio::time::sleep(Duration::from_millis(1)).await;
    }
    slot.get()
        .cloned()
        .unwrap_or_else(|| Err(format!("cannot resolve {host}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_and_localhost_need_no_lookup() {
        assert_eq!(
            literal("127.0.0.1", 80),
            Some("127.0.0.1:80".parse().unwrap())
        );
        assert_eq!(literal("[::1]", 8080), Some("[::1]:8080".parse().unwrap()));
        assert_eq!(
            literal("LocalHost", 1),
            Some("127.0.0.1:1".parse().unwrap())
        );
        assert_eq!(literal("example.com", 80), None);
    }
}
