//! One looked-up name: its latest answer, shared by every worker without a lock (an
//! `ArcSwapOption` the resolver threads store into and workers load from), the gate a
//! request waits on until the first answer arrives, and the refresh schedule.

use arc_swap::ArcSwapOption;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Milliseconds since the first call: the clock of the refresh schedule.
pub(super) fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// When the name is next looked up, and whether a resolver thread is on it now.
pub(super) struct Sched {
    due_ms: AtomicU64,
    busy: AtomicBool,
}

impl Sched {
    fn new() -> Sched {
        Sched {
            due_ms: AtomicU64::new(0),
            busy: AtomicBool::new(false),
        }
    }

    pub(super) fn due_ms(&self) -> u64 {
        self.due_ms.load(Ordering::Acquire)
    }

    pub(super) fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// Take the lookup when it is due and nobody else has it.
    pub(super) fn claim_due(&self, now: u64) -> bool {
        self.due_ms() <= now && self.claim()
    }

    /// Take the lookup now, due or not, unless another thread has it.
    pub(super) fn claim(&self) -> bool {
        self.busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Release the lookup; the next one is due `after` from now.
    pub(super) fn done(&self, after: Duration) {
        let after = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
        self.due_ms
            .store(now_ms().saturating_add(after), Ordering::Release);
        self.busy.store(false, Ordering::Release);
    }
}

/// A broadcast "the first answer is in": a socket pair whose resolver end is closed once.
/// Every waiter reads its own duplicate of the other end through the event loop and wakes at
/// end-of-file; a waiter arriving after the close reads end-of-file at once, so no wake-up is
/// lost. (monoio wakers cannot be woken from another thread in this build.)
struct Gate {
    /// The waiters' end (non-blocking; duplicated per waiter). None if no socket pair could be
    /// made: waiters then poll.
    rx: Option<UnixStream>,
    /// The resolver's end; dropping it opens the gate.
    tx: ArcSwapOption<UnixStream>,
}

impl Gate {
    fn new() -> Gate {
        match UnixStream::pair() {
            Ok((tx, rx)) if rx.set_nonblocking(true).is_ok() => Gate {
                rx: Some(rx),
                tx: ArcSwapOption::from_pointee(tx),
            },
            _ => Gate {
                rx: None,
                tx: ArcSwapOption::empty(),
            },
        }
    }

    fn open(&self) {
        self.tx.store(None);
    }

    /// Wait until the gate opens or `deadline` passes. `ready` tells whether it has opened (for
    /// the polling fallback).
    async fn wait(&self, deadline: Instant, ready: impl Fn() -> bool) {
        if let Some(stream) = self
            .rx
            .as_ref()
            .and_then(|rx| rx.try_clone().ok())
            .and_then(|s| monoio::net::UnixStream::from_std(s).ok())
        {
            use monoio::io::AsyncReadRent;
            let mut stream = stream;
            // Nothing is ever written: the read ends at end-of-file, when the gate opens.
            let _ = crate::runtime::timer::timeout_at(deadline, stream.read(Vec::with_capacity(1)))
                .await;
            return;
        }
        // No socket to wait on: poll, backing off from 2 ms to 50 ms.
        let mut step = Duration::from_millis(2);
        while !ready() {
            let rem = deadline.saturating_duration_since(Instant::now());
            if rem.is_zero() {
                return;
            }
            crate::runtime::timer::sleep(step.min(rem)).await;
            step = (step * 2).min(Duration::from_millis(50));
        }
    }
}

/// A name and its latest lookup result (`T`: addresses, or an `sd: dns` host list).
pub struct Entry<T> {
    name: String,
    answer: ArcSwapOption<Result<T, String>>,
    /// The last lookup failed (so a failure is logged once, and a recovery too).
    failing: AtomicBool,
    gate: Gate,
    pub(super) sched: Sched,
}

impl<T> Entry<T> {
    pub(super) fn new(name: &str) -> Entry<T> {
        Entry {
            name: name.to_string(),
            answer: ArcSwapOption::empty(),
            failing: AtomicBool::new(false),
            gate: Gate::new(),
            sched: Sched::new(),
        }
    }

    /// The name as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The latest answer; None until the first lookup has finished.
    pub fn current(&self) -> Option<Arc<Result<T, String>>> {
        self.answer.load_full()
    }

