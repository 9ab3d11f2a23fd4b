//! Builders for krakend.json test configs. They return `serde_json::Value` so a test can
//! tweak any key (`cfg["endpoints"][0]["input_headers"] = json!(["*"])`) before rendering.

use serde_json::{json, Value};

/// A version-3 service with these endpoints and a generous timeout.
pub fn service(endpoints: Vec<Value>) -> Value {
    json!({
        "version": 3,
        "port": 8080,
        "timeout": "3s",
        "endpoints": endpoints,
    })
}

/// An endpoint `method path` calling `backends`.
pub fn endpoint(path: &str, method: &str, backends: Vec<Value>) -> Value {
    json!({
        "endpoint": path,
        "method": method,
        "backend": backends,
    })
}

/// A backend at `host` (`http://127.0.0.1:PORT`) with this url_pattern.
pub fn backend(host: &str, url_pattern: &str) -> Value {
    json!({
        "host": [host],
        "url_pattern": url_pattern,
    })
}

/// The whole config for one `GET path` endpoint -> one backend, as a string.
pub fn simple(path: &str, host: &str, url_pattern: &str) -> String {
    one(path, "GET", host, url_pattern).to_string()
}

/// One endpoint -> one backend, as a Value to tweak.
pub fn one(path: &str, method: &str, host: &str, url_pattern: &str) -> Value {
    service(vec![endpoint(
        path,
        method,
        vec![backend(host, url_pattern)],
    )])
}

/// A backend entry at `host` and `url_pattern`, with the keys of `extra` (an object) merged in.
pub fn backend_with(host: &str, url_pattern: &str, extra: Value) -> Value {
    let mut v = backend(host, url_pattern);
    if let Value::Object(extra) = extra {
        for (k, x) in extra {
            v[k] = x;
        }
    }
    v
}
