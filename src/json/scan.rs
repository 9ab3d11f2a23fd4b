//! A validating JSON scanner over raw bytes: walks the members of an object and skips values
//! without building anything, rejecting every input `encoding/json` would reject (plus invalid
//! UTF-8, which we refuse rather than pass through). It replaces sonic-rs' generic checked skip
//! on the shaping hot path: most of a body is dropped members, so skipping them is the cost.
//!
//! Cost is counted in instructions (callgrind, `benches/json_validate.rs`), and the common case
//! is compact JSON of short members, so that case has its own paths: a member `,"key":"value"`
//! is one bounds check and one 32-byte block of masks ([`member_fast`]), a string one 16-byte
//! block, a number one 16-byte digit mask. Everything else (whitespace, long strings, escapes,
//! non-ASCII text, the end of the buffer, errors) falls back to general loops that are still
//! block-at-a-time. Non-ASCII text is checked as UTF-8 once per string, by std. Nesting is
//! tracked with a bit stack (object or array per level), capped at [`MAX_DEPTH`], so a depth bomb
//! is an error instead of a stack overflow or an unbounded allocation.

use std::ops::Range;

#[path = "scan_simd.rs"]
mod simd;
// `halves` and `masks16_portable` serve the build without AVX2 and the tests.
#[allow(unused_imports)]
use simd::{digits16, halves, masks16, masks16_portable, masks16_quote, masks32, masks32_quote};
// Whitespace runs by table lookup exist only where the build has AVX2.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
use simd::space32;

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
fn skip_ws(buf: &[u8], i: usize) -> usize {
    ws(buf, i).0
}

/// Why a scan stopped: the scanner's internal error is this and a position packed in one word
/// ([`Fail`]), so `Result<usize, Fail>` comes back in two registers (a `ScanError`, three words,
/// goes through memory, and the slot's address took a register in the hot loop). Turned into a
/// [`ScanError`] at the module's entry points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    EndOfInput,
    ExpectedValue,
    ObjectSeparator,
    ArraySeparator,
    StringKey,
    Colon,
    TooDeep,
    UnterminatedString,
    ControlCharacter,
    InvalidUtf8,
    InvalidUnicodeEscape,
    InvalidEscape,
    InvalidNumber,
    InvalidLiteral,
}

impl Why {
    const ALL: [Why; 14] = [
        Why::EndOfInput,
        Why::ExpectedValue,
        Why::ObjectSeparator,
        Why::ArraySeparator,
        Why::StringKey,
        Why::Colon,
        Why::TooDeep,
        Why::UnterminatedString,
        Why::ControlCharacter,
        Why::InvalidUtf8,
        Why::InvalidUnicodeEscape,
        Why::InvalidEscape,
        Why::InvalidNumber,
        Why::InvalidLiteral,
    ];

    fn text(self) -> &'static str {
        match self {
            Why::EndOfInput => "unexpected end of input",
            Why::ExpectedValue => "expected a value",
            Why::ObjectSeparator => "expected ',' or '}' in an object",
            Why::ArraySeparator => "expected ',' or ']' in an array",
            Why::StringKey => "expected a string key",
            Why::Colon => "expected ':' after an object key",
            Why::TooDeep => "nesting too deep",
            Why::UnterminatedString => "unterminated string",
            Why::ControlCharacter => "control character in a string",
            Why::InvalidUtf8 => "invalid UTF-8",
            Why::InvalidUnicodeEscape => "invalid \\u escape",
            Why::InvalidEscape => "invalid escape",
            Why::InvalidNumber => "invalid number",
            Why::InvalidLiteral => "invalid literal",
        }
    }
}

/// A [`Why`] in the low byte, the position above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fail(usize);

impl From<Fail> for ScanError {
    fn from(f: Fail) -> Self {
        let why = Why::ALL
            .get(f.0 & 0xFF)
            .copied()
            .unwrap_or(Why::ExpectedValue);
        ScanError {
            what: why.text(),
            at: f.0 >> 8,
        }
    }
}

type Scan<T> = std::result::Result<T, Fail>;

