//! Blocking lookups, run only on resolver threads (never on an event loop).
//!
//! - Addresses (A/AAAA) go through the system resolver (`getaddrinfo`: `/etc/hosts`, nsswitch,
//!   `/etc/resolv.conf`), as Go's resolver reads the same files for KrakenD.
//! - SRV records need a DNS client of our own: `getaddrinfo` cannot ask for them. It reads the
//!   nameservers, `search` list and `ndots`/`timeout`/`attempts` options from
//!   `/etc/resolv.conf` on every lookup (so an edited file is picked up), asks over UDP and
//!   asks again over TCP when the answer is truncated.
//! - `PROXY_DNS_SERVER=IP[:PORT]` (a test and operations override) sends every lookup,
//!   addresses included, to that one server, with names taken as absolute (no search list)
//!   and address answers ordered A records first, then AAAA.

use super::srv::SrvRecord;
use super::wire::{self, RData};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

/// The environment variable naming the one DNS server to use (tests, operations).
pub const SERVER_ENV: &str = "PROXY_DNS_SERVER";

/// What `/etc/resolv.conf` (or the override) says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conf {
    pub servers: Vec<SocketAddr>,
    pub search: Vec<String>,
    pub ndots: usize,
    pub timeout: Duration,
    pub attempts: usize,
    /// Set by `PROXY_DNS_SERVER`: addresses are looked up here too, names are absolute.
    pub overridden: bool,
}

impl Conf {
    /// The override when set, else `/etc/resolv.conf`.
    pub fn load() -> Conf {
        if let Some(c) = std::env::var(SERVER_ENV)
            .ok()
            .and_then(|v| Conf::from_override(&v))
        {
            return c;
        }
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        Conf::parse(&text)
    }

    fn from_override(v: &str) -> Option<Conf> {
        let v = v.trim();
        let server = v
            .parse::<SocketAddr>()
            .ok()
            .or_else(|| v.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))?;
        Some(Conf {
            servers: vec![server],
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(2),
            attempts: 2,
            overridden: true,
        })
    }

    /// glibc's reading of resolv.conf, the parts a stub resolver uses. Defaults: the local
    /// server, ndots 1, timeout 5 s, 2 attempts.
    pub fn parse(text: &str) -> Conf {
        let mut c = Conf {
            servers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
            overridden: false,
        };
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or_default();
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    // A scoped IPv6 address (`fe80::1%eth0`) is skipped: std cannot parse it.
                    if let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) {
                        if c.servers.len() < 3 {
                            c.servers.push(SocketAddr::new(ip, 53));
                        }
                    }
                }
                Some("search") | Some("domain") => {
                    c.search = words.map(|w| w.trim_end_matches('.').to_string()).collect();
                }
                Some("options") => {
                    for opt in words {
                        let num = |p: &str| opt.strip_prefix(p).and_then(|n| n.parse::<u64>().ok());
                        if let Some(n) = num("ndots:") {
                            c.ndots = n.min(15) as usize;
                        } else if let Some(n) = num("timeout:") {
                            c.timeout = Duration::from_secs(n.clamp(1, 30));
                        } else if let Some(n) = num("attempts:") {
                            c.attempts = n.clamp(1, 5) as usize;
                        }
                    }
                }
                _ => {}
            }
        }
        if c.servers.is_empty() {
            c.servers.push(SocketAddr::from(([127, 0, 0, 1], 53)));
        }
        c
    }

    /// The names to try for `name`, in order (glibc and Go): an absolute name (trailing dot)
    /// alone; a name with at least `ndots` dots first as is, then with each search domain;
    /// a shorter one the other way round.
    pub fn candidates(&self, name: &str) -> Vec<String> {
        if name.ends_with('.') || self.overridden || self.search.is_empty() {
            return vec![name.to_string()];
        }
        let suffixed = self.search.iter().map(|s| format!("{name}.{s}"));
        if name.matches('.').count() >= self.ndots {
            std::iter::once(name.to_string()).chain(suffixed).collect()
        } else {
            suffixed.chain(std::iter::once(name.to_string())).collect()
        }
    }
}

/// The addresses of `name`, in the order to try them.
pub fn lookup_ips(name: &str) -> Result<Vec<IpAddr>, String> {
    let conf = Conf::load();
    let mut ips = if conf.overridden {
        let mut v = query_ips(&conf, name, wire::TYPE_A)?;
        // No AAAA answer is fine when there were A records (and the other way round).
        match query_ips(&conf, name, wire::TYPE_AAAA) {
            Ok(six) => v.extend(six),
            Err(e) if v.is_empty() => return Err(e),
            Err(_) => {}
        }
        v
    } else {
        (name, 0)
            .to_socket_addrs()
            .map_err(|e| format!("lookup {name}: {e}"))?
            .map(|a| a.ip())
            .collect()
    };
    let mut seen = Vec::with_capacity(ips.len());
    ips.retain(|ip| {
        let new = !seen.contains(ip);
        seen.push(*ip);
        new
    });
    if ips.is_empty() {
        return Err(format!("lookup {name}: no such host"));
    }
    Ok(ips)
}

