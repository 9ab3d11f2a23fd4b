//! `qos/http-cache` around one backend call: reuse a fresh stored response, revalidate a stale
//! one with `If-None-Match` / `If-Modified-Since` (a 304 refreshes it), store what RFC 9111
//! lets us store. KrakenD: the cache is inside the HTTP client, so the backend rate limit
//! still takes a token on a hit, and a cached response goes through the same status rule and
//! shaping as a live one (the caller judges both alike).

use super::call::{self, Fetched};
use crate::backend::httpcache::fresh::{self, Freshness};
use crate::backend::httpcache::{now_ms, HttpCache, Lookup, Stored};
use crate::backend::{client, BackendError, OutRequest, Target};
use crate::gateway::WorkerCtx;
use crate::http::{Header, Headers};
use crate::plan::{BackendPlan, Plan};
use bytes::Bytes;
use std::time::Instant;

fn has(out: &OutRequest, name: &[u8]) -> bool {
    out.headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// Whether the cache takes part in this call: GET or HEAD, not a range (KrakenD skips them),
/// not already conditional (the client's own validators are the client's business), and no
/// `Authorization`: this one cache serves every client of the gateway, so a response to one
/// user's credentials is never handed to another (RFC 9111 §3.5; KrakenD would).
pub(super) fn applies(out: &OutRequest) -> bool {
    matches!(&out.method[..], b"GET" | b"HEAD")
        && !has(out, b"range")
        && !has(out, b"if-none-match")
        && !has(out, b"if-modified-since")
        && !has(out, b"authorization")
}

pub(super) async fn fetch(
    plan: &Plan,
    ctx: &WorkerCtx,
    b: &BackendPlan,
    cache: &HttpCache,
    out: &OutRequest,
    deadline: Instant,
) -> Result<Fetched, BackendError> {
    call::admit(b)?;
    let picked = call::pick(ctx, b, deadline).await?;
    let target = picked.target()?;
    // Key: method and the URL called (KrakenD keys on the URL; HEAD and GET apart).
    let mut base = String::with_capacity(
        out.method.len() + target.authority.len() + out.path_and_query.len() + 2,
    );
    base.push_str(&String::from_utf8_lossy(&out.method));
    base.push(' ');
    base.push_str(&target.authority);
    base.push_str(&out.path_and_query);
    // The client's own directives reach us only when `Cache-Control` is in `input_headers`
    // (KrakenD alike).
    let req = fresh::directives_of(
        out.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"cache-control"))
            .map(|(_, v)| &v[..]),
    );
    if req.no_store {
        return live(plan, ctx, b, target, out, deadline)
            .await
            .map(|(f, _)| f);
    }
    let now = now_ms();
    let found = cache.with_store(|s| s.lookup(&base, &out.headers, now));
    let stale = match found {
        Lookup::Fresh(r) if !req.no_cache && req.max_age != Some(0) => {
            return Ok(served(&r, target, out));
        }
        Lookup::Fresh(r) | Lookup::Stale(r) => Some(r),
        Lookup::Miss => None,
    };
    let conditional = stale.as_ref().and_then(|r| conditional(out, &r.headers));
    let sent = conditional.as_ref().unwrap_or(out);
    let (got, headers) = live(plan, ctx, b, target, sent, deadline).await?;
    let received = now_ms();
    if let (304, Some(_), Some(old)) = (got.status, &conditional, &stale) {
        // The backend confirmed the stored response: refresh its headers and freshness.
        let merged = refreshed(&old.headers, &headers);
        let stored = Stored {
            status: old.status,
            headers: Stored::compact(old.status, &merged, &[]).headers,
            body: old.body.clone(),
        };
        let answer = served(&stored, target, out);
        let f = Freshness::of(&stored.headers, received);
        cache.with_store(|s| s.put(&base, &out.headers, stored, f));
        return Ok(answer);
    }
    if fresh::storable(got.status, &headers, false, received) {
        let f = Freshness::of(&headers, received);
        let stored = Stored::compact(got.status, &headers, &got.body);
        cache.with_store(|s| s.put(&base, &out.headers, stored, f));
    } else if stale.is_some() {
        cache.with_store(|s| s.remove(&base, &out.headers));
    }
    Ok(got)
}

