//! The endpoint pipe, in lura's order: call the backends (one; several in parallel or in
//! sequence; each possibly `concurrent_calls` times), shape each body, merge, endpoint flatmap,
//! `proxy.static`, then KrakenD's status policy and render. `no-op` endpoints stream instead.
//!
//! Submodules: `call` (one backend call, concurrent calls), `merge` (parallel and sequential).

mod cached;
mod call;
mod direct;
mod lua;
pub(crate) use lua::http as lua_http;
mod martian;
mod merge;
mod validate;

use super::forward::{self, Inbound};
use super::{with_version, Response, WorkerCtx};
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
    /// Headers a `modifier/lua-proxy` post script set (KrakenD: the response's metadata
    /// headers, written when there is data).
    headers: Vec<(Bytes, Bytes)>,
}

enum PipeError {
    /// A `modifier/lua-proxy` script failed: its `custom_error` status, or 500.
    Lua(crate::modifier::lua::LuaError),
    /// One backend's own error, unwrapped (a single backend, or the first of a sequence), so
    /// `return_error_code` can pass its status through.
    Backend { failure: Failure, pass_status: bool },
    /// lura's `mergeError`, or any other error: only its text matters (a 500).
    Merge(String),
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn endpoint(
    plan: &Plan,
    ctx: &WorkerCtx,
    ep: &EndpointPlan,
    head: &RequestHead,
    body: Bytes,
    params: &[(&str, String)],
    peer: SocketAddr,
    trace: Option<crate::telemetry::trace::ReqTrace>,
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
    // KrakenD: JWT validation (krakend-jose's gin middleware) refuses with a bare 401 or 403
    // (gin's AbortWithError writes no body).
    let grant = match &ep.jwt {
        Some(v) => match v.admit(head).await {
            Ok(g) => Some(g),
            Err(status) => return Response::new(status),
        },
        None => None,
    };
    // KrakenD: the endpoint's Lua handler runs after the bot detector and JWT, before the
    // router rate limit.
    let rewrite = match &ep.lua_endpoint {
        Some(script) => {
            let http = lua::http(plan, ctx, crate::runtime::clock::now() + ep.timeout);
            match super::lua_endpoint::run(script, head, &body, params, false, &http).await {
                Ok(r) => Some(r),
                Err(resp) => return resp,
            }
        }
        None => None,
    };
    let view: Vec<(&str, String)>;
    let (head, body, params) = match &rewrite {
        Some(r) => {
            view = r.params();
            (&r.head, r.body.clone(), view.as_slice())
        }
        None => (head, body, params),
    };
    // KrakenD: the router rate limit runs after JWT validation, before the proxy; its refusal
    // is a bare status (gin's AbortWithError writes no body).
    if let Some(limit) = &ep.rate_limit {
        if let Err(refused) = limit.admit(head, params, peer.ip()) {
            return Response::new(refused.status());
        }
    }
    let server = &plan.server;
    let mut inb = Inbound {
        head,
        body,
        client_ip: forward::client_ip(head, peer.ip(), server.client_ip_headers.as_deref()),
        params,
        query: head.query().map(forward::parse_query).unwrap_or_default(),
        jwt: ep.jwt.as_ref().zip(grant.as_deref()),
        rewritten: None,
        // KrakenD: a skipped path has no proxy or backend spans (and no propagation).
        trace: std::cell::Cell::new(trace.filter(|_| !ep.labels.as_ref().is_some_and(|l| l.skip))),
    };
    // KrakenD: the CEL request checks and the JSON schema run before the proxy stack (here
    // also before a proxy-level Lua script, which KrakenD runs between the two).
    if ep.cel.is_some() || ep.json_schema.is_some() {
        if let Err((status, text)) = validate::before(ep, &inb) {
            crate::warn!("[ENDPOINT: {}] {}", ep.path, text);
            return with_version(plan, failure_response(plan, status, text));
        }
    }
    let Some(script) = &ep.lua_proxy else {
        return run(plan, ctx, ep, &inb).await;
    };
    // KrakenD: params as lura keys them (first letter upper case) while a script holds them.
    let mut owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (forward::title(k), v.clone()))
        .collect();
    let http = lua::http(plan, ctx, crate::runtime::clock::now() + ep.timeout);
    let run_state = match lua::proxy_pre(script, server, ep, &mut inb, &mut owned, &http).await {
        Ok(r) => r,
        Err(e) => return with_version(plan, finish(plan, ep, lua::pipe_error(e), None)),
    };
    let view: Vec<(&str, String)> = owned.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    inb.params = &view;
    let mut pipe = if script.skip_next {
        // KrakenD: an empty, incomplete response.
        Pipe {
            data: Some(Fields::new()),
            complete: false,
            error: None,
            headers: Vec::new(),
        }
    } else if ep.output == Output::NoOp {
        return no_op_scripted(plan, ctx, ep, &inb, &run_state, &http).await;
    } else {
        pipe(plan, ctx, ep, &inb).await
    };
    if let Err(e) = lua::proxy_post(&run_state, &mut pipe, &http).await {
        pipe = lua::pipe_error(e);
    }
    if let Some(s) = &ep.static_response {
        apply_static(s, &mut pipe);
    }
    if let Some(signer) = &ep.signer {
        return signed(signer, pipe);
    }
    with_version(plan, respond(plan, ep, inb.head, pipe))
}

