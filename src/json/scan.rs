//! A validating JSON scanner over raw bytes: walks the members of an object and skips values
//! without building anything, rejecting every input `encoding/json` would reject (plus invalid
//! UTF-8, which we refuse rather than pass through). It replaces sonic-rs' generic checked skip
//! on the shaping hot path: most of a body is dropped members, so skipping them is the cost.
//!
//! Strings are scanned eight bytes at a time (SWAR): one word test finds the next quote,
//! backslash, control character or non-ASCII byte, and only those stop the fast loop. Nesting
//! is tracked with a bit stack (object or array per level), capped at [`MAX_DEPTH`], so a depth
//! bomb is an error instead of a stack overflow or an unbounded allocation.

use std::ops::Range;

/// KrakenD: Go's `encoding/json` scanner refuses nesting deeper than 10000.
pub(crate) const MAX_DEPTH: usize = 10_000;

/// Why the text is not valid JSON, and where (byte offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ScanError {
    pub(crate) what: &'static str,
    pub(crate) at: usize,
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

type Result<T> = std::result::Result<T, ScanError>;

fn err<T>(what: &'static str, at: usize) -> Result<T> {
    Err(ScanError { what, at })
}

/// One object member: the key's text between its quotes (escapes kept), whether it has escapes,
/// and the value's raw text. Ranges index the scanned buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) key: Range<usize>,
    pub(crate) key_escaped: bool,
    pub(crate) value: Range<usize>,
}

/// Iterates the members of the object that starts at the first non-whitespace byte of `buf`.
/// Every member is fully validated, kept or not. The first error ends the iteration.
// KrakenD: lura decodes with `json.NewDecoder(r).Decode`, which reads one value and never looks
// at what follows it, so bytes after the closing brace are ignored, not an error.
pub(crate) struct Members<'a> {
    buf: &'a [u8],
    pos: usize,
    state: State,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Next,
    Done,
}

impl<'a> Members<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Members {
            buf,
            pos: 0,
            state: State::Start,
        }
    }

    fn step(&mut self) -> Result<Option<Member>> {
        let buf = self.buf;
        let mut i = skip_ws(buf, self.pos);
        match self.state {
            State::Done => return Ok(None),
            State::Start => {
                if buf.get(i) != Some(&b'{') {
                    return err("expected an object", i);
                }
                i = skip_ws(buf, i + 1);
                if buf.get(i) == Some(&b'}') {
                    return self.finish(i + 1);
                }
            }
            State::Next => match buf.get(i) {
                Some(b',') => i = skip_ws(buf, i + 1),
                Some(b'}') => return self.finish(i + 1),
                Some(_) => return err("expected ',' or '}' after an object member", i),
                None => return err("unterminated object", i),
            },
        }
        if buf.get(i) != Some(&b'"') {
            return err("expected a string key", i);
        }
        let key_start = i + 1;
        let (key_end, key_escaped) = string_end(buf, key_start)?;
        i = skip_ws(buf, key_end);
        if buf.get(i) != Some(&b':') {
            return err("expected ':' after an object key", i);
        }
        let value_start = skip_ws(buf, i + 1);
        // The object itself is one level.
        let value_end = skip_value(buf, value_start, 1)?;
        self.pos = value_end;
        self.state = State::Next;
        Ok(Some(Member {
            key: key_start..key_end.saturating_sub(1),
            key_escaped,
            value: value_start..value_end,
        }))
    }

    fn finish(&mut self, after: usize) -> Result<Option<Member>> {
        self.state = State::Done;
        self.pos = after;
        Ok(None)
    }
}

impl Iterator for Members<'_> {
    type Item = Result<Member>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(Some(m)) => Some(Ok(m)),
            Ok(None) => None,
            Err(e) => {
                self.state = State::Done;
                Some(Err(e))
            }
        }
    }
}

