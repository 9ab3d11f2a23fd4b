//! One backend call as the endpoint pipe sees it: call, read the whole body, apply KrakenD's
//! success rule (200/201) and shape it; with `concurrent_calls`, the same request fired N times
//! and the first success taken.

use crate::backend::client::{self, CallOpts, Streaming};
use crate::backend::{BackendError, Hosts, OutRequest, Target};
use crate::gateway::WorkerCtx;
use crate::http::Headers;
use crate::json::Fields;
use crate::plan::{BackendPlan, EndpointPlan, Plan};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::time::Instant;

/// What one backend call produced, after KrakenD's success rule (only 200 and 201).
pub(super) enum Outcome {
    Data(Fields),
    Failed(Failure),
}

pub(super) struct Failure {
    /// The backend's status when it answered (None: transport error, timeout, bad body).
    pub status: Option<u16>,
    pub body: Bytes,
    pub content_type: Option<Bytes>,
    pub text: String,
}

impl Failure {
    fn transport(text: String) -> Failure {
        Failure {
            status: None,
            body: Bytes::new(),
            content_type: None,
            text,
        }
    }

    /// The error text lura reports for this backend: with `return_error_code` the error is an
    /// `HTTPResponseError`, whose text is the backend's body.
    pub fn error_text(self, b: &BackendPlan) -> String {
        if b.return_error_code && self.status.is_some() {
            String::from_utf8_lossy(&self.body).into_owned()
        } else {
            self.text
        }
    }
}

/// Call backend `b` once, or `concurrent_calls` times at once keeping the first success.
/// `deadline` is the caller's; `start` is when the request's pipe began.
pub(super) async fn call(
    plan: &Plan,
    ctx: &WorkerCtx,
    ep: &EndpointPlan,
    b: &BackendPlan,
    (out, params): (&OutRequest, &[(&str, String)]),
    deadline: Instant,
    start: Instant,
) -> Outcome {
    if ep.concurrent_calls <= 1 {
        return outcome(plan, ctx, b, out, params, deadline).await;
    }
    // KrakenD (proxy/concurrent.go): the concurrent calls get 75% of the endpoint timeout,
    // nested inside any outer window (the merger's 85%).
    let deadline = deadline.min(start + ep.timeout.mul_f64(0.75));
    let mut calls: FuturesUnordered<_> = (0..ep.concurrent_calls)
        .map(|_| outcome(plan, ctx, b, out, params, deadline))
        .collect();
    let mut last = None;
    while let Some(o) = calls.next().await {
        match o {
            // Returning drops the calls still in flight: their operations are cancelled and
            // their connections closed (KrakenD cancels their context).
            Outcome::Data(_) => return o,
            // KrakenD: with no success, the last failure to arrive is the answer.
            Outcome::Failed(_) => last = Some(o),
        }
    }
    last.unwrap_or_else(|| Outcome::Failed(Failure::transport("no concurrent call ran".into())))
}

/// A whole backend response, live or from `qos/http-cache`.
pub(super) struct Fetched {
    pub status: u16,
    pub content_type: Option<Bytes>,
    pub body: Bytes,
    /// The URL called, for error messages (set only when the status is not 200/201).
    pub url: String,
}

/// Call one backend through its circuit breaker, if any.
async fn outcome(
    plan: &Plan,
    ctx: &WorkerCtx,
    b: &BackendPlan,
    out: &OutRequest,
    params: &[(&str, String)],
    deadline: Instant,
) -> Outcome {
    let Some(cb) = &b.circuit_breaker else {
        return checked_attempt(plan, ctx, b, out, params, deadline).await;
    };
    let permit = match cb.admit() {
        Ok(p) => p,
        // Not logged: refusals come in floods, and they are the breaker working.
        Err(e) => return Outcome::Failed(Failure::transport(e.to_string())),
    };
    let o = checked_attempt(plan, ctx, b, out, params, deadline).await;
    // KrakenD: every error of the backend stack counts (transport, timeout, rate limit,
    // status policy, decoding); with `return_error_details` a status is data, not an error.
    let ok = match &o {
        Outcome::Data(_) => true,
        Outcome::Failed(f) => f.status.is_some() && b.return_error_details.is_some(),
    };
    permit.finish(ok);
    o
}