/// A no-op endpoint under a proxy script: streamed when it has no `post`; else its whole
/// answer (status, headers, body) goes through the script and is written as it leaves it.
async fn no_op_scripted(
    plan: &Plan,
    ctx: &WorkerCtx,
    ep: &EndpointPlan,
    inb: &Inbound<'_>,
    run_state: &lua::ProxyRun,
    http: &crate::modifier::lua::Http<'_>,
) -> Response {
    let ([b], true) = (ep.backends.as_slice(), run_state.session.has_post()) else {
        return run(plan, ctx, ep, inb).await;
    };
    let start = crate::runtime::clock::now();
    let out = forward::build(&plan.server, ep, b, inb, &|_, _| None);
    let answer = match call::call_no_op(plan, ctx, b, &out, start + ep.timeout).await {
        Ok(call::NoOp::Stream(s)) => call::read_whole(plan, ctx, b, *s)
            .await
            .map(|(f, h)| (f.status, h, f.body)),
        Ok(call::NoOp::Whole {
            status,
            headers,
            body,
        }) => Ok((status, headers, body)),
        Err(e) => Err(e),
    };
    let r = match answer {
        Ok((status, headers, body)) => lua::proxy_post_raw(run_state, status, headers, body, http)
            .await
            .map_err(|e| crate::backend::BackendError::Modifier(e.to_string())),
        Err(e) => Err(e),
    };
    with_version(plan, no_op(r))
}

/// The endpoint pipe and its answer, for an endpoint without a proxy-level script.
async fn run(plan: &Plan, ctx: &WorkerCtx, ep: &EndpointPlan, inb: &Inbound<'_>) -> Response {
    if let [b] = ep.backends.as_slice() {
        let deadline = crate::runtime::clock::now() + ep.timeout;
        // Nothing configured between the endpoint and the backend's HTTP call: one state
        // machine for the whole stack instead of a dozen nested pass-throughs (direct.rs).
        if ep.output == Output::NoOp {
            let out = forward::build(&plan.server, ep, b, inb, &|_, _| None);
            let r = if direct::applies(plan, ep, b, out.trace.is_some()) {
                direct::stream(plan, ctx, b, &out, deadline)
                    .await
                    .map(|s| call::NoOp::Stream(Box::new(s)))
            } else {
                call::call_no_op(plan, ctx, b, &out, deadline).await
            };
            return with_version(plan, no_op(r));
        }
        // Untraced, and (`applies`) no otel or stats: the proxy stage's span and metrics
        // (pipe, metered_pipe) are off too.
        if inb.trace.get().is_none()
            && ep.static_response.is_none()
            && ep.signer.is_none()
            && direct::applies(plan, ep, b, false)
        {
            let out = forward::build(&plan.server, ep, b, inb, &|_, _| None);
            let pipe = single(b, direct::whole(plan, ctx, b, &out, deadline).await);
            return with_version(plan, respond(plan, ep, inb.head, pipe));
        }
    }
    let mut pipe = pipe(plan, ctx, ep, inb).await;
    if let Some(s) = &ep.static_response {
        apply_static(s, &mut pipe);
    }
    if let Some(signer) = &ep.signer {
        return signed(signer, pipe);
    }
    with_version(plan, respond(plan, ep, inb.head, pipe))
}

