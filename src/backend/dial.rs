//! Dialling a backend host: every address of a name in order, as Go's dialer does.

use super::client::CallOpts;
use super::BackendError;
use monoio::net::TcpStream;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The addresses to try for one target, in order: one fixed address, or a name's answer.
pub(super) enum Candidates<'a> {
    One(SocketAddr),
    Ips(&'a [IpAddr], u16),
}

impl Candidates<'_> {
    pub(super) fn len(&self) -> usize {
        match self {
            Candidates::One(_) => 1,
            Candidates::Ips(ips, _) => ips.len(),
        }
    }

    pub(super) fn get(&self, i: usize) -> Option<SocketAddr> {
        match self {
            Candidates::One(a) => (i == 0).then_some(*a),
            Candidates::Ips(ips, port) => ips.get(i).map(|ip| SocketAddr::new(*ip, *port)),
        }
    }
}

/// Go's dialer never gives one address less than this share of the dial time (unless less
/// is left): `net.partialDeadline`'s `saneMinimum`.
const DIAL_SHARE_MIN: Duration = Duration::from_secs(2);

/// Connect to the first address that accepts, trying them in order as Go's dialer does
/// (sequentially: each gets an equal share of what is left of the dial time, at least 2 s;
/// Go also races the other address family after 300 ms, which we do not). The error is the
/// first address's, as in Go.
pub(super) async fn dial(
    cands: &Candidates<'_>,
    opts: &CallOpts<'_>,
) -> Result<(TcpStream, SocketAddr), BackendError> {
    let mut until = opts.deadline;
    if let Some(d) = opts.dial_timeout {
        if let Some(t) = Instant::now().checked_add(d) {
            until = until.min(t);
        }
    }
    let n = cands.len();
    let mut first_err = None;
    for i in 0..n {
        let Some(addr) = cands.get(i) else { break };
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            first_err.get_or_insert(BackendError::Timeout);
            break;
        }
        let share = left / u32::try_from(n - i).unwrap_or(u32::MAX);
        let limit = if share < DIAL_SHARE_MIN {
            left.min(DIAL_SHARE_MIN)
        } else {
            share
        };
        match crate::runtime::timer::timeout(limit, TcpStream::connect_addr(addr)).await {
            Err(_) => {
                first_err.get_or_insert(BackendError::Timeout);
            }
            Ok(Err(e)) => {
                first_err.get_or_insert(BackendError::Connect(addr, e));
            }
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok((s, addr));
            }
        }
    }
    Err(first_err.unwrap_or(BackendError::NoHost))
}
