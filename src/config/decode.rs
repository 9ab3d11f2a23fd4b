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
    /// Convert scalar types as KrakenD's decoder does (on by default), with a warning each time.
    // KrakenD: koanf decodes the root, endpoint and backend keys with mapstructure and
    // `WeaklyTypedInput`: `"8080"` is read as 8080, `"true"` as true, 1 as "1", a single value
    // as a list of one. Namespaces are read with encoding/json, which is strict: decoders of a
    // namespace turn this off.
    pub weak: bool,
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
            weak: true,
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

    /// `null` reads as if the key were absent (mapstructure and encoding/json both skip it).
    fn null(&mut self, v: &Spanned, path: &str) {
        self.warn(
            v.pos,
            path,
            "null is ignored, as KrakenD does: the default applies",
        );
    }

    /// A value of another type that KrakenD's decoder converts: say what it became.
    fn converted(&mut self, v: &Spanned, path: &str, became: &str, write: &str) {
        self.warn(
            v.pos,
            path,
            format!(
                "{} read as {became}, as KrakenD's decoder does; write {write}",
                v.value.kind()
            ),
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
            Value::Null => {
                self.null(v, path);
                None
            }
            _ => {
                self.type_error(v, path, "an object");
                None
            }
        }
    }

    pub fn array<'v>(&mut self, v: &'v Spanned, path: &str) -> Option<&'v [Spanned]> {
        match &v.value {
            Value::Array(items) => Some(items),
            Value::Null => {
                self.null(v, path);
                None
            }
            // KrakenD: mapstructure turns an empty object into an empty list...
            Value::Object(members) if self.weak && members.is_empty() => {
                self.converted(v, path, "an empty list", "[]");
                Some(&[])
            }
            // ...and any other single value into a list of that one value.
            _ if self.weak => {
                self.converted(v, path, "a list of one item", "[...] around it");
                Some(std::slice::from_ref(v))
            }
            _ => {
                self.type_error(v, path, "an array");
                None
            }
        }
    }

    pub fn string(&mut self, v: &Spanned, path: &str) -> Option<String> {
        match &v.value {
            Value::String(s) => Some(s.clone()),
            Value::Null => {
                self.null(v, path);
                None
            }
            // KrakenD: Go's `strconv.FormatFloat(f, 'f', -1, 64)` (JSON numbers are float64).
            Value::Number(raw) if self.weak => {
                let text = raw
                    .parse::<f64>()
                    .map_or_else(|_| raw.clone(), |f| f.to_string());
                self.converted(v, path, &format!("the string {text:?}"), "it in quotes");
                Some(text)
            }
            Value::Bool(b) if self.weak => {
                let text = if *b { "1" } else { "0" };
                self.converted(v, path, &format!("the string {text:?}"), "a string");
                Some(text.to_string())
            }
            _ => {
                self.type_error(v, path, "a string");
                None
            }
        }
    }

    pub fn bool(&mut self, v: &Spanned, path: &str) -> Option<bool> {
        match &v.value {
            Value::Bool(b) => Some(*b),
            Value::Null => {
                self.null(v, path);
                None
            }
            Value::Number(raw) if self.weak => {
                let b = raw.parse::<f64>().is_ok_and(|f| f != 0.0);
                self.converted(v, path, &b.to_string(), &format!("{b}"));
                Some(b)
            }
            Value::String(s) if self.weak => match go_parse_bool(s) {
                Some(b) => {
                    self.converted(v, path, &b.to_string(), &format!("{b} without quotes"));
                    Some(b)
                }
                None => {
                    self.type_error(v, path, "a boolean (true or false)");
                    None
                }
            },
            _ => {
                self.type_error(v, path, "a boolean (true or false)");
                None
            }
        }
    }

    /// A non-negative integer that fits in `T`.
    pub fn uint<T: TryFrom<u64>>(&mut self, v: &Spanned, path: &str) -> Option<T> {
        let n = self.integer(v, path)?;
        let Ok(n) = u64::try_from(n) else {
            self.error(
                v.pos,
                path,
                format!("expected a non-negative integer, found {n}"),
            );
            return None;
        };
        match T::try_from(n) {
            Ok(t) => Some(t),
            Err(_) => {
                self.error(v.pos, path, format!("{n} is out of range"));
                None
            }
        }
    }

    /// Any integer (for `version`, so the message can say which version was found).
    pub fn int(&mut self, v: &Spanned, path: &str) -> Option<i64> {
        self.integer(v, path)
    }

    /// An integer as KrakenD's decoder reads one: a number (a fraction is cut off, as Go's
    /// `int64(f)`), or, weakly, a string (`strconv.ParseInt(s, 0, 64)`, "" is 0) or a boolean.
    fn integer(&mut self, v: &Spanned, path: &str) -> Option<i64> {
        match &v.value {
            Value::Number(raw) => {
                if let Ok(n) = raw.parse::<i64>() {
                    return Some(n);
                }
                // Go's encoding/json (strict) refuses a fraction for an integer field.
                let f = raw
                    .parse::<f64>()
                    .ok()
                    .filter(|f| self.weak && f.is_finite());
                match f {
                    Some(f) if f.trunc() >= i64::MIN as f64 && f.trunc() <= i64::MAX as f64 => {
                        // Truncation toward zero is what Go's conversion does.
                        #[allow(clippy::cast_possible_truncation)]
                        let n = f.trunc() as i64;
                        self.converted(v, path, &format!("the integer {n}"), &n.to_string());
                        Some(n)
                    }
                    _ => {
                        self.error(v.pos, path, format!("expected an integer, found {raw}"));
                        None
                    }
                }
            }
            Value::Null => {
                self.null(v, path);
                None
            }
            Value::String(s) if self.weak => match go_parse_int(s) {
                Some(n) => {
                    self.converted(v, path, &format!("the integer {n}"), &n.to_string());
                    Some(n)
                }
                None => {
                    self.error(v.pos, path, format!("expected an integer, found {s:?}"));
                    None
                }
            },
            Value::Bool(b) if self.weak => {
                let n = i64::from(*b);
                self.converted(v, path, &format!("the integer {n}"), &n.to_string());
                Some(n)
            }
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
            Value::Null => {
                self.null(v, path);
                None
            }
            Value::Number(raw) => {
                // KrakenD: mapstructure decodes a number into time.Duration as nanoseconds,
                // so `"timeout": 2` is 2ns, which is almost never what was meant.
                let n = raw.parse::<u64>().ok().or_else(|| {
                    let f = raw.parse::<f64>().ok().filter(|f| *f >= 0.0 && self.weak)?;
                    // Go's int64(f): the fraction is cut off.
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let n = f.trunc() as u64;
                    Some(n)
                });
                let Some(n) = n else {
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

/// Go's `strconv.ParseBool`, with mapstructure's weak rule that "" is false.
pub fn go_parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" | "" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` as mapstructure's weak decoding calls it ("" is 0): an
/// optional sign, then decimal, `0x` hex, `0o`/`0` octal or `0b` binary; `_` between digits.
pub fn go_parse_int(s: &str) -> Option<i64> {
    if s.is_empty() {
        return Some(0);
    }
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..)?),
        Some(b'+') => (false, s.get(1..)?),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d, true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d, true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d, true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower.get(1..)?, true)
    } else {
        (10, lower.as_str(), false)
    };
    // Go allows `_` only with base 0 syntax: between digits, or after a prefix.
    if digits.starts_with('_') && !prefixed || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() || !clean.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(&clean, radix).ok()?;
    i64::try_from(if neg { -magnitude } else { magnitude }).ok()
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
        let v = first_value("{\n  \"port\": \"eighty\"}");
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
        assert_eq!(ctx.diags.len(), 2);
        // Go's encoding/json (a namespace) refuses a fraction for an integer.
        ctx.weak = false;
        assert_eq!(ctx.uint::<u16>(&first_value(r#"{"p": 1.5}"#), "$.p"), None);
        assert_eq!(ctx.diags.len(), 3);
    }

    #[test]
    fn scalars_convert_weakly_as_krakend_decodes_them_with_a_warning_each() {
        let mut ctx = Ctx::new("f");
        let v = |t: &str| first_value(&format!(r#"{{"k": {t}}}"#));
        assert_eq!(ctx.uint::<u16>(&v(r#""8080""#), "$.k"), Some(8080));
        assert_eq!(ctx.uint::<u16>(&v("80.9"), "$.k"), Some(80));
        assert_eq!(ctx.uint::<u16>(&v(r#""0x1F""#), "$.k"), Some(31));
        assert_eq!(ctx.uint::<u16>(&v(r#""""#), "$.k"), Some(0));
        assert_eq!(ctx.uint::<u16>(&v("true"), "$.k"), Some(1));
        assert_eq!(ctx.bool(&v(r#""true""#), "$.k"), Some(true));
        assert_eq!(ctx.bool(&v(r#""0""#), "$.k"), Some(false));
        assert_eq!(ctx.bool(&v("2"), "$.k"), Some(true));
        assert_eq!(ctx.string(&v("1e3"), "$.k"), Some("1000".to_string()));
        assert_eq!(ctx.string(&v("false"), "$.k"), Some("0".to_string()));
        assert_eq!(
            ctx.strings(&v(r#""http://h""#), "$.k"),
            Some(vec!["http://h".to_string()])
        );
        assert_eq!(ctx.strings(&v("{}"), "$.k"), Some(Vec::new()));
        assert_eq!(ctx.diags.len(), 12);
        assert!(ctx.diags.iter().all(|d| d.severity == Severity::Warning));
        // What no weak rule converts is still an error, as in KrakenD.
        assert_eq!(ctx.bool(&v(r#""yes""#), "$.k"), None);
        assert_eq!(ctx.uint::<u16>(&v(r#""8080 ""#), "$.k"), None);
        assert_eq!(ctx.string(&v("[1]"), "$.k"), None);
        let errors = ctx.diags.iter().filter(|d| d.severity == Severity::Error);
        assert_eq!(errors.count(), 3);
    }

    #[test]
    fn null_reads_as_absent_with_a_warning() {
        let mut ctx = Ctx::new("f");
        let v = first_value(r#"{"k": null}"#);
        assert_eq!(ctx.string(&v, "$.k"), None);
        assert_eq!(ctx.duration(&v, "$.k"), None);
        assert_eq!(ctx.strings(&v, "$.k"), None);
        assert_eq!(ctx.diags.len(), 3);
        assert!(ctx.diags.iter().all(|d| d.severity == Severity::Warning));
    }

    #[test]
    fn go_integer_syntax_is_parsed_as_strconv_does() {
        assert_eq!(go_parse_int("-42"), Some(-42));
        assert_eq!(go_parse_int("+7"), Some(7));
        assert_eq!(go_parse_int("010"), Some(8));
        assert_eq!(go_parse_int("0b101"), Some(5));
        assert_eq!(go_parse_int("0o17"), Some(15));
        assert_eq!(go_parse_int("1_000"), Some(1000));
        assert_eq!(go_parse_int("08"), None);
        assert_eq!(go_parse_int("1__0"), None);
        assert_eq!(go_parse_int("_1"), None);
        assert_eq!(go_parse_int("1.5"), None);
        assert_eq!(go_parse_int("99999999999999999999"), None);
    }

    #[test]
    fn string_lists_report_each_bad_item() {
        let mut ctx = Ctx::new("f");
        ctx.weak = false;
        let got = ctx.strings(&first_value(r#"{"h": ["a", 1, "b", true]}"#), "$.h");
        assert_eq!(got, Some(vec!["a".to_string(), "b".to_string()]));
        let paths: Vec<_> = ctx.diags.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, vec!["$.h[1]", "$.h[3]"]);
    }
}