fn query_ips(conf: &Conf, name: &str, qtype: u16) -> Result<Vec<IpAddr>, String> {
    let records = query(conf, name, qtype)?;
    Ok(records
        .into_iter()
        .filter_map(|r| match r {
            RData::A(ip) => Some(IpAddr::V4(ip)),
            RData::Aaaa(ip) => Some(IpAddr::V6(ip)),
            _ => None,
        })
        .collect())
}

/// The SRV records of `name` (as `net.LookupSRV("", "", name)` in Go: the name is used as
/// written, e.g. `_api._tcp.service.consul`).
pub fn lookup_srv(name: &str) -> Result<Vec<SrvRecord>, String> {
    let conf = Conf::load();
    let records = query(&conf, name, wire::TYPE_SRV)?;
    let srv: Vec<SrvRecord> = records
        .into_iter()
        .filter_map(|r| match r {
            RData::Srv {
                priority,
                weight,
                port,
                target,
            } => Some(SrvRecord {
                priority,
                weight,
                port,
                target,
            }),
            _ => None,
        })
        .collect();
    if srv.is_empty() {
        return Err(format!("lookup {name}: no SRV records"));
    }
    Ok(srv)
}

/// Ask each candidate name in turn; the first with answers of `qtype` wins. Errors say which
/// server was asked (as Go's `lookup NAME on SERVER: ...`).
fn query(conf: &Conf, name: &str, qtype: u16) -> Result<Vec<RData>, String> {
    let mut last = format!("lookup {name}: no such host");
    for cand in conf.candidates(name) {
        match query_name(conf, &cand, qtype) {
            Ok(v) if !v.is_empty() => return Ok(v),
            Ok(_) => last = format!("lookup {name}: no such host"),
            Err(e) => last = format!("lookup {name}: {e}"),
        }
    }
    Err(last)
}

/// One name against the servers: `attempts` rounds over every server. NXDOMAIN and an
/// empty NOERROR are answers (no retry); timeouts and server failures move on.
fn query_name(conf: &Conf, name: &str, qtype: u16) -> Result<Vec<RData>, String> {
    let mut last = String::from("no servers");
    for _ in 0..conf.attempts {
        for server in &conf.servers {
            match exchange(*server, name, qtype, conf.timeout) {
                Ok(msg) => match msg.rcode {
                    wire::RCODE_NOERROR => {
                        return Ok(wire::answers_for(&msg, name, qtype)
                            .into_iter()
                            .cloned()
                            .collect())
                    }
                    wire::RCODE_NXDOMAIN => return Ok(Vec::new()),
                    code => last = format!("server {server} answered rcode {code}"),
                },
                Err(e) => last = format!("on {server}: {e}"),
            }
        }
    }
    Err(last)
}

fn random_id() -> u16 {
    let mut b = [0u8; 2];
    // SAFETY: `b` is a valid, writable 2-byte buffer for the duration of the call.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n == 2 {
        u16::from_ne_bytes(b)
    } else {
        // Without getrandom the id still varies; the source port is random either way.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        (nanos ^ std::process::id()) as u16
    }
}

/// One question to one server: UDP, then TCP when the answer is truncated.
fn exchange(
    server: SocketAddr,
    name: &str,
    qtype: u16,
    timeout: Duration,
) -> Result<wire::Message, String> {
    let id = random_id();
    let q = wire::query(id, name, qtype)?;
    let msg = udp(server, &q, id, name, qtype, timeout)?;
    if !msg.truncated {
        return Ok(msg);
    }
    tcp(server, &q, id, name, qtype, timeout)
}

/// Does `msg` answer our question (id, name and type)? Anything else on the socket is
/// ignored (a late answer to an earlier try, or a spoofing attempt).
fn matches(msg: &wire::Message, id: u16, name: &str, qtype: u16) -> bool {
    msg.id == id && msg.question == Some((wire::canonical(name), qtype))
}

fn udp(
    server: SocketAddr,
    q: &[u8],
    id: u16,
    name: &str,
    qtype: u16,
    timeout: Duration,
) -> Result<wire::Message, String> {
    let local: SocketAddr = if server.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let sock = UdpSocket::bind(local).map_err(|e| e.to_string())?;
    sock.connect(server).map_err(|e| e.to_string())?;
    sock.send(q).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; usize::from(wire::UDP_SIZE).max(512) * 2];
    loop {
        let rem = deadline.saturating_duration_since(Instant::now());
        if rem.is_zero() {
            return Err("i/o timeout".into());
        }
        sock.set_read_timeout(Some(rem))
            .map_err(|e| e.to_string())?;
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            // A socket with a receive timeout fails with EINTR after the process is stopped
            // and continued (signal(7)): not a DNS failure, wait out the rest of the deadline.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err("i/o timeout".into())
            }
            Err(e) => return Err(e.to_string()),
        };
        if let Ok(msg) = wire::parse(buf.get(..n).unwrap_or_default()) {
            if matches(&msg, id, name, qtype) {
                return Ok(msg);
            }
        }
    }
}

