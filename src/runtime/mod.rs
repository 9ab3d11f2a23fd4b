//! Thread-per-core machinery, no HTTP knowledge beyond handing accepted connections to
//! [`crate::http::conn::serve`]: one pinned worker thread per core, each with its own monoio
//! runtime (io_uring with COOP_TASKRUN + SINGLE_ISSUER, epoll fallback) and its own
//! `SO_REUSEPORT` listener; signals on the main thread (SIGHUP reload, SIGTERM/SIGINT drain).

pub mod clock;
pub mod idle;
pub mod listener;
pub mod server;
pub mod timer;

use crate::gateway::WorkerCtx;
use crate::plan::{Plan, PlanHandle};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One core's state. `!Send` by construction: nothing here is touched by another core.
pub struct Worker {
    handle: PlanHandle,
    /// The plan this core last saw, and a core-local reference to it: requests clone the `Rc`
    /// (no atomic traffic between cores); it is refreshed only when a reload swapped the plan.
    /// The extra indirection is the point: `Rc` clones stay on this core's cache lines.
    #[allow(clippy::redundant_allocation)]
    cache: RefCell<(Arc<Plan>, Rc<Arc<Plan>>)>,
    pub ctx: WorkerCtx,
    shutdown: Arc<AtomicBool>,
    /// Requests between head parsed and response written.
    pub inflight: Cell<usize>,
    /// Connections whose between-requests read is "hot" (a buffer and a timer pending): the
    /// connection loop caps it, which bounds that memory when thousands connect at once.
    pub hot: Cell<usize>,
    /// Quiet connections' idle deadlines, enforced by the housekeeping tick.
    pub idle: RefCell<idle::IdleSet>,
}

impl Worker {
    pub fn new(handle: PlanHandle, shutdown: Arc<AtomicBool>) -> Worker {
        let current = handle.load_full();
        let local = Rc::new(current.clone());
        Worker {
            handle,
            cache: RefCell::new((current, local)),
            ctx: WorkerCtx::default(),
            shutdown,
            inflight: Cell::new(0),
            hot: Cell::new(0),
            idle: RefCell::new(idle::IdleSet::default()),
        }
    }

    /// The current plan. A request holds the returned reference from start to end, so it
    /// sees one plan even if a reload happens meanwhile.
    #[allow(clippy::redundant_allocation)]
    pub fn plan(&self) -> Rc<Arc<Plan>> {
        let guard = self.handle.load();
        let Ok(mut cache) = self.cache.try_borrow_mut() else {
            return Rc::new(self.handle.load_full());
        };
        if !Arc::ptr_eq(&cache.0, &*guard) {
            let fresh = arc_swap::Guard::into_inner(guard);
            cache.1 = Rc::new(fresh.clone());
            cache.0 = fresh;
        }
        cache.1.clone()
    }

    pub fn shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }
}

/// Which event loop a worker got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    IoUring,
    Epoll,
}

impl std::fmt::Display for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Driver::IoUring => "io_uring",
            Driver::Epoll => "epoll",
        })
    }
}

/// Run one worker on the current thread until shutdown. Returns the driver it used, or an
/// error if no runtime could be built.
pub fn run_worker(
    listener: std::net::TcpListener,
    handle: PlanHandle,
    shutdown: Arc<AtomicBool>,
    mailbox: Mailbox,
    on_start: impl FnOnce(Driver),
) -> Result<(), String> {
    let force_epoll = std::env::var_os("PROXY_FORCE_EPOLL").is_some_and(|v| !v.is_empty());
    if !force_epoll {
        let mut b = io_uring::IoUring::builder();
        b.setup_coop_taskrun().setup_single_issuer();
        let rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .uring_builder(b)
            .with_entries(1024)
            .enable_timer()
            .build();
        let rt = match rt {
            Ok(rt) => Some(rt),
            // Older kernels lack the flags: try a plain ring before giving up on io_uring.
            Err(_) => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                .with_entries(1024)
                .enable_timer()
                .build()
                .ok(),
        };
        if let Some(mut rt) = rt {
            on_start(Driver::IoUring);
            return rt.block_on(worker_main(listener, handle, shutdown, mailbox));
        }
    }
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .map_err(|e| format!("cannot build an event loop: {e}"))?;
    on_start(Driver::Epoll);
    rt.block_on(worker_main(listener, handle, shutdown, mailbox))
}

