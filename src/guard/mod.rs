//! Checks that may reject a request before any backend is called, in KrakenD CE's order
//! (bot detector, CORS preflights and `security/http` before routing; JWT validation, then the
//! router rate limit; then, in the proxy layer, CEL request checks and the JSON schema). Built
//! so far: `botdetector`, `cors`, `secure`, `jwt`, `ratelimit`, `cel` (also on responses and per
//! backend), `jsonschema`.

pub mod botdetector;
pub mod cel;
pub mod cors;
pub(crate) mod fragment;
pub mod jsonschema;
pub mod jwt;
pub mod ratelimit;
pub mod secure;

/// Why a `validation/json-schema` or `validation/cel` block does not compile, one line each
/// (empty for other namespaces): `check` reports them at the block's position.
pub fn compile_errors(ns: &str, v: &serde_json::Value) -> Vec<String> {
    match ns {
        jsonschema::NS => jsonschema::BodySchema::compile(v)
            .err()
            .into_iter()
            .collect(),
        cel::NS => cel::CelChecks::compile(v).err().unwrap_or_default(),
        _ => Vec::new(),
    }
}
