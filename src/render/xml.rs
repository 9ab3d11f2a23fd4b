//! `output_encoding: xml`: the data as XML, the way KrakenD's krakend-xml render writes it
//! (clbanning/mxj `Map.XmlWriter` with `XMLEscapeChars(true)`).
//!
//! KrakenD (mxj): a map with one key whose value is not a list is written with that key as the
//! root element, anything else inside `<doc>`; keys starting with `-` are attributes, `#text`
//! is an element's text; a list repeats its key; empty maps and nulls are `<key/>`; elements
//! and attributes are sorted by name; values are escaped (`&`, `<`, `>`, `"`, `'`).

use super::tree::{sorted, Node};

/// The XML text of `data` (a map); `None` where mxj fails (a non-scalar attribute, `#text`
/// beside child elements), which KrakenD answers with an empty body.
pub fn write(data: &Node) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    match data {
        Node::Obj(m) if m.len() == 1 => {
            let (k, v) = m.first()?;
            if matches!(v, Node::Arr(_)) {
                element(&mut out, "doc", data)?;
            } else {
                element(&mut out, k, v)?;
            }
        }
        _ => element(&mut out, "doc", data)?,
    }
    Some(out)
}

fn element(out: &mut Vec<u8>, key: &str, v: &Node) -> Option<()> {
    match v {
        Node::Arr(items) => {
            for it in items {
                element(out, key, it)?;
            }
            return Some(());
        }
        Node::Null => {
            out.push(b'<');
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"/>");
            return Some(());
        }
        _ => {}
    }
    out.push(b'<');
    out.extend_from_slice(key.as_bytes());
    match v {
        Node::Obj(m) => {
            let members = sorted(m);
            let mut attrs = 0;
            for (k, a) in &members {
                if let Some(name) = k.strip_prefix('-') {
                    out.push(b' ');
                    out.extend_from_slice(name.as_bytes());
                    out.extend_from_slice(b"=\"");
                    escape(out, &scalar(a)?);
                    out.push(b'"');
                    attrs += 1;
                }
            }
            if attrs == members.len() {
                out.extend_from_slice(b"/>");
                return Some(());
            }
            if let Some((_, t)) = members.iter().find(|(k, _)| k == "#text") {
                if attrs + 1 < members.len() {
                    return None;
                }
                out.push(b'>');
                escape(out, &scalar(t)?);
            } else {
                out.push(b'>');
                for (k, c) in members {
                    if !k.starts_with('-') {
                        element(out, k, c)?;
                    }
                }
            }
        }
        other => {
            out.push(b'>');
            escape(out, &scalar(other)?);
        }
    }
    out.extend_from_slice(b"</");
    out.extend_from_slice(key.as_bytes());
    out.push(b'>');
    Some(())
}

/// A scalar's text (Go `%v`); `None` for a map or list.
fn scalar(v: &Node) -> Option<String> {
    Some(match v {
        Node::Str(s) => s.clone(),
        Node::Num(n) => n.clone(),
        Node::Bool(b) => b.to_string(),
        Node::Null => "<nil>".into(),
        Node::Arr(_) | Node::Obj(_) => return None,
    })
}

fn escape(out: &mut Vec<u8>, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '>' => out.extend_from_slice(b"&gt;"),
            '"' => out.extend_from_slice(b"&quot;"),
            '\'' => out.extend_from_slice(b"&apos;"),
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tree::parse;
    use super::*;

    fn xml(json: &str) -> String {
        String::from_utf8(write(&parse(json.as_bytes()).unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn one_key_becomes_the_root_and_attributes_come_back() {
        assert_eq!(
            xml(r##"{"user":{"name":"E","-type":"admin","n":{"-a":"1","#text":"t"}}}"##),
            r#"<user type="admin"><n a="1">t</n><name>E</name></user>"#
        );
    }

    #[test]
    fn several_keys_go_in_doc_sorted_with_lists_repeated() {
        assert_eq!(
            xml(r#"{"foo":42,"b":["x","y"],"q":{},"z":null,"t":true,"s":"a<&'"}"#),
            "<doc><b>x</b><b>y</b><foo>42</foo><q/><s>a&lt;&amp;&apos;</s><t>true</t><z/></doc>"
        );
        assert_eq!(xml(r#"{"l":[1,2]}"#), "<doc><l>1</l><l>2</l></doc>");
        assert_eq!(xml("{}"), "<doc/>");
    }
}
