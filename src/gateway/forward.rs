//! Building the backend request exactly as KrakenD does: url_pattern substitution, the client
//! query filtered by `input_query_strings` and re-encoded like Go's `url.Values.Encode`
//! (sorted keys), headers filtered by `input_headers`, plus `X-Forwarded-For`,
//! `X-Forwarded-Host` and `User-Agent`.

use crate::backend::url::Piece;
use crate::backend::OutRequest;
use crate::http::request::RequestHead;
use crate::plan::{BackendPlan, EndpointPlan, ServerPlan};
use bytes::Bytes;
use std::borrow::Cow;
use std::net::IpAddr;

/// Per-request inputs shared by every backend of an endpoint.
pub struct Inbound<'a> {
    pub head: &'a RequestHead,
    pub body: Bytes,
    pub client_ip: IpAddr,
    /// Path parameters (name, decoded value).
    pub params: &'a [(&'a str, String)],
    /// Parsed client query (decoded key, decoded value), in order.
    pub query: Vec<(String, String)>,
    /// `auth/validator`'s verdict for a valid token: its validator (which headers it
    /// replaces) and what the token grants (propagated headers, `{JWT.claim}` values).
    pub jwt: Option<(
        &'a crate::guard::jwt::Validator,
        &'a crate::guard::jwt::Grant,
    )>,
    /// Set by a `modifier/lua-proxy` script: the request headers as the script left them
    /// (already filtered by `input_headers`, with the gateway's own headers), and the query it
    /// left (already filtered by `input_query_strings`).
    pub rewritten: Option<Rewritten>,
    /// `telemetry/opentelemetry`: the span backend calls start under (the proxy stage sets
    /// its own while it runs). None: this request is not traced.
    pub trace: std::cell::Cell<Option<crate::telemetry::trace::ReqTrace>>,
}

/// The request a proxy-level script changed (see [`Inbound::rewritten`]).
pub struct Rewritten {
    pub headers: Vec<(Bytes, Bytes)>,
}

/// Hop-by-hop and framing headers are never copied: the gateway sets its own framing.
fn hop_by_hop(name: &[u8]) -> bool {
    const HOP: [&[u8]; 10] = [
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"te",
        b"trailer",
        b"upgrade",
        b"content-length",
        b"host",
        b"expect",
    ];
    HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// What Go's `net/http` client sends when a request carries no `User-Agent`.
const GO_CLIENT_USER_AGENT: &[u8] = b"Go-http-client/1.1";

/// Build the request for one backend.
pub fn build(
    server: &ServerPlan,
    ep: &EndpointPlan,
    b: &BackendPlan,
    inb: &Inbound<'_>,
    resp_values: &dyn Fn(usize, &str) -> Option<String>,
) -> OutRequest {
    let mut path = String::with_capacity(64);
    b.url.render(
        |p| match p {
            Piece::Param(name) => param(inb.params, name).map(Cow::Borrowed),
            Piece::Resp(i, field) => resp_values(*i, field).map(Cow::Owned),
            Piece::Jwt(claim) => inb.jwt.and_then(|(_, g)| g.param(claim)).map(Cow::Borrowed),
            Piece::Literal(_) => None,
        },
        &mut path,
    );
    // KrakenD: a literal query in url_pattern is kept; the forwarded client query follows `&`.
    // KrakenD: a proxy-level script's query was filtered by the endpoint before it ran.
    let endpoint_filter = inb.rewritten.is_none();
    let mut pairs: Vec<&(String, String)> = inb
        .query
        .iter()
        .filter(|(k, _)| {
            (!endpoint_filter || ep.query.allows_key(k))
                && b.query.as_ref().is_none_or(|f| f.allows_key(k))
        })
        .collect();
    if !pairs.is_empty() {
        pairs.sort_by(|x, y| x.0.cmp(&y.0));
        path.push(if b.url.has_query() { '&' } else { '?' });
        for (i, (k, v)) in pairs.into_iter().enumerate() {
            if i > 0 {
                path.push('&');
            }
            query_escape(k, &mut path);
            path.push('=');
            query_escape(v, &mut path);
        }
    }

    let mut headers = match &inb.rewritten {
        Some(r) => r.headers.clone(),
        None => client_headers(server, ep, inb),
    };
    if let Some(second) = &b.headers {
        // KrakenD: the backend-level filter also strips the gateway's own headers unless listed.
        headers.retain(|(n, _)| second.allows_header(n));
        // KrakenD: a request left without User-Agent goes out with Go's client default.
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(b"user-agent"))
        {
            headers.push((
                Bytes::from_static(b"User-Agent"),
                Bytes::from_static(GO_CLIENT_USER_AGENT),
            ));
        }
    }
    let trace = inb.trace.get().and_then(|t| t.call());
    if let Some(t) = &trace {
        propagate(&mut headers, t, inb);
    }
    OutRequest {
        method: b.method.clone(),
        path_and_query: path,
        headers,
        body: inb.body.clone(),
        params: if b.lua.is_some() {
            lua_params(inb.params, resp_values, ep)
        } else {
            Vec::new()
        },
        trace,
    }
}

