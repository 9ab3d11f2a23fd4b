//! `modifier/lua-endpoint` (krakend-lua `router/gin/lua.go`): a script on the client's request
//! before the endpoint runs, with `ctx.load()`. At service level it is a gin middleware on
//! every route; at endpoint level it wraps the endpoint handler. A failed script aborts with a
//! bare status: 500 at service level, `custom_error`'s status (or 500) at endpoint level.

use super::Response;
use crate::http::request::RequestHead;
use crate::http::{Header, Headers};
use crate::modifier::lua::{canonical, encode_query, Http, LuaScript, ReqState, Session};
use bytes::Bytes;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// The request as the script left it.
pub struct Rewrite {
    pub head: RequestHead,
    pub body: Bytes,
    pub params: Vec<(String, String)>,
}

impl Rewrite {
    /// The params in the form the router hands out.
    pub fn params(&self) -> Vec<(&str, String)> {
        self.params
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect()
    }
}

pub async fn run(
    script: &Arc<LuaScript>,
    head: &RequestHead,
    body: &Bytes,
    params: &[(&str, String)],
    service: bool,
    http: &Http<'_>,
) -> Result<Rewrite, Response> {
    let fail = |status: u16| Response::new(status);
    let session = Session::start(script, http).await.map_err(|e| {
        crate::warn!("[Lua] {e}");
        fail(500)
    })?;
    let mut headers: Vec<(String, Vec<String>)> = Vec::new();
    for h in head.headers.iter() {
        let name = canonical(&String::from_utf8_lossy(&h.name));
        let value = String::from_utf8_lossy(&h.value).into_owned();
        match headers.iter_mut().find(|(k, _)| *k == name) {
            Some((_, vs)) => vs.push(value),
            None => headers.push((name, vec![value])),
        }
    }
    let url = String::from_utf8_lossy(&head.target).into_owned();
    let state = ReqState {
        method: String::from_utf8_lossy(&head.method).into_owned(),
        url: url.clone(),
        path: String::from_utf8_lossy(head.path()).into_owned(),
        host: head
            .headers
            .get("host")
            .map(|h| String::from_utf8_lossy(h).into_owned())
            .unwrap_or_default(),
        query: head
            .query()
            .map(crate::gateway::forward::parse_query)
            .unwrap_or_default(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        headers,
        body: body.clone(),
    };
    let original_query = state.query.clone();
    let original_host = state.host.clone();
    let ctx = Rc::new(RefCell::new(state));
    if let Err(e) = session.endpoint(&ctx, http).await {
        crate::warn!("[Lua] {e}");
        // KrakenD: the service-level middleware always aborts with 500.
        return Err(fail(if service { 500 } else { e.status() }));
    }
    let r = ctx.borrow();
    let mut new = head.clone();
    // The URL: a new one replaces the target; a changed query re-encodes it (KrakenD `q.Encode`).
    let mut target = if r.url != url {
        r.url.clone()
    } else {
        url.clone()
    };
    if r.query != original_query {
        let path = target.split('?').next().unwrap_or("").to_string();
        let q = encode_query(&r.query);
        target = if q.is_empty() {
            path
        } else {
            format!("{path}?{q}")
        };
    }
    if target.starts_with('/') && !target.contains(['\r', '\n', ' ', '#']) {
        new.target = Bytes::from(target);
    }
    let mut fields: Vec<Header> = Vec::new();
    for (k, vs) in &r.headers {
        if k.eq_ignore_ascii_case("host") {
            continue;
        }
        for v in vs {
            if v.contains(['\r', '\n']) {
                continue;
            }
            fields.push(Header {
                name: Bytes::from(k.clone()),
                value: Bytes::from(v.clone()),
            });
        }
    }
    let host = if r.host != original_host {
        Some(r.host.clone())
    } else {
        head.headers
            .get("host")
            .map(|h| String::from_utf8_lossy(h).into_owned())
    };
    if let Some(h) = host.filter(|h| !h.contains(['\r', '\n'])) {
        fields.push(Header {
            name: Bytes::from_static(b"Host"),
            value: Bytes::from(h),
        });
    }
    new.headers = Headers(fields);
    Ok(Rewrite {
        head: new,
        body: r.body.clone(),
        params: r.params.clone(),
    })
}