/// Iterates the elements of the array that starts at the first non-whitespace byte of `buf`,
/// as ranges; every element is validated. No recursion, so a hostile nesting depth costs no
/// stack (sonic-rs's iterators skip recursively).
pub(crate) struct Elements<'a> {
    buf: &'a [u8],
    pos: usize,
    state: State,
}

impl<'a> Elements<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Elements {
            buf,
            pos: 0,
            state: State::Start,
        }
    }

    fn step(&mut self) -> Result<Option<Range<usize>>> {
        let buf = self.buf;
        let mut i = skip_ws(buf, self.pos);
        match self.state {
            State::Done => return Ok(None),
            State::Start => {
                if buf.get(i) != Some(&b'[') {
                    return err("expected an array", i);
                }
                i = skip_ws(buf, i + 1);
                if buf.get(i) == Some(&b']') {
                    self.state = State::Done;
                    return Ok(None);
                }
            }
            State::Next => match buf.get(i) {
                Some(b',') => i = skip_ws(buf, i + 1),
                Some(b']') => {
                    self.state = State::Done;
                    return Ok(None);
                }
                Some(_) => return err("expected ',' or ']' after an array element", i),
                None => return err("unterminated array", i),
            },
        }
        let end = skip_value(buf, i, 1)?;
        self.pos = end;
        self.state = State::Next;
        Ok(Some(i..end))
    }
}

impl Iterator for Elements<'_> {
    type Item = Result<Range<usize>>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => None,
            Err(e) => {
                self.state = State::Done;
                Some(Err(e))
            }
        }
    }
}

/// Validate the JSON value at the start of `buf` (after whitespace) and return its range.
// KrakenD: like `json.Decoder.Decode`, whatever follows the first value is ignored.
pub(crate) fn validate(buf: &[u8]) -> Result<Range<usize>> {
    let start = skip_ws(buf, 0);
    let end = skip_value(buf, start, 0)?;
    Ok(start..end)
}

#[inline(always)]
fn skip_ws(buf: &[u8], mut i: usize) -> usize {
    while let Some(&b) = buf.get(i) {
        // Compact JSON has no whitespace here: one comparison settles the usual case (every
        // whitespace byte is <= b' ').
        if b > b' ' || !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            break;
        }
        i += 1;
    }
    i
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `w` that needs a look inside a string: `"`, `\`, a control
/// character or a non-ASCII byte. Only the lowest set bit is exact (a borrow can mark bytes above
/// a true match), which is all the caller uses.
#[inline]
fn string_specials(w: u64) -> u64 {
    let quote = w ^ (LO * u64::from(b'"'));
    let slash = w ^ (LO * u64::from(b'\\'));
    let zero_quote = quote.wrapping_sub(LO) & !quote;
    let zero_slash = slash.wrapping_sub(LO) & !slash;
    let control = w.wrapping_sub(LO * 0x20) & !w;
    (zero_quote | zero_slash | control | w) & HI
}

/// One bit per byte of `block` that needs a look inside a string (as [`string_specials`]):
/// `"`, `\`, a control character or a non-ASCII byte. SSE2 is part of x86-64 itself.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn specials16(block: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: SSE2 is always available on x86_64; the unaligned load reads exactly the 16
    // bytes `block` refers to.
    unsafe {
        let v = _mm_loadu_si128(block.as_ptr().cast());
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let slash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        // Signed: bytes >= 0x80 are negative, so one compare finds controls and non-ASCII.
        let low = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, slash), low)) as u32
    }
}

/// Portable [`specials16`]: two words through [`string_specials`].
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn specials16(block: &[u8; 16]) -> u32 {
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(block.get(..8).unwrap_or(&[0; 8]));
    hi.copy_from_slice(block.get(8..).unwrap_or(&[0; 8]));
    let bits = |w: u64| {
        let s = string_specials(w);
        // Only the lowest flagged byte is exact; that is all the caller uses.
        if s == 0 {
            0
        } else {
            1u32 << (s.trailing_zeros() / 8)
        }
    };
    let l = bits(u64::from_le_bytes(lo));
    if l != 0 {
        l
    } else {
        bits(u64::from_le_bytes(hi)) << 8
    }
}

