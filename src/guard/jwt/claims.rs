//! What verified claims grant, in krakend-jose's words: roles (`CanAccess`,
//! `CanAccessNested`), scopes (`ScopesAnyMatcher`, `ScopesAllMatcher`), claims copied to
//! request headers (`CalculateHeadersToPropagate`) and to `{JWT.claim}` url_pattern
//! parameters (`Claims.Get`).

use bytes::Bytes;
use serde_json::{Map, Value};

/// `roles` / `roles_key` / `roles_key_is_nested`.
#[derive(Clone, Debug)]
pub struct Roles {
    pub key: String,
    pub nested: bool,
    pub required: Vec<String>,
}

/// `scopes` / `scopes_key` / `scopes_matcher`.
#[derive(Clone, Debug)]
pub struct Scopes {
    pub key: String,
    pub all: bool,
    pub required: Vec<String>,
}

/// Follow a dotted path to the map holding its last key (krakend-jose `getNestedClaim`).
fn nested<'a>(
    path: &'a str,
    claims: &'a Map<String, Value>,
) -> Option<(&'a str, &'a Map<String, Value>)> {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop()?;
    let mut at = claims;
    for p in parts {
        at = at.get(p)?.as_object()?;
    }
    Some((last, at))
}

/// A claim's entries: an array's strings, or a string split on spaces.
fn entries(v: &Value) -> Vec<&str> {
    match v {
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        Value::String(s) => s.split(' ').collect(),
        _ => Vec::new(),
    }
}

impl Roles {
    /// At least one required role (none required: always).
    pub fn allow(&self, claims: &Map<String, Value>) -> bool {
        if self.required.is_empty() {
            return true;
        }
        // KrakenD: nested only when asked for, the key has a dot and does not start with
        // `http` (a URL-named claim is one key).
        let found = if self.nested && self.key.contains('.') && !self.key.starts_with("http") {
            nested(&self.key, claims).and_then(|(k, m)| m.get(k))
        } else {
            claims.get(&self.key)
        };
        let Some(v) = found else { return false };
        let have = entries(v);
        self.required.iter().any(|r| have.contains(&r.as_str()))
    }
}

impl Scopes {
    /// Any (or all) required scopes.
    pub fn allow(&self, claims: &Map<String, Value>) -> bool {
        if self.required.is_empty() {
            return true;
        }
        // KrakenD: any dot in scopes_key is a path.
        let found = if self.key.contains('.') {
            nested(&self.key, claims).and_then(|(k, m)| m.get(k))
        } else {
            claims.get(&self.key)
        };
        let Some(v) = found else { return false };
        let have = entries(v);
        if self.all {
            self.required.iter().all(|r| have.contains(&r.as_str()))
        } else {
            self.required.iter().any(|r| have.contains(&r.as_str()))
        }
    }
}

/// Go's `%v` of a decoded JSON value inside an array.
fn go_v(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => out.push_str(s),
        Value::Number(n) => number(n, false, out),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("<nil>"),
        other => out.push_str(&other.to_string()),
    }
}

/// A JSON number as krakend-jose writes it: whole numbers as integers; others with `%f`
/// (six decimals) at top level or Go's shortest `%v` inside arrays.
fn number(n: &serde_json::Number, top: bool, out: &mut String) {
    if let Some(i) = n.as_i64() {
        out.push_str(itoa::Buffer::new().format(i));
        return;
    }
    let f = n.as_f64().unwrap_or(0.0);
    let r = f.round();
    if top && (f - r).abs() <= 1e-6 && r.abs() < 9.2e18 {
        out.push_str(itoa::Buffer::new().format(r as i64));
    } else if top {
        out.push_str(&format!("{f:.6}"));
    } else {
        out.push_str(&f.to_string());
    }
}

/// krakend-jose `Claims.Get`: a claim as header or URL text.
pub fn claim_text(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::String(s) => out.push_str(s),
        Value::Number(n) => number(n, true, &mut out),
        Value::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_v(e, &mut out);
            }
        }
        other => out.push_str(&other.to_string()),
    }
    out
}

/// One `propagate_claims` pair compiled: the claim path and the canonical header name.
#[derive(Clone, Debug)]
pub struct Propagate {
    pub claim: String,
    pub header: Bytes,
}

