//! TOML configuration files into the same spanned tree as JSON, so every later error keeps
//! its line:col. Datetimes become strings (KrakenD's config has none).

use super::json::{key_segment, Member, ParseIssue, Parsed, Pos, Spanned, Value};
use toml_edit::{Document, Item, Table, TableLike};

pub fn parse(text: &str) -> Result<Parsed, ParseIssue> {
    let doc = Document::parse(text).map_err(|e| ParseIssue {
        pos: e
            .span()
            .map(|s| pos_of(text, s.start))
            .unwrap_or(Pos { line: 1, col: 1 }),
        path: "$".into(),
        message: format!("TOML: {}", e.message().trim_end()),
    })?;
    let conv = Conv { text };
    let root = conv.table(doc.as_table(), Pos { line: 1, col: 1 }, "$");
    Ok(Parsed {
        root,
        duplicates: Vec::new(),
    })
}

/// 1-based line and character column of byte offset `at`.
fn pos_of(text: &str, at: usize) -> Pos {
    let before = text.get(..at.min(text.len())).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map(|p| p + 1).unwrap_or(0);
    Pos {
        line: line as u32,
        col: before.get(start..).unwrap_or("").chars().count() as u32 + 1,
    }
}

struct Conv<'a> {
    text: &'a str,
}

impl Conv<'_> {
    fn at(&self, span: Option<std::ops::Range<usize>>, fallback: Pos) -> Pos {
        span.map(|s| pos_of(self.text, s.start)).unwrap_or(fallback)
    }

    fn table(&self, t: &Table, fallback: Pos, path: &str) -> Spanned {
        let here = self.at(t.span(), fallback);
        self.members(t, here, path)
    }

    fn members(&self, t: &dyn TableLike, here: Pos, path: &str) -> Spanned {
        let mut members = Vec::new();
        for (k, item) in t.iter() {
            let key_pos = self.at(t.get_key_value(k).and_then(|(key, _)| key.span()), here);
            let child = format!("{path}{}", key_segment(k));
            members.push(Member {
                key: k.to_string(),
                key_pos,
                value: self.item(item, key_pos, &child),
            });
        }
        Spanned {
            pos: here,
            value: Value::Object(members),
        }
    }

    fn item(&self, item: &Item, fallback: Pos, path: &str) -> Spanned {
        match item {
            Item::None => Spanned {
                pos: fallback,
                value: Value::Null,
            },
            Item::Value(v) => self.value(v, fallback, path),
            Item::Table(t) => self.table(t, fallback, path),
            Item::ArrayOfTables(a) => {
                let items = a
                    .iter()
                    .enumerate()
                    .map(|(i, t)| self.table(t, fallback, &format!("{path}[{i}]")))
                    .collect();
                Spanned {
                    pos: self.at(a.span(), fallback),
                    value: Value::Array(items),
                }
            }
        }
    }

    fn value(&self, v: &toml_edit::Value, fallback: Pos, path: &str) -> Spanned {
        use toml_edit::Value as T;
        let pos = self.at(v.span(), fallback);
        let value = match v {
            T::String(s) => Value::String(s.value().clone()),
            T::Integer(i) => Value::Number(i.value().to_string()),
            T::Float(f) => {
                let f = *f.value();
                if f.is_finite() {
                    Value::Number(format!("{f:?}"))
                } else {
                    Value::String(f.to_string())
                }
            }
            T::Boolean(b) => Value::Bool(*b.value()),
            T::Datetime(d) => Value::String(d.value().to_string()),
            T::Array(a) => Value::Array(
                a.iter()
                    .enumerate()
                    .map(|(i, x)| self.value(x, pos, &format!("{path}[{i}]")))
                    .collect(),
            ),
            T::InlineTable(t) => return self.members(t, pos, path),
        };
        Spanned { pos, value }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    #[test]
    fn tables_arrays_of_tables_and_positions() {
        let p = parse("version = 3\n[extra]\nx = \"y\"\n[[endpoints]]\nendpoint = \"/a\"\n[[endpoints]]\nendpoint = \"/b\"\n").unwrap();
        let eps = &p.root.get("endpoints").unwrap().value;
        let Value::Array(items) = &eps.value else {
            panic!()
        };
        assert_eq!(items.len(), 2);
        let ep = items[1].get("endpoint").unwrap();
        assert_eq!(ep.value.value, Value::String("/b".into()));
        assert_eq!(ep.value.pos, Pos { line: 7, col: 12 });
        assert_eq!(
            p.root.get("version").unwrap().value.value,
            Value::Number("3".into())
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("a = 1\nb = = 2\n").unwrap_err();
        assert_eq!(e.pos.line, 2, "{e:?}");
        assert!(e.message.starts_with("TOML:"));
    }
}