/// The error `why` at `at`, exactly.
#[cold]
#[inline(never)]
fn stop<T>(at: usize, why: Why) -> Scan<T> {
    Err(Fail((at << 8) | why as usize))
}

/// The error for a bad byte at `i`, or "unexpected end of input" if `i` is past the end (the
/// scan reads the end as a NUL byte, see [`byte`]).
#[cold]
#[inline(never)]
fn fail<T>(buf: &[u8], i: usize, why: Why) -> Scan<T> {
    if i >= buf.len() {
        stop(i, Why::EndOfInput)
    } else {
        stop(i, why)
    }
}

/// The byte at `i`, or 0 past the end of `buf`. No JSON token starts or continues with a NUL
/// (a control character), so running off the end takes the same error paths as a bad byte, and
/// the structure loops need no separate end-of-input branch; [`fail`] tells the two apart.
#[inline(always)]
fn byte(buf: &[u8], i: usize) -> u8 {
    buf.get(i).copied().unwrap_or(0)
}

/// Skip whitespace from `i`; returns where it stopped and the byte there (0 at the end).
/// Compact JSON has no whitespace between tokens, so one comparison settles the usual case
/// (every JSON whitespace byte is <= b' ') and the loop stays out of line.
#[inline(always)]
fn ws(buf: &[u8], i: usize) -> (usize, u8) {
    let c = byte(buf, i);
    if c > b' ' {
        return (i, c);
    }
    // Pretty-printed JSON's `": "`: one space, checked inline.
    if c == b' ' {
        let d = byte(buf, i + 1);
        if d > b' ' {
            return (i + 1, d);
        }
    }
    ws_run(buf, i)
}

/// The whitespace run at `i` (pretty-printed JSON: a newline and an indent before most
/// tokens), a block at a time where the build has AVX2.
#[inline(never)]
fn ws_run(buf: &[u8], mut i: usize) -> (usize, u8) {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    while let Some(block) = buf.get(i..).and_then(|rest| rest.first_chunk::<32>()) {
        let other = !space32(block);
        if other != 0 {
            let k = other.trailing_zeros() as usize;
            return (i + k, block.get(k).copied().unwrap_or(0));
        }
        i += 32;
    }
    loop {
        let c = byte(buf, i);
        if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            return (i, c);
        }
        i += 1;
    }
}

/// `start` is just after an opening quote. Returns the index just after the closing quote and
/// whether the string has escapes.
#[inline(always)]
fn string_end(buf: &[u8], start: usize) -> Result<(usize, bool)> {
    if let Some(block) = buf.get(start..).and_then(|rest| rest.first_chunk::<32>()) {
        let (special, quote) = masks32_quote(block);
        let first = special & special.wrapping_neg();
        if first & quote != 0 {
            return Ok((start + first.trailing_zeros() as usize + 1, false));
        }
    }
    let end = string_rest(buf, start, start)?;
    // Off the fast path only: keys are short, and few have escapes.
    let escaped = buf
        .get(start..end.saturating_sub(1))
        .is_some_and(|s| s.contains(&b'\\'));
    Ok((end, escaped))
}

/// Skip the string whose text starts at `start` (just after the opening quote); returns the
/// index after the closing quote. Most keys and values are short ASCII without escapes: one
/// 32-byte block finds the closing quote. Everything else (longer strings, escapes, non-ASCII,
/// the end of the buffer) goes on in [`string_rest`].
#[inline(always)]
fn string_skip(buf: &[u8], start: usize) -> Scan<usize> {
    let Some(block) = buf.get(start..).and_then(|rest| rest.first_chunk::<32>()) else {
        // Near the end of the buffer: a 16-byte block if there is one (small bodies).
        if let Some(block) = buf.get(start..).and_then(|rest| rest.first_chunk::<16>()) {
            let (special, quote) = masks16_quote(block);
            let first = special & special.wrapping_neg();
            if first & quote != 0 {
                return Ok(start + first.trailing_zeros() as usize + 1);
            }
        }
        return string_last(buf, start, start, usize::MAX);
    };
    let (special, quote) = masks32_quote(block);
    let first = special & special.wrapping_neg();
    if first & quote != 0 {
        return Ok(start + first.trailing_zeros() as usize + 1);
    }
    // No stop byte at all: the block is plain text, go on after it.
    let from = if special == 0 { start + 32 } else { start };
    string_rest(buf, start, from)
}

