//! `DnsServer`: a tiny authoritative DNS server on 127.0.0.1 (UDP) for the resolver tests.
//! It answers A, AAAA and SRV questions from a table the test changes while the gateway runs
//! (NXDOMAIN for a name with no records at all), counts the questions it gets, and can be
//! slowed down. The gateway is pointed at it with `PROXY_DNS_SERVER` ([`DnsServer::env`]).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// One record of the table.
#[derive(Clone, Debug)]
pub enum Rec {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
}

impl Rec {
    /// An SRV record.
    pub fn srv(priority: u16, weight: u16, port: u16, target: &str) -> Rec {
        Rec::Srv {
            priority,
            weight,
            port,
            target: target.to_string(),
        }
    }

    fn rtype(&self) -> u16 {
        match self {
            Rec::A(_) => 1,
            Rec::Aaaa(_) => 28,
            Rec::Srv { .. } => 33,
        }
    }
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    zone: Mutex<HashMap<String, Vec<Rec>>>,
    /// (name, type) of every question, in arrival order.
    questions: Mutex<Vec<(String, u16)>>,
    delay: Mutex<Duration>,
}

/// A running server; dropping it stops it.
pub struct DnsServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl DnsServer {
    pub fn start() -> DnsServer {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind dns");
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("dns read timeout");
        let addr = sock.local_addr().expect("dns addr");
        let shared = Arc::new(Shared::default());
        let s2 = Arc::clone(&shared);
        let thread = thread::spawn(move || serve(&sock, &s2));
        DnsServer {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The gateway's environment variable pointing it at this server.
    pub fn env(&self) -> (&'static str, String) {
        ("PROXY_DNS_SERVER", self.addr.to_string())
    }

    /// Replace the records of `name` (an empty list: the name no longer exists).
    pub fn set(&self, name: &str, records: Vec<Rec>) {
        let mut z = self.shared.zone.lock().unwrap();
        if records.is_empty() {
            z.remove(&key(name));
        } else {
            z.insert(key(name), records);
        }
    }

    /// Wait this long before answering each question.
    pub fn set_delay(&self, d: Duration) {
        *self.shared.delay.lock().unwrap() = d;
    }

    /// How many questions of type `qtype` (1 = A, 28 = AAAA, 33 = SRV) were asked for `name`.
    pub fn questions(&self, name: &str, qtype: u16) -> usize {
        let k = key(name);
        self.shared
            .questions
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, t)| *n == k && *t == qtype)
            .count()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(sock: &UdpSocket, shared: &Shared) {
    let mut buf = [0u8; 1500];
    while !shared.stop.load(Ordering::SeqCst) {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let Some((id, labels, qtype, qend)) = parse_question(&buf[..n]) else {
            continue;
        };
        let name = labels.join(".").to_ascii_lowercase();
        shared.questions.lock().unwrap().push((name.clone(), qtype));
        let delay = *shared.delay.lock().unwrap();
        if !delay.is_zero() {
            thread::sleep(delay);
        }
        let records = shared.zone.lock().unwrap().get(&name).cloned();
        let reply = answer(id, &buf[12..qend], qtype, records.as_deref());
        let _ = sock.send_to(&reply, from);
    }
}

/// (id, labels, qtype, end of the question) of a query with one uncompressed question.
fn parse_question(q: &[u8]) -> Option<(u16, Vec<String>, u16, usize)> {
    let id = u16::from_be_bytes([*q.first()?, *q.get(1)?]);
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*q.get(pos)?);
        pos += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(q.get(pos..pos + len)?).into_owned());
        pos += len;
    }
    let qtype = u16::from_be_bytes([*q.get(pos)?, *q.get(pos + 1)?]);
    Some((id, labels, qtype, pos + 4))
}

fn encode_name(out: &mut Vec<u8>, name: &str) {
    for label in name.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

fn answer(id: u16, question: &[u8], qtype: u16, records: Option<&[Rec]>) -> Vec<u8> {
    let matching: Vec<&Rec> = records
        .unwrap_or_default()
        .iter()
        .filter(|r| r.rtype() == qtype)
        .collect();
    let rcode = if records.is_none() { 3 } else { 0 };
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x85, 0x80 | rcode]);
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(matching.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(question);
    for r in matching {
        // Owner: a pointer to the question name.
        out.extend_from_slice(&[0xC0, 12]);
        out.extend_from_slice(&r.rtype().to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&1u32.to_be_bytes());
        let mut data = Vec::new();
        match r {
            Rec::A(ip) => data.extend_from_slice(&ip.octets()),
            Rec::Aaaa(ip) => data.extend_from_slice(&ip.octets()),
            Rec::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                data.extend_from_slice(&priority.to_be_bytes());
                data.extend_from_slice(&weight.to_be_bytes());
                data.extend_from_slice(&port.to_be_bytes());
                encode_name(&mut data, target);
            }
        }
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(&data);
    }
    out
}
