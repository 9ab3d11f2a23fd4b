//! The client connection's timeouts: KrakenD's four root keys with Go's fallbacks, then our
//! own defaults wherever the config leaves a value unset.
//!
//! KrakenD (Go's `http.Server`) has no timeout at all by default, so a client that trickles
//! its head, stalls its body, never reads its response or just idles holds a connection
//! forever. We default as nginx does (`client_header_timeout`, `client_body_timeout`,
//! `send_timeout`, `keepalive_timeout`). A value in the config always wins, with Go's meaning.

use crate::config::Config;
use std::time::{Duration, Instant};

/// The whole request head, from its first byte (nginx `client_header_timeout`).
pub const DEFAULT_HEADER: Duration = Duration::from_secs(60);
/// Between two reads of a request body (nginx `client_body_timeout`).
pub const DEFAULT_BODY_STALL: Duration = Duration::from_secs(60);
/// Between two writes of a response that make progress (nginx `send_timeout`).
pub const DEFAULT_WRITE_STALL: Duration = Duration::from_secs(60);
/// A kept-alive connection waiting for its next request (nginx `keepalive_timeout`).
pub const DEFAULT_IDLE: Duration = Duration::from_secs(75);

/// How a time limit is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// Over the whole phase, from a fixed start (Go's `ReadTimeout` / `WriteTimeout`).
    Total(Duration),
    /// Between two reads or writes that make progress (nginx's body and send timeouts): a
    /// large upload or a long stream is never cut while bytes keep moving.
    Stall(Duration),
}

impl Timeout {
    /// The deadline of the next read or write: fixed from `start` for a total, from now for a
    /// stall. `None` when the sum overflows (an absurdly large configured value: no deadline
    /// rather than a panic).
    pub fn deadline(self, start: Instant) -> Option<Instant> {
        match self {
            Timeout::Total(d) => start.checked_add(d),
            Timeout::Stall(d) => crate::runtime::clock::after(d),
        }
    }
}

impl Timeout {
    /// `10s`, or `60s between reads` for a stall limit (`ops` names the operations).
    fn show(self, ops: &str) -> String {
        match self {
            Timeout::Total(d) => format!("{d:?}"),
            Timeout::Stall(d) => format!("{d:?} between {ops}"),
        }
    }
}

/// Where a value came from (shown by `check -d`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Config,
    /// Go's fallback: unset, so `read_timeout` applies.
    ReadTimeout,
    Default,
}

impl Origin {
    fn label(self) -> &'static str {
        match self {
            Origin::Config => "",
            Origin::ReadTimeout => " (from read_timeout)",
            Origin::Default => " (default)",
        }
    }
}

/// The timeouts the connection loop applies. Every one is set: there is no "forever".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// `read_header_timeout`: the head, from its first byte (a total: a head trickled one
    /// byte at a time is cut too).
    pub header: (Duration, Origin),
    /// `read_timeout`: configured, a total over head and body from the head's first byte
    /// (Go); by default, a stall limit on the body.
    pub body: (Timeout, Origin),
    /// `write_timeout`: configured, a total from the start of the response; by default, a
    /// stall limit (a client that never reads is dropped, a long stream is not).
    pub write: (Timeout, Origin),
    /// `idle_timeout`: a kept-alive (or new) connection waiting for a request.
    pub idle: (Duration, Origin),
}

impl Timeouts {
    pub fn compile(cfg: &Config) -> Timeouts {
        let read = cfg.read_timeout;
        // KrakenD: Go's `readHeaderTimeout()` and `idleTimeout()` fall back to ReadTimeout.
        let with_fallback = |own: Option<Duration>, default: Duration| match (own, read) {
            (Some(d), _) => (d, Origin::Config),
            (None, Some(r)) => (r, Origin::ReadTimeout),
            (None, None) => (default, Origin::Default),
        };
        Timeouts {
            header: with_fallback(cfg.read_header_timeout, DEFAULT_HEADER),
            body: match read {
                Some(d) => (Timeout::Total(d), Origin::Config),
                None => (Timeout::Stall(DEFAULT_BODY_STALL), Origin::Default),
            },
            write: match cfg.write_timeout {
                Some(d) => (Timeout::Total(d), Origin::Config),
                None => (Timeout::Stall(DEFAULT_WRITE_STALL), Origin::Default),
            },
            idle: with_fallback(cfg.idle_timeout, DEFAULT_IDLE),
        }
    }