/// The general string scan from `from`, for the string whose text starts at `start`: blocks of
/// 32 until a quote, backslash or control character.
/// Non-ASCII bytes do not stop it: the first one is remembered and the run from there to the
/// closing quote is checked as UTF-8 once, by std (escapes are ASCII, and ASCII never occurs
/// inside a multi-byte sequence, so checking the run checks every sequence in the string).
#[inline(never)]
fn string_rest(buf: &[u8], start: usize, from: usize) -> Scan<usize> {
    let mut i = from;
    let mut first_high = usize::MAX;
    loop {
        let Some(block) = buf.get(i..).and_then(|rest| rest.first_chunk::<32>()) else {
            return string_last(buf, start, i, first_high);
        };
        let (special, high) = masks32(block);
        if special == 0 {
            // Plain ASCII: the common block of a long string.
            i += 32;
            continue;
        }
        // The first non-ASCII byte from here. If it comes after the closing quote, the run to
        // check below is empty.
        if high != 0 && first_high == usize::MAX {
            first_high = i + high.trailing_zeros() as usize;
        }
        // Every stop byte of the block in turn: escaped text has several per block, and
        // reloading the block after each escape cost more than the escape (callgrind).
        let mut stop_bits = special & !high;
        loop {
            if stop_bits == 0 {
                i += 32;
                break;
            }
            let j = i + stop_bits.trailing_zeros() as usize;
            match byte(buf, j) {
                b'"' => {
                    return closed(buf, first_high, j);
                }
                b'\\' => {
                    let next = escape_end(buf, j)?;
                    let offset = next - i;
                    if offset >= 32 {
                        i = next;
                        break;
                    }
                    // Drop the stop bits the escape covered (its own backslash, or an escaped
                    // quote or backslash).
                    stop_bits &= u32::MAX << offset;
                }
                _ if j >= buf.len() => {
                    return stop(start.saturating_sub(1), Why::UnterminatedString)
                }
                _ => return stop(j, Why::ControlCharacter),
            }
        }
    }
}

/// [`string_rest`] for the last bytes of the buffer, fewer than a block from `i`: the buffer's
/// last 32-byte block (16 in a shorter buffer, if it reaches back to `i`), overlapping what was already scanned, with its masks shifted so bit 0 is
/// byte `i` (no copy into a padded block, no byte loop). Past the end the masks are empty, so
/// no stop byte means no closing quote. Anything else goes byte by byte.
#[inline(never)]
fn string_last(buf: &[u8], start: usize, mut i: usize, mut first_high: usize) -> Scan<usize> {
    // The caller has fewer than 32 bytes left from `i`, so `i` is inside the last 32-byte
    // block; the last 16-byte block must be checked to contain it.
    let len = buf.len();
    let block32 = len
        .checked_sub(32)
        .and_then(|base| Some((base, buf.get(base..)?)));
    let block16 = len
        .checked_sub(16)
        .filter(|&base| base <= i)
        .and_then(|base| Some((base, buf.get(base..)?)));
    let (base, (special, high)) = if let Some((base, Some(block))) =
        block32.map(|(base, rest)| (base, rest.first_chunk::<32>()))
    {
        (base, masks32(block))
    } else if let Some((base, Some(block))) =
        block16.map(|(base, rest)| (base, rest.first_chunk::<16>()))
    {
        (base, masks16(block))
    } else {
        return string_tail(buf, start, i, first_high);
    };
    if base > i {
        // Not reached: see above. Correct anyway.
        return string_tail(buf, start, i, first_high);
    }
    let (special, high) = (u64::from(special), u64::from(high));
    loop {
        // `i` is within the block or at the end of the buffer (shift 16 or 32: nothing left).
        let shift = (i - base).min(63);
        let (special, high) = (special >> shift, high >> shift);
        if high != 0 && first_high == usize::MAX {
            first_high = i + high.trailing_zeros() as usize;
        }
        let stop_bits = special & !high;
        if stop_bits == 0 {
            return stop(start.saturating_sub(1), Why::UnterminatedString);
        }
        let j = i + stop_bits.trailing_zeros() as usize;
        match byte(buf, j) {
            b'"' => {
                return closed(buf, first_high, j);
            }
            b'\\' => i = escape_end(buf, j)?,
            _ => return stop(j, Why::ControlCharacter),
        }
    }
}