/// `start` is just after an opening quote. Returns the index just after the closing quote and
/// whether the string has escapes.
#[inline(always)]
fn string_end(buf: &[u8], start: usize) -> Result<(usize, bool)> {
    let mut i = start;
    let mut escaped = false;
    loop {
        i = next_special(buf, i);
        match buf.get(i) {
            None => return err("unterminated string", start.saturating_sub(1)),
            Some(b'"') => return Ok((i + 1, escaped)),
            Some(b'\\') => {
                escaped = true;
                i = escape_end(buf, i)?;
            }
            Some(&b) if b < 0x20 => return err("control character in a string", i),
            Some(&b) if b >= 0x80 => i = utf8_end(buf, i)?,
            Some(_) => i += 1,
        }
    }
}

/// The index of the first byte at or after `i` that needs a look inside a string (or the end
/// of `buf`): sixteen bytes at a time (most keys and values end in the first block), then
/// eight, then one near the end of the buffer.
#[inline(always)]
fn next_special(buf: &[u8], mut i: usize) -> usize {
    while let Some(block) = buf
        .get(i..i + 16)
        .and_then(|b| <&[u8; 16]>::try_from(b).ok())
    {
        let special = specials16(block);
        if special != 0 {
            return i + special.trailing_zeros() as usize;
        }
        i += 16;
    }
    while let Some(chunk) = buf.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let special = string_specials(u64::from_le_bytes(word));
        if special != 0 {
            return i + (special.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i
}

/// `i` is at a backslash; returns the index after the escape sequence.
#[inline]
fn escape_end(buf: &[u8], i: usize) -> Result<usize> {
    match buf.get(i + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 2),
        // KrakenD: Go accepts any four hex digits here, lone surrogates included (it decodes
        // them to U+FFFD), so only the digits are checked.
        Some(b'u') => match buf.get(i + 2..i + 6) {
            Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => Ok(i + 6),
            _ => err("invalid \\u escape", i),
        },
        _ => err("invalid escape", i),
    }
}

/// `i` is at a non-ASCII byte; returns the index after its UTF-8 sequence if it is valid.
#[inline]
fn utf8_end(buf: &[u8], i: usize) -> Result<usize> {
    let width = match buf.get(i) {
        Some(0xC2..=0xDF) => 2,
        Some(0xE0..=0xEF) => 3,
        Some(0xF0..=0xF4) => 4,
        _ => return err("invalid UTF-8", i),
    };
    // std's check rejects overlong forms, surrogates and values past U+10FFFF.
    match buf.get(i..i + width).map(std::str::from_utf8) {
        Some(Ok(_)) => Ok(i + width),
        _ => err("invalid UTF-8", i),
    }
}

/// `i` is at a `-` or digit. Go's grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
/// The byte after the number is checked by the caller (it must be a delimiter).
#[inline]
fn number_end(buf: &[u8], start: usize) -> Result<usize> {
    let digits = |i: usize| digits_end(buf, i);
    let mut i = start;
    if buf.get(i) == Some(&b'-') {
        i += 1;
    }
    match buf.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(i + 1),
        _ => return err("invalid number", start),
    }
    if buf.get(i) == Some(&b'.') {
        let after = digits(i + 1);
        if after == i + 1 {
            return err("invalid number", start);
        }
        i = after;
    }
    if let Some(b'e' | b'E') = buf.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = buf.get(i) {
            i += 1;
        }
        let after = digits(i);
        if after == i {
            return err("invalid number", start);
        }
        i = after;
    }
    Ok(i)
}

