//! `qos/circuit-breaker` (KrakenD CE, krakend-circuitbreaker over sony/gobreaker): one breaker
//! per backend, per process, with gobreaker's states and counting.
//!
//! - **Closed**: calls go through; consecutive failures are counted, and when they EXCEED
//!   `max_errors` (KrakenD's `ReadyToTrip`: `ConsecutiveFailures > max_errors`, so
//!   `max_errors: 1` opens on the 2nd failure in a row) the breaker opens. A success resets
//!   the count; with `interval` > 0 the count also restarts every `interval` seconds.
//! - **Open**: calls fail at once without reaching the backend (`circuit breaker is open`)
//!   for `timeout` seconds, then the breaker is half-open.
//! - **Half-open**: one call goes through (gobreaker's `MaxRequests` 0 → 1), others fail at
//!   once (`too many requests`); its success closes the breaker, its failure opens it again.
//!   A result from a call admitted in an earlier generation (before a state change or an
//!   interval restart) is ignored, as gobreaker does.
//!
//! State is per process (a breaker describes a backend, not a core) and lives in one
//! `AtomicU64`: state, half-open probe taken, generation (4 bits), consecutive failures (16
//! bits) and the expiry in ms (41 bits). A success on a closed breaker with no failures
//! counted reads the word and writes nothing, so the hot path stays in every core's cache;
//! only failures and state changes write (one CAS). [`Breaker`] is sans-io: every method takes
//! `now` in ms, so the state machine is tested deterministically.

use super::BackendError;
use std::sync::atomic::{AtomicU64, Ordering};

pub const NS: &str = "qos/circuit-breaker";

/// The state names gobreaker prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Closed,
    HalfOpen,
    Open,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::HalfOpen => "half-open",
            State::Open => "open",
        }
    }
}

/// Why a call was not let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// gobreaker `ErrOpenState`.
    Open,
    /// gobreaker `ErrTooManyRequests`: half-open, its one call already in flight.
    Busy,
}

/// A call let through, to be reported with [`Breaker::record`] or [`Breaker::release`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    gen: u8,
}

/// The largest `max_errors`: the failure count is 16 bits wide and saturates.
pub const MAX_ERRORS_LIMIT: u64 = 0xFFFE;

const GEN_MASK: u8 = 0xF;
const FAILS_MAX: u32 = 0xFFFF;
const EXPIRY_MASK: u64 = (1 << 41) - 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Word {
    state: State,
    probe: bool,
    gen: u8,
    fails: u32,
    /// ms; 0 = none (a closed breaker without `interval`).
    expiry: u64,
}

impl Word {
    fn pack(self) -> u64 {
        let state = match self.state {
            State::Closed => 0,
            State::HalfOpen => 1,
            State::Open => 2,
        };
        state
            | u64::from(self.probe) << 2
            | u64::from(self.gen & GEN_MASK) << 3
            | u64::from(self.fails.min(FAILS_MAX)) << 7
            | (self.expiry & EXPIRY_MASK) << 23
    }

    fn unpack(w: u64) -> Word {
        Word {
            state: match w & 3 {
                0 => State::Closed,
                1 => State::HalfOpen,
                _ => State::Open,
            },
            probe: w & 4 != 0,
            gen: ((w >> 3) & u64::from(GEN_MASK)) as u8,
            fails: ((w >> 7) & u64::from(FAILS_MAX)) as u32,
            expiry: w >> 23,
        }
    }
}

/// The state machine (sans-io: `now` is milliseconds on any monotonic clock).
#[derive(Debug)]
pub struct Breaker {
    word: AtomicU64,
    interval_ms: u64,
    timeout_ms: u64,
    max_errors: u64,
}

/// A state change, for `log_status_change`.
pub type Change = Option<(State, State)>;

impl Breaker {
    /// `interval` 0: the closed count never restarts. `timeout` must be > 0 (see `compile`).
    pub fn new(interval_ms: u64, timeout_ms: u64, max_errors: u64, now: u64) -> Breaker {
        let b = Breaker {
            word: AtomicU64::new(0),
            interval_ms,
            timeout_ms,
            max_errors: max_errors.min(MAX_ERRORS_LIMIT),
        };
        let w = Word {
            state: State::Closed,
            probe: false,
            gen: 0,
            fails: 0,
            expiry: b.closed_expiry(now),
        };
        b.word.store(w.pack(), Ordering::Relaxed);
        b
    }