/// [`string_last`] for a buffer shorter than a block: byte by byte.
#[inline(never)]
fn string_tail(buf: &[u8], start: usize, mut i: usize, mut first_high: usize) -> Scan<usize> {
    loop {
        match buf.get(i) {
            None => return stop(start.saturating_sub(1), Why::UnterminatedString),
            Some(b'"') => {
                return closed(buf, first_high, i);
            }
            Some(b'\\') => i = escape_end(buf, i)?,
            Some(&b) if b < 0x20 => return stop(i, Why::ControlCharacter),
            Some(&b) => {
                if b >= 0x80 && first_high == usize::MAX {
                    first_high = i;
                }
                i += 1;
            }
        }
    }
}

/// The string's closing quote is at `j`: the index after it, once the non-ASCII run from
/// `first_high` (`usize::MAX`: none) is valid UTF-8.
#[inline(always)]
fn closed(buf: &[u8], first_high: usize, j: usize) -> Scan<usize> {
    if let Some(run) = buf.get(first_high..j) {
        if let Err(e) = std::str::from_utf8(run) {
            return stop(first_high + e.valid_up_to(), Why::InvalidUtf8);
        }
    }
    Ok(j + 1)
}

/// `i` is at a backslash; returns the index after the escape sequence. Inlined: as a call it
/// cost more than the escape (the string loop's registers saved and restored around it).
#[inline(always)]
fn escape_end(buf: &[u8], i: usize) -> Scan<usize> {
    match buf.get(i + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 2),
        // KrakenD: Go accepts any four hex digits here, lone surrogates included (it decodes
        // them to U+FFFD), so only the digits are checked.
        Some(b'u') => match buf.get(i + 2..i + 6) {
            Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => Ok(i + 6),
            _ => stop(i, Why::InvalidUnicodeEscape),
        },
        _ => stop(i, Why::InvalidEscape),
    }
}

/// [`number_end`] for a number that ends inside `block` (which starts at it): one digit mask,
/// then each digit run's end is a shift and a trailing-zero count instead of a byte loop.
/// `None` for anything else (a longer number, an error): the caller takes the general path.
#[inline(always)]
fn number_fast(block: &[u8; 16]) -> Option<usize> {
    // Bits 16 and up are "not a digit", so a run that reaches the end of the block stops at
    // 16, which is then refused below (the number may go on).
    let other = !digits16(block);
    let run = |k: usize| ((other >> k) as usize).trailing_zeros() as usize + k;
    let at = |k: usize| block.get(k).copied().unwrap_or(0);
    let mut p = usize::from(at(0) == b'-');
    match at(p) {
        b'0' => p += 1,
        b'1'..=b'9' => p = run(p + 1),
        _ => return None,
    }
    if at(p) == b'.' {
        let q = run(p + 1);
        if q == p + 1 {
            return None;
        }
        p = q;
    }
    if at(p) | 0x20 == b'e' {
        p += 1;
        if at(p) == b'+' || at(p) == b'-' {
            p += 1;
        }
        let q = run(p);
        if q == p {
            return None;
        }
        p = q;
    }
    (p < 16).then_some(p)
}

/// The end of the number at `i`: [`number_fast`] when 16 bytes are there, else the general scan.
#[inline(always)]
fn number_skip(buf: &[u8], i: usize) -> Scan<usize> {
    match buf
        .get(i..)
        .and_then(|rest| rest.first_chunk::<16>())
        .and_then(number_fast)
    {
        Some(len) => Ok(i + len),
        None => number_end(buf, i),
    }
}

