//! `encoding: xml`: a backend's XML body as the JSON object KrakenD's decoder makes of it
//! (krakend-xml on clbanning/mxj `NewMapXmlReader`, without casting), written as JSON text so
//! the rest of the shaping runs unchanged.
//!
//! The shape (mxj): the root element is the one top-level key; attributes become `-name`
//! members, an element with attributes or children keeps its text under `#text`, a simple
//! element is its trimmed text, an empty one `""`, repeated children become an array in the
//! position of the first. Every value is a string: mxj is called without casting.
//!
//! Hostile input: quick-xml never expands entities beyond the five predefined ones and
//! character references (a DTD is skipped, an entity it declares is an error, as in Go's strict
//! decoder), so there is no XXE and no billion laughs. Size, depth and node count are capped
//! ([`MAX_BYTES`], [`MAX_DEPTH`], [`MAX_NODES`]) so a document's memory is bounded by a small
//! multiple of its size.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::text;

/// Largest XML body decoded (KrakenD has no limit; the backend body cap is 64 MiB).
pub(crate) const MAX_BYTES: usize = 8 << 20;
/// Deepest element nesting accepted.
pub(crate) const MAX_DEPTH: usize = 256;
/// Most elements plus attributes in one document.
pub(crate) const MAX_NODES: usize = 1 << 19;

/// Why an XML body could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XmlError {
    TooLarge(usize),
    TooDeep,
    TooManyNodes,
    /// No root element.
    Empty,
    /// quick-xml's message, with the byte position.
    Syntax(String),
}

impl std::fmt::Display for XmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            XmlError::TooLarge(n) => write!(
                f,
                "XML body of {n} bytes is larger than the {} MiB limit",
                MAX_BYTES >> 20
            ),
            XmlError::TooDeep => write!(f, "XML nesting deeper than {MAX_DEPTH} elements"),
            XmlError::TooManyNodes => {
                write!(
                    f,
                    "XML document with more than {MAX_NODES} elements and attributes"
                )
            }
            XmlError::Empty => f.write_str("XML body has no root element"),
            XmlError::Syntax(m) => write!(f, "invalid XML: {m}"),
        }
    }
}

/// A decoded value: mxj gives only strings, maps and lists.
#[derive(Debug, PartialEq)]
pub(crate) enum XVal {
    Str(String),
    Map(Vec<(String, XVal)>),
    List(Vec<XVal>),
}

/// One open element: mxj's `n` (the simple text value) and `na` (attributes and children).
struct Frame {
    name: String,
    simple: Option<String>,
    na: Vec<(String, XVal)>,
}

impl Frame {
    fn set(&mut self, key: String, v: XVal) {
        match self.na.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = v,
            None => self.na.push((key, v)),
        }
    }

    /// A closed child: a second child with the same name turns the member into a list.
    fn add_child(&mut self, key: String, v: XVal) {
        match self.na.iter_mut().find(|(k, _)| *k == key) {
            Some((_, XVal::List(items))) => items.push(v),
            Some(slot) => {
                let old = std::mem::replace(&mut slot.1, XVal::List(Vec::new()));
                slot.1 = XVal::List(vec![old, v]);
            }
            None => self.na.push((key, v)),
        }
    }

    // KrakenD (mxj): text seen while the element had no attribute or child yet makes it a simple
    // element, and whatever comes after is dropped at its end.
    fn close(self) -> (String, XVal) {
        let v = match self.simple {
            Some(s) => XVal::Str(s),
            None if self.na.is_empty() => XVal::Str(String::new()),
            None => XVal::Map(self.na),
        };
        (self.name, v)
    }
}

/// Decode `body` to the JSON object text KrakenD's XML decoder would produce.
pub fn to_json(body: &[u8]) -> Result<Vec<u8>, XmlError> {
    let (root, v) = decode(body)?;
    let mut out = Vec::with_capacity(body.len());
    out.extend_from_slice(b"{\"");
    text::escape_into(&mut out, &root);
    out.extend_from_slice(b"\":");
    write_json(&mut out, &v);
    out.push(b'}');
    Ok(out)
}

