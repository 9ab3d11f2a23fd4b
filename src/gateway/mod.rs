//! The one place that knows the whole flow of a request: route, guard, fan out to the
//! backends, apply KrakenD's status policy, render. Also the single error -> status mapping.

pub mod builtin;
pub mod forward;
mod lua_endpoint;
mod proxy;

use crate::backend::client::Streaming;
use crate::backend::pool::Pool;
use crate::guard::cors::Verdict;
use crate::guard::secure::Check;
use crate::http::request::RequestHead;
use crate::plan::{Plan, RouteTarget};
use crate::router::Route;
use bytes::Bytes;
use std::cell::Cell;
use std::net::SocketAddr;

/// Per-core state the gateway uses: never shared with another core.
#[derive(Default)]
pub struct WorkerCtx {
    pub pool: Pool,
    /// Round-robin cursor over a backend's hosts (KrakenD balances; per core here).
    pub rr: Cell<usize>,
}

/// A response ready to be written (the connection adds framing, `Date` and `Connection`).
pub struct Response {
    pub status: u16,
    pub headers: Vec<(Bytes, Bytes)>,
    /// Header lines checked when the config was compiled ([`crate::http::write::field_line`]),
    /// written after `headers` as they are: the security and CORS headers.
    pub lines: Vec<Bytes>,
    pub body: Bytes,
    /// `no-op`: the backend body still on its connection, streamed by the connection loop
    /// instead of `body`.
    pub stream: Option<Box<Streaming>>,
    /// Close the connection after this response (malformed input).
    pub close: bool,
}

const CT: &[u8] = b"Content-Type";
const JSON: &[u8] = b"application/json; charset=utf-8";
const TEXT: &[u8] = b"text/plain; charset=utf-8";

/// The header list of a rendered body: its `Content-Type`, with room for what the renderer
/// adds after it (`X-Krakend-Completed`, `Cache-Control`). `vec![ct]` has room for one, and
/// the push of the second reallocated on every request (callgrind: ~200 instructions of a
/// 1:1 call).
fn typed(content_type: &'static [u8]) -> Vec<(Bytes, Bytes)> {
    let mut headers = Vec::with_capacity(3);
    headers.push((Bytes::from_static(CT), Bytes::from_static(content_type)));
    headers
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            lines: Vec::new(),
            body: Bytes::new(),
            stream: None,
            close: false,
        }
    }

    pub fn json(status: u16, body: Bytes) -> Response {
        Response {
            status,
            headers: typed(JSON),
            lines: Vec::new(),
            body,
            stream: None,
            close: false,
        }
    }

    pub fn text(status: u16, body: impl Into<Bytes>) -> Response {
        Response {
            status,
            headers: typed(TEXT),
            lines: Vec::new(),
            body: body.into(),
            stream: None,
            close: false,
        }
    }

    pub fn with_body(mut self, body: impl Into<Bytes>) -> Response {
        self.body = body.into();
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<Bytes>) -> Response {
        self.headers
            .push((Bytes::from_static(name.as_bytes()), value.into()));
        self
    }
}

