//! The endpoint pipe: call the backends (one, or all concurrently on this core), shape each
//! body, merge, apply KrakenD's status policy and render. `no-op` endpoints stream instead.

use super::forward::{self, Inbound};
use super::{with_version, Response, WorkerCtx};
use crate::backend::client::{self, CallOpts, Streaming};
use crate::backend::{BackendError, OutRequest};
use crate::http::request::RequestHead;
use crate::json::{self, Fields};
use crate::plan::{BackendPlan, EndpointPlan, Output, Plan};
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use std::time::Instant;

/// What one backend call produced, after KrakenD's success rule (only 200 and 201).
enum Outcome {
    Data(Fields),
    Failed(Failure),
}

struct Failure {
    /// The backend's status when it answered (None: transport error, timeout, bad body).
    status: Option<u16>,
    body: Bytes,
    content_type: Option<Bytes>,
    text: String,
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
    let server = &plan.server;
    let inb = Inbound {
        head,
        body,
        client_ip: forward::client_ip(head, peer.ip(), server.client_ip_headers.as_deref()),
        params,
        query: head.query().map(forward::parse_query).unwrap_or_default(),
    };
    let start = Instant::now();
    let resp = match ep.backends.as_slice() {
        [] => Response::new(500),
        [b] if ep.output == Output::NoOp => {
            let out = forward::build(server, ep, b, &inb, &|_, _| None);
            no_op(call_stream(plan, ctx, b, &out, start + ep.timeout).await)
        }
        [b] => {
            let out = forward::build(server, ep, b, &inb, &|_, _| None);
            let outcome = outcome(plan, ctx, b, &out, start + ep.timeout).await;
            single(plan, ep, b, outcome)
        }
        many => {
            // KrakenD: backends of a merging endpoint get 85% of the endpoint timeout.
            let deadline = start + ep.timeout.mul_f64(0.85);
            let calls = many.iter().map(|b| {
                let out = forward::build(server, ep, b, &inb, &|_, _| None);
                async move { outcome(plan, ctx, b, &out, deadline).await }
            });
            let outcomes = futures_util::future::join_all(calls).await;
            merged(plan, ep, many, outcomes)
        }
    };
    with_version(plan, resp)
}

/// Call one backend, read its whole body and shape it.
async fn outcome(
    plan: &Plan,
    ctx: &WorkerCtx,
    b: &BackendPlan,
    out: &OutRequest,
    deadline: Instant,
) -> Outcome {
    let failed = |text: String| {
        Outcome::Failed(Failure {
            status: None,
            body: Bytes::new(),
            content_type: None,
            text,
        })
    };
    let mut s = match call_stream(plan, ctx, b, out, deadline).await {
        Ok(s) => s,
        Err(e) => return failed(e.to_string()),
    };
    let mut body = BytesMut::new();
    loop {
        match s.next_chunk(&mut body, plan.server.backend.max_body).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                crate::warn!("[BACKEND: {}] {}", b.url_pattern, e);
                return failed(e.to_string());
            }
        }
    }
    let (status, url) = (s.status, std::mem::take(&mut s.url));
    let content_type = s.headers.get("content-type").cloned();
    s.finish(&ctx.pool);
    let body = body.freeze();
    if status != 200 && status != 201 {
        let text = format!(
            "invalid status code {status} [{} {}]: {url}",
            String::from_utf8_lossy(&b.method),
            b.url_pattern
        );
        return Outcome::Failed(Failure {
            status: Some(status),
            body,
            content_type,
            text,
        });
    }
    match b.shape.apply(body) {
        Ok(fields) => Outcome::Data(fields),
        Err(e) => {
            crate::warn!("[BACKEND: {}] decoding the body: {e}", b.url_pattern);
            failed(format!("decoding the backend response: {e}"))
        }
    }
}

async fn call_stream(
    plan: &Plan,
    ctx: &WorkerCtx,
    b: &BackendPlan,
    out: &OutRequest,
    deadline: Instant,
) -> Result<Streaming, BackendError> {
    let n = b.targets.len();
    let target = match n {
        0 => None,
        1 => b.targets.first(),
        _ => {
            let i = ctx.rr.get();
            ctx.rr.set(i.wrapping_add(1));
            b.targets.get(i % n)
        }
    }
    .ok_or(BackendError::NoHost)?;
    let s = &plan.server.backend;
    let opts = CallOpts {
        deadline,
        dial_timeout: s.dial_timeout,
        response_header_timeout: s.response_header_timeout,
        idle_timeout: s.idle_timeout,
        keep_alive: s.keep_alive,
        max_idle: s.max_idle,
        max_body: s.max_body,
        limits: s.limits,
    };
    let r = client::call_stream(&ctx.pool, target, out, &opts).await;
    if let Err(e) = &r {
        crate::warn!("[BACKEND: {}] {}", b.url_pattern, e);
    }
    r
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

/// `backend/http.return_error_details`: the failure as data under `error_<name>`.
fn detail(name: &str, f: &Failure) -> Fields {
    let ct = f
        .content_type
        .as_ref()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    json::from_value(&serde_json::json!({
        format!("error_{name}"): {
            "http_status_code": f.status.unwrap_or(0),
            "http_body": String::from_utf8_lossy(&f.body),
            "http_body_encoding": ct,
        }
    }))
}

/// KrakenD's single-backend status policy.
fn single(plan: &Plan, ep: &EndpointPlan, b: &BackendPlan, outcome: Outcome) -> Response {
    let f = match outcome {
        Outcome::Data(fields) => return crate::render::render(ep, &fields, true),
        Outcome::Failed(f) => f,
    };
    if let (Some(name), Some(_)) = (&b.return_error_details, f.status) {
        return crate::render::render(ep, &detail(name, &f), false);
    }
    if let (true, Some(status)) = (b.return_error_code, f.status) {
        let mut resp = Response::new(status).header("X-Krakend-Completed", "false");
        if plan.server.return_error_msg {
            if let Some(ct) = f.content_type {
                resp = resp.header("Content-Type", ct);
            }
            resp.body = f.body;
        }
        return resp;
    }
    failure(plan, f.text)
}

/// Several backends: merge what arrived (declaration order, later wins a key collision),
/// partial when any failed, 500 when nothing did.
fn merged(
    plan: &Plan,
    ep: &EndpointPlan,
    backends: &[BackendPlan],
    outcomes: Vec<Outcome>,
) -> Response {
    let mut parts = Vec::with_capacity(outcomes.len());
    let mut complete = true;
    let mut first_error = None;
    for (b, o) in backends.iter().zip(outcomes) {
        match o {
            Outcome::Data(f) => parts.push(f),
            Outcome::Failed(f) => {
                complete = false;
                if let (Some(name), Some(_)) = (&b.return_error_details, f.status) {
                    parts.push(detail(name, &f));
                } else if first_error.is_none() {
                    first_error = Some(f.text);
                }
            }
        }
    }
    if parts.is_empty() {
        return failure(plan, first_error.unwrap_or_default());
    }
    let mut data = json::merge(parts);
    if let Some(fm) = &ep.flatmap {
        data = match fm.apply(data) {
            Ok(d) => d,
            Err(e) => return failure(plan, format!("flatmap_filter: {e}")),
        };
    }
    crate::render::render(ep, &data, complete)
}

/// 500, with the error text as the body only when `router.return_error_msg` asks for it.
fn failure(plan: &Plan, text: String) -> Response {
    let resp = if plan.server.return_error_msg {
        Response::text(500, text)
    } else {
        Response::new(500)
    };
    resp.header("X-Krakend-Completed", "false")
}
