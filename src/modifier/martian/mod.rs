//! `modifier/martian` (krakend-martian on google/martian v3): a tree of modifiers, filters and
//! groups applied to the request a backend is sent and to the raw response it answers,
//! before the body is decoded. Compiled once per plan; anything this gateway does not know is
//! a config error naming it (KrakenD logs a parse error and calls the backend unmodified).
//!
//! Built: `header.Modifier`, `header.Append`, `header.Blacklist`, `header.Copy`,
//! `header.Filter`, `header.RegexFilter`, `querystring.Modifier`, `querystring.Filter`,
//! `body.Modifier`, `cookie.Modifier`, `cookie.Filter`, `url.Modifier`, `url.Filter`,
//! `url.RegexFilter`, `port.Modifier`, `port.Filter`, `stash.Modifier`, `fifo.Group`
//! (`aggregateErrors`) and `priority.Group`, each with its `scope`.

mod apply;
mod values;

pub use apply::{Exchange, Outgoing};

use regex::Regex;
use serde_json::{Map, Value};
use values::{base64, set_cookie};

pub const NS: &str = "modifier/martian";

/// Which sides a modifier acts on (martian's `scope`; absent: every side it supports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scope {
    pub request: bool,
    pub response: bool,
}

/// One node of the tree.
#[derive(Debug)]
pub enum Node {
    HeaderSet {
        name: String,
        value: String,
    },
    HeaderAppend {
        name: String,
        value: String,
    },
    HeaderBlacklist {
        names: Vec<String>,
    },
    HeaderCopy {
        from: String,
        to: String,
    },
    QuerySet {
        name: String,
        value: String,
    },
    Body {
        content_type: String,
        body: bytes::Bytes,
    },
    Cookie {
        name: String,
        value: String,
        set_cookie: String,
    },
    Url {
        scheme: String,
        host: String,
        path: String,
        query: String,
    },
    Port {
        port: Option<u16>,
        default_for_scheme: bool,
        remove: bool,
    },
    Stash {
        header: String,
    },
    Group {
        aggregate: bool,
        children: Vec<Scoped>,
    },
    Filter {
        test: Test,
        then: Option<Box<Scoped>>,
        otherwise: Option<Box<Scoped>>,
    },
}

/// What a filter tests.
#[derive(Debug)]
pub enum Test {
    /// A header with exactly this value.
    Header {
        name: String,
        value: String,
    },
    HeaderRegex {
        name: String,
        regex: Regex,
    },
    /// A query key (with this value, unless empty).
    Query {
        name: String,
        value: String,
    },
    Cookie {
        name: String,
        value: String,
    },
    /// Every non-empty part equal.
    Url {
        scheme: String,
        host: String,
        path: String,
        query: String,
    },
    UrlRegex {
        regex: Regex,
    },
    Port {
        port: u16,
    },
}

/// A node with the sides it acts on.
#[derive(Debug)]
pub struct Scoped {
    pub scope: Scope,
    pub node: Node,
}

/// A compiled `modifier/martian` block.
#[derive(Debug)]
pub struct Martian {
    pub root: Scoped,
}

impl Martian {
    pub fn compile(v: &Value) -> Result<Martian, String> {
        Ok(Martian {
            root: parse(v, "")?,
        })
    }

    /// Whether anything acts on the response.
    pub fn on_response(&self) -> bool {
        self.root.scope.response
    }
}

/// The `modifier/martian` block of a backend, compiled, if there is one.
pub fn from_extra(extra: &crate::config::ExtraConfig) -> Result<Option<Martian>, String> {
    match extra.get(NS) {
        Some(v) => Martian::compile(v)
            .map(Some)
            .map_err(|m| format!("{NS}: {m}")),
        None => Ok(None),
    }
}

/// `{"package.Type": {...}}`: exactly one modifier (martian's `parse.FromJSON`).
fn parse(v: &Value, at: &str) -> Result<Scoped, String> {
    let m = v
        .as_object()
        .ok_or_else(|| format!("{at}: expected an object with one modifier, got {v}"))?;
    let mut entries = m.iter();
    let (name, body) = match (entries.next(), entries.next()) {
        (Some(e), None) => e,
        _ => {
            return Err(format!(
                "{}expected one modifier, received {} (group several with fifo.Group)",
                prefix(at),
                m.len()
            ))
        }
    };
    let here = if at.is_empty() {
        name.clone()
    } else {
        format!("{at}.{name}")
    };
    let body = body
        .as_object()
        .ok_or_else(|| format!("{here}: expected an object, got {body}"))?;
    let (node, can_req, can_resp) = node(name, body, &here)?;
    let scope = match body.get("scope") {
        None | Some(Value::Null) => Scope {
            request: can_req,
            response: can_resp,
        },
        Some(Value::Array(list)) => {
            let mut s = Scope {
                request: false,
                response: false,
            };
            for item in list {
                match item.as_str() {
                    Some("request") if can_req => s.request = true,
                    Some("response") if can_resp => s.response = true,
                    Some(side @ ("request" | "response")) => {
                        return Err(format!("{here}: invalid scope {side:?} for this modifier"))
                    }
                    _ => {
                        return Err(format!(
                            "{here}.scope: {item} is not \"request\" or \"response\""
                        ))
                    }
                }
            }
            s
        }
        Some(other) => return Err(format!("{here}.scope: must be a list, got {other}")),
    };
    Ok(Scoped { scope, node })
}