/// `i` is at a `-` or digit. Go's grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
/// The byte after the number is checked by the caller (it must be a delimiter).
#[inline]
fn number_end(buf: &[u8], start: usize) -> Scan<usize> {
    let digits = |i: usize| digits_end(buf, i);
    let mut i = start;
    if byte(buf, i) == b'-' {
        i += 1;
    }
    match byte(buf, i) {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(i + 1),
        _ => return stop(start, Why::InvalidNumber),
    }
    if byte(buf, i) == b'.' {
        let after = digits(i + 1);
        if after == i + 1 {
            return stop(start, Why::InvalidNumber);
        }
        i = after;
    }
    if let b'e' | b'E' = byte(buf, i) {
        i += 1;
        if let b'+' | b'-' = byte(buf, i) {
            i += 1;
        }
        let after = digits(i);
        if after == i {
            return stop(start, Why::InvalidNumber);
        }
        i = after;
    }
    Ok(i)
}

const LO: u64 = 0x0101_0101_0101_0101;

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

/// Object-or-array per nesting level, as a bit stack: the innermost levels in a register (bit 0
/// is the innermost, set for an object) below a sentinel bit, so "no level open" is
/// `bits == 1`. A full register (63 levels) is spilled into a vector that only documents
/// nested deeper than that ever allocate, and a fresh sentinel starts.
///
/// The depth cap costs no counter: `limit` is the sentinel position at which the next push must
/// stop (63, or fewer when the cap falls inside this register), so a push is one comparison
/// that is false until a spill or the cap, both handled out of line. With a depth counter and
/// the vector handled inline, callgrind showed the stack living in memory, reloaded per value.
struct Nesting {
    bits: u64,
    limit: u64,
    /// Nesting depth of the value being skipped, for the cap.
    base: usize,
    spilled: Vec<u64>,
}

impl Nesting {
    fn new(base: usize) -> Self {
        Nesting {
            bits: 1,
            limit: limit(base, 0),
            base,
            spilled: Vec::new(),
        }
    }

    #[inline(always)]
    fn top_object(&self) -> bool {
        self.bits & 1 != 0
    }

    #[inline(always)]
    fn push(&mut self, object: bool, at: usize) -> Scan<()> {
        if self.bits >= self.limit {
            let limit = spill(&mut self.spilled, self.bits, self.base);
            if limit == 0 {
                return stop(at, Why::TooDeep);
            }
            self.bits = 1;
            self.limit = limit;
        }
        self.bits = (self.bits << 1) | u64::from(object);
        Ok(())
    }

    /// Close the innermost level; returns whether any level is still open.
    #[inline(always)]
    fn pop(&mut self) -> bool {
        self.bits >>= 1;
        if self.bits != 1 {
            return true;
        }
        let (bits, limit) = refill(&mut self.spilled, self.base);
        if bits == 0 {
            return false;
        }
        self.bits = bits;
        self.limit = limit;
        true
    }
}

// The cold paths take the vector and plain values, not `&mut Nesting`: a reference to the
// whole struct kept `bits` in memory in the hot loop.

/// The register reached its limit with `bits`: the depth cap (returns 0), or 63 levels to spill
/// (returns the fresh register's limit).
#[cold]
#[inline(never)]
fn spill(spilled: &mut Vec<u64>, bits: u64, base: usize) -> u64 {
    let open = 63 * spilled.len() + (63 - bits.leading_zeros() as usize);
    if base + open >= MAX_DEPTH {
        return 0;
    }
    spilled.push(bits);
    limit(base, spilled.len())
}

/// Only the sentinel is left: the spilled levels below it and their limit, or `(0, 0)` if
/// none.
#[cold]
#[inline(never)]
fn refill(spilled: &mut Vec<u64>, base: usize) -> (u64, u64) {
    match spilled.pop() {
        Some(saved) => (saved, limit(base, spilled.len())),
        None => (0, 0),
    }
}

