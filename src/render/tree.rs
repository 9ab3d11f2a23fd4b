//! The rendered data as a small tree, for the encodings that are not JSON (`xml`, `yaml`):
//! read from the raw JSON text once per response. Numbers keep their text, as Go's
//! `json.Number` does in KrakenD's data.

use crate::json::scan_value;

/// Deepest nesting rendered as XML or YAML (the JSON path has its own, larger cap).
pub const MAX_DEPTH: usize = 512;

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    /// The number's JSON text.
    Num(String),
    Str(String),
    Arr(Vec<Node>),
    /// Unique keys (the last duplicate wins, as Go decodes into a map).
    Obj(Vec<(String, Node)>),
}

/// Parse one JSON value. `None` for invalid text or nesting deeper than [`MAX_DEPTH`].
pub fn parse(raw: &[u8]) -> Option<Node> {
    value(raw, 0)
}

fn value(raw: &[u8], depth: usize) -> Option<Node> {
    if depth > MAX_DEPTH {
        return None;
    }
    let first = raw
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))?;
    let raw = raw.get(first..)?;
    Some(match raw.first()? {
        b'{' => {
            let mut out: Vec<(String, Node)> = Vec::new();
            for (k, v) in scan_value::members(raw)? {
                let k = scan_value::unescape(k)?;
                let v = value(v, depth + 1)?;
                match out.iter_mut().find(|(name, _)| *name == k) {
                    Some(slot) => slot.1 = v,
                    None => out.push((k, v)),
                }
            }
            Node::Obj(out)
        }
        b'[' => {
            let mut out = Vec::new();
            for v in scan_value::elements(raw)? {
                out.push(value(v, depth + 1)?);
            }
            Node::Arr(out)
        }
        b'"' => {
            let end = raw.iter().rposition(|b| *b == b'"')?;
            Node::Str(scan_value::unescape(raw.get(1..end)?)?)
        }
        b't' => Node::Bool(true),
        b'f' => Node::Bool(false),
        b'n' => Node::Null,
        _ => {
            let end = raw
                .iter()
                .position(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(raw.len());
            Node::Num(String::from_utf8_lossy(raw.get(..end)?).into_owned())
        }
    })
}

/// Keys in Go's sorted map order (byte order).
pub fn sorted(members: &[(String, Node)]) -> Vec<&(String, Node)> {
    let mut v: Vec<&(String, Node)> = members.iter().collect();
    v.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    v
}