/// Handle one request end to end. Never panics; every failure is a status code.
///
/// KrakenD: CORS wraps the whole server (preflights are answered before anything else) and
/// `security/http` is a gin middleware that runs before routing, on every route and on the
/// 404/405 answers too; so both are applied here, around the router.
pub async fn handle(
    plan: &Plan,
    ctx: &WorkerCtx,
    head: &RequestHead,
    body: Bytes,
    peer: SocketAddr,
) -> Response {
    let mut cors_headers = None;
    if let Some(cors) = &plan.cors {
        match cors.check(head) {
            Verdict::Answer(status, headers) => {
                let mut r = Response::new(status);
                r.headers = headers;
                return r;
            }
            Verdict::Pass(headers) => cors_headers = Some(headers),
            Verdict::Actual => {}
        }
    }
    let started = plan
        .otel
        .as_ref()
        .filter(|o| o.global)
        .map(|_| std::time::Instant::now());
    let mut server_span = None;
    let trace = match &plan.otel {
        Some(o) => o.traces.as_ref().and_then(|t| {
            let (span, req) = crate::telemetry::spans::server_start(o, t, head, body.len(), peer)?;
            server_span = span;
            Some(req)
        }),
        None => None,
    };
    let mut matched = None;
    let mut r = match &plan.secure {
        None => route(plan, ctx, head, body, peer, &mut matched, trace).await,
        Some(secure) => match secure.check(head) {
            Check::Pass => {
                let mut r = route(plan, ctx, head, body, peer, &mut matched, trace).await;
                secure.lines(head, &mut r.lines);
                r
            }
            Check::BadHost => Response::text(
                crate::guard::secure::BAD_HOST_STATUS,
                "400 Bad Request: host not allowed",
            ),
            Check::Redirect(status, location) => {
                let method = std::str::from_utf8(&head.method).unwrap_or("");
                redirect(method, status, location)
            }
        },
    };
    if let Some(cors) = &plan.cors {
        match cors_headers {
            Some(h) => r.headers.extend(h),
            None => cors.actual(head, &mut r.headers, &mut r.lines),
        }
    }
    if let (Some(t), Some(o)) = (started, &plan.otel) {
        record_server(plan, o, head, matched, &r, t.elapsed().as_secs_f64());
    }
    if let Some(span) = server_span {
        let ep = matched.and_then(|i| plan.endpoints.get(i)?.labels.as_ref());
        crate::telemetry::spans::server_end(span, ep, r.status, body_size(&r));
    }
    r
}

/// `http_server_duration` and `http_server_response_size` for one answered request.
fn record_server(
    plan: &Plan,
    o: &crate::telemetry::otel::Otel,
    head: &RequestHead,
    matched: Option<usize>,
    r: &Response,
    secs: f64,
) {
    let ep = matched.and_then(|i| plan.endpoints.get(i)?.labels.as_ref());
    match ep {
        Some(l) if l.skip => return,
        Some(_) => {}
        // KrakenD: gin's route of a builtin (`/__health`, `/__debug/*param`) meets the skip
        // list like an endpoint's; an unmatched request is reported as "404 Not Found".
        None => {
            if o.skips_path(head.path()) {
                return;
            }
        }
    }
    crate::telemetry::store::server(
        ep,
        &head.method,
        r.status,
        secs,
        body_size(r),
        &o.time_buckets,
        &o.size_buckets,
    );
}

/// The bytes of a response's body; a streamed (no-op) body is counted by its declared length.
fn body_size(r: &Response) -> u64 {
    match &r.stream {
        None => r.body.len() as u64,
        Some(s) => s
            .headers
            .get("content-length")
            .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse().ok())
            .unwrap_or(0),
    }
}

