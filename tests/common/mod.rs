//! Black-box test harness shared by the files in `tests/`: a fixture HTTP backend
//! ([`backend::Backend`]), the gateway as a child process ([`gateway::Gateway`]), a std::net
//! HTTP client ([`client`]), config builders ([`config`]), a DNS server whose answers a test
//! changes at run time ([`dns::DnsServer`]) and a real `redis-server` ([`redis::RedisServer`]).
//!
//! Each test binary uses only part of it, hence `dead_code` is allowed. This is test code,
//! not the request path: a failing fixture should fail the test loudly, and std's `Mutex` is
//! fine for sharing recordings between threads. The fixture is not inside `#[cfg(test)]`, so
//! clippy's allow-in-tests settings do not reach it: the lints are allowed here explicitly.
#![allow(
    dead_code,
    unused_imports,
    clippy::disallowed_types,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod backend;
pub mod client;
pub mod config;
pub mod dns;
pub mod gateway;
pub mod golden;
pub mod otlp;
pub mod pki;
pub mod redis;
pub mod tls_backend;
pub mod wire;

pub use backend::{Action, Backend, Recorded, Reply};
pub use client::{get, raw, raw_status, raw_with_timeout, request, try_request, Conn, Response};
pub use dns::{DnsServer, Rec};
pub use gateway::{check, check_file, check_file_env, Gateway};

use std::time::{Duration, Instant};

/// Poll `cond` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
