//! Reading a namespace's JSON block at plan time, with errors that name `namespace.key`
//! (shared by the service-level guards, whose blocks use the same key types).

use serde_json::{Map, Value};

/// A list of strings; absent or `null` is empty.
pub(crate) fn strings(ns: &str, m: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{ns}.{key}: every entry must be a string, got {v}"))
            })
            .collect(),
        Some(v) => Err(format!("{ns}.{key}: must be a list of strings, got {v}")),
    }
}

/// A boolean; absent or `null` is false.
pub(crate) fn flag(ns: &str, m: &Map<String, Value>, key: &str) -> Result<bool, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(format!("{ns}.{key}: must be true or false, got {v}")),
    }
}
