//! Deadlines for the request path's I/O: a per-core hashed timing wheel (1 ms ticks), woken by
//! one driver task per core, instead of a monoio timer per operation.
//!
//! Why: each request makes four timed I/O operations (client read and write, backend write and
//! read). monoio's `Timeout` (a port of tokio's) creates, registers, polls and clears a timer
//! entry for each, and its entry is 640 bytes aligned to 128 (cache padding meant for a
//! multi-threaded runtime), which every future holding one inherits: the request future was
//! 128-aligned, so its per-request box took mimalloc's slow aligned path. Here an operation
//! that completes before its deadline costs a slab slot and a list link (no clock read: the
//! deadline is absolute), and the wheel is only looked at when the driver wakes, at the
//! earliest occupied tick.
//!
//! Precision: a deadline fires when the driver's monoio sleep for its tick (rounded up to the
//! millisecond) ends, so never early and at most ~1 ms plus the loop's latency late, like
//! monoio's own wheel.
//!
//! The wheel is per thread; the driver is spawned on the first timed operation of a thread's
//! event loop and lives as long as that loop. A thread runs one event loop in the gateway
//! (tests build one per test thread).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Slots of the wheel, one per millisecond: a lap of about 4 s. A deadline further out sits
/// in its slot until its lap comes round (the driver looks at it once per lap).
const SLOTS: usize = 4096;
const MASK: u64 = SLOTS as u64 - 1;
const NIL: u32 = u32::MAX;

/// The deadline passed before the operation completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

struct Entry {
    tick: u64,
    prev: u32,
    next: u32,
    linked: bool,
    fired: bool,
    waker: Option<Waker>,
}

struct Wheel {
    epoch: Instant,
    entries: Vec<Entry>,
    free: Vec<u32>,
    /// The first entry of each slot's list.
    heads: Vec<u32>,
    /// Every tick up to and including this one has been processed.
    cursor: u64,
    /// The tick the driver sleeps until (`u64::MAX`: none, it waits to be woken).
    target: u64,
    driver: Option<Waker>,
    running: bool,
    linked: usize,
}

thread_local! {
    static WHEEL: RefCell<Wheel> = RefCell::new(Wheel::new(Instant::now()));
}

impl Wheel {
    fn new(epoch: Instant) -> Wheel {
        Wheel {
            epoch,
            entries: Vec::new(),
            free: Vec::new(),
            heads: vec![NIL; SLOTS],
            cursor: 0,
            target: u64::MAX,
            driver: None,
            running: false,
            linked: 0,
        }
    }

    /// The tick `t` falls in, rounded up: a deadline is never early.
    fn tick_ceil(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.epoch);
        let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
        u64::try_from(ms).unwrap_or(u64::MAX / 2)
    }

    fn tick_floor(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX / 2)
    }

    fn instant_of(&self, tick: u64) -> Instant {
        self.epoch + Duration::from_millis(tick)
    }

    /// Register `waker` to be woken at `at`; returns the entry's key and whether the driver
    /// must be woken (the new tick is earlier than the one it sleeps until).
    fn insert(&mut self, at: Instant, waker: Waker) -> (u32, bool) {
        let tick = self.tick_ceil(at).max(self.cursor + 1);
        let entry = Entry {
            tick,
            prev: NIL,
            next: NIL,
            linked: false,
            fired: false,
            waker: Some(waker),
        };
        let key = match self.free.pop() {
            Some(k) => {
                if let Some(e) = self.entries.get_mut(k as usize) {
                    *e = entry;
                }
                k
            }
            None => {
                self.entries.push(entry);
                u32::try_from(self.entries.len() - 1).unwrap_or(NIL)
            }
        };
        self.link(key, tick);
        (key, tick < self.target)
    }

    fn link(&mut self, key: u32, tick: u64) {
        let slot = (tick & MASK) as usize;
        let head = self.heads.get(slot).copied().unwrap_or(NIL);
        if let Some(e) = self.entries.get_mut(key as usize) {
            e.prev = NIL;
            e.next = head;
            e.linked = true;
        }
        if let Some(h) = self.entries.get_mut(head as usize) {
            h.prev = key;
        }
        if let Some(h) = self.heads.get_mut(slot) {
            *h = key;
        }
        self.linked += 1;
    }

    fn unlink(&mut self, key: u32) {
        let Some(e) = self.entries.get_mut(key as usize) else {
            return;
        };
        if !e.linked {
            return;
        }
        e.linked = false;
        let (prev, next, slot) = (e.prev, e.next, (e.tick & MASK) as usize);
        match self.entries.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => {
                if let Some(h) = self.heads.get_mut(slot) {
                    *h = next;
                }
            }
        }
        if let Some(n) = self.entries.get_mut(next as usize) {
            n.prev = prev;
        }
        self.linked -= 1;
    }

    fn remove(&mut self, key: u32) {
        self.unlink(key);
        if let Some(e) = self.entries.get_mut(key as usize) {
            e.waker = None;
            self.free.push(key);
        }
    }

    /// Fire every entry due at `now` (their wakers go to `woken`); returns the next tick with
    /// an entry, if any.
    fn process(&mut self, now: Instant, woken: &mut Vec<Waker>) -> Option<u64> {
        let now_tick = self.tick_floor(now);
        if now_tick > self.cursor && self.linked > 0 {
            // At most one lap: beyond that every slot has been seen.
            let last = now_tick.min(self.cursor + SLOTS as u64);
            for t in self.cursor + 1..=last {
                let mut key = self.heads.get((t & MASK) as usize).copied().unwrap_or(NIL);
                while let Some(e) = self.entries.get_mut(key as usize) {
                    let next = e.next;
                    if e.tick <= now_tick {
                        e.fired = true;
                        if let Some(w) = e.waker.take() {
                            woken.push(w);
                        }
                        self.unlink(key);
                    }
                    key = next;
                }
            }
        }
        self.cursor = self.cursor.max(now_tick);
        if self.linked == 0 {
            return None;
        }
        // The first occupied slot after the cursor (an entry there may be a lap or more
        // away: then the driver wakes, finds nothing due, and looks again).
        (1..=SLOTS as u64).map(|d| self.cursor + d).find(|t| {
            self.heads
                .get((t & MASK) as usize)
                .is_some_and(|&h| h != NIL)
        })
    }
}