fn prefix(at: &str) -> String {
    if at.is_empty() {
        String::new()
    } else {
        format!("{at}: ")
    }
}

fn text(m: &Map<String, Value>, key: &str, at: &str) -> Result<String, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(format!("{at}.{key}: must be a string, got {v}")),
    }
}

fn flag(m: &Map<String, Value>, key: &str, at: &str) -> Result<bool, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(format!("{at}.{key}: must be true or false, got {v}")),
    }
}

fn port(m: &Map<String, Value>, key: &str, at: &str) -> Result<Option<u16>, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .map(Some)
            .ok_or_else(|| format!("{at}.{key}: must be a port number, got {v}")),
    }
}

fn regex(m: &Map<String, Value>, key: &str, at: &str) -> Result<Regex, String> {
    let r = text(m, key, at)?;
    Regex::new(&r).map_err(|e| format!("{at}.{key}: {e}"))
}

/// A filter's `modifier` and `else`.
type Branches = (Option<Box<Scoped>>, Option<Box<Scoped>>);

fn branches(m: &Map<String, Value>, at: &str) -> Result<Branches, String> {
    let sub = |key: &str| -> Result<Option<Box<Scoped>>, String> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => parse(v, &format!("{at}.{key}")).map(|s| Some(Box::new(s))),
        }
    };
    Ok((sub("modifier")?, sub("else")?))
}

