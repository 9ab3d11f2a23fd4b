//! The endpoint pipe, in lura's order: call the backends (one; several in parallel or in
//! sequence; each possibly `concurrent_calls` times), shape each body, merge, endpoint flatmap,
//! `proxy.static`, then KrakenD's status policy and render. `no-op` endpoints stream instead.
//!
//! Submodules: `call` (one backend call, concurrent calls), `merge` (parallel and sequential).

mod cached;
mod call;
mod merge;
mod validate;

use super::forward::{self, Inbound};
use super::{with_version, Response, WorkerCtx};
use crate::backend::client::Streaming;
use crate::backend::BackendError;
use crate::http::request::RequestHead;
use crate::json::{self, Fields};
use crate::plan::{BackendPlan, EndpointPlan, Output, Plan, StaticResponse, StaticStrategy};
use bytes::Bytes;
use call::{Failure, Outcome};
use std::net::SocketAddr;
use std::time::Instant;

/// What the proxy stack produced, in lura's terms: a response (data and its complete flag)
/// and an error, either or both (a partial merge has both).
struct Pipe {
    /// lura's `*Response`; `None` is a nil response.
    data: Option<Fields>,
    /// `IsComplete`; always false without data.
    complete: bool,
    error: Option<PipeError>,
}

enum PipeError {
    /// One backend's own error, unwrapped (a single backend, or the first of a sequence), so
    /// `return_error_code` can pass its status through.
    Backend { failure: Failure, pass_status: bool },
    /// lura's `mergeError`, or any other error: only its text matters (a 500).
    Merge(String),
}

pub(super) async fn endpoint(
    plan: &Plan,
    ctx: &WorkerCtx,
    ep: &EndpointPlan,
    head: &RequestHead,
    body: Bytes,
    params: &[(&str, String)],
    peer: SocketAddr,
) -> Response {
    if let Some(blocked) = &ep.blocked {
        return Response::json(501, blocked.clone());
    }
    // KrakenD: the endpoint's bot detector is the outermost handler middleware; a bot gets a
    // bare 403 (gin's AbortWithError writes no body).
    if let Some(d) = &ep.bot_detector {
        if d.is_bot(head.headers.get("user-agent").map(|v| &v[..])) {
            return Response::new(403);
        }
    }
    // KrakenD: the router rate limit runs after JWT validation, before the proxy; its refusal
    // is a bare status (gin's AbortWithError writes no body).
    if let Some(limit) = &ep.rate_limit {
        if let Err(refused) = limit.admit(head, params, peer.ip()) {
            return Response::new(refused.status());
        }
    }
    let server = &plan.server;
    let inb = Inbound {
        head,
        body,
        client_ip: forward::client_ip(head, peer.ip(), server.client_ip_headers.as_deref()),
        params,
        query: head.query().map(forward::parse_query).unwrap_or_default(),
    };
    if ep.cel.is_some() || ep.json_schema.is_some() {
        if let Err((status, text)) = validate::before(ep, &inb) {
            crate::warn!("[ENDPOINT: {}] {}", ep.path, text);
            return with_version(plan, failure_response(plan, status, text));
        }
    }
    let start = Instant::now();
    let mut pipe = match ep.backends.as_slice() {
        [] => return with_version(plan, Response::new(500)),
        [b] if ep.output == Output::NoOp => {
            let out = forward::build(server, ep, b, &inb, &|_, _| None);
            let r = call::call_no_op(plan, ctx, b, &out, start + ep.timeout).await;
            return with_version(plan, no_op(r));
        }
        [b] => {
            let out = forward::build(server, ep, b, &inb, &|_, _| None);
            let o = call::call(
                plan,
                ctx,
                ep,
                b,
                (&out, inb.params),
                start + ep.timeout,
                start,
            )
            .await;
            single(b, o)
        }
        many => {
            let pipe = if ep.sequential {
                merge::sequential(plan, ctx, ep, many, &inb, start).await
            } else {
                merge::parallel(plan, ctx, ep, many, &inb, start).await
            };
            flatmap(ep, pipe)
        }
    };
    if let Some(s) = &ep.static_response {
        apply_static(s, &mut pipe);
    }
    // KrakenD: the CEL response checks wrap the whole pipe and see only an answer without error.
    if let (Some(data), None) = (&pipe.data, &pipe.error) {
        if let Err(text) = validate::after(ep, data, pipe.complete) {
            pipe.data = None;
            pipe.complete = false;
            pipe.error = Some(PipeError::Merge(text));
        }
    }
    // Only `negotiate` reads Accept: the other encodings skip the header lookup.
    let accept = (ep.output == Output::Negotiate)
        .then(|| head.headers.get("accept").map(|v| &v[..]))
        .flatten();
    with_version(plan, finish(plan, ep, pipe, accept))
}

/// A single backend: its data, its error details as data, or its error.
fn single(b: &BackendPlan, outcome: Outcome) -> Pipe {
    match outcome {
        Outcome::Data(fields) => Pipe {
            data: Some(fields),
            complete: true,
            error: None,
        },
        Outcome::Failed(f) => match detail_of(b, &f) {
            // KrakenD: error details are a response without an error, never complete.
            Some(d) => Pipe {
                data: Some(d),
                complete: false,
                error: None,
            },
            None => Pipe {
                data: None,
                complete: false,
                error: Some(PipeError::Backend {
                    pass_status: b.return_error_code,
                    failure: f,
                }),
            },
        },
    }
}