/// The endpoint's CEL response checks, then its answer in the endpoint's encoding.
fn respond(plan: &Plan, ep: &EndpointPlan, head: &RequestHead, mut pipe: Pipe) -> Response {
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
    finish(plan, ep, pipe, accept)
}

/// `auth/signer` (krakend-jose `TokenSigner`): any pipe error or no data is a bare 400, as is
/// a signing failure; else the data with its `keys_to_sign` signed, as plain JSON (the signer
/// replaces KrakenD's endpoint handler: no completeness or cache headers).
fn signed(signer: &crate::guard::jwt::signer::Signer, pipe: Pipe) -> Response {
    let (Some(mut data), None) = (pipe.data, pipe.error) else {
        return Response::new(400);
    };
    if let Err(e) = signer.sign_fields(&mut data) {
        crate::error!("[ENDPOINT: auth/signer] {e}");
        return Response::new(400);
    }
    let mut out = Vec::with_capacity(256);
    data.write_object(&mut out);
    Response::json(200, Bytes::from(out))
}

/// Call the backends and merge: lura's proxy stack under the Lua proxy stage, timed as
/// krakend-otel's proxy stage (`krakend_proxy_duration`).
async fn pipe(plan: &Plan, ctx: &WorkerCtx, ep: &EndpointPlan, inb: &Inbound<'_>) -> Pipe {
    let traced = inb.trace.get().zip(ep.labels.as_ref());
    let Some((span, outer)) = traced.and_then(|(t, l)| {
        let span = crate::telemetry::spans::proxy_start(&t, l, inb.head)?;
        Some((span, t))
    }) else {
        return metered_pipe(plan, ctx, ep, inb).await;
    };
    // The backend calls are children of the proxy span while the pipe runs.
    inb.trace.set(Some(crate::telemetry::trace::ReqTrace {
        ctx: span.ctx(),
        ..outer
    }));
    let p = metered_pipe(plan, ctx, ep, inb).await;
    inb.trace.set(Some(outer));
    let error = p.error.as_ref().map(|e| match e {
        PipeError::Lua(e) => e.to_string(),
        PipeError::Backend { failure, .. } => failure.text.clone(),
        PipeError::Merge(text) => text.clone(),
    });
    crate::telemetry::spans::stage_end(span, error, p.data.is_some() && p.complete);
    p
}

async fn metered_pipe(plan: &Plan, ctx: &WorkerCtx, ep: &EndpointPlan, inb: &Inbound<'_>) -> Pipe {
    let otel = match (&plan.otel, &ep.labels) {
        (Some(o), Some(l)) if o.proxy && !l.skip => Some((o, l)),
        _ => None,
    };
    // KrakenD: krakend-metrics' `pipe` layer wraps the same proxy stack.
    let stats = plan.stats.as_ref().is_some_and(|s| s.proxy);
    if otel.is_none() && !stats {
        return merged(plan, ctx, ep, inb).await;
    }
    let start = Instant::now();
    let p = merged(plan, ctx, ep, inb).await;
    // KrakenD: `error` when the stack returned an error, `complete` from the response.
    let mut flags = 0;
    if p.error.is_some() {
        flags |= crate::telemetry::store::ERROR;
    }
    if p.data.is_some() && p.complete {
        flags |= crate::telemetry::store::COMPLETE;
    }
    if let Some((o, l)) = otel {
        crate::telemetry::store::proxy(l, flags, start.elapsed().as_secs_f64(), &o.time_buckets);
    }
    if stats {
        use crate::telemetry::stats_store as s;
        s::pipe(&ep.stats_name, flags, s::nanos_since(start));
    }
    p
}

