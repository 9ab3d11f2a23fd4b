//! YAML configuration files into the same spanned tree as JSON, so every later error keeps its
//! line:col. Scalars resolve as Go's yaml.v3 does for `interface{}` (YAML 1.2 core schema):
//! plain `true`/`false`, `null`/`~`/empty, integers (also `0x`/`0o`) and floats; anything
//! quoted, or tagged `!!str`, is a string. Anchors, aliases and `<<` merge keys are supported.

use super::json::{key_segment, Member, ParseIssue, Parsed, Pos, Spanned, Value, MAX_DEPTH};
use std::collections::HashMap;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Values (aliases expanded) beyond this are refused: a "billion laughs" file cannot eat the
/// memory.
const MAX_NODES: usize = 1_000_000;

pub fn parse(text: &str) -> Result<Parsed, ParseIssue> {
    let mut y = Yaml {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        nodes: 0,
    };
    loop {
        let (ev, mark) = y.next("$")?;
        match ev {
            Event::StreamStart => {}
            Event::DocumentStart => break,
            Event::StreamEnd => {
                return Err(ParseIssue {
                    pos: pos(mark),
                    path: "$".into(),
                    message: "the YAML file holds no document".into(),
                })
            }
            _ => {}
        }
    }
    let (ev, mark) = y.next("$")?;
    let root = y.node(ev, mark, 0, "$")?;
    // KrakenD: only the first document of the stream is read.
    Ok(Parsed {
        root,
        duplicates: Vec::new(),
    })
}

fn pos(m: Marker) -> Pos {
    Pos {
        line: m.line() as u32,
        col: m.col() as u32 + 1,
    }
}

struct Yaml<'a> {
    parser: Parser<std::str::Chars<'a>>,
    anchors: HashMap<usize, Spanned>,
    nodes: usize,
}

