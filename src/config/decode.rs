//! Typed reads from the spanned JSON tree. Every read that fails records a diagnostic with the
//! value's position and JSON path and returns None, so decoding carries on to find more problems.

use std::time::Duration;

use super::duration::parse_go_duration;
use super::json::{key_segment, Member, Pos, Spanned, Value};
use super::suggest;
use super::{Diagnostic, Severity};

/// Collects diagnostics for one file.
pub struct Ctx<'a> {
    pub file: &'a str,
    pub diags: Vec<Diagnostic>,
}

/// The JSON path of member `key` under `base`.
pub fn child(base: &str, key: &str) -> String {
    format!("{base}{}", key_segment(key))
}

/// The JSON path of item `i` under `base`.
pub fn item(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

/// KrakenD: the schema allows keys starting with `@ $ _ #` anywhere, as comments.
pub fn is_comment(key: &str) -> bool {
    key.starts_with(['@', '$', '_', '#'])
}

impl<'a> Ctx<'a> {
    pub fn new(file: &'a str) -> Self {
        Ctx {
            file,
            diags: Vec::new(),
        }
    }

    pub fn push(&mut self, severity: Severity, pos: Pos, path: &str, message: String) {
        self.diags.push(Diagnostic {
            severity,
            file: self.file.to_string(),
            line: pos.line,
            col: pos.col,
            path: path.to_string(),
            message,
        });
    }

    pub fn error(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.push(Severity::Error, pos, path, message.into());
    }

    pub fn warn(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.push(Severity::Warning, pos, path, message.into());
    }

    fn type_error(&mut self, v: &Spanned, path: &str, expected: &str) {
        self.error(
            v.pos,
            path,
            format!("expected {expected}, found {}", v.value.kind()),
        );
    }

    /// Warn about a key that is not known at this level, suggesting the nearest known one.
    pub fn unknown_key(&mut self, m: &Member, base: &str, known: &[&str]) {
        let path = child(base, &m.key);
        let msg = match suggest::nearest(&m.key, known) {
            Some(k) => format!("unknown key {:?}; did you mean {k:?}?", m.key),
            None => format!("unknown key {:?} is ignored", m.key),
        };
        self.warn(m.key_pos, &path, msg);
    }

    pub fn object<'v>(&mut self, v: &'v Spanned, path: &str) -> Option<&'v [Member]> {
        match &v.value {
            Value::Object(members) => Some(members),
            _ => {
                self.type_error(v, path, "an object");
                None
            }
        }
    }

    pub fn array<'v>(&mut self, v: &'v Spanned, path: &str) -> Option<&'v [Spanned]> {
        match &v.value {
            Value::Array(items) => Some(items),
            _ => {
                self.type_error(v, path, "an array");
                None
            }
        }
    }

    pub fn string(&mut self, v: &Spanned, path: &str) -> Option<String> {
        match &v.value {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.type_error(v, path, "a string");
                None
            }
        }
    }

    pub fn bool(&mut self, v: &Spanned, path: &str) -> Option<bool> {
        match &v.value {
            Value::Bool(b) => Some(*b),
            _ => {
                self.type_error(v, path, "a boolean (true or false)");
                None
            }
        }
    }

    /// A non-negative integer that fits in `T`.
    pub fn uint<T: TryFrom<u64>>(&mut self, v: &Spanned, path: &str) -> Option<T> {
        let Value::Number(raw) = &v.value else {
            self.type_error(v, path, "an integer");
            return None;
        };
        let Ok(n) = raw.parse::<u64>() else {
            self.error(
                v.pos,
                path,
                format!("expected a non-negative integer, found {raw}"),
            );
            return None;
        };
        match T::try_from(n) {
            Ok(t) => Some(t),
            Err(_) => {
                self.error(v.pos, path, format!("{raw} is out of range"));
                None
            }
        }
    }

    /// Any integer (for `version`, so the message can say which version was found).
    pub fn int(&mut self, v: &Spanned, path: &str) -> Option<i64> {
        match &v.value {
            Value::Number(raw) => match raw.parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    self.error(v.pos, path, format!("expected an integer, found {raw}"));
                    None
                }
            },
            _ => {
                self.type_error(v, path, "an integer");
                None
            }
        }
    }

    /// A Go duration string; a bare integer is read as nanoseconds (with a warning).
    pub fn duration(&mut self, v: &Spanned, path: &str) -> Option<Duration> {
        match &v.value {
            Value::String(s) => match parse_go_duration(s) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.error(v.pos, path, e);
                    None
                }
            },
            Value::Number(raw) => {
                // KrakenD: mapstructure decodes a number into time.Duration as nanoseconds,
                // so `"timeout": 2` is 2ns, which is almost never what was meant.
                let Ok(n) = raw.parse::<u64>() else {
                    self.error(
                        v.pos,
                        path,
                        format!("expected a duration such as \"2s\", found {raw}"),
                    );
                    return None;
                };
                if n != 0 {
                    self.warn(
                        v.pos,
                        path,
                        format!(
                            "a bare number in a duration is read as nanoseconds ({n}ns), as \
                             KrakenD does; write a unit, e.g. \"{n}s\" or \"{n}ms\""
                        ),
                    );
                }
                Some(Duration::from_nanos(n))
            }
            _ => {
                self.type_error(v, path, "a duration string such as \"2s\"");
                None
            }
        }
    }

    /// An array of strings; bad items are reported and skipped.
    pub fn strings(&mut self, v: &Spanned, path: &str) -> Option<Vec<String>> {
        let items = self.array(v, path)?;
        Some(
            items
                .iter()
                .enumerate()
                .filter_map(|(i, it)| self.string(it, &item(path, i)))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::json::parse;

    fn first_value(text: &str) -> Spanned {
        let parsed = parse(text).map(|p| p.root);
        match parsed {
            Ok(Spanned {
                value: Value::Object(members),
                ..
            }) => members
                .into_iter()
                .next()
                .map(|m| m.value)
                .unwrap_or(Spanned {
                    pos: Pos::default(),
                    value: Value::Null,
                }),
            other => panic!("bad fixture: {other:?}"),
        }
    }

    #[test]
    fn bare_number_duration_is_nanoseconds_with_a_warning() {
        let mut ctx = Ctx::new("f");
        let d = ctx.duration(&first_value(r#"{"timeout": 1500}"#), "$.timeout");
        assert_eq!(d, Some(Duration::from_nanos(1500)));
        assert_eq!(ctx.diags.len(), 1);
        assert_eq!(
            ctx.diags.first().map(|d| d.severity),
            Some(Severity::Warning)
        );
        assert!(ctx.diags.iter().any(|d| d.message.contains("nanoseconds")));
    }

    #[test]
    fn wrong_types_report_position_and_path() {
        let mut ctx = Ctx::new("f");
        let v = first_value("{\n  \"port\": \"80\"}");
        assert_eq!(ctx.uint::<u16>(&v, "$.port"), None);
        let d = ctx.diags.first().cloned();
        assert_eq!(d.as_ref().map(|d| (d.line, d.col)), Some((2, 11)));
        assert_eq!(d.map(|d| d.path), Some("$.port".to_string()));
    }

    #[test]
    fn integers_out_of_range_are_errors() {
        let mut ctx = Ctx::new("f");
        assert_eq!(
            ctx.uint::<u16>(&first_value(r#"{"p": 70000}"#), "$.p"),
            None
        );
        assert_eq!(ctx.uint::<u16>(&first_value(r#"{"p": -1}"#), "$.p"), None);
        assert_eq!(ctx.uint::<u16>(&first_value(r#"{"p": 1.5}"#), "$.p"), None);
        assert_eq!(ctx.diags.len(), 3);
    }

    #[test]
    fn string_lists_report_each_bad_item() {
        let mut ctx = Ctx::new("f");
        let got = ctx.strings(&first_value(r#"{"h": ["a", 1, "b", true]}"#), "$.h");
        assert_eq!(got, Some(vec!["a".to_string(), "b".to_string()]));
        let paths: Vec<_> = ctx.diags.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, vec!["$.h[1]", "$.h[3]"]);
    }
}
