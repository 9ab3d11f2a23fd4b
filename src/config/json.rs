//! A strict (RFC 8259) JSON parser that keeps the position of every value and object key.
//!
//! serde_json can only report positions of syntax errors; the loader also needs the position of
//! values that are well-formed but semantically wrong (`"timeout": "2 seconds"`), so the file is
//! parsed into this spanned tree first and typed afterwards. Number text is kept verbatim.

/// 1-based line and column (the column counts characters, not bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// A JSON value and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned {
    pub pos: Pos,
    pub value: Value,
}

/// One `"key": value` pair of an object, with the key's own position.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub key: String,
    pub key_pos: Pos,
    pub value: Spanned,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// The number exactly as written in the file.
    Number(String),
    String(String),
    Array(Vec<Spanned>),
    /// Members in file order; duplicate keys are already resolved (the last one wins).
    Object(Vec<Member>),
}

/// A problem found while parsing: a syntax error (fatal) or a duplicate key (warning).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseIssue {
    pub pos: Pos,
    /// JSON path of the value concerned (`$` for the root).
    pub path: String,
    pub message: String,
}

/// The parsed document plus the duplicate-key warnings found on the way.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub root: Spanned,
    pub duplicates: Vec<ParseIssue>,
}

/// Nesting deeper than this is refused so a hostile file cannot exhaust the stack.
pub const MAX_DEPTH: usize = 128;

/// Parse a whole document. A syntax error stops the parse and is returned alone.
pub fn parse(text: &str) -> Result<Parsed, ParseIssue> {
    let mut p = Parser {
        bytes: text.as_bytes(),
        at: 0,
        line: 1,
        col: 1,
        path: vec!["$".to_string()],
        duplicates: Vec::new(),
    };
    p.skip_ws();
    if p.bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        // KrakenD: Go's encoding/json rejects a byte-order mark too.
        return Err(p.issue("a byte-order mark is not allowed in JSON".to_string()));
    }
    let root = p.value(0)?;
    p.skip_ws();
    if p.at < p.bytes.len() {
        return Err(p.issue(format!(
            "unexpected {} after the top-level value",
            p.describe_here()
        )));
    }
    Ok(Parsed {
        root,
        duplicates: p.duplicates,
    })
}

impl Value {
    /// A short name of the JSON type, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }
}

impl Spanned {
    /// The member `key` of an object (None for other types or a missing key).
    pub fn get(&self, key: &str) -> Option<&Member> {
        match &self.value {
            Value::Object(members) => members.iter().find(|m| m.key == key),
            _ => None,
        }
    }

    /// Convert to a `serde_json::Value` (for `extra_config`). Integers that fit become
    /// i64/u64, every other number f64 (no arbitrary precision).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(raw) => number_to_json(raw),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(Spanned::to_json).collect())
            }
            Value::Object(members) => {
                let mut map = serde_json::Map::with_capacity(members.len());
                for m in members {
                    map.insert(m.key.clone(), m.value.to_json());
                }
                serde_json::Value::Object(map)
            }
        }
    }
}

/// Number text (already validated by the parser) -> serde_json number.
pub fn number_to_json(raw: &str) -> serde_json::Value {
    let is_integer = !raw.contains(['.', 'e', 'E']);
    if is_integer {
        if let Ok(i) = raw.parse::<i64>() {
            return serde_json::Value::from(i);
        }
        if let Ok(u) = raw.parse::<u64>() {
            return serde_json::Value::from(u);
        }
    }
    raw.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(serde_json::Value::Null, serde_json::Value::Number)
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
    line: u32,
    col: u32,
    /// Path segments of the value being parsed, for duplicate-key warnings.
    path: Vec<String>,
    duplicates: Vec<ParseIssue>,
}

