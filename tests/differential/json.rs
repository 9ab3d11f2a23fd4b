//! A JSON reader for comparing bodies: numbers keep their text (so `1e3` and `1000`, or a
//! 38-digit integer and Go's float rendering of it, are told apart from a wrong value), object
//! members keep their order and duplicates (so a gateway that writes a key twice is caught).

#[derive(Clone, Debug, PartialEq)]
pub enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

/// Parse a whole document (surrounding whitespace allowed); None when it is not JSON.
pub fn parse(text: &str) -> Option<J> {
    let mut p = P {
        b: text.as_bytes(),
        i: 0,
    };
    let v = p.value(0)?;
    p.ws();
    (p.i == p.b.len()).then_some(v)
}

struct P<'a> {
    b: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> Option<()> {
        let end = self.i + lit.len();
        (self.b.get(self.i..end)? == lit.as_bytes()).then(|| self.i = end)
    }

    fn value(&mut self, depth: usize) -> Option<J> {
        if depth > 20_000 {
            return None;
        }
        self.ws();
        match *self.b.get(self.i)? {
            b'n' => self.eat("null").map(|_| J::Null),
            b't' => self.eat("true").map(|_| J::Bool(true)),
            b'f' => self.eat("false").map(|_| J::Bool(false)),
            b'"' => self.string().map(J::Str),
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Some(J::Arr(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.b.get(self.i)? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(J::Arr(items));
                        }
                        _ => return None,
                    }
                }
            }
            b'{' => {
                self.i += 1;
                let mut members = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Some(J::Obj(members));
                }
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return None;
                    }
                    let k = self.string()?;
                    self.ws();
                    self.eat(":")?;
                    let v = self.value(depth + 1)?;
                    members.push((k, v));
                    self.ws();
                    match self.b.get(self.i)? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Some(J::Obj(members));
                        }
                        _ => return None,
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                while matches!(
                    self.b.get(self.i),
                    Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                ) {
                    self.i += 1;
                }
                let t = std::str::from_utf8(self.b.get(start..self.i)?).ok()?;
                t.parse::<f64>().ok()?;
                Some(J::Num(t.to_string()))
            }
            _ => None,
        }
    }

    /// A string token, unescaped (lone surrogates become U+FFFD, as Go decodes them).
    fn string(&mut self) -> Option<String> {
        self.i += 1;
        let mut units: Vec<u16> = Vec::new();
        let mut out = String::new();
        let flush = |units: &mut Vec<u16>, out: &mut String| {
            out.extend(char::decode_utf16(units.drain(..)).map(|r| r.unwrap_or('\u{FFFD}')));
        };
        loop {
            let c = *self.b.get(self.i)?;
            match c {
                b'"' => {
                    self.i += 1;
                    flush(&mut units, &mut out);
                    return Some(out);
                }
                b'\\' => {
                    let e = *self.b.get(self.i + 1)?;
                    self.i += 2;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hex = std::str::from_utf8(self.b.get(self.i..self.i + 4)?).ok()?;
                            units.push(u16::from_str_radix(hex, 16).ok()?);
                            self.i += 4;
                            continue;
                        }
                        _ => return None,
                    };
                    flush(&mut units, &mut out);
                    out.push(ch);
                }
                _ => {
                    flush(&mut units, &mut out);
                    let start = self.i;
                    while self.b.get(self.i).is_some_and(|&b| b != b'"' && b != b'\\') {
                        self.i += 1;
                    }
                    out.push_str(std::str::from_utf8(self.b.get(start..self.i)?).ok()?);
                }
            }
        }
    }
}

/// One way two JSON values differ.
#[derive(Debug)]
pub struct Diff {
    pub class: &'static str,
    pub at: String,
}

