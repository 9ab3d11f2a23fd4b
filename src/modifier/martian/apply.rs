//! Running a compiled tree: request modifiers on the request a backend is about to be sent,
//! response modifiers on its raw answer (status, headers, body) before the body is decoded.
//! martian's own modifiers never fail, so neither does this (`aggregateErrors` only changes
//! how errors would be collected: it is read and has nothing to collect).

use super::{Martian, Node, Scoped, Test};
use crate::modifier::lua::encode_query;
use bytes::Bytes;

/// The request side.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// `host[:port]` the call goes to.
    pub host: String,
    pub path: String,
    /// The raw query, without `?`.
    pub query: String,
    pub headers: Vec<(Bytes, Bytes)>,
    pub body: Bytes,
}

impl Outgoing {
    pub fn new(
        host: &str,
        path_and_query: &str,
        headers: Vec<(Bytes, Bytes)>,
        body: Bytes,
    ) -> Self {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (path_and_query.to_string(), String::new()),
        };
        Outgoing {
            host: host.to_string(),
            path,
            query,
            headers,
            body,
        }
    }

    pub fn path_and_query(&self) -> String {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        if self.query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", self.query)
        }
    }

    fn url(&self) -> String {
        format!("http://{}{}", self.host, self.path_and_query())
    }

    fn port(&self) -> u16 {
        split_port(&self.host).1.unwrap_or(80)
    }
}

/// The response side (and the request it answers, for filters on the URL).
#[derive(Debug)]
pub struct Exchange<'a> {
    pub status: u16,
    pub headers: Vec<(Bytes, Bytes)>,
    pub body: Bytes,
    /// A `body.Modifier` replaced the body.
    pub body_replaced: bool,
    pub request: &'a Outgoing,
}

fn canonical(name: &str) -> Bytes {
    crate::gateway::forward::canonical(name.as_bytes())
}

fn get<'h>(headers: &'h [(Bytes, Bytes)], name: &str) -> Option<&'h Bytes> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v)
}

fn all<'h>(headers: &'h [(Bytes, Bytes)], name: &'h str) -> impl Iterator<Item = &'h Bytes> + 'h {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v)
}

fn del(headers: &mut Vec<(Bytes, Bytes)>, name: &str) {
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name.as_bytes()));
}

/// Go's `Header.Set`.
fn set(headers: &mut Vec<(Bytes, Bytes)>, name: &str, value: &str) {
    del(headers, name);
    add(headers, name, value);
}

fn add(headers: &mut Vec<(Bytes, Bytes)>, name: &str, value: &str) {
    // What goes on the wire must be a valid field; martian would write anything.
    if name.is_empty()
        || value.contains(['\r', '\n', '\0'])
        || name.contains([':', ' ', '\r', '\n'])
    {
        return;
    }
    headers.push((canonical(name), Bytes::copy_from_slice(value.as_bytes())));
}

fn split_port(host: &str) -> (&str, Option<u16>) {
    match host.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p.parse().ok()),
        _ => (host, None),
    }
}

