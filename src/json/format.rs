//! Sequential proxy support: a value of a previous backend's data formatted as KrakenD puts it
//! into a later url_pattern (`{resp0_a.b}`), i.e. as Go's `fmt` `%v` prints the decoded value.

use super::{text, Fields};

/// See [`Fields::value_at`].
pub(crate) fn value_at(fields: &Fields, path: &str) -> Option<String> {
    let keys: Vec<&str> = path.split('.').collect();
    let (last, parents) = keys.split_last()?;
    // KrakenD (proxy/merging.go): the walk over the parent keys stops at the first missing key or
    // non-object value, and the last key is then looked up in the deepest object reached.
    let mut current: Option<bytes::Bytes> = None;
    for k in parents {
        let found = match &current {
            None => fields.get(k).cloned(),
            Some(raw) => lookup(raw, k),
        };
        match found {
            Some(v) if text::first_byte(&v) == Some(b'{') => current = Some(v),
            _ => break,
        }
    }
    let value = match &current {
        None => fields.get(last).cloned(),
        Some(raw) => lookup(raw, last),
    }?;
    let mut out = String::new();
    match text::first_byte(&value) {
        // KrakenD: a top-level array becomes its elements' %v joined by commas.
        Some(b'[') => {
            for (i, elem) in sonic_rs::to_array_iter(value.as_ref()).enumerate() {
                let elem = elem.ok()?;
                if i > 0 {
                    out.push(',');
                }
                go_v(elem.as_raw_str().as_bytes(), &mut out);
            }
        }
        _ => go_v(&value, &mut out),
    }
    Some(out)
}

/// The last member named `name` in a raw object.
fn lookup(raw: &bytes::Bytes, name: &str) -> Option<bytes::Bytes> {
    let mut found = None;
    for item in sonic_rs::to_object_iter(raw.as_ref()) {
        let (k, v) = item.ok()?;
        if k == name {
            found = Some(text::sub(raw, v.as_raw_str().as_bytes()));
        }
    }
    found
}

/// Go's `%v` of a value decoded with `UseNumber`: strings bare, numbers as written, null as
/// `<nil>`, arrays `[a b]`, objects `map[k:v ...]` with sorted keys.
fn go_v(raw: &[u8], out: &mut String) {
    match text::first_byte(raw) {
        Some(b'"') => match sonic_rs::from_slice::<String>(raw) {
            Ok(s) => out.push_str(&s),
            Err(_) => out.push_str(&String::from_utf8_lossy(raw)),
        },
        Some(b'n') => out.push_str("<nil>"),
        Some(b'[') => {
            out.push('[');
            for (i, elem) in sonic_rs::to_array_iter(raw).enumerate() {
                let Ok(elem) = elem else { break };
                if i > 0 {
                    out.push(' ');
                }
                go_v(elem.as_raw_str().as_bytes(), out);
            }
            out.push(']');
        }
        Some(b'{') => {
            let mut members: Vec<(String, String)> = Vec::new();
            for item in sonic_rs::to_object_iter(raw) {
                let Ok((k, v)) = item else { break };
                let mut s = String::new();
                go_v(v.as_raw_str().as_bytes(), &mut s);
                let k = k.into_owned();
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