/// A backend's `validation/cel` around its call (inside the circuit breaker, as KrakenD's
/// backend factories stack them): a rejection fails the backend.
async fn checked_attempt(
    plan: &Plan,
    ctx: &WorkerCtx,
    b: &BackendPlan,
    out: &OutRequest,
    params: &[(&str, String)],
    deadline: Instant,
) -> Outcome {
    let Some(c) = &b.cel else {
        return attempt(plan, ctx, b, out, deadline).await;
    };
    if let Err(text) = super::validate::backend_before(c, out, params) {
        crate::warn!("[BACKEND: {}][CEL] {}", b.url_pattern, text);
        return Outcome::Failed(Failure::transport(text));
    }
    match attempt(plan, ctx, b, out, deadline).await {
        Outcome::Data(d) => match super::validate::backend_after(c, &d) {
            Ok(()) => Outcome::Data(d),
            Err(text) => {
                crate::warn!("[BACKEND: {}][CEL] {}", b.url_pattern, text);
                Outcome::Failed(Failure::transport(text))
            }
        },
        failed => failed,
    }
}

/// Call one backend (or reuse its cached answer: KrakenD's cache is inside the HTTP client,
/// under the circuit breaker and the rate limit), read its whole body and shape it.
async fn attempt(
    plan: &Plan,
    ctx: &WorkerCtx,
    b: &BackendPlan,
    out: &OutRequest,
    deadline: Instant,
) -> Outcome {
    let fetched = match &b.http_cache {
        Some(cache) if super::cached::applies(out) => {
            super::cached::fetch(plan, ctx, b, cache, out, deadline).await
        }
        _ => fetch(plan, ctx, b, out, deadline).await,
    };
    match fetched {
        Ok(f) => judge(b, f),
        Err(e) => Outcome::Failed(Failure::transport(e.to_string())),
    }
}

/// Call one backend and read its whole body.
async fn fetch(
    plan: &Plan,
    ctx: &WorkerCtx,
    b: &BackendPlan,
    out: &OutRequest,
    deadline: Instant,
) -> Result<Fetched, BackendError> {
    let s = call_stream(plan, ctx, b, out, deadline).await?;
    read_whole(plan, ctx, b, s).await.map(|(f, _)| f)
}

/// Read the rest of a response's body and give its connection back; the response's headers
/// come along for the cache.
pub(super) async fn read_whole(
    plan: &Plan,
    ctx: &WorkerCtx,
    b: &BackendPlan,
    mut s: Streaming,
) -> Result<(Fetched, Headers), BackendError> {
    let mut body = BytesMut::new();
    loop {
        match s.next_chunk(&mut body, plan.server.backend.max_body).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                crate::warn!("[BACKEND: {}] {}", b.url_pattern, e);
                return Err(e);
            }
        }
    }
    let (status, url, headers) = (
        s.status,
        std::mem::take(&mut s.url),
        std::mem::take(&mut s.headers),
    );
    s.finish(&ctx.pool);
    let fetched = Fetched {
        status,
        content_type: headers.get("content-type").cloned(),
        body: body.freeze(),
        url,
    };
    Ok((fetched, headers))
}

/// KrakenD's success rule (200/201) and the backend's shaping, the same for a live and a
/// cached response.
fn judge(b: &BackendPlan, f: Fetched) -> Outcome {
    let Fetched {
        status,
        content_type,
        body,
        url,
    } = f;
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
            Outcome::Failed(Failure::transport(format!(
                "decoding the backend response: {e}"
            )))
        }
    }
}

