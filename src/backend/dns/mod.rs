//! Backend name resolution at run time, never on an event loop.
//!
//! - Compiling a plan registers each backend host name (and each `sd: dns` SRV name) with a
//!   process-wide resolver ([`host`], [`srv`]); nothing is looked up while compiling, so a
//!   name that does not resolve never refuses the file.
//! - A small pool of resolver threads looks every name up as soon as `proxy run` starts it,
//!   then again every `dns_cache_ttl` (30 s by default, at least 1 s; getaddrinfo gives no
//!   TTL, and KrakenD refreshes SRV answers on this interval whatever the records' TTL). A
//!   failed lookup is retried after 5 s; meanwhile the last good answer keeps serving.
//! - Workers read the latest answer from the name's entry (one atomic load, no lock). A
//!   request for a name whose first lookup is still running waits for it, asynchronously,
//!   until its own deadline. A name that does not resolve fails the requests to that backend
//!   only ("dial tcp: lookup NAME: ...", a 500 or a partial response, as in KrakenD).
//! - `proxy check` looks every name up once ([`check`]) and warns about those that do not
//!   resolve now.

mod check;
mod client;
mod entry;
mod pool;
mod srv;
mod wire;

pub use check::check;
pub use client::SERVER_ENV;
pub use entry::Entry;
pub use pool::{
    host, lookup_once, set_refresh, srv, start, HostEntry, SrvEntry, DEFAULT_REFRESH, MIN_REFRESH,
    RETRY,
};