    /// One line for `check -d`.
    pub fn describe(&self) -> String {
        format!(
            "read_header_timeout {:?}{}, read_timeout {}{}, write_timeout {}{}, idle_timeout {:?}{}",
            self.header.0,
            self.header.1.label(),
            self.body.0.show("reads"),
            self.body.1.label(),
            self.write.0.show("writes"),
            self.write.1.label(),
            self.idle.0,
            self.idle.1.label(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The timeouts of a config with these root keys.
    fn with(keys: &str) -> Timeouts {
        let text = format!(r#"{{"version": 3 {keys}}}"#);
        match crate::config::load_str("t.json", &text, &|_| None) {
            Ok(l) => Timeouts::compile(&l.config),
            Err(e) => panic!("{e:?}"),
        }
    }

    const fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_config_without_timeouts_gets_nginx_like_defaults() {
        let t = with("");
        assert_eq!(t.header, (secs(60), Origin::Default));
        assert_eq!(t.body, (Timeout::Stall(secs(60)), Origin::Default));
        assert_eq!(t.write, (Timeout::Stall(secs(60)), Origin::Default));
        assert_eq!(t.idle, (secs(75), Origin::Default));
    }

    #[test]
    fn read_timeout_alone_also_bounds_the_head_and_the_idle_wait_as_in_go() {
        let t = with(r#","read_timeout": "5s""#);
        assert_eq!(t.header, (secs(5), Origin::ReadTimeout));
        assert_eq!(t.body, (Timeout::Total(secs(5)), Origin::Config));
        assert_eq!(t.idle, (secs(5), Origin::ReadTimeout));
        assert_eq!(t.write, (Timeout::Stall(secs(60)), Origin::Default));
    }

    #[test]
    fn each_configured_value_wins_over_fallback_and_default() {
        let t = with(
            r#","read_timeout": "5s", "read_header_timeout": "2s", "write_timeout": "7s",
               "idle_timeout": "9s""#,
        );
        assert_eq!(t.header, (secs(2), Origin::Config));
        assert_eq!(t.write, (Timeout::Total(secs(7)), Origin::Config));
        assert_eq!(t.idle, (secs(9), Origin::Config));
        let t = with(r#","read_header_timeout": "2s""#);
        assert_eq!(t.header, (secs(2), Origin::Config));
        assert_eq!(t.body, (Timeout::Stall(secs(60)), Origin::Default));
        assert_eq!(t.idle, (secs(75), Origin::Default));
    }

    #[test]
    fn zero_means_unset_so_the_defaults_apply() {
        let t = with(
            r#","read_timeout": "0s", "read_header_timeout": 0, "write_timeout": "0",
               "idle_timeout": "0ms""#,
        );
        assert_eq!(t, with(""));
    }

    #[test]
    fn describe_marks_defaults_and_fallbacks() {
        assert_eq!(
            with("").describe(),
            "read_header_timeout 60s (default), read_timeout 60s between reads (default), \
             write_timeout 60s between writes (default), idle_timeout 75s (default)"
        );
        let line = with(r#","read_timeout": "1500ms""#).describe();
        assert!(
            line.starts_with("read_header_timeout 1.5s (from read_timeout), read_timeout 1.5s,")
        );
    }

    #[test]
    fn a_total_counts_from_its_start_and_a_stall_from_now() {
        let start = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        let total = Timeout::Total(secs(1)).deadline(start);
        let stall = Timeout::Stall(secs(1)).deadline(start);
        assert!(total < stall);
        assert_eq!(Timeout::Total(Duration::MAX).deadline(start), None);
    }
}
