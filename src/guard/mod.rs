//! Checks that may reject a request before any backend is called, in KrakenD CE's order
//! (bot detector, CORS preflights and `security/http` before routing; JWT validation, then the
//! router rate limit). Built so far: `botdetector`, `cors`, `secure`, `jwt`, `ratelimit`.

pub mod botdetector;
pub mod cors;
pub(crate) mod fragment;
pub mod jwt;
pub mod ratelimit;
pub mod secure;
