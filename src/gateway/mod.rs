//! The one place that knows the whole flow of a request: route, guard, fan out to the
//! backends, apply KrakenD's status policy, render. Also the single error -> status mapping.

pub mod builtin;
pub mod forward;

use crate::backend::client::{self, CallOpts, Streaming};
use crate::backend::pool::Pool;
use crate::backend::{BackendError, BackendResponse};
use crate::http::request::RequestHead;
use crate::plan::{BackendPlan, Encoding, EndpointPlan, Output, Plan, RouteTarget};
use crate::router::Route;
use bytes::Bytes;
use forward::Inbound;
use std::cell::Cell;
use std::net::SocketAddr;
use std::time::Instant;

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

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            stream: None,
            close: false,
        }
    }

    pub fn json(status: u16, body: Bytes) -> Response {
        Response {
            status,
            headers: vec![(Bytes::from_static(CT), Bytes::from_static(JSON))],
            body,
            stream: None,
            close: false,
        }
    }

    pub fn text(status: u16, body: impl Into<Bytes>) -> Response {
        Response {
            status,
            headers: vec![(Bytes::from_static(CT), Bytes::from_static(TEXT))],
            body: body.into(),
            stream: None,
            close: false,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<Bytes>) -> Response {
        self.headers
            .push((Bytes::from_static(name.as_bytes()), value.into()));
        self
    }
}