impl Yaml<'_> {
    fn next(&mut self, path: &str) -> Result<(Event, Marker), ParseIssue> {
        self.parser.next_token().map_err(|e| {
            let m = *e.marker();
            ParseIssue {
                pos: pos(m),
                path: path.to_string(),
                message: format!("YAML: {}", e.info()),
            }
        })
    }

    fn issue(mark: Marker, path: &str, message: String) -> ParseIssue {
        ParseIssue {
            pos: pos(mark),
            path: path.to_string(),
            message,
        }
    }

    fn count(&mut self, n: usize, mark: Marker, path: &str) -> Result<(), ParseIssue> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(Self::issue(
                mark,
                path,
                format!("more than {MAX_NODES} values (aliases expanded)"),
            ));
        }
        Ok(())
    }

    fn node(
        &mut self,
        ev: Event,
        mark: Marker,
        depth: usize,
        path: &str,
    ) -> Result<Spanned, ParseIssue> {
        if depth > MAX_DEPTH {
            return Err(Self::issue(
                mark,
                path,
                format!("nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.count(1, mark, path)?;
        let p = pos(mark);
        let (value, anchor) = match ev {
            Event::Scalar(s, style, anchor, tag) => {
                let is_str_tag = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let v = if style == TScalarStyle::Plain && !is_str_tag {
                    resolve(&s)
                } else {
                    Value::String(s)
                };
                (v, anchor)
            }
            Event::Alias(id) => {
                let Some(v) = self.anchors.get(&id).cloned() else {
                    return Err(Self::issue(mark, path, "unknown anchor".into()));
                };
                let n = size(&v);
                self.count(n, mark, path)?;
                return Ok(Spanned {
                    pos: p,
                    value: v.value,
                });
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (ev, m) = self.next(path)?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    let item_path = format!("{path}[{}]", items.len());
                    items.push(self.node(ev, m, depth + 1, &item_path)?);
                }
                (Value::Array(items), anchor)
            }
            Event::MappingStart(anchor, _) => (Value::Object(self.mapping(depth, path)?), anchor),
            other => {
                return Err(Self::issue(
                    mark,
                    path,
                    format!("unexpected YAML event {other:?}"),
                ))
            }
        };
        let node = Spanned { pos: p, value };
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }

    fn mapping(&mut self, depth: usize, path: &str) -> Result<Vec<Member>, ParseIssue> {
        let mut members: Vec<Member> = Vec::new();
        let mut merged: Vec<Member> = Vec::new();
        loop {
            let (ev, kmark) = self.next(path)?;
            let key = match ev {
                Event::MappingEnd => break,
                Event::Scalar(s, ..) => s,
                _ => {
                    return Err(Self::issue(
                        kmark,
                        path,
                        "a mapping key must be a scalar".into(),
                    ))
                }
            };
            let child = format!("{path}{}", key_segment(&key));
            let (ev, vmark) = self.next(&child)?;
            let value = self.node(ev, vmark, depth + 1, &child)?;
            if key == "<<" {
                // A merge key: the mapping (or list of mappings) fills in keys not set here.
                let sources = match value.value {
                    Value::Object(m) => vec![m],
                    Value::Array(items) => items
                        .into_iter()
                        .filter_map(|i| match i.value {
                            Value::Object(m) => Some(m),
                            _ => None,
                        })
                        .collect(),
                    _ => {
                        return Err(Self::issue(
                            vmark,
                            &child,
                            "a merge key (<<) needs a mapping".into(),
                        ))
                    }
                };
                for m in sources.into_iter().flatten() {
                    if !merged.iter().any(|x| x.key == m.key) {
                        merged.push(m);
                    }
                }
                continue;
            }
            if members.iter().any(|m| m.key == key) {
                // KrakenD: yaml.v3 refuses a repeated key.
                return Err(Self::issue(
                    kmark,
                    &child,
                    format!("mapping key {key:?} already defined"),
                ));
            }
            members.push(Member {
                key,
                key_pos: pos(kmark),
                value,
            });
        }
        for m in merged {
            if !members.iter().any(|x| x.key == m.key) {
                members.push(m);
            }
        }
        Ok(members)
    }
}

fn size(v: &Spanned) -> usize {
    1 + match &v.value {
        Value::Array(items) => items.iter().map(size).sum(),
        Value::Object(ms) => ms.iter().map(|m| size(&m.value)).sum(),
        _ => 0,
    }
}

/// A plain scalar as yaml.v3 resolves it.
fn resolve(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let clean = s.replace('_', "");
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let radix = [("0x", 16), ("0o", 8), ("0b", 2)]
        .iter()
        .find_map(|(p, r)| body.strip_prefix(p).map(|d| (d, *r)));
    if let Some((digits, r)) = radix {
        if let Ok(v) = i64::from_str_radix(digits, r) {
            return Value::Number(if neg { (-v).to_string() } else { v.to_string() });
        }
        return Value::String(s.to_string());
    }
    let numeric = !body.is_empty()
        && body
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
        && body
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == b'.');
    if numeric {
        if let Ok(i) = body.parse::<u64>() {
            return Value::Number(if neg { format!("-{i}") } else { i.to_string() });
        }
        if let Ok(f) = body.parse::<f64>() {
            if f.is_finite() {
                let f = if neg { -f } else { f };
                return Value::Number(format!("{f:?}"));
            }
        }
    }
    Value::String(s.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    #[test]
    fn scalars_resolve_as_yaml_v3_does_and_keep_positions() {
        let p =
            parse("a: 1\nb: \"1\"\nc: true\nd: ~\ne: 1.5\nf: 0x10\ng: text\nh: [x, 2]\n").unwrap();
        let Value::Object(ms) = &p.root.value else {
            panic!()
        };
        let v: Vec<&Value> = ms.iter().map(|m| &m.value.value).collect();
        assert_eq!(v[0], &Value::Number("1".into()));
        assert_eq!(v[1], &Value::String("1".into()));
        assert_eq!(v[2], &Value::Bool(true));
        assert_eq!(v[3], &Value::Null);
        assert_eq!(v[4], &Value::Number("1.5".into()));
        assert_eq!(v[5], &Value::Number("16".into()));
        assert_eq!(v[6], &Value::String("text".into()));
        assert_eq!(ms[1].key_pos, Pos { line: 2, col: 1 });
        assert_eq!(ms[1].value.pos, Pos { line: 2, col: 4 });
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let p = parse("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n").unwrap();
        let use_ = p.root.get("use").unwrap();
        let Value::Object(ms) = &use_.value.value else {
            panic!()
        };
        let keys: Vec<(&str, &Value)> = ms
            .iter()
            .map(|m| (m.key.as_str(), &m.value.value))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("y", &Value::Number("3".into())),
                ("x", &Value::Number("1".into()))
            ]
        );
    }

    #[test]
    fn syntax_errors_and_repeated_keys_have_positions() {
        let e = parse("a: 1\nb: [1, 2\n").unwrap_err();
        assert!(e.message.starts_with("YAML:"), "{e:?}");
        let e = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!((e.pos, e.path.as_str()), (Pos { line: 2, col: 1 }, "$.a"));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut t = String::from("a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n");
        for i in 1..8 {
            let p = i - 1;
            t.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        assert!(parse(&t).unwrap_err().message.contains("aliases expanded"));
    }
}
