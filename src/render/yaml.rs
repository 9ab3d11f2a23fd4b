//! YAML output (`output_encoding: yaml`, and `negotiate` for `text/plain`): the data as Go's
//! gopkg.in/yaml.v2 `Marshal` writes a `map[string]interface{}` (gin's `c.YAML`).
//!
//! KrakenD (yaml.v2): keys sorted, two-space indentation, list items at their key's
//! indentation, `{}`/`[]` for empty ones; numbers plain (an integer as written, any other number
//! as Go's shortest `%g`); strings plain unless they would read as another type (then
//! double-quoted) or YAML syntax forbids it (then single-quoted); multi-line strings as `|-`
//! blocks. Not reproduced: yaml.v2 folds plain strings longer than 80 columns; we never fold.

use super::tree::{sorted, Node};

pub fn write(data: &Node) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    match data {
        Node::Obj(m) if !m.is_empty() => map(&mut out, m, 0),
        Node::Arr(a) if !a.is_empty() => seq(&mut out, a, 0),
        other => {
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
    out.into_bytes()
}

fn pad(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn map(out: &mut String, m: &[(String, Node)], indent: usize) {
    for (i, (k, v)) in sorted(m).into_iter().enumerate() {
        // The first key of a map inside a list item sits on the item's `- ` line.
        if i > 0 || !out.ends_with("- ") {
            pad(out, indent);
        }
        out.push_str(&string(k, indent));
        out.push(':');
        value_after_key(out, v, indent);
    }
}

fn value_after_key(out: &mut String, v: &Node, indent: usize) {
    match v {
        Node::Obj(m) if !m.is_empty() => {
            out.push('\n');
            map(out, m, indent + 2);
        }
        Node::Arr(a) if !a.is_empty() => {
            out.push('\n');
            seq(out, a, indent);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar_text(other, indent));
            out.push('\n');
        }
    }
}

fn seq(out: &mut String, items: &[Node], indent: usize) {
    for it in items {
        pad(out, indent);
        out.push_str("- ");
        match it {
            Node::Obj(m) if !m.is_empty() => map(out, m, indent + 2),
            Node::Arr(a) if !a.is_empty() => {
                out.push('\n');
                seq(out, a, indent + 2);
            }
            other => {
                out.push_str(&scalar_text(other, indent + 2));
                out.push('\n');
            }
        }
    }
}

fn inline(v: &Node) -> String {
    match v {
        Node::Obj(_) => "{}".into(),
        Node::Arr(_) => "[]".into(),
        other => scalar_text(other, 0),
    }
}

fn scalar_text(v: &Node, indent: usize) -> String {
    match v {
        Node::Null => "null".into(),
        Node::Bool(b) => b.to_string(),
        Node::Num(n) => number(n),
        Node::Str(s) => string(s, indent),
        Node::Obj(_) => "{}".into(),
        Node::Arr(_) => "[]".into(),
    }
}

/// yaml.v2 on a `json.Number`: `Int64()` if it parses, else `Float64()` as `%g`, else the text.
fn number(n: &str) -> String {
    if let Ok(i) = n.parse::<i64>() {
        return i.to_string();
    }
    match n.parse::<f64>() {
        Ok(f) if f.is_finite() => go_g(f),
        _ => n.to_owned(),
    }
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`.
fn go_g(f: f64) -> String {
    let e = format!("{f:e}");
    let Some((mant, exp)) = e.split_once('e') else {
        return e;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    // Go: with the shortest precision, %e is used when the exponent is < -4 or >= 6.
    if !(-4..6).contains(&exp) {
        return go_exp(mant, exp);
    }
    format!("{f}")
}

fn go_exp(mant: &str, exp: i32) -> String {
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mant}e{sign}{:02}", exp.abs())
}

/// A string as yaml.v2 writes it.
fn string(s: &str, indent: usize) -> String {
    if s.contains('\n') {
        let mut out = String::from("|-");
        for line in s.split('\n') {
            out.push('\n');
            if !line.is_empty() {
                pad(&mut out, indent + 2);
                out.push_str(line);
            }
        }
        return out;
    }
    if resolves_to_other(s) {
        return double_quoted(s);
    }
    if plain_ok(s) {
        return s.to_owned();
    }
    if s.chars().any(|c| c.is_control()) {
        return double_quoted(s);
    }
    format!("'{}'", s.replace('\'', "''"))
}

/// Would a plain scalar read back as a null, bool or number (yaml.v2's resolver)?
fn resolves_to_other(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", "-.inf", "-.Inf", "-.INF", "+.inf", ".nan", ".NaN", ".NAN",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let t = s.replace('_', "");
    let t = t.strip_prefix(['+', '-']).unwrap_or(&t);
    if t.is_empty() {
        return false;
    }
    t.parse::<f64>().is_ok() && !t.contains(['i', 'I', 'n', 'N'])
        || t.strip_prefix("0x")
            .is_some_and(|h| u64::from_str_radix(h, 16).is_ok())
        || t.strip_prefix("0b")
            .is_some_and(|h| u64::from_str_radix(h, 2).is_ok())
}

/// Can `s` be written as a plain scalar (libyaml's analysis, simplified)?
fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s.starts_with(' ') || s.ends_with(' ') {
        return false;
    }
    let second = s.chars().nth(1);
    match first {
        '-' | '?' | ':' if second.is_none_or(|c| c == ' ') => return false,
        ',' | '[' | ']' | '{' | '}' | '#' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%'
        | '@' | '`' => return false,
        _ => {}
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    !s.chars().any(|c| c.is_control() || c == '\u{feff}')
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::super::tree::parse;
    use super::*;

    fn yaml(json: &str) -> String {
        String::from_utf8(write(&parse(json.as_bytes()).unwrap())).unwrap()
    }

    #[test]
    fn nested_maps_indent_two_spaces_with_sorted_keys() {
        assert_eq!(
            yaml(
                r#"{"user":{"name":"Elliot","-type":"admin","social":{"twitter":"https://t.co"}}}"#
            ),
            "user:\n  -type: admin\n  name: Elliot\n  social:\n    twitter: https://t.co\n"
        );
    }

    #[test]
    fn lists_scalars_and_quoting_follow_yaml_v2() {
        assert_eq!(
            yaml(r#"{"a":[1,{"x":"true","y":null}],"b":"it's: here","c":1.50,"d":[],"e":{}}"#),
            "a:\n- 1\n- x: \"true\"\n  \"y\": null\nb: 'it''s: here'\nc: 1.5\nd: []\ne: {}\n"
        );
        assert_eq!(yaml("{}"), "{}\n");
    }
}