    fn closed_expiry(&self, now: u64) -> u64 {
        if self.interval_ms == 0 {
            0
        } else {
            (now + self.interval_ms).max(1)
        }
    }

    fn next_gen(w: Word, state: State, expiry: u64) -> Word {
        Word {
            state,
            probe: false,
            gen: w.gen.wrapping_add(1) & GEN_MASK,
            fails: 0,
            expiry,
        }
    }

    fn opened(&self, w: Word, now: u64) -> Word {
        Breaker::next_gen(w, State::Open, (now + self.timeout_ms).max(1))
    }

    fn closed(&self, w: Word, now: u64) -> Word {
        Breaker::next_gen(w, State::Closed, self.closed_expiry(now))
    }

    /// gobreaker `currentState`: the changes time alone makes.
    fn current(&self, w: Word, now: u64) -> Word {
        match w.state {
            // gobreaker: `expiry.Before(now)`, strictly.
            State::Closed if w.expiry != 0 && w.expiry < now => self.closed(w, now),
            State::Open if w.expiry < now => Breaker::next_gen(w, State::HalfOpen, 0),
            _ => w,
        }
    }

    /// Apply `f` to the current word until the CAS holds; writes nothing when `f` changes
    /// nothing. Returns what `f` returned and the state change, if any.
    fn update<R>(&self, now: u64, f: impl Fn(Word) -> (Word, R)) -> (R, Change) {
        let mut raw = self.word.load(Ordering::Acquire);
        loop {
            let before = Word::unpack(raw);
            let (after, r) = f(self.current(before, now));
            let next = after.pack();
            let change = (before.state != after.state).then_some((before.state, after.state));
            if next == raw {
                return (r, None);
            }
            match self
                .word
                .compare_exchange_weak(raw, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return (r, change),
                Err(now_raw) => raw = now_raw,
            }
        }
    }

    /// gobreaker `beforeRequest`.
    pub fn admit(&self, now: u64) -> (Result<Ticket, Refused>, Change) {
        self.update(now, |c| match c.state {
            State::Open => (c, Err(Refused::Open)),
            State::HalfOpen if c.probe => (c, Err(Refused::Busy)),
            State::HalfOpen => (Word { probe: true, ..c }, Ok(Ticket { gen: c.gen })),
            State::Closed => (c, Ok(Ticket { gen: c.gen })),
        })
    }

    /// gobreaker `afterRequest`: the result of a call let through.
    pub fn record(&self, t: Ticket, ok: bool, now: u64) -> Change {
        self.update(now, |c| {
            if c.gen != t.gen {
                return (c, ());
            }
            let next = match (c.state, ok) {
                (State::Closed, true) => Word { fails: 0, ..c },
                (State::Closed, false) => {
                    let fails = (c.fails + 1).min(FAILS_MAX);
                    if u64::from(fails) > self.max_errors {
                        self.opened(c, now)
                    } else {
                        Word { fails, ..c }
                    }
                }
                (State::HalfOpen, true) => self.closed(c, now),
                (State::HalfOpen, false) => self.opened(c, now),
                (State::Open, _) => c,
            };
            (next, ())
        })
        .1
    }

    /// A call let through that ended with no result (its request went away): counts neither
    /// way, but frees the half-open slot so the next call can probe.
    pub fn release(&self, t: Ticket, now: u64) {
        self.update(now, |c| {
            let mine = c.state == State::HalfOpen && c.gen == t.gen;
            (
                Word {
                    probe: c.probe && !mine,
                    ..c
                },
                (),
            )
        });
    }

    pub fn state(&self, now: u64) -> State {
        self.current(Word::unpack(self.word.load(Ordering::Acquire)), now)
            .state
    }
}