/// Endpoint-level `proxy.flatmap_filter`, after the merge (only compiled for several backends).
fn flatmap(ep: &EndpointPlan, mut pipe: Pipe) -> Pipe {
    let Some(fm) = &ep.flatmap else {
        return pipe;
    };
    // KrakenD: the flatmap middleware hands back a response that came with an error (a
    // partial merge) untouched.
    if pipe.error.is_some() {
        return pipe;
    }
    let Some(data) = pipe.data.take() else {
        return pipe;
    };
    match fm.apply(data) {
        Ok(d) => pipe.data = Some(d),
        Err(e) => {
            pipe.complete = false;
            pipe.error = Some(PipeError::Merge(format!("flatmap_filter: {e}")));
        }
    }
    pipe
}

/// `proxy.static` (lura `proxy/static.go`): when the strategy matches, the static keys are
/// written over the response's (static wins a collision), creating an empty response when
/// there was none. The error stays, and so does the complete flag.
fn apply_static(s: &StaticResponse, pipe: &mut Pipe) {
    let errored = pipe.error.is_some();
    let matched = match s.strategy {
        StaticStrategy::Always => true,
        StaticStrategy::Success => !errored,
        StaticStrategy::Errored => errored,
        StaticStrategy::Complete => !errored && pipe.data.is_some() && pipe.complete,
        StaticStrategy::Incomplete => pipe.data.is_none() || !pipe.complete,
    };
    if matched {
        let data = pipe.data.take().unwrap_or_default();
        pipe.data = Some(json::merge(vec![data, s.data.clone()]));
    }
}

/// KrakenD's status policy (lura `router/gin/endpoint.go`): any response is rendered as a 200,
/// error or not; without one, the backend's status under `return_error_code` (single backend
/// or first of a sequence only), else 500.
fn finish(plan: &Plan, ep: &EndpointPlan, pipe: Pipe, accept: Option<&[u8]>) -> Response {
    if let Some(data) = pipe.data {
        return crate::render::render(ep, &data, pipe.complete, accept);
    }
    match pipe.error {
        Some(PipeError::Backend {
            failure: f,
            pass_status: true,
        }) if f.status.is_some() => {
            let status = f.status.unwrap_or(500);
            let mut resp = Response::new(status).header("X-Krakend-Completed", "false");
            if plan.server.return_error_msg {
                if let Some(ct) = f.content_type {
                    resp = resp.header("Content-Type", ct);
                }
                resp.body = f.body;
            }
            resp
        }
        Some(PipeError::Backend { failure, .. }) => failure_response(plan, 500, failure.text),
        Some(PipeError::Merge(text)) => failure_response(plan, 500, text),
        None => failure_response(plan, 500, String::new()),
    }
}

/// `no-op`: the backend's status, headers and body as they are; 500 when it can't be reached.
fn no_op(result: Result<Streaming, BackendError>) -> Response {
    const SKIP: [&[u8]; 8] = [
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"content-length",
        b"date",
        b"proxy-connection",
        b"trailer",
        b"upgrade",
    ];
    match result {
        Ok(mut r) => {
            let mut resp = Response::new(r.status);
            for h in r.headers.iter() {
                if !SKIP.iter().any(|x| x.eq_ignore_ascii_case(&h.name)) {
                    resp.headers.push((h.name.clone(), h.value.clone()));
                }
            }
            r.headers = crate::http::Headers::default();
            resp.stream = Some(Box::new(r));
            // KrakenD: no-op responses always say the data is not "complete".
            resp.header("X-Krakend-Completed", "false")
        }
        Err(_) => Response::new(500).header("X-Krakend-Completed", "false"),
    }
}

/// `backend/http.return_error_details`: a failure with a backend status as data under
/// `error_<name>`. None when the backend does not ask for details or never answered.
fn detail_of(b: &BackendPlan, f: &Failure) -> Option<Fields> {
    let (name, status) = (b.return_error_details.as_ref()?, f.status?);
    let mut detail = serde_json::Map::new();
    detail.insert("http_status_code".into(), status.into());
    // KrakenD: `http_body` and `http_body_encoding` are `omitempty` in lura's HTTPResponseError.
    if !f.body.is_empty() {
        detail.insert(
            "http_body".into(),
            String::from_utf8_lossy(&f.body).into_owned().into(),
        );
    }
    if let Some(ct) = f.content_type.as_ref().filter(|c| !c.is_empty()) {
        detail.insert(
            "http_body_encoding".into(),
            String::from_utf8_lossy(ct).into_owned().into(),
        );
    }
    let mut wrapper = serde_json::Map::new();
    wrapper.insert(format!("error_{name}"), detail.into());
    Some(json::from_value(&wrapper.into()))
}

/// An error status (500, or 400 for a body the JSON schema rejects), with the error text as
/// the body only when `router.return_error_msg` asks for it.
fn failure_response(plan: &Plan, status: u16, text: String) -> Response {
    let resp = if plan.server.return_error_msg {
        Response::text(status, text)
    } else {
        Response::new(status)
    };
    resp.header("X-Krakend-Completed", "false")
}
