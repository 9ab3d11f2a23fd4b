//! `modifier/lua-proxy` around the endpoint pipe and `modifier/lua-backend` around one
//! backend call (krakend-lua `proxy/proxy.go`): `pre` on the request, the next stage (unless
//! `skip_next`), `post` on the response. A script error ends the call: the proxy level answers
//! it (`custom_error`'s status, or 500), the backend level fails the backend.

use super::call::{Failure, Outcome};
use super::{Pipe, PipeError};
use crate::backend::{OutRequest, Target};
use crate::gateway::forward::{self, Inbound, Rewritten};
use crate::json::Fields;
use crate::modifier::lua::{canonical, Http, LuaError, LuaScript, ReqState, RespState, Session};
use crate::plan::{BackendPlan, EndpointPlan, ServerPlan};
use bytes::Bytes;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// Headers as the Lua API holds them: canonical names, values grouped.
fn grouped(headers: &[(Bytes, Bytes)]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::with_capacity(headers.len());
    for (n, v) in headers {
        let name = canonical(&String::from_utf8_lossy(n));
        let value = String::from_utf8_lossy(v).into_owned();
        match out.iter_mut().find(|(k, _)| *k == name) {
            Some((_, vs)) => vs.push(value),
            None => out.push((name, vec![value])),
        }
    }
    out
}

fn flat(headers: &[(String, Vec<String>)]) -> Vec<(Bytes, Bytes)> {
    headers
        .iter()
        .flat_map(|(k, vs)| {
            vs.iter()
                .map(move |v| (Bytes::from(k.clone()), Bytes::from(v.clone())))
        })
        .filter(|(k, v)| valid_field(k, v))
        .collect()
}

/// A script may write anything; what goes on the wire must be a valid field (no CR/LF).
fn valid_field(name: &[u8], value: &[u8]) -> bool {
    !name.is_empty()
        && name.iter().all(|b| b.is_ascii_graphic() && *b != b':')
        && !value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

/// The proxy-level session and request after `pre`, or the answer when it failed.
pub(super) struct ProxyRun {
    pub session: Session,
    pub request: Rc<RefCell<ReqState>>,
}

/// Run the proxy-level `pre` and fold its changes into `inb`.
pub(super) async fn proxy_pre(
    script: &Arc<LuaScript>,
    server: &ServerPlan,
    ep: &EndpointPlan,
    inb: &mut Inbound<'_>,
    params: &mut Vec<(String, String)>,
    http: &Http<'_>,
) -> Result<ProxyRun, LuaError> {
    let session = Session::start(script, http).await?;
    let head = inb.head;
    let query: Vec<(String, String)> = inb
        .query
        .iter()
        .filter(|(k, _)| ep.query.allows_key(k))
        .cloned()
        .collect();
    let state = ReqState {
        method: String::from_utf8_lossy(&head.method).into_owned(),
        url: String::from_utf8_lossy(&head.target).into_owned(),
        path: String::from_utf8_lossy(head.path()).into_owned(),
        host: String::new(),
        query,
        params: params.clone(),
        headers: grouped(&forward::client_headers(server, ep, inb)),
        body: inb.body.clone(),
    };
    let request = Rc::new(RefCell::new(state));
    session.pre(&request, http).await?;
    {
        let r = request.borrow();
        inb.query = r.query.clone();
        inb.body = r.body.clone();
        inb.rewritten = Some(Rewritten {
            headers: flat(&r.headers),
        });
        *params = r.params.clone();
    }
    Ok(ProxyRun { session, request })
}

/// Run the proxy-level `post` on a pipe without error (KrakenD skips it after an error).
pub(super) async fn proxy_post(
    run: &ProxyRun,
    pipe: &mut Pipe,
    http: &Http<'_>,
) -> Result<(), LuaError> {
    if !run.session.has_post() || pipe.error.is_some() {
        return Ok(());
    }
    let response = Rc::new(RefCell::new(RespState {
        data: None,
        fields: pipe.data.take(),
        complete: pipe.complete,
        status: 200,
        headers: Vec::new(),
        body: None,
    }));
    let r = run.session.post(&run.request, &response, http).await;
    let mut resp = response.borrow_mut();
    pipe.data = Some(resp.take_fields()?.unwrap_or_default());
    r?;
    pipe.complete = resp.complete;
    pipe.headers = flat(&resp.headers);
    Ok(())
}

/// A failed proxy-level script as the pipe's error.
pub(super) fn pipe_error(e: LuaError) -> Pipe {
    Pipe {
        data: None,
        complete: false,
        error: Some(PipeError::Lua(e)),
        headers: Vec::new(),
    }
}

/// The backend-level `pre`: the session, the request for the call and, when the script sent it
/// to another host, that host.
pub(super) struct BackendRun {
    pub session: Session,
    pub request: Rc<RefCell<ReqState>>,
    pub out: OutRequest,
    pub target: Option<Target>,
}

pub(super) async fn backend_pre(
    script: &Arc<LuaScript>,
    b: &BackendPlan,
    out: &OutRequest,
    http: &Http<'_>,
) -> Result<BackendRun, LuaError> {
    let session = Session::start(script, http).await?;
    let authority = b.hosts.first_authority();
    let (path, query) = match out.path_and_query.split_once('?') {
        Some((p, q)) => (p, q),
        None => (out.path_and_query.as_str(), ""),
    };
    let state = ReqState {
        method: String::from_utf8_lossy(&out.method).into_owned(),
        url: format!("http://{authority}{}", out.path_and_query),
        path: path.to_string(),
        host: String::new(),
        query: forward::parse_query(query.as_bytes()),
        params: out.params.clone(),
        headers: grouped(&out.headers),
        body: out.body.clone(),
    };
    let request = Rc::new(RefCell::new(state));
    session.pre(&request, http).await?;
    let (next, target) = {
        let r = request.borrow();
        let (target, path_and_query) = split_url(&r.url, &authority)?;
        let method = if r.method.is_empty() {
            out.method.clone()
        } else {
            Bytes::from(r.method.to_ascii_uppercase())
        };
        (
            OutRequest {
                method,
                path_and_query,
                headers: flat(&r.headers),
                body: r.body.clone(),
                params: Vec::new(),
                trace: out.trace,
            },
            target,
        )
    };
    Ok(BackendRun {
        session,
        request,
        out: next,
        target,
    })
}

/// The URL a backend script left: the path and query to send and, when the host changed, the
/// host (an IP address only: a name would need a lookup the plan did not prepare).
fn split_url(url: &str, authority: &str) -> Result<(Option<Target>, String), LuaError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        LuaError::Script(format!("lua: unsupported backend URL {url:?} (http only)"))
    })?;
    let (host, path) = match rest.find(['/', '?']) {
        Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("")),
        None => (rest, ""),
    };
    let mut path = if path.starts_with('?') || path.is_empty() {
        format!("/{path}")
    } else {
        path.to_string()
    };
    if path.contains(['\r', '\n', ' ', '#']) {
        path = path
            .split('#')
            .next()
            .unwrap_or("")
            .replace(' ', "%20")
            .replace(['\r', '\n'], "");
    }
    if host.eq_ignore_ascii_case(authority) {
        return Ok((None, path));
    }
    let target = Target::compile(&format!("http://{host}"))
        .ok()
        .filter(|t| matches!(t.addrs, crate::backend::Addrs::Fixed(_)))
        .ok_or_else(|| {
            LuaError::Script(format!(
                "lua: a backend script may send the call to an IP address host only, not {host:?}"
            ))
        })?;
    Ok((Some(target), path))
}