/// Everything after the edge checks: builtins, then the router.
async fn route(
    plan: &Plan,
    ctx: &WorkerCtx,
    head: &RequestHead,
    body: Bytes,
    peer: SocketAddr,
    matched: &mut Option<usize>,
    trace: Option<crate::telemetry::trace::ReqTrace>,
) -> Response {
    // KrakenD: the service-level Lua middleware runs after `security/http`, before the bot
    // detector, on every route but the health check (registered before the middleware); the
    // script sees no path params: gin has not matched yet.
    let health = head.method.as_ref() == b"GET"
        && plan.health_path.as_deref().map(str::as_bytes) == Some(head.path());
    let rewrite = match &plan.lua_endpoint {
        Some(script) if !health => {
            let deadline = crate::runtime::clock::now() + plan.server.timeout;
            let http = proxy::lua_http(plan, ctx, deadline);
            match lua_endpoint::run(script, head, &body, &[], true, &http).await {
                Ok(r) => Some(r),
                Err(resp) => return resp,
            }
        }
        _ => None,
    };
    let (head, body) = match &rewrite {
        Some(r) => (&r.head, r.body.clone()),
        None => (head, body),
    };
    let Ok(path) = std::str::from_utf8(head.path()) else {
        return Response::text(400, "400 Bad Request: path is not UTF-8");
    };
    let Ok(method) = std::str::from_utf8(&head.method) else {
        return Response::text(400, "400 Bad Request");
    };
    let query = head.query().and_then(|q| std::str::from_utf8(q).ok());
    let server = &plan.server;
    // KrakenD: the service-level bot detector is a gin middleware added after `/__health` was
    // registered (so health checks skip it) and before every other route, 404 and 405; a bot
    // gets a bare 403.
    if let Some(d) = &plan.bot_detector {
        let health = method == "GET" && plan.health_path.as_deref() == Some(path);
        if !health && d.is_bot(head.headers.get("user-agent").map(|v| &v[..])) {
            return Response::new(403);
        }
    }
    // KrakenD: /__echo/* and /__debug/* are gin catch-all routes.
    if plan.echo && path.starts_with("/__echo/") {
        return builtin::echo(head, &body);
    }
    if plan.debug && path.starts_with("/__debug/") {
        return builtin::debug(head, &body);
    }
    // KrakenD (gin): the catch-all `/__debug/*param` makes `/__debug` a trailing-slash redirect
    // to `/__debug/` (KrakenD's own specs point backends at `http://host/__debug`).
    let builtin_root = (plan.echo && path == "/__echo") || (plan.debug && path == "/__debug");
    if builtin_root && method != "CONNECT" && plan.router.options().redirect_trailing_slash {
        let status = if method == "GET" { 301 } else { 307 };
        let location = crate::router::redirect_location(&format!("{path}/"), query);
        return redirect(method, status, location);
    }
    match plan.router.route(method, path, query) {
        Route::Found { value, params } => match *value {
            RouteTarget::Endpoint(i) => match plan.endpoints.get(i) {
                Some(ep) => {
                    *matched = Some(i);
                    if !plan.stats.as_ref().is_some_and(|s| s.router) {
                        return proxy::endpoint(plan, ctx, ep, head, body, &params, peer, trace)
                            .await;
                    }
                    // KrakenD: krakend-metrics wraps each endpoint handler (inside the bot
                    // detector, outside JWT): one connection, then the status, body size
                    // and time of what the handler wrote.
                    use crate::telemetry::stats_store as stats;
                    let t = std::time::Instant::now();
                    stats::connected();
                    let r = proxy::endpoint(plan, ctx, ep, head, body, &params, peer, trace).await;
                    stats::response(
                        &ep.stats_name,
                        r.status,
                        body_size(&r),
                        stats::nanos_since(t),
                    );
                    r
                }
                None => Response::new(500),
            },
            RouteTarget::Health => builtin::health(),
            RouteTarget::Options(i) => {
                let allow = plan.allow.get(i).cloned().unwrap_or_default();
                Response::new(200).header("Allow", allow)
            }
        },
        Route::Redirect { status, location } => redirect(method, status, location),
        Route::MethodNotAllowed { allow } => {
            let c = &server.method_not_allowed;
            canned(plan, 405, c).header("Allow", allow)
        }
        Route::NotFound => canned(plan, 404, &server.not_found),
        Route::BadParam { message } => Response::text(400, message),
        Route::MalformedPath => {
            // Go's server rejects a bad escape in the path before any handler runs.
            let mut r = Response::text(400, "400 Bad Request");
            r.close = true;
            r
        }
    }
}

/// gin's redirect answer (`http.Redirect`): a short HTML body for GET only.
fn redirect(method: &str, status: u16, location: String) -> Response {
    let (ct, body) = crate::router::redirect_body(status, &location);
    let mut r = Response::new(status).header("Location", location);
    if method == "GET" || method == "HEAD" {
        r = r.header("Content-Type", ct);
    }
    if method == "GET" {
        r.body = Bytes::from(body);
    }
    r
}

fn canned(plan: &Plan, status: u16, c: &crate::plan::Canned) -> Response {
    // KrakenD: the NoRoute/NoMethod handlers also say the (empty) data is not complete.
    let mut r = Response::new(status)
        .header("Content-Type", c.content_type)
        .header("X-Krakend-Completed", "false");
    r.body = c.body.clone();
    with_version(plan, r)
}

pub(crate) fn with_version(plan: &Plan, r: Response) -> Response {
    r.header("X-Krakend", plan.server.version_header.clone())
}
