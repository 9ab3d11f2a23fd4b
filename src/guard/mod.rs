//! Checks that may reject a request before any backend is called, in KrakenD CE's order
//! (JWT validation, then the router rate limit). Built so far: `ratelimit`.

pub mod ratelimit;