fn tcp(
    server: SocketAddr,
    q: &[u8],
    id: u16,
    name: &str,
    qtype: u16,
    timeout: Duration,
) -> Result<wire::Message, String> {
    let err = |e: std::io::Error| format!("tcp: {e}");
    let mut s = TcpStream::connect_timeout(&server, timeout).map_err(err)?;
    s.set_read_timeout(Some(timeout)).map_err(err)?;
    s.set_write_timeout(Some(timeout)).map_err(err)?;
    let len = u16::try_from(q.len()).map_err(|_| "query too long".to_string())?;
    let mut framed = Vec::with_capacity(q.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(q);
    s.write_all(&framed).map_err(err)?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).map_err(err)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf).map_err(err)?;
    let msg = wire::parse(&buf)?;
    if !matches(&msg, id, name, qtype) {
        return Err("tcp: answer does not match the question".into());
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_gives_servers_search_and_options() {
        let c = Conf::parse(
            "# comment\nnameserver 10.0.0.53\nnameserver ::1\nsearch ns.svc.cluster.local svc.cluster.local\noptions ndots:5 timeout:1 attempts:3\n",
        );
        assert_eq!(
            c.servers,
            vec!["10.0.0.53:53".parse().unwrap(), "[::1]:53".parse().unwrap()]
        );
        assert_eq!(c.search, ["ns.svc.cluster.local", "svc.cluster.local"]);
        assert_eq!((c.ndots, c.attempts), (5, 3));
        assert_eq!(c.timeout, Duration::from_secs(1));
        assert_eq!(
            Conf::parse("").servers,
            vec!["127.0.0.1:53".parse().unwrap()]
        );
    }

    #[test]
    fn search_domains_follow_ndots() {
        let c = Conf::parse("search a.local\noptions ndots:2\n");
        assert_eq!(c.candidates("svc"), ["svc.a.local", "svc"]);
        assert_eq!(
            c.candidates("_x._tcp.svc"),
            ["_x._tcp.svc", "_x._tcp.svc.a.local"]
        );
        assert_eq!(c.candidates("abs.name."), ["abs.name."]);
    }

    /// An answer to query `q` (its OPT record dropped) with `flags` and these answer records.
    fn reply(q: &[u8], flags: [u8; 2], answers: &[&[u8]]) -> Vec<u8> {
        let mut out = q[..q.len() - 11].to_vec();
        out[2..4].copy_from_slice(&flags);
        out[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
        out[10..12].copy_from_slice(&[0, 0]);
        for a in answers {
            out.extend_from_slice(a);
        }
        out
    }

    #[test]
    fn a_truncated_answer_is_asked_again_over_tcp() {
        // The same port for UDP and TCP: a free UDP port may be taken for TCP (a busy machine
        // has thousands of sockets), so try a few.
        let (udp, tcp) = (0..50)
            .find_map(|_| {
                let udp = UdpSocket::bind("127.0.0.1:0").ok()?;
                let tcp = std::net::TcpListener::bind(udp.local_addr().ok()?).ok()?;
                Some((udp, tcp))
            })
            .unwrap();
        let server = udp.local_addr().unwrap();
        let u = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let (n, from) = udp.recv_from(&mut buf).unwrap();
            // TC set, no answers: "ask me over TCP".
            udp.send_to(&reply(&buf[..n], [0x83, 0x80], &[]), from)
                .unwrap();
        });
        let t = std::thread::spawn(move || {
            let (mut s, _) = tcp.accept().unwrap();
            let mut len = [0u8; 2];
            s.read_exact(&mut len).unwrap();
            let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut q).unwrap();
            let a: &[u8] = &[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 0, 0, 9];
            let r = reply(&q, [0x81, 0x80], &[a]);
            s.write_all(&(r.len() as u16).to_be_bytes()).unwrap();
            s.write_all(&r).unwrap();
        });
        let msg = exchange(server, "big.test", wire::TYPE_A, Duration::from_secs(2)).unwrap();
        assert_eq!(
            wire::answers_for(&msg, "big.test", wire::TYPE_A),
            vec![&RData::A(std::net::Ipv4Addr::new(10, 0, 0, 9))]
        );
        u.join().unwrap();
        t.join().unwrap();
    }

    #[test]
    fn the_override_takes_an_address_with_or_without_port() {
        let c = Conf::from_override("127.0.0.1:5353").unwrap();
        assert_eq!(c.servers, vec!["127.0.0.1:5353".parse().unwrap()]);
        assert!(c.overridden);
        assert_eq!(c.candidates("svc"), ["svc"]);
        let c = Conf::from_override("::1").unwrap();
        assert_eq!(c.servers, vec!["[::1]:53".parse().unwrap()]);
        assert!(Conf::from_override("not an address").is_none());
    }
}
