//! Response shaping on sonic-rs: projection (target -> allow|deny -> mapping -> group), merge,
//! flatmap. OWNER: json helper (issue 3).
//!
//! A backend body is never turned into a DOM. [`BackendShape::apply`] walks the raw text with
//! sonic-rs' lazy iterators and keeps only the members the client will see, as [`Fields`]:
//! top-level `(key, value)` pairs of raw JSON text sliced out of the shared body (`Bytes`), plus
//! owned text where shaping had to build new text (a nested allow rebuilds an object from its
//! kept raw members). Numbers and strings keep their exact source text.
//!
//! Sans-io: everything here takes bytes and returns bytes or values.

mod flatmap;
mod format;
mod project;
mod rss;
mod scan;
mod text;
mod xml;

pub use flatmap::EndpointFlatmap;
pub use project::BackendShape;

use bytes::Bytes;

/// Why a backend body could not be shaped. Any of these fails the backend (KrakenD: a decode
/// error makes the backend call fail).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonError {
    /// The body is not valid JSON (sonic-rs' message, with its position).
    Syntax(String),
    /// `encoding: json` needs an object at the top level (KrakenD decodes into a map).
    ExpectedObject,
    /// `is_collection: true` needs an array at the top level.
    ExpectedArray,
    /// `encoding: xml` or `rss`: the body is not acceptable XML (or not a feed).
    Xml(xml::XmlError),
}

