//! The proxy layer's request and response checks, in KrakenD CE's order: `validation/cel`
//! (request checks), then `validation/json-schema`, around the merge; backend-level CEL around
//! one backend call. Only endpoints that configure them pay for building their variables.

use super::forward::{self, Inbound};
use crate::backend::OutRequest;
use crate::guard::cel::{self, CelChecks};
use crate::json::Fields;
use crate::plan::EndpointPlan;

/// The endpoint's CEL request checks, then its JSON schema. `Err((status, text))`.
pub(super) fn before(ep: &EndpointPlan, inb: &Inbound<'_>) -> Result<(), (u16, String)> {
    if let Some(c) = ep.cel.as_ref().filter(|c| c.has_pre()) {
        let req = endpoint_request(ep, inb);
        c.check_pre(&req, &cel::now_rfc3339())
            .map_err(|t| (500, t))?;
    }
    if let Some(s) = &ep.json_schema {
        // KrakenD: krakend-jsonschema's errors carry status 400.
        s.check(&inb.body).map_err(|t| (400, t))?;
    }
    Ok(())
}

/// The endpoint's CEL response checks on the final data.
pub(super) fn after(ep: &EndpointPlan, data: &Fields, complete: bool) -> Result<(), String> {
    let Some(c) = ep.cel.as_ref().filter(|c| c.has_post()) else {
        return Ok(());
    };
    // KrakenD: lura's merger sets no status; a single backend's response keeps its 200.
    let status = if ep.backends.len() == 1 { 200 } else { 0 };
    post(c, data, complete, status)
}

/// A backend's CEL request checks on the request about to be sent.
pub(super) fn backend_before(
    c: &CelChecks,
    out: &OutRequest,
    params: &[(&str, String)],
) -> Result<(), String> {
    if !c.has_pre() {
        return Ok(());
    }
    let method = String::from_utf8_lossy(&out.method);
    let (path, query) = match out.path_and_query.split_once('?') {
        Some((p, q)) => (p, forward::parse_query(q.as_bytes())),
        None => (out.path_and_query.as_str(), Vec::new()),
    };
    let req = cel::Request {
        method: &method,
        path,
        params,
        headers: out.headers.iter().map(|(k, v)| text_pair(k, v)).collect(),
        query,
    };
    c.check_pre(&req, &cel::now_rfc3339())
}

/// A backend's CEL response checks on its shaped data.
pub(super) fn backend_after(c: &CelChecks, data: &Fields) -> Result<(), String> {
    post(c, data, true, 200)
}

fn post(c: &CelChecks, data: &Fields, complete: bool, status: u16) -> Result<(), String> {
    let mut raw = Vec::new();
    data.write_object(&mut raw);
    let value: serde_json::Value = serde_json::from_slice(&raw).unwrap_or_default();
    let resp = cel::Response {
        completed: complete,
        status,
        headers: Vec::new(),
        data: &value,
    };
    c.check_post(&resp, &cel::now_rfc3339())
}

/// What lura's request carries into the proxy layer: the client's method and path, the
/// headers `input_headers` lets through (canonical names) plus the ones KrakenD adds, and
/// the query `input_query_strings` lets through.
fn endpoint_request<'a>(ep: &EndpointPlan, inb: &'a Inbound<'a>) -> cel::Request<'a> {
    let mut headers: Vec<(String, String)> = inb
        .head
        .headers
        .iter()
        .filter(|h| ep.headers.allows_header(&h.name))
        .map(|h| text_pair(&forward::canonical(&h.name), &h.value))
        .collect();
    headers.push(("X-Forwarded-For".into(), inb.client_ip.to_string()));
    if let Some(host) = inb.head.headers.get("host") {
        headers.push((
            "X-Forwarded-Host".into(),
            String::from_utf8_lossy(host).into(),
        ));
    }
    cel::Request {
        method: std::str::from_utf8(&inb.head.method).unwrap_or(""),
        path: std::str::from_utf8(inb.head.path()).unwrap_or(""),
        params: inb.params,
        headers,
        query: inb
            .query
            .iter()
            .filter(|(k, _)| ep.query.allows_key(k))
            .cloned()
            .collect(),
    }
}

fn text_pair(k: &[u8], v: &[u8]) -> (String, String) {
    (
        String::from_utf8_lossy(k).into_owned(),
        String::from_utf8_lossy(v).into_owned(),
    )
}