/// The root element's name and value.
pub(crate) fn decode(body: &[u8]) -> Result<(String, XVal), XmlError> {
    if body.len() > MAX_BYTES {
        return Err(XmlError::TooLarge(body.len()));
    }
    let mut reader = Reader::from_reader(body);
    let cfg = reader.config_mut();
    cfg.trim_text(false);
    cfg.expand_empty_elements = false;
    cfg.check_end_names = true;
    let mut stack: Vec<Frame> = Vec::new();
    let mut nodes = 0usize;
    loop {
        let at = reader.buffer_position();
        let ev = reader
            .read_event()
            .map_err(|e| XmlError::Syntax(format!("{e} at byte {at}")))?;
        match ev {
            Event::Start(s) => {
                let f = open(&s, &mut nodes)?;
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                stack.push(f);
            }
            Event::Empty(s) => {
                let f = open(&s, &mut nodes)?;
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                let (k, v) = f.close();
                match stack.last_mut() {
                    Some(parent) => parent.add_child(k, v),
                    None => return Ok((k, v)),
                }
            }
            Event::End(_) => {
                let Some(f) = stack.pop() else {
                    return Err(XmlError::Syntax(format!("unexpected end tag at byte {at}")));
                };
                let (k, v) = f.close();
                match stack.last_mut() {
                    Some(parent) => parent.add_child(k, v),
                    None => return Ok((k, v)),
                }
            }
            Event::Text(t) => {
                let s = t
                    .unescape()
                    .map_err(|e| XmlError::Syntax(format!("{e} at byte {at}")))?;
                char_data(stack.last_mut(), &s);
            }
            Event::CData(c) => {
                let raw = c.into_inner();
                let s = std::str::from_utf8(&raw)
                    .map_err(|e| XmlError::Syntax(format!("{e} at byte {at}")))?;
                char_data(stack.last_mut(), s);
            }
            Event::Eof => {
                return Err(if stack.is_empty() {
                    XmlError::Empty
                } else {
                    XmlError::Syntax("unexpected end of document".into())
                })
            }
            // Declarations, comments, processing instructions and the DTD are skipped, as Go's
            // decoder hands them over as tokens mxj ignores (entities a DTD declares are never
            // expanded: a reference to one fails in `unescape`).
            _ => {}
        }
    }
}

/// mxj's `xml.CharData` case: trimmed text, ignored outside the root.
fn char_data(frame: Option<&mut Frame>, s: &str) {
    let t = s.trim_matches(|c| matches!(c, '\t' | '\r' | '\u{8}' | '\n' | ' '));
    let Some(f) = frame else { return };
    if t.is_empty() {
        return;
    }
    if f.na.is_empty() {
        f.simple = Some(t.to_owned());
    } else {
        f.set("#text".into(), XVal::Str(t.to_owned()));
    }
}

fn open(s: &BytesStart<'_>, nodes: &mut usize) -> Result<Frame, XmlError> {
    *nodes += 1;
    let name = utf8(s.local_name().as_ref())?;
    let mut f = Frame {
        name,
        simple: None,
        na: Vec::new(),
    };
    for a in s.attributes() {
        let a = a.map_err(|e| XmlError::Syntax(e.to_string()))?;
        *nodes += 1;
        if *nodes > MAX_NODES {
            return Err(XmlError::TooManyNodes);
        }
        let mut key = String::from("-");
        key.push_str(&utf8(a.key.local_name().as_ref())?);
        let v = a
            .unescape_value()
            .map_err(|e| XmlError::Syntax(e.to_string()))?;
        f.set(key, XVal::Str(v.into_owned()));
    }
    if *nodes > MAX_NODES {
        return Err(XmlError::TooManyNodes);
    }
    Ok(f)
}

fn utf8(b: &[u8]) -> Result<String, XmlError> {
    std::str::from_utf8(b)
        .map(str::to_owned)
        .map_err(|e| XmlError::Syntax(e.to_string()))
}

/// JSON text of a decoded value (no recursion limit needed: depth is capped while decoding).
fn write_json(out: &mut Vec<u8>, v: &XVal) {
    match v {
        XVal::Str(s) => {
            out.push(b'"');
            text::escape_into(out, s);
            out.push(b'"');
        }
        XVal::Map(m) => {
            out.push(b'{');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.push(b'"');
                text::escape_into(out, k);
                out.extend_from_slice(b"\":");
                write_json(out, v);
            }
            out.push(b'}');
        }
        XVal::List(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(out, v);
            }
            out.push(b']');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(x: &str) -> serde_json::Value {
        let out = to_json(x.as_bytes()).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn attributes_text_and_children_take_mxj_shape() {
        let v = json(
            r#"<?xml version="1.0"?><user type="admin"><name>Elliot</name>
               <n a="1">t</n><e/><l>1</l><l>2</l></user>"#,
        );
        assert_eq!(
            v,
            serde_json::json!({"user": {"-type": "admin", "name": "Elliot",
                "n": {"-a": "1", "#text": "t"}, "e": "", "l": ["1", "2"]}})
        );
    }

    #[test]
    fn text_before_children_makes_a_simple_element_as_mxj_does() {
        assert_eq!(json("<a>x<b>1</b></a>"), serde_json::json!({"a": "x"}));
        assert_eq!(
            json("<a><b>1</b>x</a>"),
            serde_json::json!({"a": {"b": "1", "#text": "x"}})
        );
    }

    #[test]
    fn entities_are_predefined_only() {
        assert_eq!(
            json("<a>&lt;&#65;&amp;</a>"),
            serde_json::json!({"a": "<A&"})
        );
        let laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">
            <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>"#;
        assert!(to_json(laughs.as_bytes()).is_err());
        let xxe = r#"<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>"#;
        assert!(to_json(xxe.as_bytes()).is_err());
    }

    #[test]
    fn depth_and_size_are_capped() {
        let deep = "<a>".repeat(MAX_DEPTH + 1);
        assert_eq!(decode(deep.as_bytes()).unwrap_err(), XmlError::TooDeep);
        let big = vec![b' '; MAX_BYTES + 1];
        assert!(matches!(decode(&big), Err(XmlError::TooLarge(_))));
        assert_eq!(decode(b"  ").unwrap_err(), XmlError::Empty);
        assert!(decode(b"<a><b></a>").is_err());
    }
}