async fn merged(plan: &Plan, ctx: &WorkerCtx, ep: &EndpointPlan, inb: &Inbound<'_>) -> Pipe {
    let server = &plan.server;
    let start = crate::runtime::clock::now();
    match ep.backends.as_slice() {
        [] => Pipe {
            data: None,
            complete: false,
            error: Some(PipeError::Merge(String::new())),
            headers: Vec::new(),
        },
        [b] => {
            let out = forward::build(server, ep, b, inb, &|_, _| None);
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
                merge::sequential(plan, ctx, ep, many, inb, start).await
            } else {
                merge::parallel(plan, ctx, ep, many, inb, start).await
            };
            flatmap(ep, pipe)
        }
    }
}

/// A single backend: its data, its error details as data, or its error.
fn single(b: &BackendPlan, outcome: Outcome) -> Pipe {
    match outcome {
        Outcome::Data(fields) => Pipe {
            data: Some(fields),
            complete: true,
            error: None,
            headers: Vec::new(),
        },
        Outcome::Failed(f) => match detail_of(b, &f) {
            // KrakenD: error details are a response without an error, never complete.
            Some(d) => Pipe {
                data: Some(d),
                complete: false,
                error: None,
                headers: Vec::new(),
            },
            None => Pipe {
                data: None,
                complete: false,
                error: Some(PipeError::Backend {
                    pass_status: b.return_error_code,
                    failure: f,
                }),
                headers: Vec::new(),
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
        let mut r = crate::render::render(ep, &data, pipe.complete, accept);
        // KrakenD: metadata headers are written only when the response has data.
        if !data.is_empty() {
            r.headers.extend(pipe.headers);
        }
        return r;
    }
    match pipe.error {
        Some(PipeError::Lua(e)) => {
            let ct = e.content_type().map(|c| Bytes::from(c.to_string()));
            lua_failure(plan, e.status(), ct, e.to_string())
        }
        Some(PipeError::Backend { failure: f, .. }) if f.lua.is_some() => {
            let (status, ct) = f.lua.clone().unwrap_or((500, None));
            lua_failure(plan, status, ct, f.text)
        }
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
fn no_op(result: Result<call::NoOp, BackendError>) -> Response {
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
    let relay = |status: u16, headers: &crate::http::Headers| {
        let mut resp = Response::new(status);
        for h in headers.iter() {
            if !SKIP.iter().any(|x| x.eq_ignore_ascii_case(&h.name)) {
                resp.headers.push((h.name.clone(), h.value.clone()));
            }
        }
        resp
    };
    match result {
        Ok(call::NoOp::Stream(mut r)) => {
            let mut resp = relay(r.status, &r.headers);
            r.headers = crate::http::Headers::default();
            resp.stream = Some(r);
            // KrakenD: no-op responses always say the data is not "complete".
            resp.header("X-Krakend-Completed", "false")
        }
        Ok(call::NoOp::Whole {
            status,
            headers,
            body,
        }) => {
            let mut resp = relay(status, &headers);
            resp.body = body;
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

/// A failed script: its status (`custom_error`, else 500) and, with `return_error_msg`, its
/// message as the body (KrakenD's gin handler; `custom_error`'s content type if it gave one).
fn lua_failure(plan: &Plan, status: u16, ct: Option<Bytes>, text: String) -> Response {
    let mut resp = Response::new(status);
    if plan.server.return_error_msg {
        resp = match ct {
            Some(ct) => resp.header("Content-Type", ct),
            None => resp.header("Content-Type", "text/plain; charset=utf-8"),
        };
        resp.body = Bytes::from(text);
    }
    resp.header("X-Krakend-Completed", "false")
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
