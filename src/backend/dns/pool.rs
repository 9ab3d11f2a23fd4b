//! The process-wide resolver: a registry of the names plans use, and a small pool of
//! threads that look them up when due. Plans register names while compiling (main or reload
//! thread); workers never touch the registry, they only load answers from the entries.
//!
//! The registry holds weak references: a name nobody's plan uses any more (after a reload)
//! is dropped with the last plan that did, and its lookups stop.
// std's Mutex guards the registry, taken by compile and resolver threads only, never by a
// worker on the request path.
#![allow(clippy::disallowed_types)]

use super::client;
use super::entry::{now_ms, Entry};
use super::srv::hosts as srv_hosts;
use crate::backend::target::{literal, Addrs, Target};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, OnceLock, Weak};
use std::time::Duration;

/// A host name's addresses, in the order to dial them.
pub type HostEntry = Entry<Vec<IpAddr>>;
/// An `sd: dns` SRV name's host list (weights already expanded).
pub type SrvEntry = Entry<Vec<Target>>;

/// Threads that run lookups: a slow name (a nameserver that times out) holds one of them,
/// not the others.
const THREADS: usize = 4;
/// getaddrinfo needs more than a tiny stack; this is virtual memory until touched.
const STACK: usize = 1 << 20;
/// KrakenD's `dns_cache_ttl` default.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(30);
/// KrakenD's `dns_cache_ttl` minimum.
pub const MIN_REFRESH: Duration = Duration::from_secs(1);
/// A failed lookup is tried again after this long (or the refresh interval when shorter).
pub const RETRY: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Registry {
    hosts: HashMap<String, Weak<HostEntry>>,
    srvs: HashMap<String, Weak<SrvEntry>>,
}

enum Job {
    Host(Arc<HostEntry>),
    Srv(Arc<SrvEntry>),
}

impl Registry {
    fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.srvs.is_empty()
    }

    /// Forget dead names, then take the first due lookup.
    fn claim(&mut self, now: u64) -> Option<Job> {
        self.hosts.retain(|_, w| w.strong_count() > 0);
        self.srvs.retain(|_, w| w.strong_count() > 0);
        for w in self.hosts.values() {
            if let Some(e) = w.upgrade() {
                if e.sched.claim_due(now) {
                    return Some(Job::Host(e));
                }
            }
        }
        for w in self.srvs.values() {
            if let Some(e) = w.upgrade() {
                if e.sched.claim_due(now) {
                    return Some(Job::Srv(e));
                }
            }
        }
        None
    }

    /// The earliest due time among lookups nobody is running.
    fn next_due(&self) -> Option<u64> {
        let hosts = self
            .hosts
            .values()
            .filter_map(|w| w.upgrade())
            .filter_map(|e| (!e.sched.is_busy()).then(|| e.sched.due_ms()));
        let srvs = self
            .srvs
            .values()
            .filter_map(|w| w.upgrade())
            .filter_map(|e| (!e.sched.is_busy()).then(|| e.sched.due_ms()));
        hosts.chain(srvs).min()
    }
}

