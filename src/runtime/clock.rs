//! One clock read per wake-up of a connection task, not one per use.
//!
//! A 1:1 request used to read the monotonic clock about 12 times under load (19.5 times with
//! one client: each deadline, each `monoio::time::timeout`, the pool's timestamps, the `Date`
//! header's wall clock), each a vDSO call plus a TSC read. Everything a task does in one poll
//! happens within microseconds, so [`Fresh`] marks the poll of a connection task and
//! [`now`] reads the clock once per poll and hands out that instant for the rest of it.
//!
//! Why per poll and not per loop turn: monoio 0.2.4 has no hook at its loop turn (the park),
//! and a task cannot see one without costing a wake-up or a syscall. A poll is the smallest
//! unit our code can mark at no cost; a request takes 4–5 polls of its connection task.
//!
//! Staleness is bounded by one poll's CPU time, and only ever makes a deadline *earlier*
//! (`now()` is never later than the true time). Timers themselves are armed at absolute
//! deadlines ([`monoio::time::timeout_at`]), which monoio's wheel checks against its own
//! fresh clock after each park, so no timeout fires late. Outside a marked poll (housekeeping,
//! tests, other threads) [`now`] reads the clock every time.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

thread_local! {
    /// (inside a marked poll, the instant read in it if any).
    static NOW: Cell<(bool, Option<Instant>)> = const { Cell::new((false, None)) };
}

/// The current instant: read once per marked poll, fresh on every call outside one.
#[inline]
pub fn now() -> Instant {
    NOW.with(|c| match c.get() {
        (true, Some(t)) => t,
        (true, None) => {
            let t = Instant::now();
            c.set((true, Some(t)));
            t
        }
        (false, _) => Instant::now(),
    })
}

/// `now() + d`, or None when that overflows (an absurd configured duration: no deadline).
#[inline]
pub fn after(d: Duration) -> Option<Instant> {
    now().checked_add(d)
}

/// A future whose every poll is a marked poll: [`now`] reads the clock at most once in it.
pub struct Fresh<F>(F);

impl<F> Fresh<F> {
    pub fn new(f: F) -> Fresh<F> {
        Fresh(f)
    }
}

impl<F: Future> Future for Fresh<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // A nested marked poll (a `Fresh` polled inside another) keeps the outer reading.
        let outer = NOW.with(|c| c.replace((true, None)));
        let outer = if outer.0 { outer } else { (false, None) };
        // SAFETY: structural pinning of the only field: `Fresh` never moves `self.0` out, has
        // no `Drop` impl and no `Unpin` impl of its own, so the inner future stays pinned
        // where `self` is.
        let inner = unsafe { self.map_unchecked_mut(|s| &mut s.0) };
        let r = inner.poll(cx);
        NOW.with(|c| c.set(outer));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn poll_once<F: Future>(f: F) -> Poll<F::Output> {
        let mut f = std::pin::pin!(f);
        f.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn within_one_poll_every_read_is_the_same_instant() {
        let got = poll_once(Fresh::new(async {
            let a = now();
            std::thread::sleep(Duration::from_millis(2));
            (a, now())
        }));
        let Poll::Ready((a, b)) = got else {
            panic!("not ready")
        };
        assert_eq!(a, b);
    }

    #[test]
    fn outside_a_marked_poll_the_clock_moves() {
        let a = now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(now() > a);
    }

    #[test]
    fn each_poll_reads_the_clock_again_and_nothing_leaks_out() {
        let first = Cell::new(None);
        let mut f = std::pin::pin!(Fresh::new(async {
            first.set(Some(now()));
            std::future::poll_fn(|cx| {
                // Pending once, so the second poll is a separate marked poll.
                static ONCE: std::sync::atomic::AtomicBool =
                    std::sync::atomic::AtomicBool::new(false);
                if ONCE.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    Poll::Ready(())
                } else {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            })
            .await;
            now()
        }));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(f.as_mut().poll(&mut cx).is_pending());
        std::thread::sleep(Duration::from_millis(2));
        let Poll::Ready(second) = f.as_mut().poll(&mut cx) else {
            panic!("not ready")
        };
        assert!(first.get().is_some_and(|a| second > a));
        assert_eq!(NOW.with(Cell::get), (false, None));
    }
}
