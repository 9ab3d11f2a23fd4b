//! proxy: a KrakenD-compatible API gateway, thread-per-core on monoio.
//!
//! # Architecture
//! `proxy run` loads `krakend.json` ([`config`]), compiles it once into an immutable
//! [`plan::Plan`] (routes, URL templates, header/query sets, limits) and publishes it behind
//! `arc_swap`. [`runtime`] starts one worker thread per core, each pinned and running its own
//! monoio event loop with its own `SO_REUSEPORT` listener and its own backend pools. Nothing on
//! the request path is shared between cores except the read-only plan.
//!
//! # Request flow
//! `runtime` accepts -> [`http::accept`] runs the TLS handshake when a `tls` listener is
//! configured ([`tls`]) -> [`http::conn`] reads and parses the request head ([`http::request`]),
//! loads the plan once -> [`router`] finds the endpoint -> [`gateway`] builds the backend
//! request(s) and calls them through the per-core pool ([`backend`]) -> the response is shaped
//! ([`json`]) and rendered ([`render`]) -> written back. Lua scripts and martian rules
//! ([`modifier`]) act at KrakenD's points: before the endpoint, around the merge, and around
//! each backend call.
//!
//! # Glossary (KrakenD vocabulary)
//! - *endpoint*: a route the gateway exposes (`endpoints[]`).
//! - *backend*: an upstream HTTP service an endpoint calls (`backend[]`).
//! - *url_pattern*: the backend path template, with `{param}` placeholders.
//! - *encoding* / *output_encoding*: how a backend body is decoded / how the response is rendered.
//! - *allow*, *deny*, *target*, *mapping*, *group*, *flatmap*: response shaping (see [`json`]).
//! - *no-op*: pass the backend's response through untouched.

pub mod audit;
pub mod backend;
pub mod cli;
pub mod config;
pub mod dump;
pub mod fc;
pub mod gateway;
pub mod guard;
pub mod http;
pub mod json;
pub mod log;
pub mod modifier;
pub mod plan;
pub mod redis;
pub mod render;
pub mod router;
pub mod runtime;
pub mod telemetry;
pub mod tls;

/// The version this build reports (`proxy version`, the `X-KrakenD` header).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