/// `fut` with a deadline: `Err(Elapsed)` if `at` passes first (the operation is dropped, which
/// cancels it).
pub fn timeout_at<F: Future>(at: Instant, fut: F) -> Timeout<F> {
    Timeout { fut, at, key: NIL }
}

/// [`timeout_at`] `d` from now (the poll's clock); a duration too large to add is no deadline
/// in practice (thirty years).
pub fn timeout<F: Future>(d: Duration, fut: F) -> Timeout<F> {
    const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 3600);
    let at = super::clock::after(d)
        .or_else(|| super::clock::after(FAR))
        .unwrap_or_else(super::clock::now);
    timeout_at(at, fut)
}

/// Wait `d` on the wheel.
pub async fn sleep(d: Duration) {
    let _ = timeout(d, std::future::pending::<()>()).await;
}

pub struct Timeout<F> {
    fut: F,
    at: Instant,
    key: u32,
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `fut` is structurally pinned (never moved out of `self`); `at` and `key`
        // are plain data, not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above: `this.fut` stays where the pinned `Timeout` put it until drop.
        let fut = unsafe { Pin::new_unchecked(&mut this.fut) };
        if let Poll::Ready(v) = fut.poll(cx) {
            this.release();
            return Poll::Ready(Ok(v));
        }
        if this.key == NIL {
            if this.at <= super::clock::now() {
                return Poll::Ready(Err(Elapsed));
            }
            let (key, wake_driver, spawn) = WHEEL.with(|w| {
                let mut w = w.borrow_mut();
                let (key, wake) = w.insert(this.at, cx.waker().clone());
                let spawn = !w.running;
                w.running = true;
                let driver = if wake { w.driver.take() } else { None };
                (key, driver, spawn)
            });
            this.key = key;
            if let Some(d) = wake_driver {
                d.wake();
            }
            if spawn {
                monoio::spawn(Driver { sleep: None });
            }
            return Poll::Pending;
        }
        let fired = WHEEL.with(|w| {
            let mut w = w.borrow_mut();
            match w.entries.get_mut(this.key as usize) {
                Some(e) if e.fired => true,
                Some(e) => {
                    if !e
                        .waker
                        .as_ref()
                        .is_some_and(|old| old.will_wake(cx.waker()))
                    {
                        e.waker = Some(cx.waker().clone());
                    }
                    false
                }
                None => true,
            }
        });
        if fired {
            this.release();
            return Poll::Ready(Err(Elapsed));
        }
        Poll::Pending
    }
}

impl<F> Timeout<F> {
    fn release(&mut self) {
        if self.key != NIL {
            let key = std::mem::replace(&mut self.key, NIL);
            // A thread being torn down may have dropped its wheel already.
            let _ = WHEEL.try_with(|w| w.borrow_mut().remove(key));
        }
    }
}

impl<F> Drop for Timeout<F> {
    fn drop(&mut self) {
        self.release();
    }
}

