//! What `floor_proxy` and `floor_uring` share: the gateway's command line, the listeners, and
//! the little HTTP they do (find a head's end and its `Content-Length`; write a fixed head).

use socket2::{Domain, Protocol, Socket, Type};
use std::net::{SocketAddr, TcpListener};

pub struct Args {
    pub port: u16,
    /// The first backend host of the config's first endpoint.
    pub backend: SocketAddr,
    pub cores: usize,
}

/// `run -c CONFIG [--cores N]`, as the gateway takes it.
pub fn args() -> Args {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let conf = value("-c").expect("usage: run -c CONFIG [--cores N]");
    let text = std::fs::read_to_string(conf).expect("config readable");
    let cfg: serde_json::Value = serde_json::from_str(&text).expect("config is JSON");
    let host = cfg["endpoints"][0]["backend"][0]["host"][0]
        .as_str()
        .expect("a first backend host");
    Args {
        port: cfg["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(8080),
        backend: host
            .trim_start_matches("http://")
            .parse()
            .expect("host is http://IP:PORT"),
        cores: value("--cores")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1)
            .max(1),
    }
}

/// The request sent to the backend for every client request.
pub fn backend_request(backend: SocketAddr) -> Vec<u8> {
    format!("GET /data HTTP/1.1\r\nHost: {backend}\r\nUser-Agent: floor\r\n\r\n").into_bytes()
}

/// One `SO_REUSEPORT` listener per thread, as the gateway's; accepted sockets inherit
/// `TCP_NODELAY`.
pub fn listener(port: u16) -> TcpListener {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
    s.set_reuse_address(true).expect("SO_REUSEADDR");
    s.set_reuse_port(true).expect("SO_REUSEPORT");
    s.set_nodelay(true).expect("TCP_NODELAY");
    s.bind(&addr.into()).expect("bind");
    s.listen(4096).expect("listen");
    s.into()
}

/// Run `serve` on `cores` threads, each pinned to one of the cpus this process may use.
pub fn per_core<F>(port: u16, cores: usize, serve: F)
where
    F: Fn(TcpListener) + Send + Clone + 'static,
{
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    let threads: Vec<_> = (0..cores)
        .map(|i| {
            let l = listener(port);
            let core = ids.get(i % ids.len().max(1)).copied();
            let serve = serve.clone();
            std::thread::spawn(move || {
                if let Some(c) = core {
                    core_affinity::set_for_current(c);
                }
                serve(l)
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

/// Larger heads or answers close the connection: a probe's memory stays bounded whatever a
/// peer sends.
pub const MAX_HEAD: usize = 64 * 1024;
pub const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// Where a head ends (after its blank line), and its `Content-Length` (0 when absent).
pub fn head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let end = memchr::memmem::find(buf, b"\r\n\r\n")? + 4;
    let head = &buf[..end];
    let len = memchr::memmem::find(head, b"Content-Length: ")
        .map(|at| {
            head[at + 16..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .fold(0usize, |n, b| n * 10 + usize::from(b - b'0'))
        })
        .unwrap_or(0);
    Some((end, len))
}

/// The client's answer: a fixed head and the backend's body.
pub fn answer(out: &mut Vec<u8>, body: &[u8]) {
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ");
    out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}