/// W3C trace context to the backend: our `traceparent` (naming this call's innermost span)
/// replaces any the client sent; the client's `tracestate` goes along with it.
// KrakenD: krakend-otel's transport injects the context into every backend request (the
// TraceContext propagator sets the header, replacing a forwarded one).
// Not KrakenD: an unsampled request still propagates (flags 00), as W3C asks, where
// krakend-otel's transport skips the unrecorded span and sends nothing.
fn propagate(
    headers: &mut Vec<(Bytes, Bytes)>,
    t: &crate::telemetry::trace::CallTrace,
    inb: &Inbound<'_>,
) {
    headers.retain(|(n, _)| {
        !n.eq_ignore_ascii_case(b"traceparent") && !n.eq_ignore_ascii_case(b"tracestate")
    });
    headers.push((
        Bytes::from_static(b"Traceparent"),
        crate::telemetry::trace::traceparent(&t.sent),
    ));
    let client = inb.head.headers.get("traceparent").map(|v| &v[..]);
    let continued = client.and_then(crate::telemetry::trace::parse_traceparent);
    if continued.is_some_and(|c| c.trace == t.sent.trace) {
        if let Some(state) = inb.head.headers.get("tracestate").filter(|s| !s.is_empty()) {
            headers.push((Bytes::from_static(b"Tracestate"), state.clone()));
        }
    }
}

/// The params a backend script sees: lura's (first letter upper case), and with
/// `sequential_propagated_params` the earlier results as `RespN_path`.
fn lua_params(
    params: &[(&str, String)],
    resp_values: &dyn Fn(usize, &str) -> Option<String>,
    ep: &EndpointPlan,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        params.iter().map(|(k, v)| (title(k), v.clone())).collect();
    for (n, path) in &ep.propagated {
        if let Some(v) = resp_values(*n, path) {
            let name = if path.is_empty() {
                format!("Resp{n}")
            } else {
                format!("Resp{n}_{path}")
            };
            out.push((name, v));
        }
    }
    out
}

/// lura's param key: the first letter upper case.
pub fn title(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The client's headers as the endpoint passes them on: filtered by `input_headers`, plus
/// `X-Forwarded-For`, `X-Forwarded-Host` and `User-Agent` (or `X-Forwarded-Via`).
pub fn client_headers(
    server: &ServerPlan,
    ep: &EndpointPlan,
    inb: &Inbound<'_>,
) -> Vec<(Bytes, Bytes)> {
    let mut headers: Vec<(Bytes, Bytes)> = Vec::with_capacity(8);
    let mut ua_forwarded = false;
    for h in inb.head.headers.iter() {
        if hop_by_hop(&h.name) || !ep.headers.allows_header(&h.name) {
            continue;
        }
        // KrakenD: a propagated claim replaces the client's header of that name (`Set`).
        if inb.jwt.is_some_and(|(v, _)| v.replaces_header(&h.name)) {
            continue;
        }
        if h.name.eq_ignore_ascii_case(b"x-forwarded-for")
            || h.name.eq_ignore_ascii_case(b"x-forwarded-host")
        {
            continue; // KrakenD overrides these even with "*"
        }
        if h.name.eq_ignore_ascii_case(b"user-agent") {
            ua_forwarded = true;
        }
        headers.push((canonical(&h.name), h.value.clone()));
    }
    // KrakenD: claims become request headers, which reach the backend only when listed in
    // `input_headers` like any other.
    if let Some((_, grant)) = inb.jwt {
        for (name, value) in &grant.headers {
            if ep.headers.allows_header(name) && !hop_by_hop(name) {
                headers.push((name.clone(), value.clone()));
            }
        }
    }
    headers.push((
        Bytes::from_static(b"X-Forwarded-For"),
        ip_text(inb.client_ip),
    ));
    if let Some(host) = inb.head.headers.get("host") {
        headers.push((Bytes::from_static(b"X-Forwarded-Host"), host.clone()));
    }
    if ua_forwarded {
        headers.push((
            Bytes::from_static(b"X-Forwarded-Via"),
            server.user_agent.clone(),
        ));
    } else {
        headers.push((Bytes::from_static(b"User-Agent"), server.user_agent.clone()));
    }
    headers
}

/// The client address as header text. IPv4 is written by hand: `Display` through
/// `core::fmt` cost about 2,000 instructions per request, a tenth of the gateway's own work.
fn ip_text(ip: std::net::IpAddr) -> Bytes {
    // Keep-alive clients send many requests from one address: the last text made on this core
    // is shared (a reference count) instead of written and allocated again per request.
    thread_local! {
        static LAST: std::cell::RefCell<Option<(std::net::IpAddr, Bytes)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((cached, text)) if *cached == ip => text.clone(),
            _ => {
                let text = write_ip(ip);
                *last = Some((ip, text.clone()));
                text
            }
        }
    })
}

fn write_ip(ip: std::net::IpAddr) -> Bytes {
    let std::net::IpAddr::V4(v4) = ip else {
        return Bytes::from(ip.to_string());
    };
    let mut out = Vec::with_capacity(15);
    let mut digits = itoa::Buffer::new();
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        out.extend_from_slice(digits.format(octet).as_bytes());
    }
    Bytes::from(out)
}

