//! Endpoints with several backends (lura `proxy/merging.go`): all at once (parallel) or one
//! after the other (`proxy.sequential`), merged into one [`Pipe`].

use super::call::{call, Outcome};
use super::{detail_of, Pipe, PipeError};
use crate::gateway::forward::{self, Inbound};
use crate::gateway::WorkerCtx;
use crate::json::{self, Fields};
use crate::plan::{BackendPlan, EndpointPlan, Plan};
use std::time::Instant;

/// KrakenD: the merger gives its backends 85% of the endpoint timeout, whether they run in
/// parallel or in sequence (the sequence shares that one window).
fn merge_deadline(ep: &EndpointPlan, start: Instant) -> Instant {
    start + ep.timeout.mul_f64(0.85)
}

/// Every backend at once; merge what arrived, partial when any failed, no data when all did.
pub(super) async fn parallel(
    plan: &Plan,
    ctx: &WorkerCtx,
    ep: &EndpointPlan,
    backends: &[BackendPlan],
    inb: &Inbound<'_>,
    start: Instant,
) -> Pipe {
    let deadline = merge_deadline(ep, start);
    let calls = backends.iter().map(|b| {
        let out = forward::build(&plan.server, ep, b, inb, &|_, _| None);
        async move { call(plan, ctx, ep, b, (&out, inb.params), deadline, start).await }
    });
    let outcomes = futures_util::future::join_all(calls).await;
    let mut parts = Vec::with_capacity(outcomes.len());
    let mut complete = true;
    let mut errors = Vec::new();
    for (b, o) in backends.iter().zip(outcomes) {
        match o {
            // KrakenD (lura `combineData`): a part whose data is a nil map makes the merge
            // incomplete.
            Outcome::Data(f) => {
                complete &= !f.is_nil();
                parts.push(f)
            }
            Outcome::Failed(f) => {
                complete = false;
                match detail_of(b, &f) {
                    Some(d) => parts.push(d),
                    None => errors.push(f.error_text(b)),
                }
            }
        }
    }
    Pipe {
        data: (!parts.is_empty()).then(|| json::merge(parts)),
        complete,
        // KrakenD: lura's mergeError, every backend error joined by newlines.
        error: (!errors.is_empty()).then(|| PipeError::Merge(errors.join("\n"))),
        headers: Vec::new(),
    }
}

/// `proxy.sequential`: backends in declaration order, each url_pattern able to use values of
/// the earlier results. The first backend failing fails the request as a single backend would;
/// a later one failing (or answering with error details) stops the chain with a partial result.
pub(super) async fn sequential(
    plan: &Plan,
    ctx: &WorkerCtx,
    ep: &EndpointPlan,
    backends: &[BackendPlan],
    inb: &Inbound<'_>,
    start: Instant,
) -> Pipe {
    let deadline = merge_deadline(ep, start);
    // Only successes are kept here, so `parts[n]` is backend n's shaped data.
    let mut parts: Vec<Fields> = Vec::with_capacity(backends.len());
    let mut extra = None;
    let mut error = None;
    for (i, b) in backends.iter().enumerate() {
        // KrakenD: `{respN_a.b}` reads backend N's shaped data, only for N before this backend;
        // lura's first result map is also the merge accumulator, so `{resp0_x}` could see a key
        // a later backend merged in. We read each backend's own data, as documented.
        let values = |n: usize, path: &str| {
            if n >= i {
                None
            } else if path.is_empty() {
                // `respN` (sequential_propagated_params): the whole answer.
                parts.get(n).map(Fields::whole_text)
            } else {
                parts.get(n).and_then(|f| f.value_at(path))
            }
        };
        let out = forward::build(&plan.server, ep, b, inb, &values);
        match call(plan, ctx, ep, b, (&out, inb.params), deadline, start).await {
            Outcome::Data(f) => parts.push(f),
            Outcome::Failed(f) => {
                match detail_of(b, &f) {
                    // KrakenD: error details are a response, not an error; an incomplete
                    // response stops the chain all the same.
                    Some(d) => extra = Some(d),
                    // KrakenD: the first backend's own error is returned unwrapped, so
                    // `return_error_code` applies to it as to a single backend.
                    None if i == 0 => {
                        return Pipe {
                            data: None,
                            complete: false,
                            error: Some(PipeError::Backend {
                                pass_status: b.return_error_code,
                                failure: f,
                            }),
                            headers: Vec::new(),
                        }
                    }
                    None => error = Some(PipeError::Merge(f.error_text(b))),
                }
                break;
            }
        }
    }
    let complete = parts.len() == backends.len() && !parts.iter().any(Fields::is_nil);
    parts.extend(extra);
    Pipe {
        data: (!parts.is_empty()).then(|| json::merge(parts)),
        complete,
        error,
        headers: Vec::new(),
    }
}
