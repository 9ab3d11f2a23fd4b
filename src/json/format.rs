//! Sequential proxy support: a value of a previous backend's data formatted as KrakenD puts it
//! into a later url_pattern (`{resp0_a.b}`), i.e. as Go's `fmt` `%v` prints the decoded value.

use super::scan::{Elements, Member, Members};
use super::{text, Fields};

/// A member's key as text (escapes decoded when it has any).
fn key_of(raw: &[u8], m: &Member) -> Option<String> {
    if !m.key_escaped {
        return raw
            .get(m.key.clone())
            .and_then(|k| std::str::from_utf8(k).ok())
            .map(str::to_string);
    }
    let quoted = raw.get(m.key.start.checked_sub(1)?..m.key.end + 1)?;
    sonic_rs::from_slice::<String>(quoted).ok()
}

/// See [`Fields::value_at`].
pub(crate) fn value_at(fields: &Fields, path: &str) -> Option<String> {
    let keys: Vec<&str> = path.split('.').collect();
    let (last, parents) = keys.split_last()?;
    // KrakenD (proxy/merging.go): the walk over the parent keys stops at the first missing key or
    // non-object value, and the last key is then looked up in the deepest object reached.
    let mut current: Option<bytes::Bytes> = None;
    for k in parents {
        let found = match &current {
            None => fields.get(k),
            Some(raw) => lookup(raw, k),
        };
        match found {
            Some(v) if text::first_byte(&v) == Some(b'{') => current = Some(v),
            _ => break,
        }
    }
    let value = match &current {
        None => fields.get(last),
        Some(raw) => lookup(raw, last),
    }?;
    let mut out = String::new();
    match text::first_byte(&value) {
        // KrakenD: a top-level array becomes its elements' %v joined by commas.
        Some(b'[') => {
            for (i, elem) in Elements::new(value.as_ref()).enumerate() {
                let elem = value.get(elem.ok()?)?;
                if i > 0 {
                    out.push(',');
                }
                go_v(elem, &mut out, 0);
            }
        }
        _ => go_v(&value, &mut out, 0),
    }
    Some(out)
}

/// The last member named `name` in a raw object.
fn lookup(raw: &bytes::Bytes, name: &str) -> Option<bytes::Bytes> {
    let mut found = None;
    for m in Members::new(raw.as_ref()) {
        let m = m.ok()?;
        if key_of(raw, &m).as_deref() == Some(name) {
            found = Some(raw.slice(m.value));
        }
    }
    found
}

/// Go's `%v` of a value decoded with `UseNumber`: strings bare, numbers as written, null as
/// `<nil>`, arrays `[a b]`, objects `map[k:v ...]` with sorted keys.
const MAX_FORMAT_DEPTH: usize = 32;

fn go_v(raw: &[u8], out: &mut String, depth: usize) {
    // A hostile body may nest thousands of levels; nobody puts such a value in a URL. Past
    // this depth the raw JSON text is inserted instead of recursing (and re-scanning) further.
    if depth > MAX_FORMAT_DEPTH {
        out.push_str(&String::from_utf8_lossy(raw));
        return;
    }
    match text::first_byte(raw) {
        Some(b'"') => match sonic_rs::from_slice::<String>(raw) {
            Ok(s) => out.push_str(&s),
            Err(_) => out.push_str(&String::from_utf8_lossy(raw)),
        },
        Some(b'n') => out.push_str("<nil>"),
        Some(b'[') => {
            out.push('[');
            for (i, elem) in Elements::new(raw).enumerate() {
                let Some(elem) = elem.ok().and_then(|r| raw.get(r)) else {
                    break;
                };
                if i > 0 {
                    out.push(' ');
                }
                go_v(elem, out, depth + 1);
            }
            out.push(']');
        }
        Some(b'{') => {
            let mut members: Vec<(String, String)> = Vec::new();
            for m in Members::new(raw) {
                let Ok(m) = m else { break };
                let (Some(k), Some(v)) = (key_of(raw, &m), raw.get(m.value.clone())) else {
                    break;
                };
                let mut s = String::new();
                go_v(v, &mut s, depth + 1);
                match members.iter_mut().find(|(mk, _)| *mk == k) {
                    Some(slot) => slot.1 = s,
                    None => members.push((k, s)),
                }
            }
            members.sort_by(|a, b| a.0.cmp(&b.0));
            out.push_str("map[");
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                out.push_str(v);
            }
            out.push(']');
        }
        _ => out.push_str(String::from_utf8_lossy(raw).trim()),
    }
}