/// Look a parameter up by name; KrakenD title-cases the first letter on both sides, so the
/// first letter matches case-insensitively.
fn param<'a>(params: &'a [(&str, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| *n == name)
        .or_else(|| params.iter().find(|(n, _)| first_ci_eq(n, name)))
        .map(|(_, v)| v.as_str())
}

fn first_ci_eq(a: &str, b: &str) -> bool {
    let mut ca = a.chars();
    let mut cb = b.chars();
    match (ca.next(), cb.next()) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(&y) && ca.as_str() == cb.as_str(),
        _ => false,
    }
}

/// Go's `textproto.CanonicalMIMEHeaderKey`: `x-api-key` -> `X-Api-Key`.
pub fn canonical(name: &[u8]) -> Bytes {
    if !name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-') {
        return Bytes::copy_from_slice(name);
    }
    let mut out = Vec::with_capacity(name.len());
    let mut upper = true;
    for &b in name {
        out.push(if upper {
            b.to_ascii_uppercase()
        } else {
            b.to_ascii_lowercase()
        });
        upper = b == b'-';
    }
    Bytes::from(out)
}

/// Go's `url.ParseQuery` as lura uses it (`URL.Query()`): pairs split on `&`, `+` is a space,
/// pairs with a bad escape or a `;` are dropped.
pub fn parse_query(raw: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in raw.split(|b| *b == b'&') {
        if part.is_empty() || part.contains(&b';') {
            continue;
        }
        let (k, v) = match part.iter().position(|b| *b == b'=') {
            Some(i) => (
                part.get(..i).unwrap_or(&[]),
                part.get(i + 1..).unwrap_or(&[]),
            ),
            None => (part, &[][..]),
        };
        if let (Some(k), Some(v)) = (unescape(k, true), unescape(v, true)) {
            out.push((k, v));
        }
    }
    out
}

/// Percent-decoding (`plus_is_space` for query components). None on a bad escape or invalid
/// UTF-8.
pub fn unescape(s: &[u8], plus_is_space: bool) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        match b {
            b'%' => {
                let hi = s.get(i + 1).and_then(|c| (*c as char).to_digit(16))?;
                let lo = s.get(i + 2).and_then(|c| (*c as char).to_digit(16))?;
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(HEX.get((b >> 4) as usize).copied().unwrap_or(b'0') as char);
            out.push(HEX.get((b & 15) as usize).copied().unwrap_or(b'0') as char);
        }
    }
}

/// The client IP KrakenD reports: the socket peer, or with `forwarded_by_client_ip` the first
/// valid IP of the configured headers (gin's `ClientIP`, every proxy trusted).
pub fn client_ip(head: &RequestHead, peer: IpAddr, forwarded: Option<&[String]>) -> IpAddr {
    if let Some(names) = forwarded {
        for name in names {
            if let Some(v) = head.headers.get(name) {
                let first = v.split(|b| *b == b',').next().unwrap_or(&[]);
                if let Some(ip) = std::str::from_utf8(first)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                {
                    return ip;
                }
            }
        }
    }
    peer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_addresses_are_written_as_go_writes_them() {
        for ip in [
            "127.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "10.20.3.4",
            "::1",
            "2001:db8::7",
        ] {
            let parsed: std::net::IpAddr = ip.parse().unwrap();
            assert_eq!(&ip_text(parsed)[..], ip.as_bytes());
        }
    }

    #[test]
    fn the_cached_client_address_follows_each_new_client() {
        // The per-core cache keeps the last address: alternating clients must each get their
        // own text, not the previous client's.
        for ip in [
            "10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.1", "::1", "10.0.0.2",
        ] {
            let parsed: std::net::IpAddr = ip.parse().unwrap();
            assert_eq!(&ip_text(parsed)[..], ip.as_bytes());
        }
    }

    #[test]
    fn header_names_are_canonicalised_like_go() {
        assert_eq!(&canonical(b"x-api-KEY")[..], b"X-Api-Key");
        assert_eq!(&canonical(b"content-type")[..], b"Content-Type");
        assert_eq!(&canonical(b"weird_name")[..], b"weird_name");
    }

    #[test]
    fn queries_parse_with_plus_as_space_and_drop_bad_pairs() {
        let q = parse_query(b"a=1&b=x+y&c=%zz&&d&e=%C3%A9");
        assert_eq!(
            q,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("d".into(), "".into()),
                ("e".into(), "é".into())
            ]
        );
    }

    #[test]
    fn query_values_are_escaped_like_go_query_escape() {
        let mut s = String::new();
        query_escape("a b&c/é", &mut s);
        assert_eq!(s, "a+b%26c%2F%C3%A9");
    }

    #[test]
    fn params_match_with_a_case_insensitive_first_letter() {
        let p = [("id", "7".to_string())];
        assert_eq!(param(&p, "id"), Some("7"));
        assert_eq!(param(&p, "Id"), Some("7"));
        assert_eq!(param(&p, "iD"), None);
    }
}
