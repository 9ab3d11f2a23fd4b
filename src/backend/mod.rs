//! One backend call: the per-core keep-alive pool, the HTTP/1.1 client exchange, redirects,
//! the URL template and the hosts to call. Everything the client touches is owned by one worker
//! (`Rc`/`RefCell`, never shared), except the read-only plan and the resolver's answers
//! (`dns`: loaded with one atomic read, written by resolver threads).

pub mod breaker;
pub mod client;
mod dial;
pub mod dns;
pub mod httpcache;
pub mod pool;
pub mod ratelimit;
pub mod target;
pub mod url;

pub use target::{Addrs, Hosts, Target};

use crate::http::{Headers, HttpError};
use bytes::Bytes;
use std::net::SocketAddr;

/// A request ready for the wire (everything already filtered and templated).
#[derive(Clone, Debug)]
pub struct OutRequest {
    pub method: Bytes,
    /// Path and query, already percent-encoded.
    pub path_and_query: String,
    pub headers: Vec<(Bytes, Bytes)>,
    pub body: Bytes,
    /// The path parameters, for a `modifier/lua-backend` script only (empty otherwise).
    pub params: Vec<(String, String)>,
    /// `telemetry/opentelemetry`: this call's span ids (its `traceparent` is in `headers`).
    pub trace: Option<crate::telemetry::trace::CallTrace>,
}

/// A complete backend response (body de-chunked).
#[derive(Clone, Debug)]
pub struct BackendResponse {
    /// The URL that was called (`http://host:port/path?query`), for error messages.
    pub url: String,
    pub status: u16,
    pub headers: Headers,
    pub body: Bytes,
}

/// Why a backend call failed. Every variant maps to KrakenD's 500 (or a partial response).
#[derive(Debug)]
pub enum BackendError {
    Connect(SocketAddr, std::io::Error),
    /// The deadline passed (connect, write or read).
    Timeout,
    Io(std::io::Error),
    /// The backend's bytes are not valid HTTP.
    Protocol(HttpError),
    /// The body is larger than the gateway accepts from a backend.
    TooLarge,
    TooManyRedirects,
    BadRedirect(String),
    NoHost,
    /// The TLS handshake with the backend failed: the reason (unknown CA, expired, name
    /// mismatch, protocol version, ...).
    Tls(String),
    /// The host name does not resolve (the resolver's message: `lookup NAME: reason`).
    Resolve(String),
    /// `qos/ratelimit/proxy` refused the call: the backend was not called.
    RateLimited,
    /// `qos/circuit-breaker` is open: the backend was not called.
    CircuitOpen,
    /// `qos/circuit-breaker` is half-open and its one trial call is in flight.
    CircuitBusy,
    /// A `modifier/lua-backend` script or a `modifier/martian` rule stopped the call.
    Modifier(String),
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendError::Connect(a, e) => write!(f, "dial tcp {a}: {e}"),
            BackendError::Timeout => f.write_str("context deadline exceeded"),
            BackendError::Io(e) => write!(f, "{e}"),
            BackendError::Protocol(e) => write!(f, "{e}"),
            BackendError::TooLarge => f.write_str("backend response too large"),
            BackendError::TooManyRedirects => f.write_str("stopped after 10 redirects"),
            BackendError::BadRedirect(l) => write!(f, "invalid redirect location {l:?}"),
            BackendError::NoHost => f.write_str("no hosts available"),
            BackendError::Tls(m) => f.write_str(m),
            // Go: `dial tcp: lookup NAME on SERVER: no such host`.
            BackendError::Resolve(m) => write!(f, "dial tcp: {m}"),
            BackendError::RateLimited => f.write_str(crate::guard::ratelimit::ERR_LIMITED),
            // KrakenD: gobreaker's ErrOpenState and ErrTooManyRequests.
            BackendError::CircuitOpen => f.write_str("circuit breaker is open"),
            BackendError::CircuitBusy => f.write_str("too many requests"),
            BackendError::Modifier(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for BackendError {}