/// The `bits` value at which a push must stop, with `spilled` full registers below: the
/// sentinel at bit 63, or where the depth cap falls if that comes first.
fn limit(base: usize, spilled: usize) -> u64 {
    let room = MAX_DEPTH.saturating_sub(base + 63 * spilled);
    1u64 << room.min(63)
}

/// Skip the value at `i` (no leading whitespace) and return the index just after it. `base` is
/// the nesting depth the value sits at, for the depth cap.
#[inline]
pub(crate) fn skip_value(buf: &[u8], i: usize, base: usize) -> Result<usize> {
    Ok(skip(buf, i, base)?)
}

/// Most member values are scalars: they are skipped here, inline, without the container
/// machinery (measured with callgrind: a third of the per-member cost on flat bodies).
#[inline(always)]
fn skip(buf: &[u8], i: usize, base: usize) -> Scan<usize> {
    match byte(buf, i) {
        b'"' => string_skip(buf, i + 1),
        b'-' | b'0'..=b'9' => number_skip(buf, i),
        b't' => literal(buf, i, b"true"),
        b'f' => literal(buf, i, b"false"),
        b'n' => literal(buf, i, b"null"),
        _ => skip_nested(buf, i, base),
    }
}

/// The window [`member_fast`] reads: one 32-byte block of masks, and the two bytes after a key
/// that ends in it (one more than needed, so the compiler sees the reads in bounds without a
/// check: it knows a 32-bit trailing-zero count is at most 32, not 31).
const WINDOW: usize = 35;

/// What [`member_fast`] found.
enum Fast {
    /// Not the compact shape it handles: take the general path.
    No,
    /// The member's value starts at this offset, with this byte.
    Value(usize, u8),
    /// The member's value was a short plain string, already skipped: the offset after it.
    Done(usize),
}

/// The next member of an object in compact JSON, with a short plain key: `w` starts at the
/// comma (or the opening brace, `open` says which) before `"key":value`. Most members in
/// backend bodies look like this: one bounds check and one 32-byte block of masks cover the
/// key, the colon and, when it is a short plain string, the value. Everything else
/// (whitespace, long or escaped strings, the end of the buffer, errors) is [`Fast::No`] or
/// [`Fast::Value`], and goes the general way.
#[inline(always)]
fn member_fast(w: &[u8; WINDOW], open: u8) -> Fast {
    let Some((block, _)) = w.split_first_chunk::<32>() else {
        return Fast::No;
    };
    let Some((head, _)) = block.split_first_chunk::<2>() else {
        return Fast::No;
    };
    if *head != [open, b'"'] {
        return Fast::No;
    }
    let (special, quote) = masks32_quote(block);
    // Past the key's opening quote, the first special byte must be its closing quote. 64-bit
    // masks, so the shift below needs no overflow check.
    let (special, quote) = (u64::from(special & !0b11), u64::from(quote));
    let first = special & special.wrapping_neg();
    if first & quote == 0 {
        return Fast::No;
    }
    let close = first.trailing_zeros() as usize;
    let value = close + 2;
    match w.get(close + 1..=value) {
        Some(&[b':', b'"']) => {}
        Some(&[b':', d]) if d > b' ' => return Fast::Value(value, d),
        _ => return Fast::No,
    }
    // A string value: its first special byte after the opening quote, if in the block, must
    // be the closing quote.
    let rest = special & (u64::MAX << (value + 1));
    let end = rest & rest.wrapping_neg();
    if end & quote == 0 {
        return Fast::Value(value, b'"');
    }
    Fast::Done(end.trailing_zeros() as usize + 1)
}