fn cookie_pairs(v: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    v.split(|b| *b == b';').filter_map(|p| {
        let p = String::from_utf8_lossy(p);
        let (k, v) = p.trim().split_once('=')?;
        Some((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
    })
}

impl Martian {
    /// The request modifiers.
    pub fn request(&self, out: &mut Outgoing) {
        run_request(&self.root, out);
    }

    /// The response modifiers.
    pub fn response(&self, ex: &mut Exchange<'_>) {
        run_response(&self.root, ex);
    }
}

fn query_has(query: &str, name: &str, value: &str) -> bool {
    crate::gateway::forward::parse_query(query.as_bytes())
        .iter()
        .any(|(k, v)| k == name && (value.is_empty() || v == value))
}

fn url_matches(req: &Outgoing, scheme: &str, host: &str, path: &str, query: &str) -> bool {
    (scheme.is_empty() || scheme == "http")
        && (host.is_empty() || host == req.host)
        && (path.is_empty() || path == req.path)
        && (query.is_empty() || query == req.query)
}

/// A filter's test on the request.
fn test_request(t: &Test, req: &Outgoing) -> bool {
    match t {
        Test::Header { name, value } => all(&req.headers, name).any(|v| v == value.as_bytes()),
        Test::HeaderRegex { name, regex } => {
            all(&req.headers, name).any(|v| regex.is_match(&String::from_utf8_lossy(v)))
        }
        Test::Query { name, value } => query_has(&req.query, name, value),
        Test::Cookie { name, value } => all(&req.headers, "cookie")
            .flat_map(|v| cookie_pairs(v).collect::<Vec<_>>())
            .any(|(k, v)| k == *name && (value.is_empty() || v == *value)),
        Test::Url {
            scheme,
            host,
            path,
            query,
        } => url_matches(req, scheme, host, path, query),
        Test::UrlRegex { regex } => regex.is_match(&req.url()),
        Test::Port { port } => req.port() == *port,
    }
}

/// A filter's test on the response: headers and cookies are the response's, the URL the
/// request's.
fn test_response(t: &Test, ex: &Exchange<'_>) -> bool {
    match t {
        Test::Header { name, value } => all(&ex.headers, name).any(|v| v == value.as_bytes()),
        Test::HeaderRegex { name, regex } => {
            all(&ex.headers, name).any(|v| regex.is_match(&String::from_utf8_lossy(v)))
        }
        Test::Cookie { name, value } => all(&ex.headers, "set-cookie")
            .filter_map(|v| cookie_pairs(v).next())
            .any(|(k, v)| k == *name && (value.is_empty() || v == *value)),
        other => test_request(other, ex.request),
    }
}

fn run_request(s: &Scoped, out: &mut Outgoing) {
    if !s.scope.request {
        return;
    }
    match &s.node {
        Node::HeaderSet { name, value } => set(&mut out.headers, name, value),
        Node::HeaderAppend { name, value } => add(&mut out.headers, name, value),
        Node::HeaderBlacklist { names } => names.iter().for_each(|n| del(&mut out.headers, n)),
        Node::HeaderCopy { from, to } => {
            let v = get(&out.headers, from)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            set(&mut out.headers, to, &v);
        }
        Node::QuerySet { name, value } => {
            let mut q = crate::gateway::forward::parse_query(out.query.as_bytes());
            q.retain(|(k, _)| k != name);
            q.push((name.clone(), value.clone()));
            out.query = encode_query(&q);
        }
        Node::Body { content_type, body } => {
            out.body = body.clone();
            set(&mut out.headers, "Content-Type", content_type);
            del(&mut out.headers, "Content-Encoding");
        }
        Node::Cookie { name, value, .. } => {
            let pair = format!("{name}={value}");
            let v = match get(&out.headers, "cookie") {
                Some(c) if !c.is_empty() => format!("{}; {pair}", String::from_utf8_lossy(c)),
                _ => pair,
            };
            set(&mut out.headers, "Cookie", &v);
        }
        Node::Url {
            scheme: _,
            host,
            path,
            query,
        } => {
            if !host.is_empty() {
                out.host = host.clone();
            }
            if !path.is_empty() {
                out.path = path.replace(' ', "%20");
            }
            if !query.is_empty() {
                out.query = query.clone();
            }
        }
        Node::Port {
            port,
            default_for_scheme,
            remove,
        } => {
            let host = split_port(&out.host).0.to_string();
            out.host = if *remove {
                host
            } else if *default_for_scheme {
                format!("{host}:80")
            } else {
                match port {
                    Some(p) => format!("{host}:{p}"),
                    None => out.host.clone(),
                }
            };
        }
        Node::Stash { header } => {
            let url = out.url();
            set(&mut out.headers, header, &url);
        }
        Node::Group { children, .. } => children.iter().for_each(|c| run_request(c, out)),
        Node::Filter {
            test,
            then,
            otherwise,
        } => {
            let branch = if test_request(test, out) {
                then
            } else {
                otherwise
            };
            if let Some(b) = branch {
                run_request(b, out);
            }
        }
    }
}

fn run_response(s: &Scoped, ex: &mut Exchange<'_>) {
    if !s.scope.response {
        return;
    }
    match &s.node {
        Node::HeaderSet { name, value } => set(&mut ex.headers, name, value),
        Node::HeaderAppend { name, value } => add(&mut ex.headers, name, value),
        Node::HeaderBlacklist { names } => names.iter().for_each(|n| del(&mut ex.headers, n)),
        Node::HeaderCopy { from, to } => {
            let v = get(&ex.headers, from)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            set(&mut ex.headers, to, &v);
        }
        Node::Body { content_type, body } => {
            ex.body = body.clone();
            ex.body_replaced = true;
            set(&mut ex.headers, "Content-Type", content_type);
            del(&mut ex.headers, "Content-Encoding");
            del(&mut ex.headers, "Content-Length");
        }
        Node::Cookie { set_cookie, .. } => add(&mut ex.headers, "Set-Cookie", set_cookie),
        Node::Stash { header } => {
            let url = ex.request.url();
            set(&mut ex.headers, header, &url);
        }
        Node::Group { children, .. } => children.iter().for_each(|c| run_response(c, ex)),
        Node::Filter {
            test,
            then,
            otherwise,
        } => {
            let branch = if test_response(test, ex) {
                then
            } else {
                otherwise
            };
            if let Some(b) = branch {
                run_response(b, ex);
            }
        }
        // Request-only modifiers (their scope never includes the response).
        Node::QuerySet { .. } | Node::Url { .. } | Node::Port { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn out() -> Outgoing {
        Outgoing::new(
            "127.0.0.1:8080",
            "/a?x=1",
            vec![(Bytes::from_static(b"X-Keep"), Bytes::from_static(b"k"))],
            Bytes::new(),
        )
    }

    #[test]
    fn a_fifo_group_applies_its_modifiers_in_order() {
        let m = Martian::compile(
            &json!({"fifo.Group": {"aggregateErrors": true, "modifiers": [
                {"header.Modifier": {"scope": ["request"], "name": "x-one", "value": "1"}},
                {"header.Copy": {"scope": ["request"], "from": "X-One", "to": "X-Two"}},
                {"querystring.Modifier": {"name": "y", "value": "a b"}},
                {"header.Blacklist": {"scope": ["request"], "names": ["X-Keep"]}}
            ]}}),
        )
        .unwrap();
        let mut o = out();
        m.request(&mut o);
        assert_eq!(get(&o.headers, "x-two").map(|v| &v[..]), Some(&b"1"[..]));
        assert!(get(&o.headers, "x-keep").is_none());
        assert_eq!(o.path_and_query(), "/a?x=1&y=a+b");
    }

    #[test]
    fn filters_take_the_else_branch_when_the_test_fails() {
        let m = Martian::compile(&json!({"querystring.Filter": {
            "name": "x", "value": "2",
            "modifier": {"header.Modifier": {"name": "X-Hit", "value": "yes"}},
            "else": {"header.Modifier": {"name": "X-Hit", "value": "no"}}
        }}))
        .unwrap();
        let mut o = out();
        m.request(&mut o);
        assert_eq!(get(&o.headers, "x-hit").map(|v| &v[..]), Some(&b"no"[..]));
    }
}