/// A backend's compiled `qos/circuit-breaker` block.
#[derive(Debug)]
pub struct CircuitBreaker {
    core: Breaker,
    name: String,
    log_status_change: bool,
}

fn now_ms() -> u64 {
    crate::guard::ratelimit::now_ns() / 1_000_000
}

/// A whole number of seconds (KrakenD's fields are Go ints).
fn seconds(v: &serde_json::Value, key: &str) -> Result<u64, String> {
    match v.get(key) {
        None | Some(serde_json::Value::Null) => Ok(0),
        Some(n) => n
            .as_u64()
            .ok_or_else(|| format!("{key}: expected a whole number (0 or more), found {n}")),
    }
}

impl CircuitBreaker {
    /// Compile the block of the backend at `place` (for log lines).
    pub fn compile(v: &serde_json::Value, place: &str) -> Result<CircuitBreaker, String> {
        if !v.is_object() {
            return Err(format!("expected an object, found {v}"));
        }
        let interval = seconds(v, "interval")?;
        let timeout = seconds(v, "timeout")?;
        let max_errors = seconds(v, "max_errors")?;
        if interval == 0 && timeout == 0 && max_errors == 0 {
            // KrakenD: an all-zero block installs no breaker at all, silently.
            return Err(
                "interval, timeout and max_errors are all 0 or missing: KrakenD would run this \
                 backend without any circuit breaker; set them (max_errors: 0 opens on the \
                 first failure) or remove the block"
                    .into(),
            );
        }
        if max_errors > MAX_ERRORS_LIMIT {
            return Err(format!(
                "max_errors: at most {MAX_ERRORS_LIMIT} consecutive failures, found {max_errors}"
            ));
        }
        let name = match v.get("name") {
            None | Some(serde_json::Value::Null) => place.to_string(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => return Err(format!("name: expected a string, found {other}")),
        };
        let log_status_change = match v.get("log_status_change") {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!(
                    "log_status_change: expected true or false, found {other}"
                ))
            }
        };
        // KrakenD (gobreaker): a timeout of 0 means 60 s.
        let timeout = if timeout == 0 { 60 } else { timeout };
        Ok(CircuitBreaker {
            core: Breaker::new(interval * 1000, timeout * 1000, max_errors, now_ms()),
            name,
            log_status_change,
        })
    }

    fn log(&self, change: Change) {
        if let (true, Some((from, to))) = (self.log_status_change, change) {
            crate::warn!(
                "[CB] circuit breaker named '{}' went from '{}' to '{}'",
                self.name,
                from.name(),
                to.name()
            );
        }
    }

    /// Let one call through, or fail it at once with gobreaker's error.
    pub fn admit(&self) -> Result<Permit<'_>, BackendError> {
        let (r, change) = self.core.admit(now_ms());
        self.log(change);
        match r {
            Ok(ticket) => Ok(Permit {
                cb: self,
                ticket: Some(ticket),
            }),
            Err(Refused::Open) => Err(BackendError::CircuitOpen),
            Err(Refused::Busy) => Err(BackendError::CircuitBusy),
        }
    }
}

/// A call the breaker let through. `finish` reports its result; dropped unfinished (the
/// request was cancelled: a concurrent call that lost, a client gone), it counts neither way.
// KrakenD: a cancelled context is not a failure for the breaker.
pub struct Permit<'a> {
    cb: &'a CircuitBreaker,
    ticket: Option<Ticket>,
}