/// The backend-level `post` on a successful call.
pub(super) async fn backend_post(run: &BackendRun, outcome: Outcome, http: &Http<'_>) -> Outcome {
    let Outcome::Data(fields) = outcome else {
        // KrakenD: after an error the post code does not run.
        return outcome;
    };
    if !run.session.has_post() {
        return Outcome::Data(fields);
    }
    let response = Rc::new(RefCell::new(RespState {
        data: None,
        fields: Some(fields),
        complete: true,
        status: 200,
        headers: Vec::new(),
        body: None,
    }));
    if let Err(e) = run.session.post(&run.request, &response, http).await {
        return Outcome::Failed(Failure::lua(e));
    }
    let fields = response.borrow_mut().take_fields();
    match fields {
        Ok(f) => Outcome::Data(f.unwrap_or_default()),
        Err(e) => Outcome::Failed(Failure::lua(e)),
    }
}

/// The proxy-level `post` on a whole no-op answer.
pub(super) async fn proxy_post_raw(
    run: &ProxyRun,
    status: u16,
    headers: crate::http::Headers,
    body: Bytes,
    http: &Http<'_>,
) -> Result<super::call::NoOp, LuaError> {
    post_raw(&run.session, &run.request, status, headers, body, http).await
}

/// The backend-level `post` on a whole no-op answer: its status, headers and body, as the
/// script leaves them.
pub(super) async fn backend_post_raw(
    run: &BackendRun,
    status: u16,
    headers: crate::http::Headers,
    body: Bytes,
    http: &Http<'_>,
) -> Result<super::call::NoOp, LuaError> {
    post_raw(&run.session, &run.request, status, headers, body, http).await
}

async fn post_raw(
    session: &Session,
    request: &Rc<RefCell<ReqState>>,
    status: u16,
    headers: crate::http::Headers,
    body: Bytes,
    http: &Http<'_>,
) -> Result<super::call::NoOp, LuaError> {
    let pairs: Vec<(Bytes, Bytes)> = headers.0.into_iter().map(|h| (h.name, h.value)).collect();
    let response = Rc::new(RefCell::new(RespState {
        data: None,
        fields: None,
        complete: false,
        status,
        headers: grouped(&pairs),
        body: Some(body),
    }));
    session.post(request, &response, http).await?;
    let r = response.borrow();
    Ok(super::call::NoOp::Whole {
        status: if (100..=999).contains(&r.status) {
            r.status
        } else {
            status
        },
        headers: crate::http::Headers(
            flat(&r.headers)
                .into_iter()
                .map(|(name, value)| crate::http::Header { name, value })
                .collect(),
        ),
        body: r.body.clone().unwrap_or_default(),
    })
}

/// `skip_next` at backend level: KrakenD's empty response.
pub(super) fn skipped() -> Outcome {
    Outcome::Data(Fields::new())
}

/// What a script's `http_response` calls go through: the core's pool and the backend client
/// settings, until `deadline`.
pub(crate) fn http<'a>(
    plan: &'a crate::plan::Plan,
    ctx: &'a crate::gateway::WorkerCtx,
    deadline: std::time::Instant,
) -> Http<'a> {
    Http {
        pool: &ctx.pool,
        opts: super::call::opts(plan, deadline),
        user_agent: &plan.server.user_agent,
    }
}