    /// The latest answer, waiting (asynchronously, until `deadline`) for the first lookup
    /// when it has not finished yet. None when the deadline passed first.
    pub async fn get(&self, deadline: Instant) -> Option<Arc<Result<T, String>>> {
        if let Some(a) = self.answer.load_full() {
            return Some(a);
        }
        self.gate
            .wait(deadline, || self.answer.load().is_some())
            .await;
        self.answer.load_full()
    }

    /// Store a lookup result. A failure does not replace a good answer: the last good answer
    /// keeps serving until a lookup succeeds again.
    pub(super) fn publish(&self, fresh: Result<T, String>) {
        let had_good = matches!(self.answer.load().as_deref(), Some(Ok(_)));
        match &fresh {
            Err(e) => {
                if !self.failing.swap(true, Ordering::AcqRel) {
                    if had_good {
                        crate::warn!("[DNS] {e}; the last answer for {} stays in use", self.name);
                    } else {
                        crate::warn!(
                            "[DNS] {e}; requests to {} fail until it resolves",
                            self.name
                        );
                    }
                }
                if had_good {
                    self.gate.open();
                    return;
                }
            }
            Ok(_) => {
                if self.failing.swap(false, Ordering::AcqRel) {
                    crate::info!("[DNS] {} resolves again", self.name);
                }
            }
        }
        self.answer.store(Some(Arc::new(fresh)));
        self.gate.open();
    }
}

impl<T> std::fmt::Debug for Entry<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Entry({:?})", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_failed_refresh_keeps_the_last_good_answer() {
        let e: Entry<u32> = Entry::new("svc.test");
        assert!(e.current().is_none());
        e.publish(Err("lookup svc.test: no such host".into()));
        assert!(e.current().unwrap().is_err());
        e.publish(Ok(1));
        e.publish(Err("lookup svc.test: i/o timeout".into()));
        assert_eq!(*e.current().unwrap(), Ok(1));
        e.publish(Ok(2));
        assert_eq!(*e.current().unwrap(), Ok(2));
    }

    #[test]
    fn a_waiter_wakes_when_another_thread_publishes() {
        let e: Arc<Entry<u32>> = Arc::new(Entry::new("svc.test"));
        let e2 = e.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            e2.publish(Ok(7));
        });
        let start = Instant::now();
        let got = block_on(async { e.get(Instant::now() + Duration::from_secs(5)).await });
        assert_eq!(*got.unwrap(), Ok(7));
        assert!(start.elapsed() < Duration::from_secs(2));
        t.join().unwrap();
    }

    /// The gate itself wakes the waiter (`ready` never says yes, so the polling fallback would
    /// sleep until the deadline), with either event loop.
    fn gate_wakes_across_threads(
        mut run: impl FnMut(std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>),
    ) {
        let gate = Arc::new(Gate::new());
        assert!(gate.rx.is_some());
        let g2 = gate.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            g2.open();
        });
        let start = Instant::now();
        let g3 = gate.clone();
        run(Box::pin(async move {
            g3.wait(Instant::now() + Duration::from_secs(10), || false)
                .await;
        }));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        t.join().unwrap();
        // Once open, a later waiter returns at once.
        let start = Instant::now();
        run(Box::pin(async move {
            gate.wait(Instant::now() + Duration::from_secs(10), || false)
                .await;
        }));
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn the_gate_wakes_an_epoll_event_loop() {
        gate_wakes_across_threads(block_on);
    }

    #[test]
    fn the_gate_wakes_an_io_uring_event_loop() {
        let Ok(mut rt) = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
        else {
            eprintln!("no io_uring here: skipped");
            return;
        };
        gate_wakes_across_threads(move |f| rt.block_on(f));
    }

    #[test]
    fn a_waiter_gives_up_at_its_deadline() {
        let e: Entry<u32> = Entry::new("svc.test");
        let start = Instant::now();
        let got = block_on(async { e.get(Instant::now() + Duration::from_millis(60)).await });
        assert!(got.is_none());
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(50) && took < Duration::from_secs(2));
    }

    #[test]
    fn the_schedule_hands_a_due_lookup_to_one_thread() {
        let s = Sched::new();
        assert!(s.claim_due(now_ms()));
        assert!(!s.claim_due(now_ms()));
        s.done(Duration::from_secs(30));
        assert!(!s.claim_due(now_ms()));
        assert!(s.claim());
    }
}