/// [`skip_value`] for containers (and for errors): a loop with an explicit nesting stack.
///
/// The loop carries the byte at `i` along with `i` (`c`), so each token is one load and one
/// comparison; past the end that byte is 0 and falls into an error branch like any other bad
/// byte. Only a closing bracket can end the outermost container, so only that branch checks
/// for the end. Compact JSON gets two-byte checks (`,"`, `:` and the value's first byte), the
/// general path skips whitespace around each token.
#[inline(never)]
fn skip_nested(buf: &[u8], mut i: usize, base: usize) -> Scan<usize> {
    let mut nest = Nesting::new(base);
    let mut c = byte(buf, i);
    // `i` is where a member key should start and `c` the byte there: moves `i` and `c` to the
    // member's value. A macro rather than a function: a function returning the pair went
    // through memory (callgrind: six loads and stores per member).
    macro_rules! key_colon {
        () => {{
            if c != b'"' {
                return fail(buf, i, Why::StringKey);
            }
            let end = string_skip(buf, i + 1)?;
            match buf.get(end..end + 2) {
                Some(&[b':', d]) if d > b' ' => {
                    i = end + 1;
                    c = d;
                }
                _ => {
                    let (colon, d) = ws(buf, end);
                    if d != b':' {
                        return fail(buf, colon, Why::Colon);
                    }
                    (i, c) = ws(buf, colon + 1);
                }
            }
        }};
    }
    loop {
        // A value starts at `i`; `c` is its first byte. Strings first: most values are.
        if c == b'"' {
            i = string_skip(buf, i + 1)?;
        } else if c == b'-' || c.is_ascii_digit() {
            i = number_skip(buf, i)?;
        } else if c == b'{' {
            nest.push(true, i)?;
            let fast = match buf.get(i..).and_then(|rest| rest.first_chunk::<WINDOW>()) {
                Some(w) => member_fast(w, b'{'),
                None => Fast::No,
            };
            match fast {
                // The first member's value is skipped: on to what follows it.
                Fast::Done(off) => i += off,
                Fast::Value(off, d) => {
                    i += off;
                    c = d;
                    continue;
                }
                Fast::No => {
                    (i, c) = ws(buf, i + 1);
                    if c != b'}' {
                        key_colon!();
                        continue;
                    }
                    i += 1;
                    if !nest.pop() {
                        return Ok(i);
                    }
                }
            }
        } else if c == b'[' {
            nest.push(false, i)?;
            (i, c) = ws(buf, i + 1);
            if c != b']' {
                continue;
            }
            i += 1;
            if !nest.pop() {
                return Ok(i);
            }
        } else if c == b't' {
            i = literal(buf, i, b"true")?;
        } else if c == b'f' {
            i = literal(buf, i, b"false")?;
        } else if c == b'n' {
            i = literal(buf, i, b"null")?;
        } else {
            return fail(buf, i, Why::ExpectedValue);
        }
        // After a value: close containers until one continues with a comma.
        loop {
            // Compact JSON: the comma right after the value, then the next member (whole, if
            // it is short: see `member_fast`) or element.
            if nest.top_object() {
                if let Some(w) = buf.get(i..).and_then(|rest| rest.first_chunk::<WINDOW>()) {
                    match member_fast(w, b',') {
                        Fast::Done(off) => {
                            i += off;
                            continue;
                        }
                        Fast::Value(off, d) => {
                            i += off;
                            c = d;
                            break;
                        }
                        Fast::No => {}
                    }
                }
            } else if let Some(&[b',', d]) = buf.get(i..).and_then(|rest| rest.first_chunk::<2>()) {
                if d > b' ' {
                    i += 1;
                    c = d;
                    break;
                }
            }
            let (j, d) = ws(buf, i);
            if d == b',' {
                (i, c) = ws(buf, j + 1);
                if nest.top_object() {
                    key_colon!();
                }
                break;
            }
            if d != if nest.top_object() { b'}' } else { b']' } {
                let why = if nest.top_object() {
                    Why::ObjectSeparator
                } else {
                    Why::ArraySeparator
                };
                return fail(buf, j, why);
            }
            i = j + 1;
            if !nest.pop() {
                return Ok(i);
            }
        }
    }
}

#[inline(always)]
fn literal(buf: &[u8], i: usize, word: &[u8]) -> Scan<usize> {
    if buf.get(i..i + word.len()) == Some(word) {
        Ok(i + word.len())
    } else {
        stop(i, Why::InvalidLiteral)
    }
}

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