struct Pool {
    reg: Mutex<Registry>,
    wake: Condvar,
    /// `proxy run` has started: threads may be spawned (`check` compiles plans without them).
    started: AtomicBool,
    spawn: Once,
    refresh_ms: AtomicU64,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        reg: Default::default(),
        wake: Condvar::new(),
        started: AtomicBool::new(false),
        spawn: Once::new(),
        refresh_ms: AtomicU64::new(DEFAULT_REFRESH.as_millis() as u64),
    })
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.reg.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Something to do: make sure the threads run (once `proxy run` started) and wake them.
    fn kick(&'static self) {
        if self.started.load(Ordering::Acquire) {
            self.spawn.call_once(|| {
                for i in 0..THREADS {
                    let spawned = std::thread::Builder::new()
                        .name(format!("proxy-dns{i}"))
                        .stack_size(STACK)
                        .spawn(move || self.run());
                    if let Err(e) = spawned {
                        crate::error!("[DNS] cannot start resolver thread: {e}");
                    }
                }
            });
        }
        self.wake.notify_all();
    }

    fn run(&'static self) {
        let mut reg = self.lock();
        loop {
            let now = now_ms();
            if let Some(job) = reg.claim(now) {
                drop(reg);
                match job {
                    Job::Host(e) => resolve_host(&e),
                    Job::Srv(e) => resolve_srv(&e),
                }
                self.wake.notify_all();
                reg = self.lock();
                continue;
            }
            let wait = reg
                .next_due()
                .map_or(60_000, |due| due.saturating_sub(now))
                .clamp(1, 60_000);
            reg = match self.wake.wait_timeout(reg, Duration::from_millis(wait)) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

fn refresh() -> Duration {
    Duration::from_millis(pool().refresh_ms.load(Ordering::Relaxed))
}

fn next_after(ok: bool) -> Duration {
    if ok {
        refresh()
    } else {
        refresh().min(RETRY)
    }
}

fn resolve_host(e: &HostEntry) {
    let r = client::lookup_ips(e.name());
    let ok = r.is_ok();
    e.publish(r);
    e.sched.done(next_after(ok));
}

fn resolve_srv(e: &SrvEntry) {
    let r = client::lookup_srv(e.name()).map(|records| targets(srv_hosts(records)));
    let ok = r.is_ok();
    e.publish(r);
    e.sched.done(next_after(ok));
}

/// The SRV host list as dialable targets. Each target name becomes a host entry of its own
/// (refreshed like any backend host); one seen for the first time is looked up right here,
/// so the list is published with addresses ready.
fn targets(list: Vec<(String, u16)>) -> Vec<Target> {
    let mut names: Vec<(String, Arc<HostEntry>)> = Vec::new();
    let mut out = Vec::with_capacity(list.len());
    for (name, port) in list {
        // KrakenD: lura builds "http://" + net.JoinHostPort(target, port) and Go's SRV targets
        // keep their trailing dot, so the Host header is `node1.service.consul.:8080`.
        let authority = format!("{name}:{port}");
        let addrs = match literal(&name, port) {
            Some(a) => Addrs::Fixed(a),
            None => {
                let entry = match names.iter().find(|(n, _)| *n == name) {
                    Some((_, e)) => e.clone(),
                    None => {
                        let e = host(&name);
                        if e.current().is_none() && e.sched.claim() {
                            resolve_host(&e);
                        }
                        names.push((name.clone(), e.clone()));
                        e
                    }
                };
                Addrs::Name(entry, port)
            }
        };
        out.push(Target {
            authority,
            addrs,
            tls: None,
        });
    }
    out
}

/// The shared entry for host `name`, registered for lookups (the first one as soon as the
/// resolver runs).
pub fn host(name: &str) -> Arc<HostEntry> {
    let p = pool();
    let key = name.to_ascii_lowercase();
    let mut reg = p.lock();
    if let Some(e) = reg.hosts.get(&key).and_then(Weak::upgrade) {
        return e;
    }
    let e = Arc::new(HostEntry::new(name));
    reg.hosts.insert(key, Arc::downgrade(&e));
    drop(reg);
    p.kick();
    e
}

/// The shared entry for SRV name `name` (`sd: dns`).
pub fn srv(name: &str) -> Arc<SrvEntry> {
    let p = pool();
    let key = name.to_ascii_lowercase();
    let mut reg = p.lock();
    if let Some(e) = reg.srvs.get(&key).and_then(Weak::upgrade) {
        return e;
    }
    let e = Arc::new(SrvEntry::new(name));
    reg.srvs.insert(key, Arc::downgrade(&e));
    drop(reg);
    p.kick();
    e
}

/// A one-off lookup (a redirect to a host name), on a short-lived thread of its own: the
/// worker never takes the registry lock. The caller waits on the entry.
pub fn lookup_once(name: &str) -> Arc<HostEntry> {
    let e = Arc::new(HostEntry::new(name));
    let e2 = e.clone();
    let spawned = std::thread::Builder::new()
        .name("proxy-dns-once".into())
        .stack_size(STACK)
        .spawn(move || e2.publish(client::lookup_ips(e2.name())));
    if let Err(err) = spawned {
        e.publish(Err(format!("lookup {name}: {err}")));
    }
    e
}

/// `proxy run`: let the resolver threads start (now if names are registered already).
pub fn start() {
    let p = pool();
    p.started.store(true, Ordering::Release);
    if !p.lock().is_empty() {
        p.kick();
    }
}

/// The refresh interval (`dns_cache_ttl`; default 30 s, at least 1 s), for the names of the
/// plan being compiled and every name already known.
pub fn set_refresh(interval: Option<Duration>) {
    let d = interval
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_REFRESH)
        .max(MIN_REFRESH);
    pool().refresh_ms.store(
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}