/// The node for `name` and whether it can act on the request and on the response.
fn node(name: &str, m: &Map<String, Value>, at: &str) -> Result<(Node, bool, bool), String> {
    let filter = |test: Test, req: bool, resp: bool| -> Result<(Node, bool, bool), String> {
        let (then, otherwise) = branches(m, at)?;
        Ok((
            Node::Filter {
                test,
                then,
                otherwise,
            },
            req,
            resp,
        ))
    };
    Ok(match name {
        "header.Modifier" => (
            Node::HeaderSet {
                name: text(m, "name", at)?,
                value: text(m, "value", at)?,
            },
            true,
            true,
        ),
        "header.Append" => (
            Node::HeaderAppend {
                name: text(m, "name", at)?,
                value: text(m, "value", at)?,
            },
            true,
            true,
        ),
        "header.Blacklist" => {
            let names = match m.get("names") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|n| {
                        n.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| format!("{at}.names: every entry must be a string"))
                    })
                    .collect::<Result<_, _>>()?,
                Some(v) => return Err(format!("{at}.names: must be a list, got {v}")),
            };
            (Node::HeaderBlacklist { names }, true, true)
        }
        "header.Copy" => (
            Node::HeaderCopy {
                from: text(m, "from", at)?,
                to: text(m, "to", at)?,
            },
            true,
            true,
        ),
        "querystring.Modifier" => (
            Node::QuerySet {
                name: text(m, "name", at)?,
                value: text(m, "value", at)?,
            },
            true,
            false,
        ),
        "body.Modifier" => {
            let raw = text(m, "body", at)?;
            let body = base64(&raw).ok_or_else(|| format!("{at}.body: not base64"))?;
            (
                Node::Body {
                    content_type: text(m, "contentType", at)?,
                    body: bytes::Bytes::from(body),
                },
                true,
                true,
            )
        }
        "cookie.Modifier" => {
            let (name, value) = (text(m, "name", at)?, text(m, "value", at)?);
            let set_cookie = set_cookie(&name, &value, m, at)?;
            (
                Node::Cookie {
                    name,
                    value,
                    set_cookie,
                },
                true,
                true,
            )
        }
        "url.Modifier" => (
            Node::Url {
                scheme: text(m, "scheme", at)?,
                host: text(m, "host", at)?,
                path: text(m, "path", at)?,
                query: text(m, "query", at)?,
            },
            true,
            false,
        ),
        "port.Modifier" => (
            Node::Port {
                port: port(m, "port", at)?,
                default_for_scheme: flag(m, "defaultForScheme", at)?,
                remove: flag(m, "remove", at)?,
            },
            true,
            false,
        ),
        "stash.Modifier" => (
            Node::Stash {
                header: text(m, "headerName", at)?,
            },
            true,
            true,
        ),
        "fifo.Group" | "priority.Group" => {
            let list = match m.get("modifiers") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => a.clone(),
                Some(v) => return Err(format!("{at}.modifiers: must be a list, got {v}")),
            };
            let mut children = Vec::with_capacity(list.len());
            if name == "fifo.Group" {
                for (i, c) in list.iter().enumerate() {
                    children.push(parse(c, &format!("{at}.modifiers[{i}]"))?);
                }
            } else {
                // martian: higher priority first; equal priorities in the order given.
                let mut ranked = Vec::with_capacity(list.len());
                for (i, c) in list.iter().enumerate() {
                    let here = format!("{at}.modifiers[{i}]");
                    let p = c.get("priority").and_then(Value::as_i64).unwrap_or(0);
                    let inner = c
                        .get("modifier")
                        .ok_or_else(|| format!("{here}: needs \"priority\" and \"modifier\""))?;
                    ranked.push((p, parse(inner, &format!("{here}.modifier"))?));
                }
                ranked.sort_by_key(|r| std::cmp::Reverse(r.0));
                children = ranked.into_iter().map(|(_, s)| s).collect();
            }
            let (req, resp) = (
                children.iter().any(|c| c.scope.request),
                children.iter().any(|c| c.scope.response),
            );
            let aggregate = flag(m, "aggregateErrors", at)?;
            (
                Node::Group {
                    aggregate,
                    children,
                },
                req || list.is_empty(),
                resp || list.is_empty(),
            )
        }
        "header.Filter" => filter(
            Test::Header {
                name: text(m, "name", at)?,
                value: text(m, "value", at)?,
            },
            true,
            true,
        )?,
        "header.RegexFilter" => filter(
            Test::HeaderRegex {
                name: text(m, "header", at)?,
                regex: regex(m, "regex", at)?,
            },
            true,
            true,
        )?,
        "querystring.Filter" => filter(
            Test::Query {
                name: text(m, "name", at)?,
                value: text(m, "value", at)?,
            },
            true,
            true,
        )?,
        "cookie.Filter" => filter(
            Test::Cookie {
                name: text(m, "name", at)?,
                value: text(m, "value", at)?,
            },
            true,
            true,
        )?,
        "url.Filter" => filter(
            Test::Url {
                scheme: text(m, "scheme", at)?,
                host: text(m, "host", at)?,
                path: text(m, "path", at)?,
                query: text(m, "query", at)?,
            },
            true,
            true,
        )?,
        "url.RegexFilter" => filter(
            Test::UrlRegex {
                regex: regex(m, "regex", at)?,
            },
            true,
            true,
        )?,
        "port.Filter" => filter(
            Test::Port {
                port: port(m, "port", at)?.unwrap_or(0),
            },
            true,
            true,
        )?,
        other => {
            return Err(format!(
                "{at}: modifier {other:?} is not built in this gateway (built: header.Modifier, \
                 header.Append, header.Blacklist, header.Copy, header.Filter, \
                 header.RegexFilter, querystring.Modifier, querystring.Filter, body.Modifier, \
                 cookie.Modifier, cookie.Filter, url.Modifier, url.Filter, url.RegexFilter, \
                 port.Modifier, port.Filter, stash.Modifier, fifo.Group, priority.Group)"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_root_modifier_is_required_and_unknown_ones_are_named() {
        assert!(Martian::compile(&json!({}))
            .unwrap_err()
            .contains("received 0"));
        let e = Martian::compile(&json!({"status.Verifier": {"statusCode": 200}})).unwrap_err();
        assert!(e.contains("\"status.Verifier\""), "{e}");
        let e = Martian::compile(&json!({"fifo.Group": {"modifiers": [
            {"header.Modifier": {"name": "a", "value": "b"}},
            {"nope.Modifier": {}}
        ]}}))
        .unwrap_err();
        assert!(
            e.contains("fifo.Group.modifiers[1]") && e.contains("nope.Modifier"),
            "{e}"
        );
    }

    #[test]
    fn scope_defaults_to_the_sides_a_modifier_supports_and_a_wrong_side_is_refused() {
        let m = Martian::compile(&json!({"url.Modifier": {"path": "/x"}})).unwrap();
        assert_eq!(
            m.root.scope,
            Scope {
                request: true,
                response: false
            }
        );
        let e = Martian::compile(&json!({"querystring.Modifier": {
            "scope": ["response"], "name": "a", "value": "b"
        }}))
        .unwrap_err();
        assert!(e.contains("invalid scope"), "{e}");
    }

    #[test]
    fn priority_groups_run_the_highest_priority_first() {
        let m = Martian::compile(&json!({"priority.Group": {"modifiers": [
            {"priority": 1, "modifier": {"header.Modifier": {"name": "low", "value": "1"}}},
            {"priority": 9, "modifier": {"header.Modifier": {"name": "high", "value": "9"}}}
        ]}}))
        .unwrap();
        let Node::Group { children, .. } = &m.root.node else {
            panic!()
        };
        assert!(matches!(&children[0].node, Node::HeaderSet { name, .. } if name == "high"));
    }
}
