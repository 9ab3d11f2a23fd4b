//! The spans krakend-otel records, with its names and attributes (semconv 1.21): one server
//! span per request (`krakend.stage: global`, named by the request path), one proxy span per
//! endpoint pipe (named by the endpoint's route), and per backend call a backend stage span
//! and a client span for the HTTP round trip (both named by the backend's route), each the
//! child of the one before.

use super::otel::{BackendLabels, EndpointLabels, Otel, Traces};
use super::trace::{self, CallTrace, Kind, ReqTrace, Span, Text, Val};
use crate::http::request::RequestHead;
use std::net::SocketAddr;
use std::sync::Arc;

/// The request's trace, and its server span (None when `layers.global` has no traces). None
/// when the path is skipped or nothing is traced.
pub fn server_start(
    o: &Otel,
    t: &Traces,
    head: &RequestHead,
    body_len: usize,
    peer: SocketAddr,
) -> Option<(Option<Span>, ReqTrace)> {
    // KrakenD: a skipped path is neither traced nor propagated.
    if o.skips_path(head.path()) {
        return None;
    }
    let root = trace::root(t, head.headers.get("traceparent").map(|v| &v[..]));
    if !t.global {
        return Some((None, ReqTrace::new(root, t)));
    }
    let mut span = Span::start(&root, Kind::Server, || Text::copy(head.path()));
    if span.recording() {
        static GLOBAL: std::sync::OnceLock<Arc<[u8]>> = std::sync::OnceLock::new();
        span.fixed(
            GLOBAL.get_or_init(|| super::otlp_proto::fixed_attrs(&[("krakend.stage", "global")])),
        );
        span.text("url.full", || Text::copy(&head.target));
        if let Some(h) = head.headers.get("host") {
            span.text("server.address", || Text::copy(h));
        }
        span.text("http.request.method", || {
            match super::store::method_label(&head.method) {
                ("_OTHER", _) => Text::copy(&head.method),
                (known, _) => Text::Static(known),
            }
        });
        span.attr("http.request.body.size", Val::Int(body_len as i64));
        if let Some(ua) = head.headers.get("user-agent").filter(|v| !v.is_empty()) {
            span.text("user_agent.original", || Text::copy(ua));
        }
        span.attr("client.address", Val::Addr(peer));
        if t.global_headers {
            let hs = head.headers.iter().map(|h| (&h.name[..], &h.value[..]));
            span.headers("http.request.header.", hs);
        }
    }
    let ctx = span.ctx();
    Some((Some(span), ReqTrace::new(ctx, t)))
}

/// End the server span with what was answered.
pub fn server_end(mut span: Span, ep: Option<&Arc<EndpointLabels>>, status: u16, size: u64) {
    if span.recording() {
        // KrakenD: a request no endpoint matched reports this route (as its metrics do).
        let route = ep.map_or(Text::Static("404 Not Found"), |e| {
            Text::Shared(e.route.clone())
        });
        span.attr("http.route", Val::Text(route));
        span.attr("http.response.status_code", Val::Int(i64::from(status)));
        span.attr("http.response.body.size", Val::Int(size as i64));
        span.status(None);
    }
    span.end();
}

/// The proxy span (`layers.proxy`), the parent of the backend calls while the pipe runs.
pub fn proxy_start(t: &ReqTrace, ep: &EndpointLabels, head: &RequestHead) -> Option<Span> {
    if !t.proxy {
        return None;
    }
    let mut span = Span::start(&t.ctx, Kind::Internal, || Text::Shared(ep.route.clone()));
    span.fixed(&ep.proxy_span);
    if t.proxy_headers && span.recording() {
        let hs = head.headers.iter().map(|h| (&h.name[..], &h.value[..]));
        span.headers("http.request.header.", hs);
    }
    Some(span)
}

/// End a proxy or backend stage span: KrakenD reports 500 and the error's text for a stage
/// that failed.
pub fn stage_end(mut span: Span, error: Option<String>, complete: bool) {
    if span.recording() {
        match error {
            Some(e) => {
                span.attr("error", Val::Text(Text::Owned(e)));
                span.attr("http.response.status_code", Val::Int(500));
            }
            None => span.attr("http.response.status_code", Val::Int(200)),
        }
        span.attr("complete", Val::Bool(complete));
    }
    span.end();
}

/// The backend stage span (`layers.backend.traces.disable_stage`), with the id the call's
/// request was built with.
pub fn backend_start(ct: &CallTrace, b: &BackendLabels) -> Option<Span> {
    let id = ct.stage?;
    let mut span = Span::with_id(&ct.parent, id, Kind::Internal, || {
        Text::Shared(b.route.clone())
    });
    span.fixed(&b.stage_span);
    Some(span)
}

/// The span of one HTTP round trip (`layers.backend.traces.round_trip`): a client span whose
/// id is the one the backend received in `traceparent`.
pub fn round_trip_start(
    ct: &CallTrace,
    b: &BackendLabels,
    scheme: &str,
    authority: &str,
    out: &crate::backend::OutRequest,
) -> Option<Span> {
    let id = ct.round_trip?;
    let parent = ct.round_trip_parent();
    let mut span = Span::with_id(&parent, id, Kind::Client, || Text::Shared(b.route.clone()));
    if span.recording() {
        span.fixed(&b.round_trip_span);
        span.text("url.full", || {
            let mut url = String::with_capacity(
                scheme.len() + 3 + authority.len() + out.path_and_query.len(),
            );
            url.push_str(scheme);
            url.push_str("://");
            url.push_str(authority);
            url.push_str(&out.path_and_query);
            Text::Owned(url)
        });
        // KrakenD: the request's host replaces the configured one.
        span.text("server.address", || Text::Owned(authority.to_string()));
        span.attr("http.request.body.size", Val::Int(out.body.len() as i64));
        if ct.headers {
            let hs = out.headers.iter().map(|(n, v)| (&n[..], &v[..]));
            span.headers("http.request.header.", hs);
        }
    }
    Some(span)
}

/// End a round trip span: the backend's status, or the failure.
pub fn round_trip_end(mut span: Span, r: Result<u16, String>, secs: f64) {
    if span.recording() {
        match r {
            Ok(status) => {
                span.attr("http.response.status_code", Val::Int(i64::from(status)));
                span.attr("response-duration", Val::F64(secs));
                span.status(None);
            }
            Err(e) => span.status(Some(e)),
        }
    }
    span.end();
}