/// The per-core task that sleeps until the wheel's next occupied tick and fires what is due.
struct Driver {
    sleep: Option<Pin<Box<monoio::time::Sleep>>>,
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut woken = Vec::new();
        // The deadline a sleep of this poll has already reached: never sleep on it again (a
        // sleep that has elapsed is ready at once, and the loop would spin).
        let mut reached: Option<Instant> = None;
        loop {
            let next = WHEEL.with(|w| {
                let mut w = w.borrow_mut();
                let next = w.process(Instant::now(), &mut woken);
                w.target = next.unwrap_or(u64::MAX);
                if !w.driver.as_ref().is_some_and(|d| d.will_wake(cx.waker())) {
                    w.driver = Some(cx.waker().clone());
                }
                next.map(|t| w.instant_of(t))
            });
            // Woken outside the wheel's borrow: a waker may poll nothing here, but keep the
            // borrow short anyway.
            for w in woken.drain(..) {
                w.wake();
            }
            let Some(mut at) = next else {
                return Poll::Pending;
            };
            if let Some(r) = reached.filter(|r| at <= *r) {
                at = r + Duration::from_millis(1);
            }
            reached = Some(at);
            let at = monoio::time::Instant::from_std(at);
            let sleep = match &mut self.sleep {
                Some(s) => {
                    if s.deadline() != at {
                        s.as_mut().reset(at);
                    }
                    s
                }
                None => self.sleep.insert(Box::pin(monoio::time::sleep_until(at))),
            };
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = WHEEL.try_with(|w| {
            let mut w = w.borrow_mut();
            w.running = false;
            w.driver = None;
            w.target = u64::MAX;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel() -> Wheel {
        Wheel::new(Instant::now())
    }

    fn ms(w: &Wheel, n: u64) -> Instant {
        w.epoch + Duration::from_millis(n)
    }

    #[test]
    fn an_entry_fires_at_its_tick_and_not_before() {
        let mut w = wheel();
        let at = ms(&w, 10) + Duration::from_micros(300);
        let (k, _) = w.insert(at, Waker::noop().clone());
        let mut woken = Vec::new();
        assert_eq!(w.process(ms(&w, 10), &mut woken), Some(11));
        assert!(woken.is_empty());
        assert!(!w.entries[k as usize].fired);
        assert_eq!(w.process(ms(&w, 11), &mut woken), None);
        assert_eq!(woken.len(), 1);
        assert!(w.entries[k as usize].fired);
    }

    #[test]
    fn a_removed_entry_never_fires_and_its_slot_is_reused() {
        let mut w = wheel();
        let (a, _) = w.insert(ms(&w, 5), Waker::noop().clone());
        let (b, _) = w.insert(ms(&w, 5), Waker::noop().clone());
        w.remove(a);
        let mut woken = Vec::new();
        assert_eq!(w.process(ms(&w, 6), &mut woken), None);
        assert_eq!(woken.len(), 1);
        assert!(w.entries[b as usize].fired);
        w.remove(b);
        let (c, _) = w.insert(ms(&w, 20), Waker::noop().clone());
        assert!(c == a || c == b);
        assert_eq!(w.linked, 1);
    }

    #[test]
    fn a_deadline_laps_away_waits_for_its_lap() {
        let mut w = wheel();
        let far = SLOTS as u64 + 7;
        let (k, _) = w.insert(ms(&w, far), Waker::noop().clone());
        let mut woken = Vec::new();
        // The slot comes round a lap early: nothing fires, and the driver is sent on.
        assert_eq!(w.process(ms(&w, 7), &mut woken), Some(far));
        assert!(woken.is_empty());
        assert_eq!(w.process(ms(&w, far), &mut woken), None);
        assert!(w.entries[k as usize].fired);
    }

    #[test]
    fn an_earlier_deadline_asks_for_the_driver() {
        let mut w = wheel();
        let mut woken = Vec::new();
        let (_, wake) = w.insert(ms(&w, 100), Waker::noop().clone());
        assert!(wake, "the driver sleeps until nothing yet");
        w.target = w.process(ms(&w, 0), &mut woken).unwrap_or(u64::MAX);
        assert_eq!(w.target, 100);
        assert!(!w.insert(ms(&w, 200), Waker::noop().clone()).1);
        assert!(w.insert(ms(&w, 50), Waker::noop().clone()).1);
    }

    #[test]
    fn an_operation_that_outlives_its_deadline_times_out_on_an_event_loop() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let start = Instant::now();
            let at = start + Duration::from_millis(30);
            let r = timeout_at(at, monoio::time::sleep(Duration::from_secs(5))).await;
            assert_eq!(r, Err(Elapsed));
            let took = start.elapsed();
            assert!(took >= Duration::from_millis(30), "{took:?}");
            assert!(took < Duration::from_secs(2), "{took:?}");
            // One that completes first returns its value, and leaves nothing registered.
            let at = Instant::now() + Duration::from_secs(5);
            let r = timeout_at(at, async { 7 }).await;
            assert_eq!(r, Ok(7));
            let r = timeout_at(at, monoio::time::sleep(Duration::from_millis(5))).await;
            assert_eq!(r, Ok(()));
            WHEEL.with(|w| assert_eq!(w.borrow().linked, 0));
        });
    }
}