/// Compare `ours` with KrakenD's `theirs`: objects as maps (order noted as `key-order`),
/// numbers by text (`number-text` when only the text differs, `value` when the number does).
pub fn compare(ours: &J, theirs: &J, at: &str, out: &mut Vec<Diff>) {
    fn push(out: &mut Vec<Diff>, class: &'static str, at: String) {
        out.push(Diff { class, at });
    }
    match (ours, theirs) {
        (J::Num(a), J::Num(b)) => {
            if a != b {
                let same = a.parse::<f64>().ok() == b.parse::<f64>().ok();
                push(
                    out,
                    if same { "number-text" } else { "value" },
                    format!("{at}: {a} vs {b}"),
                );
            }
        }
        (J::Arr(a), J::Arr(b)) => {
            if a.len() != b.len() {
                push(
                    out,
                    "value",
                    format!("{at}: array of {} vs {}", a.len(), b.len()),
                );
                return;
            }
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                compare(x, y, &format!("{at}[{i}]"), out);
            }
        }
        (J::Obj(a), J::Obj(b)) => {
            let mut seen = std::collections::HashSet::new();
            for (k, _) in a {
                if !seen.insert(k.as_str()) {
                    push(out, "duplicate-key", format!("{at}.{k}"));
                }
            }
            let ka: Vec<&str> = a.iter().map(|(k, _)| k.as_str()).collect();
            let kb: Vec<&str> = b.iter().map(|(k, _)| k.as_str()).collect();
            for (k, v) in b {
                match a.iter().rev().find(|(ak, _)| ak == k) {
                    Some((_, ov)) => compare(ov, v, &format!("{at}.{k}"), out),
                    None => push(out, "value", format!("{at}.{k}: missing")),
                }
            }
            for k in &ka {
                if !kb.contains(k) {
                    push(out, "value", format!("{at}.{k}: extra"));
                }
            }
            let mut common_a: Vec<&str> = ka.iter().copied().filter(|k| kb.contains(k)).collect();
            common_a.dedup();
            let common_b: Vec<&str> = kb.iter().copied().filter(|k| ka.contains(k)).collect();
            if common_a != common_b {
                push(out, "key-order", at.to_string());
            }
        }
        (a, b) => {
            if a != b {
                push(out, "value", format!("{at}: {a:?} vs {b:?}"));
            }
        }
    }
}

/// The comparator's own checks, run before the replay (the test has no libtest harness).
pub fn self_test() {
    tests::numbers_that_differ_only_in_text_are_told_apart_from_wrong_numbers();
    tests::objects_compare_as_maps_with_order_and_duplicates_noted();
    tests::escapes_are_decoded_before_comparing();
}

mod tests {
    use super::*;

    fn diffs(a: &str, b: &str) -> Vec<&'static str> {
        let mut out = Vec::new();
        compare(&parse(a).unwrap(), &parse(b).unwrap(), "$", &mut out);
        out.into_iter().map(|d| d.class).collect()
    }

    pub fn numbers_that_differ_only_in_text_are_told_apart_from_wrong_numbers() {
        assert_eq!(diffs("[1e3]", "[1000]"), vec!["number-text"]);
        assert_eq!(diffs("[1001]", "[1000]"), vec!["value"]);
        assert!(diffs("[1000]", "[1000]").is_empty());
    }

    pub fn objects_compare_as_maps_with_order_and_duplicates_noted() {
        assert_eq!(
            diffs(r#"{"b":1,"a":2}"#, r#"{"a":2,"b":1}"#),
            vec!["key-order"]
        );
        assert_eq!(
            diffs(r#"{"a":1,"a":1}"#, r#"{"a":1}"#),
            vec!["duplicate-key"]
        );
        assert_eq!(diffs(r#"{"a":1}"#, r#"{"a":1,"b":2}"#), vec!["value"]);
    }

    pub fn escapes_are_decoded_before_comparing() {
        assert!(diffs(r#"["<\u0026>"]"#, r#"["\u003c&\u003e"]"#).is_empty());
        assert!(parse("[1,]").is_none());
        assert!(parse("{} x").is_none());
    }
}