/// The header values a token gives: each pair's header set (replacing the client's), empty
/// when the claim is missing (KrakenD sets it empty too, so a client cannot forge it).
pub fn propagate(
    pairs: &[Propagate],
    preserve_array: bool,
    claims: &Map<String, Value>,
    out: &mut Vec<(Bytes, Bytes)>,
) {
    for p in pairs {
        // KrakenD: a dotted claim is a path unless it starts with `http` (a URL claim name).
        let v = if p.claim.contains('.') && !p.claim.starts_with("http") {
            nested(&p.claim, claims).and_then(|(k, m)| m.get(k))
        } else {
            claims.get(&p.claim)
        };
        match v {
            Some(Value::Array(a)) if preserve_array => {
                for e in a {
                    let mut s = String::new();
                    go_v(e, &mut s);
                    out.push((p.header.clone(), Bytes::from(s)));
                }
            }
            Some(v) => out.push((p.header.clone(), Bytes::from(claim_text(v)))),
            None => out.push((p.header.clone(), Bytes::new())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn roles_match_arrays_and_space_separated_strings_any_of_them() {
        let r = Roles {
            key: "roles".into(),
            nested: false,
            required: vec!["a".into(), "b".into()],
        };
        assert!(r.allow(&map(json!({"roles": ["x", "b"]}))));
        assert!(r.allow(&map(json!({"roles": "x a"}))));
        assert!(!r.allow(&map(json!({"roles": ["x"]}))));
        assert!(!r.allow(&map(json!({"other": ["a"]}))));
        assert!(!r.allow(&map(json!({"roles": 3}))));
    }

    #[test]
    fn nested_roles_follow_dots_unless_the_key_is_a_url() {
        let r = Roles {
            key: "realm.access.roles".into(),
            nested: true,
            required: vec!["admin".into()],
        };
        assert!(r.allow(&map(json!({"realm": {"access": {"roles": ["admin"]}}}))));
        assert!(!r.allow(&map(json!({"realm": {"access": "admin"}}))));
        let not_nested = Roles {
            nested: false,
            ..r.clone()
        };
        assert!(not_nested.allow(&map(json!({"realm.access.roles": ["admin"]}))));
        let url = Roles {
            key: "http://example.com/roles".into(),
            nested: true,
            required: vec!["admin".into()],
        };
        assert!(url.allow(&map(json!({"http://example.com/roles": ["admin"]}))));
    }

    #[test]
    fn scopes_any_needs_one_and_all_needs_every_one() {
        let any = Scopes {
            key: "scope".into(),
            all: false,
            required: vec!["read".into(), "write".into()],
        };
        let all = Scopes {
            all: true,
            ..any.clone()
        };
        let one = map(json!({"scope": "read profile"}));
        let both = map(json!({"scope": "write read"}));
        assert!(any.allow(&one) && !all.allow(&one));
        assert!(any.allow(&both) && all.allow(&both));
        let nested = Scopes {
            key: "a.scope".into(),
            ..all
        };
        assert!(nested.allow(&map(json!({"a": {"scope": "read write"}}))));
        assert!(!nested.allow(&map(json!({"scope": "read write"}))));
    }

    #[test]
    fn claims_are_written_as_krakend_writes_them() {
        assert_eq!(claim_text(&json!("abc")), "abc");
        assert_eq!(claim_text(&json!(42)), "42");
        assert_eq!(claim_text(&json!(42.0)), "42");
        assert_eq!(claim_text(&json!(1.5)), "1.500000");
        assert_eq!(claim_text(&json!(["a", 1, true])), "a,1,true");
        assert_eq!(claim_text(&json!({"k": 1})), "{\"k\":1}");
        assert_eq!(claim_text(&json!(false)), "false");
    }

    #[test]
    fn propagation_sets_every_header_and_splits_arrays_when_asked() {
        let pairs = vec![
            Propagate {
                claim: "sub".into(),
                header: Bytes::from_static(b"X-User"),
            },
            Propagate {
                claim: "roles".into(),
                header: Bytes::from_static(b"X-Roles"),
            },
            Propagate {
                claim: "org.id".into(),
                header: Bytes::from_static(b"X-Org"),
            },
            Propagate {
                claim: "missing".into(),
                header: Bytes::from_static(b"X-Missing"),
            },
        ];
        let c = map(json!({"sub": "u1", "roles": ["a", "b"], "org": {"id": 7}}));
        let mut out = Vec::new();
        propagate(&pairs, false, &c, &mut out);
        let text: Vec<(String, String)> = out
            .iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into(),
                    String::from_utf8_lossy(v).into(),
                )
            })
            .collect();
        assert_eq!(
            text,
            vec![
                ("X-User".into(), "u1".into()),
                ("X-Roles".into(), "a,b".into()),
                ("X-Org".into(), "7".into()),
                ("X-Missing".into(), "".into()),
            ]
        );
        let mut out = Vec::new();
        propagate(&pairs[1..2], true, &c, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(&out[1].1[..], b"b");
    }
}