/// Handle one request end to end. Never panics; every failure is a status code.
pub async fn handle(
    plan: &Plan,
    ctx: &WorkerCtx,
    head: &RequestHead,
    body: Bytes,
    peer: SocketAddr,
) -> Response {
    let Ok(path) = std::str::from_utf8(head.path()) else {
        return Response::text(400, "400 Bad Request: path is not UTF-8");
    };
    let Ok(method) = std::str::from_utf8(&head.method) else {
        return Response::text(400, "400 Bad Request");
    };
    let query = head.query().and_then(|q| std::str::from_utf8(q).ok());
    let server = &plan.server;
    // KrakenD: /__echo/* and /__debug/* are gin catch-all routes.
    if plan.echo && path.starts_with("/__echo/") {
        return builtin::echo(head, &body);
    }
    if plan.debug && path.starts_with("/__debug/") {
        return builtin::debug(head, &body);
    }
    match plan.router.route(method, path, query) {
        Route::Found { value, params } => match *value {
            RouteTarget::Endpoint(i) => match plan.endpoints.get(i) {
                Some(ep) => endpoint(plan, ctx, ep, head, body, &params, peer).await,
                None => Response::new(500),
            },
            RouteTarget::Health => builtin::health(),
            RouteTarget::Options(i) => {
                let allow = plan.allow.get(i).cloned().unwrap_or_default();
                Response::new(200).header("Allow", allow)
            }
        },
        Route::Redirect { status, location } => {
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

fn canned(plan: &Plan, status: u16, c: &crate::plan::Canned) -> Response {
    let mut r = Response::new(status).header("Content-Type", c.content_type);
    r.body = c.body.clone();
    with_version(plan, r)
}

fn with_version(plan: &Plan, r: Response) -> Response {
    r.header("X-Krakend", plan.server.version_header.clone())
}

async fn endpoint(
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
    let deadline = Instant::now() + ep.timeout;
    let Some(b) = ep.backends.first() else {
        return Response::text(500, "");
    };
    let out = forward::build(server, ep, b, &inb, &|_, _| None);
    let resp = if ep.output == Output::NoOp {
        no_op(call_stream(plan, ctx, b, &out, deadline).await)
    } else {
        single(plan, ep, b, call(plan, ctx, b, &out, deadline).await)
    };
    with_version(plan, resp)
}

async fn call(
    plan: &Plan,
    ctx: &WorkerCtx,
    b: &BackendPlan,
    out: &crate::backend::OutRequest,
    deadline: Instant,
) -> Result<BackendResponse, BackendError> {
    let mut s = call_stream(plan, ctx, b, out, deadline).await?;
    let mut body = bytes::BytesMut::new();
    let max = plan.server.backend.max_body;
    loop {
        match s.next_chunk(&mut body, max).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                crate::warn!("[BACKEND: {}] {}", b.url_pattern, e);
                return Err(e);
            }
        }
    }
    let (status, headers, url) = (
        s.status,
        std::mem::take(&mut s.headers),
        std::mem::take(&mut s.url),
    );
    s.finish(&ctx.pool);
    Ok(BackendResponse {
        url,
        status,
        headers,
        body: body.freeze(),
    })
}

async fn call_stream(
    plan: &Plan,
    ctx: &WorkerCtx,
    b: &BackendPlan,
    out: &crate::backend::OutRequest,
    deadline: Instant,
) -> Result<Streaming, BackendError> {
    let n = b.targets.len();
    let target = match n {
        0 => return Err(BackendError::NoHost),
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
    match result {
        Ok(mut r) => {
            let mut resp = Response::new(r.status);
            for h in r.headers.iter() {
                let n = &h.name[..];
                if [
                    &b"connection"[..],
                    b"keep-alive",
                    b"transfer-encoding",
                    b"content-length",
                    b"date",
                    b"proxy-connection",
                    b"trailer",
                    b"upgrade",
                ]
                .iter()
                .any(|x| x.eq_ignore_ascii_case(n))
                {
                    continue;
                }
                resp.headers.push((h.name.clone(), h.value.clone()));
            }
            r.headers = crate::http::Headers::default();
            resp.stream = Some(Box::new(r));
            // KrakenD: no-op responses always say the data is not "complete".
            resp.header("X-Krakend-Completed", "false")
        }
        Err(_) => Response::new(500).header("X-Krakend-Completed", "false"),
    }
}

/// KrakenD's single-backend status policy: only 200 and 201 are success.
fn single(
    plan: &Plan,
    ep: &EndpointPlan,
    b: &BackendPlan,
    result: Result<BackendResponse, BackendError>,
) -> Response {
    let server = &plan.server;
    let err_text = match result {
        Ok(r) if r.status == 200 || r.status == 201 => match decode(b, r.body) {
            Ok(data) => return render(ep, data, true),
            Err(e) => e,
        },
        Ok(r) => {
            let text = format!(
                "invalid status code {} [{} {}]: {}",
                r.status,
                String::from_utf8_lossy(&b.method),
                b.url_pattern,
                r.url
            );
            if let Some(name) = &b.return_error_details {
                let ct = r
                    .headers
                    .get("content-type")
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default();
                let detail = serde_json::json!({
                    format!("error_{name}"): {
                        "http_status_code": r.status,
                        "http_body": String::from_utf8_lossy(&r.body),
                        "http_body_encoding": ct,
                    }
                });
                return Response::json(200, Bytes::from(detail.to_string()))
                    .header("X-Krakend-Completed", "false");
            }
            if b.return_error_code {
                let mut resp = Response::new(r.status).header("X-Krakend-Completed", "false");
                if server.return_error_msg {
                    if let Some(ct) = r.headers.get("content-type") {
                        resp.headers.push((Bytes::from_static(CT), ct.clone()));
                    }
                    resp.body = r.body;
                }
                return resp;
            }
            text
        }
        Err(e) => e.to_string(),
    };
    let resp = if server.return_error_msg {
        Response::text(500, err_text)
    } else {
        Response::new(500)
    };
    resp.header("X-Krakend-Completed", "false")
}

/// Decode a successful backend body per its `encoding` into a JSON object text.
fn decode(b: &BackendPlan, body: Bytes) -> Result<Bytes, String> {
    match b.encoding {
        Encoding::NoOp => Ok(Bytes::from_static(b"{}")),
        Encoding::String => {
            let s = String::from_utf8_lossy(&body);
            Ok(Bytes::from(serde_json::json!({ "content": s }).to_string()))
        }
        Encoding::Json | Encoding::SafeJson => {
            let v: sonic_rs::Value =
                sonic_rs::from_slice(&body).map_err(|e| format!("decoding backend body: {e}"))?;
            use sonic_rs::JsonValueTrait;
            if v.is_object() && !(b.is_collection && b.encoding == Encoding::Json) {
                return Ok(body);
            }
            if v.is_array() && (b.is_collection || b.encoding == Encoding::SafeJson) {
                let mut out = Vec::with_capacity(body.len() + 16);
                out.extend_from_slice(b"{\"collection\":");
                out.extend_from_slice(&body);
                out.push(b'}');
                return Ok(Bytes::from(out));
            }
            if b.encoding == Encoding::SafeJson {
                let mut out = Vec::with_capacity(body.len() + 16);
                out.extend_from_slice(b"{\"content\":");
                out.extend_from_slice(&body);
                out.push(b'}');
                return Ok(Bytes::from(out));
            }
            Err("decoding backend body: not a JSON object".into())
        }
    }
}

/// Render the endpoint's output encoding from a JSON object text.
fn render(ep: &EndpointPlan, data: Bytes, complete: bool) -> Response {
    let empty = data.iter().filter(|b| !b.is_ascii_whitespace()).count() <= 2;
    let mut resp = match ep.output {
        Output::Json | Output::NoOp => Response::json(200, data),
        Output::JsonCollection => {
            let coll = sonic_rs::get_from_slice(&data, &["collection"])
                .ok()
                .map(|lv| Bytes::copy_from_slice(lv.as_raw_str().as_bytes()));
            Response::json(200, coll.unwrap_or_else(|| Bytes::from_static(b"[]")))
        }
        Output::String => {
            let content = sonic_rs::get_from_slice(&data, &["content"])
                .ok()
                .map(|lv| {
                    use sonic_rs::JsonValueTrait;
                    match lv.as_str() {
                        Some(s) => Bytes::copy_from_slice(s.as_bytes()),
                        None => Bytes::copy_from_slice(lv.as_raw_str().as_bytes()),
                    }
                });
            Response::text(200, content.unwrap_or_default())
        }
    };
    let completed = complete && !empty;
    resp = resp.header(
        "X-Krakend-Completed",
        if completed { "true" } else { "false" },
    );
    if completed {
        if let Some(cc) = &ep.cache_control {
            resp = resp.header("Cache-Control", cc.clone());
        }
    }
    resp
}