impl Parser<'_> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }

    fn path_string(&self) -> String {
        self.path.concat()
    }

    fn issue(&self, message: String) -> ParseIssue {
        self.issue_at(self.pos(), message)
    }

    fn issue_at(&self, pos: Pos, message: String) -> ParseIssue {
        ParseIssue {
            pos,
            path: self.path_string(),
            message,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Advance one byte, keeping line/col in characters: UTF-8 continuation bytes don't count.
    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        if b == b'\n' {
            self.line += 1;
            self.col = 1;
        } else if b & 0xC0 != 0x80 {
            self.col += 1;
        }
        Some(b)
    }

    fn describe_here(&self) -> String {
        match self.peek() {
            None => "end of file".to_string(),
            Some(_) => {
                let rest = self.bytes.get(self.at..).unwrap_or_default();
                let ch = String::from_utf8_lossy(rest).chars().next().unwrap_or('?');
                format!("character {ch:?}")
            }
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.bump();
        }
    }

    fn expect_literal(&mut self, word: &str, value: Value) -> Result<Spanned, ParseIssue> {
        let pos = self.pos();
        for expected in word.bytes() {
            if self.peek() != Some(expected) {
                return Err(self.issue(format!(
                    "invalid literal: expected {word:?}, found {}",
                    self.describe_here()
                )));
            }
            self.bump();
        }
        Ok(Spanned { pos, value })
    }

    fn value(&mut self, depth: usize) -> Result<Spanned, ParseIssue> {
        if depth >= MAX_DEPTH {
            return Err(self.issue(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => {
                let pos = self.pos();
                let s = self.string()?;
                Ok(Spanned {
                    pos,
                    value: Value::String(s),
                })
            }
            Some(b't') => self.expect_literal("true", Value::Bool(true)),
            Some(b'f') => self.expect_literal("false", Value::Bool(false)),
            Some(b'n') => self.expect_literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.issue(format!("expected a value, found {}", self.describe_here()))),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Spanned, ParseIssue> {
        let pos = self.pos();
        self.bump();
        let mut members: Vec<Member> = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.bump();
            return Ok(Spanned {
                pos,
                value: Value::Object(members),
            });
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.issue(format!(
                    "expected a string object key, found {}",
                    self.describe_here()
                )));
            }
            let key_pos = self.pos();
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.issue(format!(
                    "expected ':' after object key, found {}",
                    self.describe_here()
                )));
            }
            self.bump();
            self.skip_ws();
            self.path.push(key_segment(&key));
            let value = self.value(depth + 1)?;
            if let Some(prev) = members.iter_mut().find(|m| m.key == key) {
                // KrakenD: Go's encoding/json keeps the last of duplicate keys.
                self.duplicates.push(self.issue_at(
                    key_pos,
                    format!(
                        "duplicate key {key:?} (first at {}:{}); the last one wins",
                        prev.key_pos.line, prev.key_pos.col
                    ),
                ));
                prev.key_pos = key_pos;
                prev.value = value;
            } else {
                members.push(Member {
                    key,
                    key_pos,
                    value,
                });
            }
            self.path.pop();
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.bump();
                }
                Some(b'}') => {
                    self.bump();
                    break;
                }
                _ => {
                    return Err(self.issue(format!(
                        "expected ',' or '}}' in object, found {}",
                        self.describe_here()
                    )))
                }
            }
        }
        Ok(Spanned {
            pos,
            value: Value::Object(members),
        })
    }

    fn array(&mut self, depth: usize) -> Result<Spanned, ParseIssue> {
        let pos = self.pos();
        self.bump();
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.bump();
            return Ok(Spanned {
                pos,
                value: Value::Array(items),
            });
        }
        loop {
            self.skip_ws();
            self.path.push(format!("[{}]", items.len()));
            items.push(self.value(depth + 1)?);
            self.path.pop();
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.bump();
                }
                Some(b']') => {
                    self.bump();
                    break;
                }
                _ => {
                    return Err(self.issue(format!(
                        "expected ',' or ']' in array, found {}",
                        self.describe_here()
                    )))
                }
            }
        }
        Ok(Spanned {
            pos,
            value: Value::Array(items),
        })
    }

    fn number(&mut self) -> Result<Spanned, ParseIssue> {
        let pos = self.pos();
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.bump();
        }
        match self.peek() {
            Some(b'0') => {
                self.bump();
                if matches!(self.peek(), Some(b'0'..=b'9')) {
                    return Err(self.issue("leading zeros are not allowed in numbers".to_string()));
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => {
                return Err(self.issue(format!("expected a digit, found {}", self.describe_here())))
            }
        }
        if self.peek() == Some(b'.') {
            self.bump();
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.issue(format!(
                    "expected a digit after '.', found {}",
                    self.describe_here()
                )));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.bump();
            if let Some(b'+' | b'-') = self.peek() {
                self.bump();
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.issue(format!(
                    "expected a digit in the exponent, found {}",
                    self.describe_here()
                )));
            }
            self.digits();
        }
        let raw = self
            .bytes
            .get(start..self.at)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        // KrakenD: Go refuses numbers that overflow float64 ("cannot unmarshal number").
        if raw.parse::<f64>().map_or(true, |f| !f.is_finite()) {
            return Err(self.issue_at(pos, format!("number {raw} is out of range")));
        }
        Ok(Spanned {
            pos,
            value: Value::Number(raw),
        })
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.bump();
        }
    }

    /// Parse a string starting at the opening quote.
    fn string(&mut self) -> Result<String, ParseIssue> {
        let start_pos = self.pos();
        self.bump();
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.issue_at(start_pos, "unterminated string".to_string()));
            };
            match b {
                b'"' => {
                    self.bump();
                    break;
                }
                b'\\' => {
                    self.bump();
                    self.escape(&mut out)?;
                }
                0x00..=0x1F => {
                    return Err(self.issue(format!(
                        "control character U+{b:04X} must be escaped in a string"
                    )))
                }
                _ => {
                    out.push(b);
                    self.bump();
                }
            }
        }
        // The input is a &str, so the raw bytes copied are valid UTF-8 and escapes push chars.
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), ParseIssue> {
        let simple = match self.peek() {
            Some(b'"') => Some(b'"'),
            Some(b'\\') => Some(b'\\'),
            Some(b'/') => Some(b'/'),
            Some(b'b') => Some(0x08),
            Some(b'f') => Some(0x0C),
            Some(b'n') => Some(b'\n'),
            Some(b'r') => Some(b'\r'),
            Some(b't') => Some(b'\t'),
            Some(b'u') => None,
            _ => {
                return Err(self.issue(format!("invalid escape sequence: {}", self.describe_here())))
            }
        };
        self.bump();
        if let Some(byte) = simple {
            out.push(byte);
            return Ok(());
        }
        let first = self.hex4()?;
        let ch = if (0xD800..0xDC00).contains(&first) {
            // A high surrogate must be followed by `\u` + a low surrogate.
            let rest = self.bytes.get(self.at..).unwrap_or_default();
            if rest.starts_with(b"\\u") {
                let save = (self.at, self.line, self.col);
                self.bump();
                self.bump();
                let second = self.hex4()?;
                if (0xDC00..0xE000).contains(&second) {
                    char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
                } else {
                    // Not a pair: rewind so the second escape is decoded on its own.
                    (self.at, self.line, self.col) = save;
                    None
                }
            } else {
                None
            }
        } else {
            char::from_u32(first)
        };
        // KrakenD: Go replaces an unpaired surrogate with U+FFFD instead of failing.
        let ch = ch.unwrap_or('\u{FFFD}');
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, ParseIssue> {
        let mut v = 0u32;
        for _ in 0..4 {
            let digit = self.peek().and_then(|b| char::from(b).to_digit(16));
            let Some(d) = digit else {
                return Err(self.issue(format!(
                    "invalid \\u escape: expected a hex digit, found {}",
                    self.describe_here()
                )));
            };
            v = v * 16 + d;
            self.bump();
        }
        Ok(v)
    }
}

/// The path segment for an object key: `.name` for plain keys, `["odd key"]` otherwise.
pub fn key_segment(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        format!(".{key}")
    } else {
        format!("[{key:?}]")
    }
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
