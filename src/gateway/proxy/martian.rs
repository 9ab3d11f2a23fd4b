//! `modifier/martian` around one backend call (krakend-martian wraps lura's HTTP request
//! executor): request modifiers on the request about to be sent, response modifiers on the
//! raw answer before it is decoded (or relayed, for no-op).

use super::call::Fetched;
use crate::backend::client::Streaming;
use crate::backend::{Addrs, OutRequest, Target};
use crate::http::{Header, Headers};
use crate::modifier::martian::{Exchange, Martian, Outgoing};
use crate::plan::BackendPlan;
use bytes::Bytes;

/// The request after the request modifiers, the host it goes to when they changed it (an IP
/// address only: a name would need a lookup the plan did not prepare), and the request as
/// the response modifiers see it.
pub(super) fn request(
    m: &Martian,
    b: &BackendPlan,
    out: &OutRequest,
    target: Option<&Target>,
) -> Result<(OutRequest, Option<Target>, Outgoing), String> {
    let authority = match target {
        Some(t) => t.authority.clone(),
        None => b.hosts.first_authority(),
    };
    let mut og = Outgoing::new(
        &authority,
        &out.path_and_query,
        out.headers.clone(),
        out.body.clone(),
    );
    m.request(&mut og);
    let target = if og.host == authority {
        target.cloned()
    } else {
        Some(
            Target::compile(&format!("http://{}", og.host))
                .ok()
                .filter(|t| matches!(t.addrs, Addrs::Fixed(_)))
                .ok_or_else(|| {
                    format!(
                        "modifier/martian: the backend host may change to an IP address only, not {:?}",
                        og.host
                    )
                })?,
        )
    };
    // The client writes `Host` from the host called.
    let headers = og
        .headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case(b"host"))
        .cloned()
        .collect();
    let next = OutRequest {
        method: out.method.clone(),
        path_and_query: og.path_and_query(),
        headers,
        body: og.body.clone(),
        params: Vec::new(),
        trace: out.trace,
    };
    Ok((next, target, og))
}

/// The response modifiers on a whole answer.
pub(super) fn response(m: &Martian, og: &Outgoing, f: Fetched, headers: Headers) -> Fetched {
    let mut ex = Exchange {
        status: f.status,
        headers: headers.0.into_iter().map(|h| (h.name, h.value)).collect(),
        body: f.body,
        body_replaced: false,
        request: og,
    };
    m.response(&mut ex);
    let content_type = ex
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(b"content-type"))
        .map(|(_, v)| v.clone());
    Fetched {
        status: ex.status,
        content_type,
        body: ex.body,
        url: f.url,
    }
}

/// The response modifiers on a streamed (no-op) answer: its status and headers change in
/// place; a replaced body is returned (the backend's is then never read).
pub(super) fn stream_response(m: &Martian, og: &Outgoing, s: &mut Streaming) -> Option<Bytes> {
    let headers = std::mem::take(&mut s.headers);
    let mut ex = Exchange {
        status: s.status,
        headers: headers.0.into_iter().map(|h| (h.name, h.value)).collect(),
        body: Bytes::new(),
        body_replaced: false,
        request: og,
    };
    m.response(&mut ex);
    s.status = ex.status;
    s.headers = Headers(
        ex.headers
            .into_iter()
            .map(|(name, value)| Header { name, value })
            .collect(),
    );
    ex.body_replaced.then_some(ex.body)
}

/// The headers a cached answer is known by (the cache keeps the body and its type).
pub(super) fn cached_headers(f: &Fetched) -> Headers {
    Headers(
        f.content_type
            .iter()
            .map(|v| Header {
                name: Bytes::from_static(b"Content-Type"),
                value: v.clone(),
            })
            .collect(),
    )
}
