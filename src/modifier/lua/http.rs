//! `http_response.new(url [, method, body [, headers]])` (krakend-lua `decorator/http.go`): an
//! HTTP call made from inside a script, answered as an object with `statusCode()`,
//! `headers(name)`, `headerList(name)`, `body()` and `close()`.
//!
//! The script does not block its core while the call is out: `http_response.new` yields the
//! script's coroutine to the gateway (see `runtime.rs`), the call runs on the core's event loop
//! through the backend client (its connection pool, TLS settings, redirects and body limit),
//! and the script is resumed with the answer. Other requests on the core go on meanwhile.

use super::api::{canonical, first, header_list};
use super::value::{busy, text};
use crate::backend::client::{self, CallOpts};
use crate::backend::pool::Pool;
use crate::backend::target::{literal, split_host, Addrs, Target};
use crate::backend::{dns, OutRequest};
use bytes::Bytes;
use mlua::{MultiValue, UserData, UserDataMethods, Value};
use std::cell::RefCell;

/// What a script's HTTP calls go through: the core's pool and the gateway's client settings
/// (deadline: the endpoint's timeout).
pub struct Http<'a> {
    pub pool: &'a Pool,
    pub opts: CallOpts<'a>,
    /// `User-Agent` sent when the script sets none (KrakenD: `KrakenD Version x`).
    pub user_agent: &'a [u8],
}

/// One call a script asked for.
pub(super) struct Call {
    pub target: Target,
    pub out: OutRequest,
    /// `METHOD "url"`, Go's prefix for the call's errors.
    pub what: String,
}

/// Read `http_response.new`'s arguments (the yield marker already removed). KrakenD: 1, 3 or
/// 4 arguments; with one, a GET without body.
pub(super) fn parse(args: &MultiValue, user_agent: &[u8]) -> Result<Call, String> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Nil);
    if matches!(args.len(), 0 | 2) {
        return Err("need 1, 3 or 4 arguments".into());
    }
    let url = text(&arg(0));
    let (method, body) = if args.len() == 1 {
        ("GET".to_string(), Bytes::new())
    } else {
        let body = match arg(2) {
            Value::String(s) => Bytes::copy_from_slice(&s.as_bytes()),
            v => Bytes::from(text(&v)),
        };
        (text(&arg(1)), body)
    };
    // Go's NewRequest: a method is a token; an empty one means GET.
    let method = if method.is_empty() {
        "GET".into()
    } else {
        method
    };
    if !crate::http::write::is_token(method.as_bytes()) {
        return Err(format!("net/http: invalid method {method:?}"));
    }
    let what = format!("{} {url:?}", title_method(&method));
    let (target, path_and_query) = parse_url(&url).map_err(|e| format!("{what}: {e}"))?;
    let mut headers: Vec<(Bytes, Bytes)> = Vec::new();
    if let Value::Table(t) = arg(3) {
        for pair in t.pairs::<Value, Value>() {
            let (k, v) = pair.map_err(|e| e.to_string())?;
            let name = canonical(&text(&k));
            let mut add = |value: String| headers.push((name.clone().into(), value.into()));
            match v {
                Value::Table(list) => {
                    for item in list.sequence_values::<Value>() {
                        add(text(&item.map_err(|e| e.to_string())?));
                    }
                }
                v => add(text(&v)),
            }
        }
    }
    for (name, value) in &headers {
        if !valid_field(name, value) {
            return Err(format!(
                "{what}: net/http: invalid header field {:?}",
                String::from_utf8_lossy(name)
            ));
        }
    }
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(b"user-agent"))
    {
        headers.push((
            Bytes::from_static(b"User-Agent"),
            Bytes::copy_from_slice(user_agent),
        ));
    }
    Ok(Call {
        target,
        out: OutRequest {
            method: Bytes::from(method),
            path_and_query,
            headers,
            body,
            params: Vec::new(),
            // A script's own call is not a backend call: no span, no `traceparent`.
            trace: None,
        },
        what,
    })
}

/// Go prints the method as given in its errors, `Get` for GET (`Get "http://…": …`).
fn title_method(m: &str) -> String {
    let mut out = String::with_capacity(m.len());
    for (i, c) in m.chars().enumerate() {
        out.push(if i == 0 { c } else { c.to_ascii_lowercase() });
    }
    out
}