/// A `no-op` call: through the circuit breaker, if any, then [`call_stream`]. Any status
/// counts as a success (KrakenD: no-op has no status policy); only errors count.
pub(super) async fn call_no_op(
    plan: &Plan,
    ctx: &WorkerCtx,
    b: &BackendPlan,
    out: &OutRequest,
    deadline: Instant,
) -> Result<Streaming, BackendError> {
    let Some(cb) = &b.circuit_breaker else {
        return call_stream(plan, ctx, b, out, deadline).await;
    };
    let permit = cb.admit()?;
    let r = call_stream(plan, ctx, b, out, deadline).await;
    permit.finish(r.is_ok());
    r
}

/// Pick a host (round robin per core), call it and follow redirects; the body stays on the
/// connection.
pub(super) async fn call_stream(
    plan: &Plan,
    ctx: &WorkerCtx,
    b: &BackendPlan,
    out: &OutRequest,
    deadline: Instant,
) -> Result<Streaming, BackendError> {
    admit(b)?;
    let r = pick_and_call(plan, ctx, b, out, deadline).await;
    if let Err(e) = &r {
        crate::warn!("[BACKEND: {}] {}", b.url_pattern, e);
    }
    r
}

/// KrakenD: the backend rate limit sits outside the HTTP client (and so outside its cache); a
/// refused call is an error like any other (500 or a partial response), and each concurrent
/// call takes a token.
pub(super) fn admit(b: &BackendPlan) -> Result<(), BackendError> {
    match &b.rate_limit {
        // Not logged: refusals come in floods, and they are the limit working.
        Some(limit) if !limit.admit() => Err(BackendError::RateLimited),
        _ => Ok(()),
    }
}

async fn pick_and_call(
    plan: &Plan,
    ctx: &WorkerCtx,
    b: &BackendPlan,
    out: &OutRequest,
    deadline: Instant,
) -> Result<Streaming, BackendError> {
    let picked = pick(ctx, b, deadline).await?;
    client::call_stream(&ctx.pool, picked.target()?, out, &opts(plan, deadline)).await
}

/// The host one call goes to: the plan's, or one of an `sd: dns` answer (held for the call).
pub(super) enum Picked<'a> {
    Static(&'a Target),
    Srv(std::sync::Arc<Result<Vec<Target>, String>>, usize),
}

impl Picked<'_> {
    pub fn target(&self) -> Result<&Target, BackendError> {
        match self {
            Picked::Static(t) => Ok(t),
            Picked::Srv(answer, i) => match &**answer {
                Ok(t) => t.get(*i).ok_or(BackendError::NoHost),
                Err(e) => Err(BackendError::Resolve(e.clone())),
            },
        }
    }
}

/// Pick this call's host, round robin per core.
pub(super) async fn pick<'a>(
    ctx: &WorkerCtx,
    b: &'a BackendPlan,
    deadline: Instant,
) -> Result<Picked<'a>, BackendError> {
    let next = |n: usize| match n {
        0 => Err(BackendError::NoHost),
        1 => Ok(0),
        _ => {
            let i = ctx.rr.get();
            ctx.rr.set(i.wrapping_add(1));
            Ok(i % n)
        }
    };
    match &b.hosts {
        Hosts::Static(t) => {
            let i = next(t.len())?;
            t.get(i).map(Picked::Static).ok_or(BackendError::NoHost)
        }
        Hosts::Srv(entry) => {
            let srv = entry.get(deadline).await.ok_or(BackendError::Timeout)?;
            let n = match &*srv {
                Ok(t) => t.len(),
                Err(e) => return Err(BackendError::Resolve(e.clone())),
            };
            let i = next(n)?;
            Ok(Picked::Srv(srv, i))
        }
    }
}

/// The client settings of one call.
pub(super) fn opts(plan: &Plan, deadline: Instant) -> CallOpts {
    let s = &plan.server.backend;
    CallOpts {
        deadline,
        dial_timeout: s.dial_timeout,
        response_header_timeout: s.response_header_timeout,
        idle_timeout: s.idle_timeout,
        keep_alive: s.keep_alive,
        compression: s.compression,
        max_idle: s.max_idle,
        max_body: s.max_body,
        limits: s.limits,
    }
}
