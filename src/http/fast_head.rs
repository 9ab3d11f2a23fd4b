//! The usual head, parsed without `httparse`: a start line and fields in the plainest form
//! (CRLF line ends, single spaces in the start line, token names right before their colon,
//! ASCII values, at most `max_headers` fields, the whole head in the buffer). Anything else,
//! including every error and every incomplete head, is left to `httparse`, which then decides
//! as before: this path only ever answers what `httparse` would answer on the same bytes
//! (`fast_head_tests` checks that against `httparse` itself on generated heads).
//!
//! Why: `httparse` plus recording its fields cost about 1,100 instructions per head on a 1:1
//! request (callgrind), a head in each direction, about a tenth of the request's own work.
//! Here a head is a `memchr` per line and a colon, and 16-byte vector checks of each name and
//! value (the `tchar` nibble lookup of [`super::field_simd`]).

use super::field_simd;
use super::fields::FieldRanges;
use super::Version;
use std::ops::Range;

/// A request head: its length, method and target, version; fields go to the given ranges.
pub(crate) struct RequestLine {
    pub len: usize,
    pub method: Range<usize>,
    pub target: Range<usize>,
    pub version: Version,
}

/// A response head: its length, status and version; fields go to the given ranges.
pub(crate) struct StatusLine {
    pub len: usize,
    pub status: u16,
    pub version: Version,
}

/// The first line of `buf` without its CRLF, and where the next line starts.
fn first_line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let lf = memchr::memchr(b'\n', buf)?;
    let line = buf.get(..lf.checked_sub(1)?)?;
    (buf.get(lf - 1) == Some(&b'\r')).then_some((line, lf + 1))
}

fn version(v: &[u8]) -> Option<Version> {
    match v {
        b"HTTP/1.1" => Some(Version::Http11),
        b"HTTP/1.0" => Some(Version::Http10),
        _ => None,
    }
}

/// `METHOD SP target SP HTTP/1.x CRLF` then the fields.
pub(crate) fn request(
    buf: &[u8],
    max_headers: usize,
    out: &mut FieldRanges,
) -> Option<RequestLine> {
    let (line, next) = first_line(buf)?;
    let sp = memchr::memchr(b' ', line)?;
    let method = line.get(..sp)?;
    let (rest, version_text) = line.split_at_checked(line.len().checked_sub(9)?)?;
    let (&gap, version_text) = version_text.split_first()?;
    let target = rest.get(sp + 1..)?;
    if gap != b' ' || !field_simd::is_token(method) || target.is_empty() {
        return None;
    }
    // httparse takes 0x21..=0x7e and non-ASCII in a target; non-ASCII is left to it.
    if !target.iter().all(|&b| (0x21..=0x7e).contains(&b)) {
        return None;
    }
    let version = version(version_text)?;
    let len = fields(buf, next, max_headers, out)?;
    Some(RequestLine {
        len,
        method: 0..sp,
        target: sp + 1..sp + 1 + target.len(),
        version,
    })
}

/// `HTTP/1.x SP DDD SP reason CRLF` then the fields.
pub(crate) fn response(
    buf: &[u8],
    max_headers: usize,
    out: &mut FieldRanges,
) -> Option<StatusLine> {
    let (line, next) = first_line(buf)?;
    let (version_text, rest) = line.split_at_checked(8)?;
    let version = version(version_text)?;
    let [b' ', d0, d1, d2, b' ', reason @ ..] = rest else {
        return None;
    };
    let digit = |d: u8| d.is_ascii_digit().then(|| u16::from(d - b'0'));
    let status = digit(*d0)? * 100 + digit(*d1)? * 10 + digit(*d2)?;
    if !reason.iter().all(|&b| (0x20..=0x7e).contains(&b)) {
        return None;
    }
    let len = fields(buf, next, max_headers, out)?;
    Some(StatusLine {
        len,
        status,
        version,
    })
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The fields from `pos` up to the empty line; returns the head's length.
fn fields(buf: &[u8], mut pos: usize, max_headers: usize, out: &mut FieldRanges) -> Option<usize> {
    let mut count = 0;
    loop {
        let rest = buf.get(pos..)?;
        if rest.starts_with(b"\r\n") {
            return Some(pos + 2);
        }
        let (line, next) = first_line(rest)?;
        let colon = memchr::memchr(b':', line)?;
        let name = line.get(..colon)?;
        if !field_simd::is_token(name) {
            return None;
        }
        // httparse skips whitespace after the colon and trims it off the end.
        let mut start = colon + 1;
        while line.get(start).copied().is_some_and(is_ows) {
            start += 1;
        }
        let mut end = line.len();
        while end > start && line.get(end - 1).copied().is_some_and(is_ows) {
            end -= 1;
        }
        if !field_simd::is_text(line.get(start..end)?) {
            return None;
        }
        count += 1;
        if count > max_headers {
            return None;
        }
        let at = |i: usize| u32::try_from(pos + i).ok();
        out.push([at(0)?, at(colon)?, at(start)?, at(end)?]);
        pos += next;
    }
}

#[cfg(test)]
#[path = "fast_head_tests.rs"]
mod tests;
