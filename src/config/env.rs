//! `KRAKEND_<ROOTKEY>` environment overrides of root-level scalars.
//!
//! KrakenD: krakend-koanf's env provider sets the key whether or not the file has it (the docs
//! say it must exist; the code doesn't check), so we do the same.

use super::decode::{child, go_parse_bool, go_parse_int, Ctx};
use super::duration::parse_go_duration;
use super::json::{Member, Pos, Spanned, Value};

#[derive(Clone, Copy)]
enum Kind {
    Int,
    Bool,
    Str,
    Duration,
}

/// Root scalars that can be overridden, with the type their value is parsed as.
const SCALARS: &[(&str, Kind)] = &[
    ("version", Kind::Int),
    ("port", Kind::Int),
    ("max_header_bytes", Kind::Int),
    ("max_uri_bytes", Kind::Int),
    ("max_idle_connections", Kind::Int),
    ("max_idle_connections_per_host", Kind::Int),
    ("name", Kind::Str),
    ("listen_ip", Kind::Str),
    ("output_encoding", Kind::Str),
    ("disable_rest", Kind::Bool),
    ("debug_endpoint", Kind::Bool),
    ("echo_endpoint", Kind::Bool),
    ("sequential_start", Kind::Bool),
    ("use_h2c", Kind::Bool),
    ("allow_insecure_connections", Kind::Bool),
    ("disable_keep_alives", Kind::Bool),
    ("disable_compression", Kind::Bool),
    ("timeout", Kind::Duration),
    ("cache_ttl", Kind::Duration),
    ("read_timeout", Kind::Duration),
    ("read_header_timeout", Kind::Duration),
    ("write_timeout", Kind::Duration),
    ("idle_timeout", Kind::Duration),
    ("idle_connection_timeout", Kind::Duration),
    ("response_header_timeout", Kind::Duration),
    ("expect_continue_timeout", Kind::Duration),
    ("dialer_timeout", Kind::Duration),
    ("dialer_fallback_delay", Kind::Duration),
    ("dialer_keep_alive", Kind::Duration),
    ("dns_cache_ttl", Kind::Duration),
    ("max_shutdown_wait_time", Kind::Duration),
];

/// One applied override: the root key and the variable it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    pub key: &'static str,
    pub var: String,
}

fn to_value(kind: Kind, raw: &str) -> Result<Value, String> {
    let s = raw.trim();
    match kind {
        // KrakenD: the env value is a string, decoded weakly (`strconv.ParseInt(s, 0, 64)`).
        Kind::Int => go_parse_int(s)
            .map(|n| Value::Number(n.to_string()))
            .ok_or_else(|| "expected an integer".to_string()),
        Kind::Bool => go_parse_bool(s)
            .map(Value::Bool)
            .ok_or_else(|| "expected a boolean (true or false)".to_string()),
        Kind::Str => Ok(Value::String(raw.to_string())),
        Kind::Duration => parse_go_duration(s).map(|_| Value::String(s.to_string())),
    }
}

/// Apply every `KRAKEND_*` override to the root object. Values that don't parse as the key's
/// type are errors naming the variable. Overridden values have position 0:0.
pub fn apply(
    ctx: &mut Ctx,
    root: &mut Spanned,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<Override> {
    let mut applied = Vec::new();
    let Value::Object(members) = &mut root.value else {
        return applied;
    };
    for (key, kind) in SCALARS {
        let var = format!("KRAKEND_{}", key.to_ascii_uppercase());
        let Some(raw) = env(&var) else { continue };
        let value = match to_value(*kind, &raw) {
            Ok(v) => v,
            Err(e) => {
                let path = child("$", key);
                ctx.error(
                    Pos::default(),
                    &path,
                    format!("environment variable {var}={raw:?}: {e}"),
                );
                continue;
            }
        };
        let spanned = Spanned {
            pos: Pos::default(),
            value,
        };
        match members.iter_mut().find(|m| m.key == *key) {
            Some(m) => m.value = spanned,
            None => members.push(Member {
                key: (*key).to_string(),
                key_pos: Pos::default(),
                value: spanned,
            }),
        }
        applied.push(Override { key, var });
    }
    applied
}