impl From<xml::XmlError> for JsonError {
    fn from(e: xml::XmlError) -> Self {
        JsonError::Xml(e)
    }
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JsonError::Syntax(m) => write!(f, "invalid JSON from backend: {m}"),
            JsonError::ExpectedObject => {
                f.write_str("backend response is not a JSON object (encoding json)")
            }
            JsonError::ExpectedArray => {
                f.write_str("backend response is not a JSON array (is_collection)")
            }
            JsonError::Xml(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for JsonError {}

impl From<scan::ScanError> for JsonError {
    fn from(e: scan::ScanError) -> Self {
        JsonError::Syntax(e.to_string())
    }
}

impl From<sonic_rs::Error> for JsonError {
    fn from(e: sonic_rs::Error) -> Self {
        JsonError::Syntax(e.to_string())
    }
}

/// The validating scanner alone (the range of the first JSON value in `buf`), for the
/// instruction-count bench `benches/json_validate.rs`; shaping calls it internally.
#[doc(hidden)]
pub fn validate_for_bench(buf: &[u8]) -> Result<std::ops::Range<usize>, JsonError> {
    Ok(scan::validate(buf)?)
}

/// The shaped data of one backend (or of a merge): an ordered list of unique top-level members.
/// Keys are raw JSON string bodies (no quotes, escapes kept), values raw JSON text.
///
/// A body that needs no projection is kept whole (`whole`): the validated object text, split
/// into members only when something needs them (a merge, flatmap, static data). Rendering it
/// is one copy. Invariant: while `whole` is set, `members` is empty.
///
/// `nil` is Go's nil map, which KrakenD tells apart from an empty one: a backend body `null`
/// (encoding json) or a flatmap that removed everything leaves a nil map, rendered `null`
/// (also under `group`), and a merge with a nil part is incomplete (lura `combineData`).
#[derive(Clone, Debug, Default)]
pub struct Fields {
    members: Vec<(Bytes, Bytes)>,
    whole: Option<Bytes>,
    nil: bool,
    /// A `no-op` backend's body inside a merging endpoint: KrakenD leaves its data empty and
    /// keeps the body only for `sequential_propagated_params` (`respN`). Never rendered.
    raw: Option<Bytes>,
}

impl PartialEq for Fields {
    fn eq(&self, other: &Self) -> bool {
        self.nil == other.nil && self.clone().into_members() == other.clone().into_members()
    }
}

impl Eq for Fields {}

impl Fields {
    /// No members.
    pub fn new() -> Self {
        Self::default()
    }

    /// Build from members that are already unique.
    pub(crate) fn from_members(members: Vec<(Bytes, Bytes)>) -> Self {
        Fields {
            members,
            whole: None,
            nil: false,
            raw: None,
        }
    }

    /// A whole object, already validated (identity shaping).
    pub(crate) fn from_whole(object: Bytes) -> Self {
        Fields {
            members: Vec::new(),
            whole: Some(object),
            nil: false,
            raw: None,
        }
    }

    /// A `no-op` backend's answer where data is expected: no members, the body kept aside.
    pub fn no_op(body: Bytes) -> Self {
        Fields {
            raw: Some(body),
            ..Fields::default()
        }
    }

    /// The whole answer as text, for `sequential_propagated_params` entries `respN`: a no-op
    /// backend's body as it came, else the data as JSON.
    pub fn whole_text(&self) -> String {
        match &self.raw {
            Some(b) => String::from_utf8_lossy(b).into_owned(),
            None => {
                let mut out = Vec::new();
                self.write_object(&mut out);
                String::from_utf8_lossy(&out).into_owned()
            }
        }
    }

    /// Go's nil map (see the type's docs).
    pub(crate) fn nil() -> Self {
        Fields {
            nil: true,
            ..Fields::default()
        }
    }

    /// Whether this is Go's nil map rather than an object.
    pub fn is_nil(&self) -> bool {
        self.nil
    }

    /// Split a whole object into unique members (the last duplicate wins, as Go decodes).
    fn split(&mut self) {
        let Some(w) = self.whole.take() else {
            return;
        };
        let mut members = Vec::new();
        for m in scan::Members::new(&w) {
            let Ok(m) = m else { break };
            members.push((text::slice(&w, m.key), text::slice(&w, m.value)));
        }
        text::dedupe_last_wins(&mut members);
        self.members = members;
    }

    pub(crate) fn into_members(mut self) -> Vec<(Bytes, Bytes)> {
        self.split();
        self.members
    }

    /// The raw members, in order.
    pub fn members(&mut self) -> &[(Bytes, Bytes)] {
        self.split();
        &self.members
    }

    /// Number of top-level members.
    pub fn len(&self) -> usize {
        match &self.whole {
            Some(_) => self.clone().into_members().len(),
            None => self.members.len(),
        }
    }

    /// KrakenD says `X-KrakenD-Completed: false` when the merged data is empty.
    pub fn is_empty(&self) -> bool {
        match &self.whole {
            Some(w) => scan::Members::new(w).next().is_none(),
            None => self.members.is_empty(),
        }
    }

    /// The raw value of the member named `name` (unescaped name); the last one if repeated.
    pub fn get(&self, name: &str) -> Option<Bytes> {
        match &self.whole {
            Some(w) => scan::Members::new(w)
                .filter_map(Result::ok)
                .filter(|m| w.get(m.key.clone()).is_some_and(|k| text::key_is(k, name)))
                .last()
                .map(|m| text::slice(w, m.value)),
            None => self
                .members
                .iter()
                .find(|(k, _)| text::key_is(k, name))
                .map(|(_, v)| v.clone()),
        }
    }

    /// Insert a member; an existing member with the same key is replaced in place.
    pub(crate) fn insert(&mut self, key: Bytes, value: Bytes) {
        self.split();
        match self
            .members
            .iter_mut()
            .find(|(k, _)| text::keys_equal(k, &key))
        {
            Some(slot) => slot.1 = value,
            None => self.members.push((key, value)),
        }
        self.nil = false;
    }

    /// Set member `name` (unescaped) to the JSON string `value` (`auth/signer`'s tokens).
    pub(crate) fn set_string(&mut self, name: &str, value: &str) {
        self.insert(text::escaped(name), text::quoted(value));
    }

    /// The object's text when it is one validated backend value passed through whole (no
    /// member dropped, renamed or merged): what [`Fields::write_object`] would copy, shared
    /// instead of copied.
    pub fn whole_object(&self) -> Option<&Bytes> {
        if self.nil {
            return None;
        }
        self.whole.as_ref()
    }

    /// `{...}` from the raw pieces; `null` for a nil map.
    pub fn write_object(&self, out: &mut Vec<u8>) {
        if self.nil {
            out.extend_from_slice(b"null");
            return;
        }
        match &self.whole {
            Some(w) => out.extend_from_slice(w),
            None => text::write_members(out, &self.members),
        }
    }

    /// json-collection output: the value of the `collection` key, `[]` if absent.
    pub fn write_collection(&self, out: &mut Vec<u8>) {
        match self.get("collection") {
            Some(v) => out.extend_from_slice(&v),
            None => out.extend_from_slice(b"[]"),
        }
    }

    /// string output: the `content` key's string value unescaped, or its raw text if it is not
    /// a string; empty if absent.
    pub fn content_string(&self) -> Vec<u8> {
        let Some(v) = self.get("content") else {
            return Vec::new();
        };
        if text::first_byte(&v) == Some(b'"') {
            if let Ok(s) = sonic_rs::from_slice::<String>(&v) {
                return s.into_bytes();
            }
        }
        v.to_vec()
    }

    /// The value at a dot path formatted as KrakenD inserts `{respN_a.b}` into later
    /// url_patterns (sequential proxy). `None` when the path does not resolve.
    pub fn value_at(&self, path: &str) -> Option<String> {
        format::value_at(self, path)
    }
}

/// Shallow merge of backend results, in the given (declaration) order: a later part wins a key
/// collision. Nil parts add nothing (the caller marks the merge incomplete); a lone nil part
/// stays nil, several give an empty object (lura `combineData`: "do not allow nil data").
// KrakenD: merges in *arrival* order, so the slowest backend wins a collision. We merge in
// declaration order on purpose so that the same request always gives the same response.
pub fn merge(parts: Vec<Fields>) -> Fields {
    if let [only] = parts.as_slice() {
        return only.clone();
    }
    let mut parts = parts.into_iter().filter(|p| !p.nil);
    let Some(mut acc) = parts.next() else {
        return Fields::new();
    };
    for mut part in parts {
        acc.split();
        part.split();
        if acc.len().saturating_mul(part.len()) > 1024 {
            merge_hashed(&mut acc, part);
        } else {
            for (k, v) in part.members {
                acc.insert(k, v);
            }
        }
    }
    acc
}

/// The same rule as the linear merge, with a hash index for big top-level objects.
fn merge_hashed(acc: &mut Fields, part: Fields) {
    let mut index: std::collections::HashMap<Vec<u8>, usize> = acc
        .members
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (text::plain_key(k).into_owned(), i))
        .collect();
    for (k, v) in part.members {
        let plain = text::plain_key(&k).into_owned();
        match index.get(&plain).and_then(|i| acc.members.get_mut(*i)) {
            Some(slot) => slot.1 = v,
            None => {
                index.insert(plain, acc.members.len());
                acc.members.push((k, v));
            }
        }
    }
}

/// Fields from a config value (`proxy.static` data). A non-object gives no fields.
pub fn from_value(v: &serde_json::Value) -> Fields {
    let Some(map) = v.as_object() else {
        return Fields::new();
    };
    let members = map
        .iter()
        .map(|(k, v)| {
            let raw = serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec());
            (text::escaped(k), Bytes::from(raw))
        })
        .collect();
    Fields::from_members(members)
}

#[cfg(test)]
mod scan_proptests;
#[cfg(test)]
mod tests;

/// Raw members and elements of a JSON value, for renderers that build their own tree.
pub mod scan_value {
    use super::{scan, text};

    /// An object's `(raw key, raw value)` pairs; `None` if the text is not a valid object.
    pub fn members(raw: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
        let mut out = Vec::new();
        for m in scan::Members::new(raw) {
            let m = m.ok()?;
            out.push((raw.get(m.key)?, raw.get(m.value)?));
        }
        Some(out)
    }

    /// An array's raw elements; `None` if the text is not a valid array.
    pub fn elements(raw: &[u8]) -> Option<Vec<&[u8]>> {
        let mut out = Vec::new();
        for r in scan::Elements::new(raw) {
            out.push(raw.get(r.ok()?)?);
        }
        Some(out)
    }

    /// A raw string body (between the quotes), unescaped.
    pub fn unescape(raw: &[u8]) -> Option<String> {
        if !text::has_escape(raw) {
            return std::str::from_utf8(raw).ok().map(str::to_owned);
        }
        text::unescape(raw)
    }
}