/// Where the metrics scrape thread asks this core for a copy of its series.
pub type Mailbox = std::sync::mpsc::Receiver<crate::telemetry::scrape::Ask>;

async fn worker_main(
    listener: std::net::TcpListener,
    handle: PlanHandle,
    shutdown: Arc<AtomicBool>,
    mailbox: Mailbox,
) -> Result<(), String> {
    let listener =
        monoio::net::TcpListener::from_std(listener).map_err(|e| format!("listener: {e}"))?;
    let worker = Rc::new(Worker::new(handle, shutdown.clone()));
    // Periodic housekeeping: flush the access-log buffer, close connections idle past their
    // deadline; once a second, return freed memory.
    let flag = shutdown.clone();
    let housekeeper = worker.clone();
    monoio::spawn(async move {
        let mut tick = 0u32;
        while !flag.load(Ordering::Relaxed) {
            monoio::time::sleep(Duration::from_millis(200)).await;
            crate::log::flush_access();
            crate::telemetry::trace::flush();
            idle::sweep(&housekeeper.idle, Instant::now());
            flush_rate_limits(&housekeeper.plan());
            tick = tick.wrapping_add(1);
            if tick % 5 == 0 {
                release_freed_memory();
            }
        }
    });
    // Scrapes are answered from their own task: a copy of this core's series, between
    // requests. It ends when no metrics thread is listening (no Prometheus exporter, no
    // /__stats). Every 100 ms: a scrape waits at most that for a core, and the wake-ups stay
    // out of loadtest/instructions' per-request figure (at 20 ms they added about 1,000
    // instructions per request under callgrind's slowed clock).
    let flag = shutdown.clone();
    monoio::spawn(async move {
        while !flag.load(Ordering::Relaxed) && crate::telemetry::scrape::answer(&mailbox) {
            monoio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut stop = std::pin::pin!(wait_for(shutdown.clone()));
    loop {
        monoio::select! {
            _ = &mut stop => break,
            res = listener.accept() => match res {
                Ok((stream, peer)) => {
                    // Every poll of a connection task reads the clock at most once.
                    monoio::spawn(clock::Fresh::new(crate::http::accept::accept(
                        stream,
                        peer,
                        worker.clone(),
                    )));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    crate::warn!("accept: {e}");
                    monoio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
    drop(listener);
    // Drain: let requests in flight finish, up to max_shutdown_wait_time.
    let limit = worker.plan().server.max_shutdown_wait;
    let start = Instant::now();
    while worker.inflight.get() > 0 && limit.is_none_or(|l| start.elapsed() < l) {
        monoio::time::sleep(Duration::from_millis(5)).await;
    }
    crate::log::flush_access();
    crate::telemetry::trace::flush();
    crate::telemetry::store::retire(crate::guard::ratelimit::core());
    Ok(())
}

/// Rate-limit shards of this core that went quiet hand their leftover tokens back, so traffic
/// that moved to another core can use them (a few loads per limit: no sweep over clients).
fn flush_rate_limits(plan: &Plan) {
    let (core, now) = (
        crate::guard::ratelimit::core(),
        crate::guard::ratelimit::now_ns(),
    );
    for ep in &plan.endpoints {
        if let Some(l) = &ep.rate_limit {
            l.flush(core, now);
        }
        for b in &ep.backends {
            if let Some(l) = &b.rate_limit {
                l.flush(core, now);
            }
        }
    }
}

/// mimalloc purges freed pages lazily, during later allocations on the same thread: a worker
/// that goes quiet after a burst (10,000 connections closing, or leaving their hot read)
/// would keep the burst's pages resident for good. Measured with 10,000 idle connections held:
/// 7–11 µs a call, and 0.46 ms once, for the call that returned the burst's ~5 MB.
fn release_freed_memory() {
    // SAFETY: mi_collect has no preconditions; it works on the calling thread's heap and on
    // mimalloc's arenas under mimalloc's own synchronisation. Without mimalloc as the global
    // allocator (unit tests) it only tidies mimalloc's unused heap.
    unsafe { libmimalloc_sys::mi_collect(false) }
}

async fn wait_for(flag: Arc<AtomicBool>) {
    while !flag.load(Ordering::Relaxed) {
        monoio::time::sleep(Duration::from_millis(50)).await;
    }
}