/// A stored response as the caller sees a live one.
fn served(r: &Stored, target: &Target, out: &OutRequest) -> Fetched {
    let url = if matches!(r.status, 200 | 201) {
        String::new()
    } else {
        format!("http://{}{}", target.authority, out.path_and_query)
    };
    Fetched {
        status: r.status,
        content_type: r.headers.get("content-type").cloned(),
        body: r.body.clone(),
        url,
    }
}

async fn live(
    plan: &Plan,
    ctx: &WorkerCtx,
    b: &BackendPlan,
    target: &Target,
    out: &OutRequest,
    deadline: Instant,
) -> Result<(Fetched, Headers), BackendError> {
    match client::call_stream(&ctx.pool, target, out, &call::opts(plan, deadline)).await {
        Ok(s) => call::read_whole(plan, ctx, b, s).await,
        Err(e) => {
            crate::warn!("[BACKEND: {}] {}", b.url_pattern, e);
            Err(e)
        }
    }
}

/// `out` made conditional on the stored response's validators; None without any.
fn conditional(out: &OutRequest, stored: &Headers) -> Option<OutRequest> {
    let etag = stored.get("etag");
    let modified = stored.get("last-modified");
    if etag.is_none() && modified.is_none() {
        return None;
    }
    let mut req = out.clone();
    if let Some(e) = etag {
        req.headers
            .push((Bytes::from_static(b"If-None-Match"), e.clone()));
    }
    if let Some(m) = modified {
        req.headers
            .push((Bytes::from_static(b"If-Modified-Since"), m.clone()));
    }
    Some(req)
}

/// Fields a 304 must not change in the stored response (RFC 9111 §3.2: framing and content
/// coding describe the stored body, not the 304).
fn keeps_stored(name: &[u8]) -> bool {
    [
        &b"content-length"[..],
        b"transfer-encoding",
        b"content-encoding",
        b"connection",
        b"keep-alive",
    ]
    .iter()
    .any(|k| name.eq_ignore_ascii_case(k))
}

/// The stored fields with those the 304 carries replaced by its values (RFC 9111 §3.2).
fn refreshed(stored: &Headers, fresh: &Headers) -> Headers {
    let updates: Vec<&Header> = fresh.0.iter().filter(|h| !keeps_stored(&h.name)).collect();
    let mut out: Vec<Header> = stored
        .0
        .iter()
        .filter(|h| !updates.iter().any(|u| u.name.eq_ignore_ascii_case(&h.name)))
        .cloned()
        .collect();
    out.extend(updates.into_iter().cloned());
    Headers(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        Headers(
            pairs
                .iter()
                .map(|(n, v)| Header {
                    name: Bytes::copy_from_slice(n.as_bytes()),
                    value: Bytes::copy_from_slice(v.as_bytes()),
                })
                .collect(),
        )
    }

    #[test]
    fn a_304_replaces_fields_but_not_the_framing() {
        let stored = h(&[
            ("Content-Type", "application/json"),
            ("Content-Length", "10"),
            ("Cache-Control", "max-age=1"),
            ("ETag", "\"v1\""),
        ]);
        let r = refreshed(
            &stored,
            &h(&[("cache-control", "max-age=60"), ("Content-Length", "0")]),
        );
        assert_eq!(
            r.get("cache-control").map(|v| &v[..]),
            Some(&b"max-age=60"[..])
        );
        assert_eq!(r.get("content-length").map(|v| &v[..]), Some(&b"10"[..]));
        assert_eq!(r.get("etag").map(|v| &v[..]), Some(&b"\"v1\""[..]));
        assert_eq!(r.get_all("cache-control").count(), 1);
    }

    #[test]
    fn only_plain_gets_and_heads_without_credentials_use_the_cache() {
        let req = |m: &'static [u8], hs: &[(&'static [u8], &'static [u8])]| OutRequest {
            method: Bytes::from_static(m),
            path_and_query: "/".into(),
            headers: hs
                .iter()
                .map(|(n, v)| (Bytes::from_static(n), Bytes::from_static(v)))
                .collect(),
            body: Bytes::new(),
            params: Vec::new(),
            trace: None,
        };
        assert!(applies(&req(b"GET", &[])));
        assert!(applies(&req(b"HEAD", &[(b"Accept", b"*/*")])));
        assert!(!applies(&req(b"POST", &[])));
        assert!(!applies(&req(b"GET", &[(b"Range", b"bytes=0-1")])));
        assert!(!applies(&req(b"GET", &[(b"Authorization", b"Bearer x")])));
        assert!(!applies(&req(b"GET", &[(b"If-None-Match", b"\"a\"")])));
    }
}
