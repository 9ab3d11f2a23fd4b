//! The built-in endpoints: `/__health`, `/__echo/` and `/__debug/`, with KrakenD's bodies.

use super::forward::{canonical, parse_query};
use super::Response;
use crate::http::request::RequestHead;
use bytes::Bytes;
use serde_json::{Map, Value};

/// `{"agents":{},"now":"<Go time.Now().String()>","status":"ok"}` (lura `router/gin/engine.go`).
pub fn health() -> Response {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let body = serde_json::json!({"agents": {}, "now": go_time(now), "status": "ok"});
    Response::json(200, Bytes::from(body.to_string()))
}

/// `{"message":"pong"}`; the request is logged at DEBUG (lura `router/gin/debug.go`).
pub fn debug(head: &RequestHead, body: &[u8]) -> Response {
    crate::debug!(
        "[ENDPOINT /__debug/*] Method: {} URI: {} Headers: {:?} Body: {}",
        String::from_utf8_lossy(&head.method),
        String::from_utf8_lossy(&head.target),
        head.headers
            .iter()
            .map(|h| (
                String::from_utf8_lossy(&h.name).into_owned(),
                String::from_utf8_lossy(&h.value).into_owned()
            ))
            .collect::<Vec<_>>(),
        String::from_utf8_lossy(body)
    );
    Response::json(200, Bytes::from_static(br#"{"message":"pong"}"#))
}

/// The request as lura's echo handler reports it.
pub fn echo(head: &RequestHead, body: &[u8]) -> Response {
    let host = head
        .headers
        .get("host")
        .map(|h| String::from_utf8_lossy(h).into_owned())
        .unwrap_or_default();
    let raw_query = head.query().unwrap_or(&[]);
    let mut query: Map<String, Value> = Map::new();
    for (k, v) in parse_query(raw_query) {
        if let Value::Array(a) = query.entry(k).or_insert_with(|| Value::Array(Vec::new())) {
            a.push(Value::String(v));
        }
    }
    let mut encoded = String::new();
    let mut keys: Vec<&String> = query.keys().collect();
    keys.sort();
    for k in keys {
        for v in query.get(k).and_then(Value::as_array).into_iter().flatten() {
            if !encoded.is_empty() {
                encoded.push('&');
            }
            super::forward::query_escape(k, &mut encoded);
            encoded.push('=');
            super::forward::query_escape(v.as_str().unwrap_or(""), &mut encoded);
        }
    }
    let mut headers: Map<String, Value> = Map::new();
    for h in head.headers.iter() {
        if h.name.eq_ignore_ascii_case(b"host") {
            continue; // Go moves Host out of the header map
        }
        let name = String::from_utf8_lossy(&canonical(&h.name)).into_owned();
        if let Value::Array(a) = headers
            .entry(name)
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            a.push(Value::String(
                String::from_utf8_lossy(&h.value).into_owned(),
            ));
        }
    }
    let path = super::forward::unescape(head.path(), false)
        .unwrap_or_else(|| String::from_utf8_lossy(head.path()).into_owned());
    let body = serde_json::json!({
        "req_uri": String::from_utf8_lossy(&head.target),
        "req_uri_details": {"user": "", "host": host, "path": path, "query": encoded, "fragment": ""},
        "req_method": String::from_utf8_lossy(&head.method),
        "req_querystring": query,
        "req_body": String::from_utf8_lossy(body),
        "req_headers": headers,
    });
    Response::json(200, Bytes::from(body.to_string()))
}

/// Go's `time.Time.String()` in UTC without the monotonic part:
/// `2026-11-26 07:00:00.123456789 +0000 UTC`.
fn go_time(since_epoch: std::time::Duration) -> String {
    let secs = since_epoch.as_secs();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    let nanos = since_epoch.subsec_nanos();
    let mut frac = format!("{nanos:09}");
    while frac.ends_with('0') {
        frac.pop();
    }
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}{frac} +0000 UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_time_strings_trim_trailing_zero_nanos() {
        let t = std::time::Duration::new(1_795_676_400, 120_000_000);
        assert_eq!(go_time(t), "2026-11-26 07:00:00.12 +0000 UTC");
        assert_eq!(
            go_time(std::time::Duration::new(0, 0)),
            "1970-01-01 00:00:00 +0000 UTC"
        );
    }
}