/// The index of the first non-digit at or after `i`, eight bytes at a time.
#[inline]
fn digits_end(buf: &[u8], mut i: usize) -> usize {
    const NIBBLE: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    while let Some(chunk) = buf.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // A digit is 0x30..=0x39: high nibble 3, and still 3 after adding 6. The add can carry
        // into the next byte only out of a byte >= 0xFA, which is itself a non-digit, so the
        // lowest mismatching byte is exact.
        let high = (w & NIBBLE) ^ (LO * 0x30);
        let plus6 = (w.wrapping_add(LO * 0x06) & NIBBLE) ^ (LO * 0x30);
        let bad = high | plus6;
        if bad != 0 {
            return i + (bad.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while buf.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// Object-or-array per nesting level: the first 64 levels in a register, deeper ones spill
/// into a vector that only depth bombs and very deep documents ever allocate. The innermost kind
/// is cached because it is read after every value.
struct Nesting {
    depth: usize,
    base: usize,
    top_object: bool,
    low: u64,
    high: Vec<u64>,
}

impl Nesting {
    fn new(base: usize) -> Self {
        Nesting {
            depth: base,
            base,
            top_object: false,
            low: 0,
            high: Vec::new(),
        }
    }

    /// Levels opened by this skip (the stack index of the innermost one is `open() - 1`).
    #[inline]
    fn open(&self) -> usize {
        self.depth - self.base
    }

    #[inline]
    fn push(&mut self, object: bool, at: usize) -> Result<()> {
        if self.depth >= MAX_DEPTH {
            return err("nesting too deep", at);
        }
        let d = self.open();
        self.depth += 1;
        self.top_object = object;
        if d < 64 {
            let bit = 1u64 << d;
            self.low = if object {
                self.low | bit
            } else {
                self.low & !bit
            };
        } else {
            let (word, bit) = ((d - 64) / 64, 1u64 << ((d - 64) % 64));
            if self.high.len() <= word {
                self.high.resize(word + 1, 0);
            }
            if let Some(w) = self.high.get_mut(word) {
                *w = if object { *w | bit } else { *w & !bit };
            }
        }
        Ok(())
    }

    /// Close the innermost level and reload the kind of the one around it.
    #[inline]
    fn pop(&mut self) {
        self.depth -= 1;
        let Some(d) = self.open().checked_sub(1) else {
            self.top_object = false;
            return;
        };
        self.top_object = if d < 64 {
            self.low & (1u64 << d) != 0
        } else {
            let (word, bit) = ((d - 64) / 64, 1u64 << ((d - 64) % 64));
            self.high.get(word).is_some_and(|w| w & bit != 0)
        };
    }
}

/// Skip the value at `i` (no leading whitespace) and return the index just after it. `base` is
/// the nesting depth the value sits at, for the depth cap.
///
/// Most member values are scalars: they are skipped here, inline, without the container
/// machinery (measured with callgrind: a third of the per-member cost on flat bodies).
#[inline]
pub(crate) fn skip_value(buf: &[u8], i: usize, base: usize) -> Result<usize> {
    match buf.get(i) {
        Some(b'"') => Ok(string_end(buf, i + 1)?.0),
        Some(b'-' | b'0'..=b'9') => number_end(buf, i),
        Some(b't') => literal(buf, i, b"true"),
        Some(b'f') => literal(buf, i, b"false"),
        Some(b'n') => literal(buf, i, b"null"),
        _ => skip_nested(buf, i, base),
    }
}

/// [`skip_value`] for containers (and for errors): a loop with an explicit nesting stack.
#[inline(never)]
fn skip_nested(buf: &[u8], mut i: usize, base: usize) -> Result<usize> {
    let mut nest = Nesting::new(base);
    loop {
        // A value starts at `i`.
        match buf.get(i) {
            Some(b'"') => i = string_end(buf, i + 1)?.0,
            Some(b'{') => {
                nest.push(true, i)?;
                i = skip_ws(buf, i + 1);
                match buf.get(i) {
                    Some(b'}') => {
                        nest.pop();
                        i += 1;
                    }
                    _ => {
                        i = key_colon(buf, i)?;
                        continue;
                    }
                }
            }
            Some(b'[') => {
                nest.push(false, i)?;
                i = skip_ws(buf, i + 1);
                match buf.get(i) {
                    Some(b']') => {
                        nest.pop();
                        i += 1;
                    }
                    _ => continue,
                }
            }
            Some(b't') => i = literal(buf, i, b"true")?,
            Some(b'f') => i = literal(buf, i, b"false")?,
            Some(b'n') => i = literal(buf, i, b"null")?,
            Some(b'-' | b'0'..=b'9') => i = number_end(buf, i)?,
            Some(_) => return err("expected a value", i),
            None => return err("unexpected end of input", i),
        }
        // After a value: close containers until one continues with a comma.
        loop {
            if nest.depth == base {
                return Ok(i);
            }
            i = skip_ws(buf, i);
            match (buf.get(i), nest.top_object) {
                (Some(b','), true) => {
                    i = key_colon(buf, skip_ws(buf, i + 1))?;
                    break;
                }
                (Some(b','), false) => {
                    i = skip_ws(buf, i + 1);
                    break;
                }
                (Some(b'}'), true) | (Some(b']'), false) => {
                    nest.pop();
                    i += 1;
                }
                (None, _) => return err("unexpected end of input", i),
                (Some(_), true) => return err("expected ',' or '}' in an object", i),
                (Some(_), false) => return err("expected ',' or ']' in an array", i),
            }
        }
    }
}

/// `i` is where a member key should start; returns the start of its value (after `"key" :`).
#[inline(always)]
fn key_colon(buf: &[u8], i: usize) -> Result<usize> {
    if buf.get(i) != Some(&b'"') {
        return err("expected a string key", i);
    }
    let end = string_end(buf, i + 1)?.0;
    let colon = skip_ws(buf, end);
    if buf.get(colon) != Some(&b':') {
        return err("expected ':' after an object key", colon);
    }
    Ok(skip_ws(buf, colon + 1))
}

#[inline]
fn literal(buf: &[u8], i: usize, word: &[u8]) -> Result<usize> {
    if buf.get(i..i + word.len()) == Some(word) {
        Ok(i + word.len())
    } else {
        err("invalid literal", i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(s: &str) -> Result<Vec<(String, String)>> {
        Members::new(s.as_bytes())
            .map(|m| {
                let m = m?;
                let text = |r: Range<usize>| s.get(r).unwrap_or("<bad range>").to_owned();
                Ok((text(m.key), text(m.value)))
            })
            .collect()
    }

    fn ok(s: &str) -> bool {
        validate(s.as_bytes()).is_ok()
    }

    #[test]
    fn members_come_out_as_raw_key_and_value_text() {
        let got = members(r#" { "a" : 1.5e-3 , "b\"c":{"x":[1,{"y":null}]}, "d":"\u00e9" } "#);
        assert_eq!(
            got,
            Ok(vec![
                ("a".into(), "1.5e-3".into()),
                (r#"b\"c"#.into(), r#"{"x":[1,{"y":null}]}"#.into()),
                ("d".into(), r#""\u00e9""#.into()),
            ])
        );
    }

    #[test]
    fn escaped_keys_are_flagged() {
        let flags: Vec<bool> = Members::new(br#"{"plain":1,"e\u0073c":2}"#)
            .filter_map(|m| m.ok().map(|m| m.key_escaped))
            .collect();
        assert_eq!(flags, vec![false, true]);
    }

    #[test]
    fn bytes_after_the_first_value_are_ignored_like_go_decoder() {
        assert_eq!(members(r#"{"a":1} x"#), Ok(vec![("a".into(), "1".into())]));
        assert_eq!(members(r#"{"a":1}}"#), Ok(vec![("a".into(), "1".into())]));
        assert_eq!(validate(b" [1] ]"), Ok(1..4));
        assert_eq!(validate(b"123abc"), Ok(0..3));
        assert_eq!(validate(b"null x"), Ok(0..4));
    }

    #[test]
    fn empty_object_has_no_members() {
        assert_eq!(members(" {\n} "), Ok(vec![]));
    }

    #[test]
    fn valid_edge_cases_are_accepted() {
        for s in [
            "0",
            "-0",
            "-0.0e+0",
            "1E9",
            "12345678901234567890123",
            r#""""#,
            r#""\"\\\/\b\f\n\r\t\u00E9\uD83D\uDE00""#,
            // Go decodes a lone surrogate to U+FFFD instead of failing.
            r#""\ud800""#,
            "\"é 日本 😀\"",
            "[]",
            "{}",
            " [ [ ] , { } , [ { \"a\" : [ ] } ] ] ",
            "true",
            "false",
            "null",
            r#"{"a":{"b":{"c":[true,false,null,"x\"]}"]}}}"#,
            // Long strings cross the eight-byte fast path at every offset.
            r#"{"abcdefghijklmnopqrstuvwxyz":"0123456789abcdef\"0123456789"}"#,
        ] {
            assert!(ok(s), "{s:?} should be valid");
        }
    }

    #[test]
    fn invalid_strings_are_rejected() {
        for s in [
            r#""abc"#,
            r#""abc\"#,
            r#""a\x""#,
            r#""\u12G4""#,
            r#""\u12""#,
            "\"a\u{1}b\"",
            "\"tab\there\"",
            "\"new\nline\"",
            "'single'",
        ] {
            assert!(!ok(s), "{s:?} should be invalid");
        }
    }

    #[test]
    fn invalid_utf8_in_strings_is_rejected() {
        for s in [
            &b"\"\xff\""[..],
            b"\"\xc3\"",
            b"\"\xc0\xaf\"",
            b"\"\xed\xa0\x80\"",
            b"\"abcdefgh\xe9xyz\"",
            b"\"\xf5\x80\x80\x80\"",
        ] {
            assert!(validate(s).is_err(), "{s:?} should be invalid");
        }
    }

    #[test]
    fn invalid_numbers_are_rejected() {
        for s in [
            "01", "-", "+1", "1.", ".5", "1e", "1e+", "0x10", "1.2.3", "--1", "1_000", "NaN",
            "Infinity", "- 1",
        ] {
            // Inside a container the byte after a number must be a delimiter.
            assert!(!ok(&format!(r#"{{"a":{s}}}"#)), "{s:?} in an object");
            assert!(!ok(&format!("[{s}]")), "{s:?} in an array");
        }
    }

    #[test]
    fn invalid_structure_is_rejected() {
        for s in [
            "[1,]",
            r#"{"a":1,}"#,
            "[1}",
            r#"{"a":1]"#,
            "[[1]",
            r#"{"a":[1}"#,
            r#"{"a"}"#,
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            r#"{1:1}"#,
            "[1 2]",
            r#"{"a":1 "b":2}"#,
            "[,]",
            "[,1]",
            "tru",
            "nul",
            "True",
            "",
            "   ",
            "]",
            "}",
        ] {
            assert!(!ok(s), "{s:?} should be invalid");
        }
    }

    #[test]
    fn dropped_members_are_validated_too() {
        for s in [
            r#"{"a":1,"b":[1,}"#,
            r#"{"a":1,"b":tru}"#,
            r#"{"a":1,"b":"x"#,
            r#"{"a":1,"b":01}"#,
            r#"{"a":1"#,
            r#"{"a":1,"#,
            r#"[1]"#,
        ] {
            assert!(members(s).is_err(), "{s:?} should be invalid");
        }
    }

    #[test]
    fn nesting_is_capped_at_go_depth() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(ok(&deep(MAX_DEPTH)));
        assert!(!ok(&deep(MAX_DEPTH + 1)));
        // Mixed objects and arrays past the register-held levels keep their kind.
        let mixed = |n: usize| {
            let open: String = (0..n)
                .map(|i| if i % 3 == 0 { r#"{"k":"# } else { "[" })
                .collect();
            let close: String = (0..n)
                .rev()
                .map(|i| if i % 3 == 0 { "}" } else { "]" })
                .collect();
            format!("{open}1{close}")
        };
        assert!(ok(&mixed(500)));
        let mut wrong = mixed(500);
        // Swap the innermost closer for the other kind.
        if let Some(p) = wrong.find(['}', ']']) {
            let other = if wrong.get(p..=p) == Some("}") {
                "]"
            } else {
                "}"
            };
            wrong.replace_range(p..=p, other);
        }
        assert!(!ok(&wrong));
        let bomb = "[".repeat(1_000_000);
        assert!(!ok(&bomb));
    }

    #[test]
    fn member_values_count_the_object_as_one_level() {
        let n = MAX_DEPTH - 1;
        let fits = format!(r#"{{"a":{}{}}}"#, "[".repeat(n), "]".repeat(n));
        assert!(members(&fits).is_ok());
        let n = MAX_DEPTH;
        let over = format!(r#"{{"a":{}{}}}"#, "[".repeat(n), "]".repeat(n));
        assert!(members(&over).is_err());
    }

    #[test]
    fn digit_runs_end_at_the_first_non_digit_at_every_offset() {
        for len in 0..20 {
            for stop in [b'.', b'e', b',', b'/', b':', 0xFF, b' '] {
                let mut s = vec![b'7'; len];
                s.push(stop);
                s.extend_from_slice(b"12345678");
                assert_eq!(digits_end(&s, 0), len, "{len} digits then {stop:#x}");
            }
            assert_eq!(digits_end(&vec![b'0'; len], 0), len);
        }
    }

    #[test]
    fn block_scans_find_the_first_special_byte_at_every_offset() {
        // Offsets across two 16-byte blocks, then the 8-byte words and bytes near the end (the
        // last few offsets would turn the closing quote into part of the test's own edit).
        for pos in 0..40 {
            // `"` + 44 x 'x' + `"`: the string body is bytes 1..45.
            let mut s = vec![b'"'];
            s.extend_from_slice(&[b'x'; 44]);
            s.push(b'"');
            assert_eq!(string_end(&s, 1), Ok((46, false)));
            let mut utf8 = s.clone();
            if let Some(b) = utf8.get_mut(pos + 1..pos + 3) {
                b.copy_from_slice("é".as_bytes());
            }
            assert_eq!(string_end(&utf8, 1), Ok((46, false)), "é at {pos}");
            if let Some(b) = utf8.get_mut(pos + 1) {
                *b = 0xFF;
            }
            assert_eq!(
                string_end(&utf8, 1).map_err(|e| (e.what, e.at)),
                Err(("invalid UTF-8", pos + 1))
            );
            let mut quote = s.clone();
            if let Some(b) = quote.get_mut(pos + 1) {
                *b = b'"';
            }
            assert_eq!(
                string_end(&quote, 1),
                Ok((pos + 2, false)),
                "quote at {pos}"
            );
            let mut control = s.clone();
            if let Some(b) = control.get_mut(pos + 1) {
                *b = 0x1f;
            }
            assert_eq!(
                string_end(&control, 1).map_err(|e| (e.what, e.at)),
                Err(("control character in a string", pos + 1))
            );
            let mut escape = s.clone();
            if let Some(b) = escape.get_mut(pos + 1) {
                *b = b'\\';
            }
            // `\x` is not an escape.
            assert_eq!(
                string_end(&escape, 1).map_err(|e| (e.what, e.at)),
                Err(("invalid escape", pos + 1))
            );
        }
    }
}
