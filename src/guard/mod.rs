//! Checks that may reject a request before any backend is called, in KrakenD CE's order
//! (bot detector, JWT validation, then the router rate limit). Built so far: `botdetector`,
//! `ratelimit`.

pub mod botdetector;
pub mod ratelimit;
