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
use std::future::Future;
use std::pin::Pin;
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
    /// A `modifier/lua-backend` script failed: the status it asks for (`custom_error`) and its
    /// content type. KrakenD answers it as is for a single backend, with or without
    /// `return_error_code`.
    pub lua: Option<(u16, Option<Bytes>)>,
}

impl Failure {
    pub(super) fn transport(text: String) -> Failure {
        Failure {
            status: None,
            body: Bytes::new(),
            content_type: None,
            text,
            lua: None,
        }
    }

    pub fn lua(e: crate::modifier::lua::LuaError) -> Failure {
        let ct = e.content_type().map(|c| Bytes::from(c.to_string()));
        Failure {
            status: None,
            body: Bytes::new(),
            content_type: None,
            lua: Some((e.status(), ct)),
            text: e.to_string(),
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
/// `deadline` is the caller's; `start` is when the request's pipe began. Timed as
/// krakend-otel's backend stage (`krakend_backend_duration`), which wraps the whole backend
/// stack.
pub(super) async fn call(
    plan: &Plan,
    ctx: &WorkerCtx,
    ep: &EndpointPlan,
    b: &BackendPlan,
    req: (&OutRequest, &[(&str, String)]),
    deadline: Instant,
    start: Instant,
) -> Outcome {
    let span = match (req.0.trace.as_ref(), &b.labels) {
        (Some(t), Some(l)) => crate::telemetry::spans::backend_start(t, l),
        _ => None,
    };
    let r = metered(plan, ctx, ep, b, req, deadline, start).await;
    if let Some(span) = span {
        let error = match &r {
            Outcome::Data(_) => None,
            Outcome::Failed(f) => Some(f.text.clone()),
        };
        let complete = error.is_none();
        crate::telemetry::spans::stage_end(span, error, complete);
    }
    r
}

async fn metered(
    plan: &Plan,
    ctx: &WorkerCtx,
    ep: &EndpointPlan,
    b: &BackendPlan,
    req: (&OutRequest, &[(&str, String)]),
    deadline: Instant,
    start: Instant,
) -> Outcome {
    let otel = match (&plan.otel, &b.labels) {
        (Some(o), Some(l)) if o.backend_stage && !l.skip => Some((o, l)),
        _ => None,
    };
    // KrakenD: krakend-metrics' `backend` layer wraps the same stack (outside the circuit
    // breaker).
    let stats = plan.stats.as_ref().is_some_and(|s| s.backend);
    if otel.is_none() && !stats {
        return concurrent(plan, ctx, ep, b, req, deadline, start).await;
    }
    let t = Instant::now();
    let r = concurrent(plan, ctx, ep, b, req, deadline, start).await;
    // KrakenD: a backend's data is a complete response; any failure is an error.
    let flags = match &r {
        Outcome::Data(_) => crate::telemetry::store::COMPLETE,
        Outcome::Failed(_) => crate::telemetry::store::ERROR,
    };
    if let Some((o, l)) = otel {
        crate::telemetry::store::backend(l, flags, t.elapsed().as_secs_f64(), &o.time_buckets);
    }
    if stats {
        use crate::telemetry::stats_store as s;
        s::backend(&b.stats_name, flags, s::nanos_since(t));
    }
    r
}

async fn concurrent(
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
    // Traced: each copy is its own round trip, with its own span and `traceparent`.
    let copies: Vec<OutRequest> = (1..ep.concurrent_calls)
        .filter_map(|_| another_round_trip(out))
        .collect();
    let mut calls: FuturesUnordered<_> = (0..ep.concurrent_calls)
        .map(|i| {
            let o = i.checked_sub(1).and_then(|i| copies.get(i)).unwrap_or(out);
            outcome(plan, ctx, b, o, params, deadline)
        })
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

/// A copy of `out` for another concurrent round trip: a new span id, in its `traceparent` too.
fn another_round_trip(out: &OutRequest) -> Option<OutRequest> {
    let t = out.trace.as_ref()?.another_round_trip()?;
    let mut copy = out.clone();
    for (name, value) in copy.headers.iter_mut() {
        if name.eq_ignore_ascii_case(b"traceparent") {
            *value = crate::telemetry::trace::traceparent(&t.sent);
        }
    }
    copy.trace = Some(t);
    Some(copy)
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
    let Some(script) = &b.lua else {
        return attempt_at(plan, ctx, b, out, None, deadline).await;
    };
    // KrakenD: the Lua backend stage sits inside the circuit breaker and the rate limit,
    // outside the HTTP client (and its cache).
    let http = super::lua::http(plan, ctx, deadline);
    let run = match super::lua::backend_pre(script, b, out, &http).await {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(Failure::lua(e)),
    };
    let o = if script.skip_next {
        super::lua::skipped()
    } else {
        attempt_at(plan, ctx, b, &run.out, run.target.as_ref(), deadline).await
    };
    super::lua::backend_post(&run, o, &http).await
}

/// [`attempt`] without the script: to the balanced hosts, or to `target` a script chose.
async fn attempt_at(
    plan: &Plan,
    ctx: &WorkerCtx,
    b: &BackendPlan,
    out: &OutRequest,
    target: Option<&Target>,
    deadline: Instant,
) -> Outcome {
    let (out, target, og) = match &b.martian {
        Some(m) => match super::martian::request(m, b, out, target) {
            Ok((o, t, og)) => (std::borrow::Cow::Owned(o), t, Some(og)),
            Err(e) => return Outcome::Failed(Failure::transport(e)),
        },
        None => (std::borrow::Cow::Borrowed(out), target.cloned(), None),
    };
    let fetched = match (&b.http_cache, target.as_ref()) {
        (Some(cache), None) if super::cached::applies(&out) => {
            super::cached::fetch(plan, ctx, b, cache, &out, deadline)
                .await
                .map(|f| {
                    let h = super::martian::cached_headers(&f);
                    (f, h)
                })
        }
        (_, None) => fetch(plan, ctx, b, &out, deadline).await,
        (_, Some(t)) => fetch_at(plan, ctx, b, &out, t, deadline).await,
    };
    match fetched {
        Ok((f, headers)) => {
            let f = match (&b.martian, &og) {
                (Some(m), Some(og)) if m.on_response() => {
                    super::martian::response(m, og, f, headers)
                }
                _ => f,
            };
            judge(b, f)
        }
        Err(e) => Outcome::Failed(Failure::transport(e.to_string())),
    }
}

/// Call the host a backend script chose and read the whole body.
async fn fetch_at(
    plan: &Plan,
    ctx: &WorkerCtx,
    b: &BackendPlan,
    out: &OutRequest,
    target: &Target,
    deadline: Instant,
) -> Result<(Fetched, Headers), BackendError> {
    admit(b)?;
    let opts = opts(plan, deadline);
    let call = std::pin::pin!(client::call_stream(&ctx.pool, target, out, &opts));
    let s = round_trip(plan, b, target, call)
        .await
        .inspect_err(|e| crate::warn!("[BACKEND: {}] {}", b.url_pattern, e))?;
    read_whole(plan, ctx, b, s).await
}

/// Call one backend and read its whole body.
async fn fetch(
    plan: &Plan,
    ctx: &WorkerCtx,
    b: &BackendPlan,
    out: &OutRequest,
    deadline: Instant,
) -> Result<(Fetched, Headers), BackendError> {
    let s = call_stream(plan, ctx, b, out, deadline).await?;
    read_whole(plan, ctx, b, s).await
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
pub(super) fn judge(b: &BackendPlan, f: Fetched) -> Outcome {
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
            lua: None,
        });
    }
    // KrakenD: a no-op backend inside an endpoint that shapes data decodes to nothing.
    if b.encoding == crate::plan::Encoding::NoOp {
        return Outcome::Data(Fields::no_op(body));
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

/// A `no-op` answer: streamed as it comes, or whole when a script or a martian rule replaced
/// or read its body.
pub(super) enum NoOp {
    Stream(Box<Streaming>),
    Whole {
        status: u16,
        headers: Headers,
        body: Bytes,
    },
}

/// A `no-op` call: through the circuit breaker, if any, then the backend's scripts and
/// martian rules around [`call_stream`]. Any status counts as a success (KrakenD: no-op has
/// no status policy); only errors count.
pub(super) async fn call_no_op(
    plan: &Plan,
    ctx: &WorkerCtx,
    b: &BackendPlan,
    out: &OutRequest,
    deadline: Instant,
) -> Result<NoOp, BackendError> {
    // The backend stage span, as for a call that is not no-op (its id is the round trip's
    // parent).
    let span = match (out.trace.as_ref(), &b.labels) {
        (Some(t), Some(l)) => crate::telemetry::spans::backend_start(t, l),
        _ => None,
    };
    let r = breaker_no_op(plan, ctx, b, out, deadline).await;
    if let Some(span) = span {
        let error = r.as_ref().err().map(|e| e.to_string());
        let complete = error.is_none();
        crate::telemetry::spans::stage_end(span, error, complete);
    }
    r
}

async fn breaker_no_op(
    plan: &Plan,
    ctx: &WorkerCtx,
    b: &BackendPlan,
    out: &OutRequest,
    deadline: Instant,
) -> Result<NoOp, BackendError> {
    let Some(cb) = &b.circuit_breaker else {
        return no_op_stages(plan, ctx, b, out, deadline).await;
    };
    let permit = cb.admit()?;
    let r = no_op_stages(plan, ctx, b, out, deadline).await;
    permit.finish(r.is_ok());
    r
}

async fn no_op_stages(
    plan: &Plan,
    ctx: &WorkerCtx,
    b: &BackendPlan,
    out: &OutRequest,
    deadline: Instant,
) -> Result<NoOp, BackendError> {
    let modifier = |e: crate::modifier::lua::LuaError| BackendError::Modifier(e.to_string());
    // Only a scripted backend needs the scripts' HTTP settings.
    let http = || super::lua::http(plan, ctx, deadline);
    let run = match &b.lua {
        Some(script) => Some(
            super::lua::backend_pre(script, b, out, &http())
                .await
                .map_err(modifier)?,
        ),
        None => None,
    };
    if run.is_some() && b.lua.as_ref().is_some_and(|s| s.skip_next) {
        return Ok(NoOp::Whole {
            status: 200,
            headers: Headers::default(),
            body: Bytes::new(),
        });
    }
    let (out, target) = match &run {
        Some(r) => (&r.out, r.target.as_ref()),
        None => (out, None),
    };
    let (out, target, og) = match &b.martian {
        Some(m) => {
            let (o, t, og) =
                super::martian::request(m, b, out, target).map_err(BackendError::Modifier)?;
            (std::borrow::Cow::Owned(o), t, Some(og))
        }
        None => (std::borrow::Cow::Borrowed(out), target.cloned(), None),
    };
    let mut s = match &target {
        Some(t) => {
            admit(b)?;
            client::call_stream(&ctx.pool, t, &out, &opts(plan, deadline)).await?
        }
        None => call_stream(plan, ctx, b, &out, deadline).await?,
    };
    let mut replaced = None;
    if let (Some(m), Some(og)) = (&b.martian, &og) {
        if m.on_response() {
            replaced = super::martian::stream_response(m, og, &mut s);
        }
    }
    let Some(run) = run.filter(|r| r.session.has_post()) else {
        return Ok(match replaced {
            Some(body) => NoOp::Whole {
                status: s.status,
                headers: std::mem::take(&mut s.headers),
                body,
            },
            None => NoOp::Stream(Box::new(s)),
        });
    };
    // A post script reads and may change the whole answer.
    let (status, headers, body) = match replaced {
        Some(body) => (s.status, std::mem::take(&mut s.headers), body),
        None => {
            let (f, h) = read_whole(plan, ctx, b, s).await?;
            (f.status, h, f.body)
        }
    };
    super::lua::backend_post_raw(&run, status, headers, body, &http())
        .await
        .map_err(modifier)
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
    let target = picked.target()?;
    let opts = opts(plan, deadline);
    // Pinned here and lent down: a future passed by value is held (and copied) once more by
    // every wrapper it passes through (print-type-size: 11 KB instead of 3.6 KB here).
    let call = std::pin::pin!(client::call_stream(&ctx.pool, target, out, &opts));
    traced_round_trip(plan, b, target, out, call).await
}

/// The round trip's client span, when this call is traced.
async fn traced_round_trip(
    plan: &Plan,
    b: &BackendPlan,
    target: &Target,
    out: &OutRequest,
    call: Pin<&mut impl Future<Output = Result<Streaming, BackendError>>>,
) -> Result<Streaming, BackendError> {
    let span = match (&out.trace, &b.labels) {
        (Some(t), Some(l)) => {
            crate::telemetry::spans::round_trip_start(t, l, target.scheme(), &target.authority, out)
        }
        _ => None,
    };
    let Some(span) = span else {
        return round_trip(plan, b, target, call).await;
    };
    let t = Instant::now();
    let r = round_trip(plan, b, target, call).await;
    let end = match &r {
        Ok(s) => Ok(s.status),
        Err(e) => Err(e.to_string()),
    };
    crate::telemetry::spans::round_trip_end(span, end, t.elapsed().as_secs_f64());
    r
}

/// One HTTP round trip to a backend host, counted and timed as krakend-otel's instrumented
/// transport does (`http_client_*`, `layers.backend.metrics.round_trip`).
async fn round_trip(
    plan: &Plan,
    b: &BackendPlan,
    target: &Target,
    call: Pin<&mut impl Future<Output = Result<Streaming, BackendError>>>,
) -> Result<Streaming, BackendError> {
    let metered = match (&plan.otel, &b.labels) {
        (Some(o), Some(l)) if o.round_trip && !l.skip => Some((o, l)),
        _ => None,
    };
    let Some((o, l)) = metered else {
        return call.await;
    };
    let t = Instant::now();
    let r = call.await;
    use crate::telemetry::store::RoundTrip;
    let end = match &r {
        Ok(s) => RoundTrip::Status(s.status),
        Err(BackendError::Timeout) => RoundTrip::TimedOut,
        Err(_) => RoundTrip::Failed,
    };
    crate::telemetry::store::client(
        l,
        &target.authority,
        end,
        t.elapsed().as_secs_f64(),
        &o.time_buckets,
    );
    r
}

/// The host one call goes to: the plan's, or one of an `sd: dns` answer (held for the call).
pub(super) enum Picked<'a> {
    Static(&'a Target),
    Srv(std::sync::Arc<Result<Vec<Target>, String>>, usize),
    /// `sd_scheme: https`: the SRV host, to be called over TLS with its name.
    Tls(Target),
}

impl Picked<'_> {
    pub fn target(&self) -> Result<&Target, BackendError> {
        match self {
            Picked::Static(t) => Ok(t),
            Picked::Tls(t) => Ok(t),
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
        Hosts::Srv(entry, https) => {
            let srv = entry.get(deadline).await.ok_or(BackendError::Timeout)?;
            let n = match &*srv {
                Ok(t) => t.len(),
                Err(e) => return Err(BackendError::Resolve(e.clone())),
            };
            let i = next(n)?;
            let picked = Picked::Srv(srv, i);
            if !*https {
                return Ok(picked);
            }
            // The SRV target's name (the authority without its port) is verified and sent
            // as SNI; SRV targets are shared with http backends, so the TLS copy is this call's.
            let t = picked.target()?;
            let name = t
                .authority
                .rsplit_once(':')
                .map_or(t.authority.as_str(), |(h, _)| h);
            Ok(Picked::Tls(Target {
                tls: Some(crate::backend::target::tls_name(name)),
                ..t.clone()
            }))
        }
    }
}

/// The client settings of one call.
pub(super) fn opts(plan: &Plan, deadline: Instant) -> CallOpts<'_> {
    let s = &plan.server.backend;
    CallOpts {
        tls: s.tls.as_ref(),
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
