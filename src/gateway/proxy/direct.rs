//! The backend stack with nothing configured in it, as one state machine.
//!
//! [`call::call`] and [`call::call_no_op`] are a dozen nested `async fn`s, one per KrakenD
//! layer (tracing span, metrics, concurrent calls, circuit breaker, CEL, Lua, martian, cache,
//! rate limit, host pick, round-trip metrics). Each returns early when its feature is absent,
//! but still adds a poll on every wake-up and a copy of its state: perf put those layers' own
//! code at ~5 % of a 1:1 request's CPU, for nothing. When [`applies`] holds, every one of them
//! would only pass the call through, so these functions do what that stack then does:
//! admit (backend rate limit), pick a host, call it, log a failure, and for data read the
//! whole body and judge it.
use super::call::{self, Failure, Outcome};
use crate::backend::client::{self, Streaming};
use crate::backend::{BackendError, OutRequest};
use crate::gateway::WorkerCtx;
use crate::plan::{BackendPlan, EndpointPlan, Plan};
use std::time::Instant;

/// Whether every optional layer of backend `b`'s stack is off for this call: no tracing span
/// (the call is not `traced`, or `b` is unlabelled), no otel or `/__stats` metrics, a single call (no
/// `concurrent_calls`), and no circuit breaker, CEL, Lua, martian or HTTP cache on `b`.
/// The backend rate limit stays: [`stream`] applies it.
pub(super) fn applies(plan: &Plan, ep: &EndpointPlan, b: &BackendPlan, traced: bool) -> bool {
    plan.otel.is_none()
        && plan.stats.is_none()
        && (!traced || b.labels.is_none())
        && ep.concurrent_calls <= 1
        && b.circuit_breaker.is_none()
        && b.cel.is_none()
        && b.lua.is_none()
        && b.martian.is_none()
        && b.http_cache.is_none()
}

/// [`call::call_stream`] where [`applies`] holds: the response with its body still on the
/// connection. A failure past the rate limit is logged, as there.
pub(super) async fn stream(
    plan: &Plan,
    ctx: &WorkerCtx,
    b: &BackendPlan,
    out: &OutRequest,
    deadline: Instant,
) -> Result<Streaming, BackendError> {
    call::admit(b)?;
    let r = match call::pick(ctx, b, deadline).await {
        Ok(picked) => match picked.target() {
            Ok(target) => {
                client::call_stream(&ctx.pool, target, out, &call::opts(plan, deadline)).await
            }
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    if let Err(e) = &r {
        crate::warn!("[BACKEND: {}] {}", b.url_pattern, e);
    }
    r
}

/// [`call::call`] where [`applies`] holds: the whole body, judged by the status policy and
/// shaped.
pub(super) async fn whole(
    plan: &Plan,
    ctx: &WorkerCtx,
    b: &BackendPlan,
    out: &OutRequest,
    deadline: Instant,
) -> Outcome {
    let fetched = match stream(plan, ctx, b, out, deadline).await {
        Ok(s) => call::read_whole(plan, ctx, b, s).await,
        Err(e) => Err(e),
    };
    match fetched {
        Ok((f, _)) => call::judge(b, f),
        Err(e) => Outcome::Failed(Failure::transport(e.to_string())),
    }
}
