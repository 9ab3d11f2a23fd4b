//! `modifier/lua-endpoint`, `modifier/lua-proxy` and `modifier/lua-backend` (krakend-lua): Lua
//! 5.1 scripts (KrakenD embeds gopher-lua, a 5.1; we embed the reference Lua 5.1 through mlua,
//! built from source, so a script written for KrakenD runs unchanged).
//!
//! The block is read at plan time: `sources` are read and syntax-checked then (a missing file
//! or a syntax error is a startup error with file:line; KrakenD logs it and serves without
//! the script), `md5` sums are checked (a mismatch refuses the config; KrakenD does the same
//! only for the proxy and backend hooks), `pre`/`post` code is syntax-checked. `live: true`
//! re-reads the sources on every request, as KrakenD does.
//!
//! Our own keys, which KrakenD ignores: `max_instructions` (default 10,000,000 VM
//! instructions per call) and `max_memory` (bytes a call may add to the core's Lua heap,
//! default 64 MiB). KrakenD has no such limits: a `while true do end` takes a core there.

mod api;
mod http;
mod runtime;
mod value;

pub use api::{canonical, encode_query, CustomError, ReqState, RespState};
pub use http::Http;
pub use runtime::Session;

use serde_json::{Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub const ENDPOINT_NS: &str = "modifier/lua-endpoint";
pub const PROXY_NS: &str = "modifier/lua-proxy";
pub const BACKEND_NS: &str = "modifier/lua-backend";

pub const DEFAULT_MAX_INSTRUCTIONS: u64 = 10_000_000;
pub const DEFAULT_MAX_MEMORY: usize = 64 << 20;

/// One `sources` entry.
#[derive(Debug)]
pub struct Source {
    pub path: String,
    /// The text read at plan time (re-read per request with `live`).
    pub text: String,
}

/// Per call limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub instructions: u64,
    pub memory: usize,
}

/// One Lua block, compiled.
#[derive(Debug)]
pub struct LuaScript {
    /// Unique per compiled block: a core caches its chunks under it.
    pub id: u64,
    pub sources: Vec<Source>,
    pub live: bool,
    pub pre: String,
    pub post: String,
    pub skip_next: bool,
    pub open_libs: bool,
    pub limits: Limits,
    /// Whether the script names `http_response`: only then does each call run as a coroutine
    /// that can wait on an HTTP call (see `runtime.rs`).
    pub calls_out: bool,
}

/// Why a script call failed.
#[derive(Clone, Debug)]
pub enum LuaError {
    /// A runtime error in the script (or a source that could not be loaded with `live`).
    Script(String),
    /// A source failed to compile or load at run time (`live`).
    Source(String),
    /// `custom_error(msg, status, content_type)`.
    Custom(CustomError),
    /// The instruction budget ran out.
    Budget,
    /// The memory limit was reached.
    Memory,
}

impl LuaError {
    /// KrakenD: `custom_error` with a status answers with it; anything else is a 500.
    pub fn status(&self) -> u16 {
        match self {
            LuaError::Custom(CustomError {
                status: Some(s), ..
            }) => *s,
            _ => 500,
        }
    }

    pub fn content_type(&self) -> Option<&str> {
        match self {
            LuaError::Custom(c) => c.content_type.as_deref(),
            _ => None,
        }
    }
}

impl std::fmt::Display for LuaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LuaError::Script(m) | LuaError::Source(m) => f.write_str(m),
            LuaError::Custom(c) => f.write_str(&c.message),
            LuaError::Budget => f.write_str("lua: instruction budget exceeded"),
            LuaError::Memory => f.write_str("lua: memory limit exceeded"),
        }
    }
}

impl std::error::Error for LuaError {}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl LuaScript {
    /// Read one Lua block. Errors name `ns.key`, or `file:line` for a source.
    pub fn compile(ns: &str, v: &Value) -> Result<Arc<LuaScript>, String> {
        let empty = Map::new();
        let m = match v {
            Value::Object(m) => m,
            Value::Null => &empty,
            other => return Err(format!("{ns}: must be an object, got {other}")),
        };
        let sources = crate::guard::fragment::strings(ns, m, "sources")?;
        let live = crate::guard::fragment::flag(ns, m, "live")?;
        let code = |key: &str| -> Result<String, String> {
            match m.get(key) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(v) => Err(format!("{ns}.{key}: must be Lua code as a string, got {v}")),
            }
        };
        let (pre, post) = (code("pre")?, code("post")?);
        let mut read = Vec::with_capacity(sources.len());
        for path in sources {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{ns}.sources: {path}: {e}"))?;
            runtime::syntax_check(&format!("@{path}"), &text)
                .map_err(|e| format!("{ns}.sources: {e}"))?;
            read.push(Source { path, text });
        }
        match m.get("md5") {
            None | Some(Value::Null) => {}
            Some(Value::Object(sums)) => {
                for (path, want) in sums {
                    let Some(want) = want.as_str() else {
                        return Err(format!("{ns}.md5: wrong checksum type for source {path}"));
                    };
                    // KrakenD: a sum for a file not in `sources` is checked against "".
                    let text = read
                        .iter()
                        .find(|s| s.path == *path)
                        .map(|s| s.text.as_str())
                        .unwrap_or("");
                    let have = format!("{:x}", md5::compute(text.as_bytes()));
                    if !have.eq_ignore_ascii_case(want) {
                        return Err(format!(
                            "{ns}.md5: wrong checksum for source {path}: have {have}, want {want}"
                        ));
                    }
                }
            }
            Some(v) => return Err(format!("{ns}.md5: must be an object of file: sum, got {v}")),
        }
        runtime::syntax_check("=pre", &pre).map_err(|e| format!("{ns}.pre: {e}"))?;
        runtime::syntax_check("=post", &post).map_err(|e| format!("{ns}.post: {e}"))?;
        let instructions = match m.get("max_instructions") {
            None | Some(Value::Null) => DEFAULT_MAX_INSTRUCTIONS,
            Some(v) => v
                .as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{ns}.max_instructions: must be a positive integer"))?,
        };
        let memory = match m.get("max_memory") {
            None | Some(Value::Null) => DEFAULT_MAX_MEMORY,
            Some(v) => v
                .as_u64()
                .filter(|n| *n >= 1 << 16)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    format!("{ns}.max_memory: must be a number of bytes, at least 65536")
                })?,
        };
        // With `live`, a source may start calling out after startup.
        let calls_out = live
            || [pre.as_str(), post.as_str()]
                .into_iter()
                .chain(read.iter().map(|s| s.text.as_str()))
                .any(|t| t.contains("http_response"));
        Ok(Arc::new(LuaScript {
            calls_out,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            sources: read,
            live,
            pre,
            post,
            skip_next: crate::guard::fragment::flag(ns, m, "skip_next")?,
            open_libs: crate::guard::fragment::flag(ns, m, "allow_open_libs")?,
            limits: Limits {
                instructions,
                memory,
            },
        }))
    }
}

/// A block of `ns` in `extra_config`, compiled, if there is one.
pub fn from_extra(
    extra: &crate::config::ExtraConfig,
    ns: &str,
) -> Result<Option<Arc<LuaScript>>, String> {
    match extra.get(ns) {
        Some(v) => LuaScript::compile(ns, v).map(Some),
        None => Ok(None),
    }
}