impl Permit<'_> {
    pub fn finish(mut self, ok: bool) {
        if let Some(t) = self.ticket.take() {
            let change = self.cb.core.record(t, ok, now_ms());
            self.cb.log(change);
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.ticket.take() {
            self.cb.core.release(t, now_ms());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admit(b: &Breaker, now: u64) -> Ticket {
        b.admit(now).0.unwrap()
    }

    fn fail(b: &Breaker, now: u64) -> Change {
        let t = admit(b, now);
        b.record(t, false, now)
    }

    #[test]
    fn it_opens_only_when_consecutive_failures_exceed_max_errors() {
        let b = Breaker::new(0, 10_000, 2, 0);
        assert_eq!(fail(&b, 1), None);
        assert_eq!(fail(&b, 2), None);
        assert_eq!(b.state(2), State::Closed);
        assert_eq!(fail(&b, 3), Some((State::Closed, State::Open)));
        assert_eq!(b.admit(4).0, Err(Refused::Open));
    }

    #[test]
    fn a_success_resets_the_consecutive_count() {
        let b = Breaker::new(0, 10_000, 1, 0);
        fail(&b, 1);
        let t = admit(&b, 2);
        b.record(t, true, 2);
        fail(&b, 3);
        assert_eq!(b.state(3), State::Closed);
        fail(&b, 4);
        assert_eq!(b.state(4), State::Open);
    }

    #[test]
    fn max_errors_zero_opens_on_the_first_failure() {
        let b = Breaker::new(0, 10_000, 0, 0);
        assert_eq!(fail(&b, 1), Some((State::Closed, State::Open)));
    }

    #[test]
    fn after_timeout_one_probe_goes_through_and_its_success_closes() {
        let b = Breaker::new(0, 1_000, 0, 0);
        fail(&b, 10);
        assert_eq!(b.admit(1_010).0, Err(Refused::Open));
        let (probe, change) = b.admit(1_011);
        assert_eq!(change, Some((State::Open, State::HalfOpen)));
        let probe = probe.unwrap();
        assert_eq!(b.admit(1_012).0, Err(Refused::Busy));
        assert_eq!(
            b.record(probe, true, 1_013),
            Some((State::HalfOpen, State::Closed))
        );
        admit(&b, 1_014);
    }

    #[test]
    fn a_failed_probe_opens_again_for_a_full_timeout() {
        let b = Breaker::new(0, 1_000, 0, 0);
        fail(&b, 0);
        let probe = admit(&b, 1_001);
        assert_eq!(
            b.record(probe, false, 1_500),
            Some((State::HalfOpen, State::Open))
        );
        assert_eq!(b.admit(2_500).0, Err(Refused::Open));
        assert!(b.admit(2_501).0.is_ok());
    }

    #[test]
    fn a_released_probe_lets_the_next_call_probe() {
        let b = Breaker::new(0, 1_000, 0, 0);
        fail(&b, 0);
        let probe = admit(&b, 1_001);
        b.release(probe, 1_002);
        assert_eq!(b.state(1_002), State::HalfOpen);
        assert!(b.admit(1_003).0.is_ok());
    }

    #[test]
    fn the_interval_restarts_the_count_and_late_results_are_ignored() {
        let b = Breaker::new(1_000, 5_000, 1, 0);
        fail(&b, 10);
        let late = admit(&b, 20);
        // A new generation after the interval: the old failure and `late` no longer count.
        fail(&b, 1_001);
        b.record(late, false, 1_002);
        assert_eq!(b.state(1_002), State::Closed);
        fail(&b, 1_003);
        assert_eq!(b.state(1_003), State::Open);
    }

    #[test]
    fn a_success_with_nothing_counted_writes_nothing() {
        let b = Breaker::new(0, 1_000, 3, 0);
        let before = b.word.load(Ordering::Relaxed);
        for now in 0..100 {
            let t = admit(&b, now);
            assert_eq!(b.record(t, true, now), None);
        }
        assert_eq!(b.word.load(Ordering::Relaxed), before);
    }

    #[test]
    fn the_word_round_trips() {
        let w = Word {
            state: State::HalfOpen,
            probe: true,
            gen: 9,
            fails: 1234,
            expiry: EXPIRY_MASK,
        };
        assert_eq!(Word::unpack(w.pack()), w);
    }

    #[test]
    fn blocks_krakend_would_drop_silently_are_refused() {
        let e = CircuitBreaker::compile(&serde_json::json!({}), "b").unwrap_err();
        assert!(e.contains("all 0"), "{e}");
        let e = CircuitBreaker::compile(&serde_json::json!({"max_errors": "1"}), "b").unwrap_err();
        assert!(e.contains("max_errors"), "{e}");
        assert!(CircuitBreaker::compile(&serde_json::json!({"max_errors": 1}), "b").is_ok());
    }
}
