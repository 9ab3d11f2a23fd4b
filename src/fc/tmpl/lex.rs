//! Lexer for Go's `text/template`: text between actions, and the tokens inside `{{ … }}`.
//! Trim markers (`{{- ` and ` -}}`) are applied here, to the neighbouring text.

use super::TmplError;

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Text(String),
    Left,
    Right,
    Ident(String),
    /// `.name` (one segment; `.a.b` is two tokens with no space between).
    Field(String),
    /// `$name`, or `$` alone.
    Var(String),
    Dot,
    Str(String),
    Num(String),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

#[derive(Clone, Debug)]
pub struct Token {
    pub tok: Tok,
    /// Byte offset in the source.
    pub at: u32,
    /// Whitespace came right before this token (separates `(x).y` from `(x) .y`).
    pub space_before: bool,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

pub fn lex(src: &str) -> Result<Vec<Token>, TmplError> {
    let b = src.as_bytes();
    let mut toks: Vec<Token> = Vec::new();
    let mut i = 0usize;
    let mut trim_next_text = false;
    let err = |at: usize, m: String| TmplError::at(at, m);
    while i < b.len() {
        // Text up to the next `{{`.
        let start = i;
        let end = find(b, i, b"{{").unwrap_or(b.len());
        let mut text_start = start;
        if trim_next_text {
            while text_start < end && b.get(text_start).is_some_and(|c| is_space(*c)) {
                text_start += 1;
            }
            trim_next_text = false;
        }
        let mut text_end = end;
        let left_trim = end + 3 < b.len()
            && b.get(end + 2) == Some(&b'-')
            && b.get(end + 3).is_some_and(|c| is_space(*c));
        if left_trim {
            while text_end > text_start && b.get(text_end - 1).is_some_and(|c| is_space(*c)) {
                text_end -= 1;
            }
        }
        if text_end > text_start {
            toks.push(Token {
                tok: Tok::Text(src.get(text_start..text_end).unwrap_or("").to_string()),
                at: text_start as u32,
                space_before: false,
            });
        }
        if end >= b.len() {
            break;
        }
        // An action.
        let action_at = end;
        i = end + 2;
        if left_trim {
            i += 2;
        }
        // Comment: `{{/* … */}}`, optionally trimmed.
        let mut j = i;
        while left_trim && j < b.len() && b.get(j).is_some_and(|c| is_space(*c)) {
            j += 1;
        }
        if b.get(i..i + 2) == Some(b"/*") || (left_trim && b.get(j..j + 2) == Some(b"/*")) {
            let cstart = if b.get(i..i + 2) == Some(b"/*") { i } else { j };
            let Some(cend) = find(b, cstart + 2, b"*/") else {
                return Err(err(action_at, "unclosed comment".into()));
            };
            let mut k = cend + 2;
            if b.get(k).is_some_and(|c| is_space(*c)) && b.get(k + 1..k + 4) == Some(b"-}}") {
                trim_next_text = true;
                k += 4;
            } else if b.get(k..k + 2) == Some(b"}}") {
                k += 2;
            } else {
                return Err(err(cend, "comment ends before closing delimiter".into()));
            }
            i = k;
            continue;
        }
        toks.push(Token {
            tok: Tok::Left,
            at: action_at as u32,
            space_before: false,
        });
        let mut space = false;
        loop {
            let Some(&c) = b.get(i) else {
                return Err(err(action_at, "unclosed action".into()));
            };
            if is_space(c) {
                if b.get(i + 1..i + 4) == Some(b"-}}") {
                    trim_next_text = true;
                    toks.push(Token {
                        tok: Tok::Right,
                        at: i as u32,
                        space_before: true,
                    });
                    i += 4;
                    break;
                }
                if c == b'\n' {
                    // Go 1.16+ allows newlines inside actions; keep going.
                }
                space = true;
                i += 1;
                continue;
            }
            if b.get(i..i + 2) == Some(b"}}") {
                toks.push(Token {
                    tok: Tok::Right,
                    at: i as u32,
                    space_before: space,
                });
                i += 2;
                break;
            }
            let at = i;
            let tok = match c {
                b'(' => {
                    i += 1;
                    Tok::LParen
                }
                b')' => {
                    i += 1;
                    Tok::RParen
                }
                b'|' => {
                    i += 1;
                    Tok::Pipe
                }
                b',' => {
                    i += 1;
                    Tok::Comma
                }
                b'=' => {
                    i += 1;
                    Tok::Assign
                }
                b':' => {
                    if b.get(i + 1) != Some(&b'=') {
                        return Err(err(i, "expected :=".into()));
                    }
                    i += 2;
                    Tok::Declare
                }
                b'"' => {
                    let (s, n) = quoted(src, i)?;
                    i = n;
                    Tok::Str(s)
                }
                b'`' => {
                    let Some(close) = find(b, i + 1, b"`") else {
                        return Err(err(i, "unterminated raw quoted string".into()));
                    };
                    let s = src.get(i + 1..close).unwrap_or("").to_string();
                    i = close + 1;
                    Tok::Str(s)
                }
                b'\'' => {
                    let rest = src.get(i + 1..).unwrap_or("");
                    let mut chars = rest.chars();
                    let ch = chars.next();
                    match (ch, chars.next()) {
                        (Some(ch), Some('\'')) if ch != '\\' => {
                            i += 1 + ch.len_utf8() + 1;
                            Tok::Num((ch as u32).to_string())
                        }
                        _ => return Err(err(i, "unsupported character constant".into())),
                    }
                }
                b'.' if b.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                    let n = number_end(b, i);
                    let s = src.get(i..n).unwrap_or("").to_string();
                    i = n;
                    Tok::Num(s)
                }
                b'.' => {
                    let n = ident_end(b, i + 1);
                    if n == i + 1 {
                        i += 1;
                        Tok::Dot
                    } else {
                        let s = src.get(i + 1..n).unwrap_or("").to_string();
                        i = n;
                        Tok::Field(s)
                    }
                }
                b'$' => {
                    let n = ident_end(b, i + 1);
                    let s = src.get(i..n).unwrap_or("").to_string();
                    i = n;
                    Tok::Var(s)
                }
                b'0'..=b'9' | b'+' | b'-' => {
                    let n = number_end(b, i);
                    if n == i + 1 && !c.is_ascii_digit() {
                        return Err(err(i, format!("unexpected {:?} in action", c as char)));
                    }
                    let s = src.get(i..n).unwrap_or("").to_string();
                    i = n;
                    Tok::Num(s)
                }
                c if c == b'_' || c.is_ascii_alphabetic() || c >= 0x80 => {
                    let n = ident_end(b, i);
                    let s = src.get(i..n).unwrap_or("").to_string();
                    i = n.max(i + 1);
                    Tok::Ident(s)
                }
                _ => {
                    let ch = src.get(i..).and_then(|s| s.chars().next()).unwrap_or('?');
                    return Err(err(i, format!("unexpected {ch:?} in action")));
                }
            };
            toks.push(Token {
                tok,
                at: at as u32,
                space_before: space,
            });
            space = false;
        }
    }
    Ok(toks)
}

