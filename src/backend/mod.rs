//! One backend call: the per-core keep-alive pool, the HTTP/1.1 client exchange, redirects and
//! the URL template. Everything here is owned by one worker (`Rc`/`RefCell`, never shared).

pub mod client;
pub mod pool;
pub mod resolve;
pub mod url;

use crate::http::{Headers, HttpError};
use bytes::Bytes;
use std::net::SocketAddr;

/// Where a backend host lives: its resolved addresses and the `Host` header to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `host[:port]` exactly as the client-visible authority (`Host` header).
    pub authority: String,
    pub addrs: Vec<SocketAddr>,
}

/// A request ready for the wire (everything already filtered and templated).
#[derive(Clone, Debug)]
pub struct OutRequest {
    pub method: Bytes,
    /// Path and query, already percent-encoded.
    pub path_and_query: String,
    pub headers: Vec<(Bytes, Bytes)>,
    pub body: Bytes,
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
    Resolve(String),
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
            BackendError::Resolve(h) => write!(f, "cannot resolve host {h}"),
        }
    }
}

impl std::error::Error for BackendError {}