fn valid_field(name: &[u8], value: &[u8]) -> bool {
    crate::http::write::is_token(name) && !value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

/// `http(s)://authority/path?query#fragment` -> the target and the request target. Bytes a
/// request line cannot carry (spaces, controls, non-ASCII) are percent-encoded, as Go's
/// `URL.RequestURI` does.
fn parse_url(url: &str) -> Result<(Target, String), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("unsupported protocol scheme {:?}", ""));
    };
    if !matches!(scheme, "http" | "https") {
        return Err(format!("unsupported protocol scheme {scheme:?}"));
    }
    let rest = rest.split('#').next().unwrap_or_default();
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (rest.get(..i).unwrap_or(rest), rest.get(i..).unwrap_or("/")),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err("http: no Host in request URL".into());
    }
    if authority.contains('@') || authority.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return Err(format!("invalid host {authority:?}"));
    }
    let (authority, name, port) = split_host(&format!("{scheme}://{authority}"))
        .map(|(a, n, p)| (a.to_string(), n.to_string(), p))?;
    let tls = (scheme == "https").then(|| crate::backend::target::tls_name(&name));
    let host = name.trim_start_matches('[').trim_end_matches(']');
    let addrs = match literal(host, port) {
        Some(a) => Addrs::Fixed(a),
        // A name a script builds may differ per request: looked up once for this call, never
        // registered with the resolver (which would keep refreshing it).
        None => Addrs::Name(dns::lookup_once(host), port),
    };
    let mut target = String::with_capacity(path.len() + 1);
    if path.starts_with('?') {
        target.push('/');
    }
    for b in path.bytes() {
        if b <= b' '
            || b >= 0x7f
            || matches!(
                b,
                b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
            )
        {
            target.push_str(&format!("%{b:02X}"));
        } else {
            target.push(b as char);
        }
    }
    Ok((
        Target {
            authority,
            addrs,
            tls,
        },
        target,
    ))
}

/// Make the call; the answer, or Go's error text.
pub(super) async fn fetch(http: &Http<'_>, call: &Call) -> Result<HttpResponse, String> {
    match client::call(http.pool, &call.target, &call.out, &http.opts).await {
        Ok(r) => {
            let mut headers: Vec<(String, Vec<String>)> = Vec::new();
            for h in r.headers.iter() {
                let name = canonical(&String::from_utf8_lossy(&h.name));
                let value = String::from_utf8_lossy(&h.value).into_owned();
                match headers.iter_mut().find(|(k, _)| *k == name) {
                    Some((_, vs)) => vs.push(value),
                    None => headers.push((name, vec![value])),
                }
            }
            Ok(HttpResponse(RefCell::new(Some(Answer {
                status: r.status,
                headers,
                body: r.body,
            }))))
        }
        Err(e) => Err(format!("{}: {e}", call.what)),
    }
}

struct Answer {
    status: u16,
    headers: Vec<(String, Vec<String>)>,
    body: Bytes,
}

/// The object `http_response.new` returns; `close()` drops the answer.
pub struct HttpResponse(RefCell<Option<Answer>>);

impl HttpResponse {
    /// The body's size: what the answer holds outside the Lua heap.
    pub(super) fn size(&self) -> usize {
        self.0
            .try_borrow()
            .ok()
            .and_then(|a| a.as_ref().map(|a| a.body.len()))
            .unwrap_or(0)
    }
}

fn closed() -> mlua::Error {
    mlua::Error::runtime("http_response: the response is closed")
}

fn name_arg(args: &MultiValue) -> mlua::Result<String> {
    match args.len() {
        1 => Ok(canonical(&text(args.front().unwrap_or(&Value::Nil)))),
        _ => Err(mlua::Error::runtime("need arguments")),
    }
}

impl UserData for HttpResponse {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("statusCode", |_, this, ()| {
            let a = busy(this.0.try_borrow())?;
            a.as_ref().map(|a| f64::from(a.status)).ok_or_else(closed)
        });
        m.add_method("headers", |_, this, args: MultiValue| {
            let name = name_arg(&args)?;
            let a = busy(this.0.try_borrow())?;
            a.as_ref()
                .map(|a| first(&a.headers, &name))
                .ok_or_else(closed)
        });
        m.add_method("headerList", |_, this, args: MultiValue| {
            let name = name_arg(&args)?;
            let a = busy(this.0.try_borrow())?;
            a.as_ref()
                .map(|a| header_list(&a.headers, &name))
                .ok_or_else(closed)
        });
        m.add_method("body", |lua, this, ()| {
            let a = busy(this.0.try_borrow())?;
            let a = a.as_ref().ok_or_else(closed)?;
            lua.create_string(&a.body[..])
        });
        m.add_method("close", |_, this, ()| {
            busy(this.0.try_borrow_mut())?.take();
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_target_and_request_target() {
        let (t, p) = parse_url("http://127.0.0.1:8080/a/b?x=1#frag").unwrap();
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert!(t.tls.is_none());
        assert_eq!(p, "/a/b?x=1");
        let (t, p) = parse_url("https://127.0.0.1").unwrap();
        assert!(t.tls.is_some());
        assert_eq!(p, "/");
        let (_, p) = parse_url("http://127.0.0.1?q=1").unwrap();
        assert_eq!(p, "/?q=1");
    }

    #[test]
    fn bytes_a_request_line_cannot_carry_are_percent_encoded() {
        let (_, p) = parse_url("http://127.0.0.1/a b/\u{e9}").unwrap();
        assert_eq!(p, "/a%20b/%C3%A9");
    }

    #[test]
    fn other_schemes_and_missing_hosts_are_refused() {
        assert!(parse_url("ftp://x/")
            .unwrap_err()
            .contains("unsupported protocol scheme"));
        assert!(parse_url("/relative").is_err());
        assert!(parse_url("http:///path").is_err());
        assert!(parse_url("http://user@host/").is_err());
    }

    #[test]
    fn go_names_the_method_in_errors_as_get() {
        assert_eq!(title_method("GET"), "Get");
        assert_eq!(title_method("POST"), "Post");
    }
}