fn find(b: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(pat.len())
        .position(|w| w == pat)
        .map(|p| p + from)
}

fn ident_end(b: &[u8], mut i: usize) -> usize {
    while let Some(&c) = b.get(i) {
        if c == b'_' || c.is_ascii_alphanumeric() || c >= 0x80 {
            i += 1;
        } else {
            break;
        }
    }
    i
}

fn number_end(b: &[u8], mut i: usize) -> usize {
    if matches!(b.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    while let Some(&c) = b.get(i) {
        if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' {
            i += 1;
            if matches!(c, b'e' | b'E' | b'p' | b'P') && matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
        } else {
            break;
        }
    }
    i
}

/// A Go interpreted string literal starting at `start` (the opening quote).
fn quoted(src: &str, start: usize) -> Result<(String, usize), TmplError> {
    let mut out = String::new();
    let rest = src.get(start + 1..).unwrap_or("");
    let mut it = rest.char_indices();
    while let Some((k, c)) = it.next() {
        match c {
            '"' => return Ok((out, start + 1 + k + 1)),
            '\n' => break,
            '\\' => {
                let Some((_, e)) = it.next() else { break };
                let simple = match e {
                    'n' => Some('\n'),
                    't' => Some('\t'),
                    'r' => Some('\r'),
                    '\\' => Some('\\'),
                    '"' => Some('"'),
                    '\'' => Some('\''),
                    'a' => Some('\x07'),
                    'b' => Some('\x08'),
                    'f' => Some('\x0c'),
                    'v' => Some('\x0b'),
                    _ => None,
                };
                if let Some(s) = simple {
                    out.push(s);
                    continue;
                }
                let digits = match e {
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    _ => {
                        return Err(TmplError::at(
                            start + 1 + k,
                            format!("unknown escape sequence \\{e}"),
                        ))
                    }
                };
                let mut v = 0u32;
                for _ in 0..digits {
                    let d = it.next().and_then(|(_, d)| d.to_digit(16));
                    let Some(d) = d else {
                        return Err(TmplError::at(start + 1 + k, "bad escape".into()));
                    };
                    v = v * 16 + d;
                }
                match char::from_u32(v) {
                    Some(ch) => out.push(ch),
                    None => return Err(TmplError::at(start + 1 + k, "bad escape".into())),
                }
            }
            c => out.push(c),
        }
    }
    Err(TmplError::at(start, "unterminated quoted string".into()))
}
