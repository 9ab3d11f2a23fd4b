//! Field semantics shared by request and response parsing: list tokens, `Content-Length`,
//! `Transfer-Encoding`, and the zero-copy hand-over from `httparse` slices to `Bytes`.
use super::{Header, Headers, HttpError};
use bytes::Bytes;
use std::ops::Range;

/// How many `httparse` header slots live on the stack; more (a raised `max_headers`) go to
/// the heap.
pub(crate) const STACK_HEADERS: usize = 128;

/// Header slots for httparse: on the stack up to [`STACK_HEADERS`], on the heap beyond (only
/// when `max_headers` is configured higher). Shared by the request and response parsers.
pub(crate) fn with_slots<'b, R>(
    max_headers: usize,
    f: impl FnOnce(&mut [std::mem::MaybeUninit<httparse::Header<'b>>]) -> R,
) -> R {
    use std::mem::MaybeUninit;
    if max_headers <= STACK_HEADERS {
        let mut stack = [const { MaybeUninit::<httparse::Header<'b>>::uninit() }; STACK_HEADERS];
        f(stack.get_mut(..max_headers).unwrap_or_default())
    } else {
        let mut heap = Vec::new();
        heap.resize_with(max_headers, MaybeUninit::uninit);
        f(&mut heap)
    }
}

/// Above this many buffered bytes, look for the end of the head (SIMD `memmem`) before
/// re-running the full parser, so a head trickling in over many reads costs O(n) per read
/// in the cheapest possible scan rather than a full re-parse.
const PRECHECK_ABOVE: usize = 8 * 1024;

/// Optional whitespace (RFC 9110 §5.6.3).
fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ows(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_ows(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// The non-empty, OWS-trimmed elements of comma-separated field values (RFC 9110 §5.6.1).
fn list_elements<'a>(values: impl Iterator<Item = &'a [u8]>) -> impl Iterator<Item = &'a [u8]> {
    values
        .flat_map(|v| v.split(|&b| b == b','))
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// Whether any of the comma-separated `values` is `token` (ASCII case-insensitive).
pub(crate) fn list_has_token<'a>(values: impl Iterator<Item = &'a [u8]>, token: &str) -> bool {
    list_elements(values).any(|e| e.eq_ignore_ascii_case(token.as_bytes()))
}

/// What the `Content-Length` fields of a message say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ContentLength {
    Absent,
    Value(u64),
    /// Not a plain decimal, overflowing, empty, or several different values.
    Invalid,
}

/// Digits only (no sign, no whitespace inside), at most `i64::MAX`.
// KrakenD: Go's parseContentLength caps at int64 and rejects signs.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    if n > i64::MAX as u64 {
        return None;
    }
    Some(n)
}

/// Combine every `Content-Length` field. Identical duplicates, as separate fields or as a
/// comma list (`5, 5`), are one value (RFC 9110 §8.6); anything else is `Invalid`.
pub(crate) fn content_length(headers: &Headers) -> ContentLength {
    content_length_of(headers.get_all("content-length").map(|v| v.as_ref()))
}

fn content_length_of<'a>(values: impl Iterator<Item = &'a [u8]>) -> ContentLength {
    let mut found: Option<u64> = None;
    for value in values {
        for element in value.split(|&b| b == b',') {
            let Some(n) = parse_decimal(trim_ows(element)) else {
                return ContentLength::Invalid;
            };
            match found {
                Some(prev) if prev != n => return ContentLength::Invalid,
                _ => found = Some(n),
            }
        }
    }
    match found {
        Some(n) => ContentLength::Value(n),
        None => ContentLength::Absent,
    }
}

/// The fields the framing and connection rules read, noted in the pass that builds the
/// fields (a name's length first, so most names cost one comparison). A usual message has
/// none of them but a Host (requests) or one Content-Length (responses); the rules then need
/// no scan of the fields by name.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Noted {
    /// How many Host fields, and the index of the first.
    pub hosts: usize,
    pub host: usize,
    /// How many Content-Length fields, and the index of the first.
    pub lengths: usize,
    pub length: usize,
    pub transfer_encoding: bool,
    pub connection: bool,
    pub expect: bool,
}

impl Noted {
    fn note(&mut self, i: usize, name: &[u8]) {
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                if self.hosts == 0 {
                    self.host = i;
                }
                self.hosts += 1;
            }
            6 if name.eq_ignore_ascii_case(b"expect") => self.expect = true,
            10 if name.eq_ignore_ascii_case(b"connection") => self.connection = true,
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                if self.lengths == 0 {
                    self.length = i;
                }
                self.lengths += 1;
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                self.transfer_encoding = true;
            }
            _ => {}
        }
    }

    /// [`content_length`] of `headers`, the fields these notes were taken from.
    pub(crate) fn content_length(&self, headers: &Headers) -> ContentLength {
        match (self.lengths, headers.0.get(self.length)) {
            (0, _) => ContentLength::Absent,
            (1, Some(h)) => content_length_of(std::iter::once(h.value.as_ref())),
            _ => content_length(headers),
        }
    }

    /// [`transfer_coding`] of `headers`, the fields these notes were taken from.
    pub(crate) fn transfer_coding(&self, headers: &Headers) -> TransferCoding {
        if self.transfer_encoding {
            transfer_coding(headers)
        } else {
            TransferCoding::Absent
        }
    }

    /// `headers.has_token("connection", token)`, the fields these notes were taken from.
    pub(crate) fn connection_has(&self, headers: &Headers, token: &str) -> bool {
        self.connection && headers.has_token("connection", token)
    }
}

/// What the `Transfer-Encoding` fields of a message say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TransferCoding {
    Absent,
    /// `chunked` is the final coding (and appears only there).
    Chunked,
    /// The final coding is something else (`gzip`, `chunked;x=1`, ...).
    Other,
    /// Present but empty, or `chunked` applied more than once / not last and then again.
    Invalid,
}

/// Combine every `Transfer-Encoding` field (multiple fields are one comma list).
pub(crate) fn transfer_coding(headers: &Headers) -> TransferCoding {
    let mut present = false;
    let mut last: Option<&[u8]> = None;
    let mut chunked_seen = 0usize;
    for value in headers.get_all("transfer-encoding") {
        present = true;
        for element in list_elements(std::iter::once(value.as_ref())) {
            if element.eq_ignore_ascii_case(b"chunked") {
                chunked_seen += 1;
            }
            last = Some(element);
        }
    }
    match last {
        _ if !present => TransferCoding::Absent,
        None => TransferCoding::Invalid,
        // RFC 9112 §6.1: chunked MUST NOT be applied more than once.
        Some(_) if chunked_seen > 1 => TransferCoding::Invalid,
        Some(coding) if coding.eq_ignore_ascii_case(b"chunked") => TransferCoding::Chunked,
        Some(_) => TransferCoding::Other,
    }
}

/// Whether `buf` can hold a complete head: some LF is followed by LF or CRLF.
fn may_hold_end_of_head(buf: &[u8]) -> bool {
    memchr::memmem::find(buf, b"\n\r\n").is_some() || memchr::memmem::find(buf, b"\n\n").is_some()
}

/// Shared front matter of request and response parsing: `Ok(false)` when the parser need not
/// run yet (head surely incomplete), `HeadTooLarge` once an incomplete head exceeds the limit.
pub(crate) fn precheck(buf: &[u8], max_header_bytes: usize) -> Result<bool, HttpError> {
    if buf.len() > PRECHECK_ABOVE && !may_hold_end_of_head(buf) {
        return incomplete::<()>(buf.len(), max_header_bytes).map(|_| false);
    }
    Ok(true)
}

/// The verdict on an incomplete head of `len` bytes.
pub(crate) fn incomplete<T>(len: usize, max_header_bytes: usize) -> Result<Option<T>, HttpError> {
    if len > max_header_bytes {
        Err(HttpError::HeadTooLarge)
    } else {
        Ok(None)
    }
}

/// RFC 9112 §2.2: a bare CR (not followed by LF) or a NUL anywhere in the head is an error.
/// `httparse` rejects these in the places it looks; this scan covers the whole head so the
/// rule does not depend on parser internals. It runs on every request and response head: 16
/// bytes at a time (SSE2, part of x86-64), where a `memchr` per CR cost ten times as much.
pub(crate) fn has_nul_or_bare_cr(head: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if head.len() > 16 {
        return nul_or_bare_cr_blocks(head);
    }
    nul_or_bare_cr_bytes(head)
}

fn nul_or_bare_cr_bytes(head: &[u8]) -> bool {
    head.iter()
        .enumerate()
        .any(|(i, &b)| b == 0 || (b == b'\r' && head.get(i + 1) != Some(&b'\n')))
}

/// [`has_nul_or_bare_cr`] for heads longer than 16 bytes. Each block looks at 16 bytes and
/// the 16 after them shifted by one (the byte following each CR); the blocks cover every byte
/// but the last (the final block overlaps the one before), which is checked apart.
#[cfg(target_arch = "x86_64")]
fn nul_or_bare_cr_blocks(head: &[u8]) -> bool {
    use std::arch::x86_64::{
        _mm_andnot_si128, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8, _mm_setzero_si128,
    };
    let last_start = head.len().saturating_sub(17);
    let mut start = 0;
    loop {
        let Some(window) = head.get(start..start + 17) else {
            return nul_or_bare_cr_bytes(head);
        };
        // SAFETY: SSE2 is part of x86-64; both unaligned loads read 16 bytes inside the
        // 17-byte `window` (from its first and its second byte).
        let bad = unsafe {
            let here = _mm_loadu_si128(window.as_ptr().cast());
            let next = _mm_loadu_si128(window.as_ptr().add(1).cast());
            let nul = _mm_cmpeq_epi8(here, _mm_setzero_si128());
            let cr = _mm_cmpeq_epi8(here, _mm_set1_epi8(b'\r' as i8));
            let lf_next = _mm_cmpeq_epi8(next, _mm_set1_epi8(b'\n' as i8));
            _mm_movemask_epi8(_mm_or_si128(nul, _mm_andnot_si128(lf_next, cr)))
        };
        if bad != 0 {
            return true;
        }
        if start == last_start {
            break;
        }
        start = (start + 16).min(last_start);
    }
    // The last byte: a NUL, or a CR with nothing after it.
    matches!(head.last(), Some(0 | b'\r'))
}

/// Where `part` (a sub-slice of `base`) lies inside `base`.
pub(crate) fn offset_in(base: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
    start..start.wrapping_add(part.len())
}

/// `head[range]` as a zero-copy `Bytes`, or `None` if the range does not fit (cannot happen
/// for ranges taken from the same buffer, but a wrong range must not panic).
pub(crate) fn slice(head: &Bytes, range: Range<usize>) -> Option<Bytes> {
    if range.start <= range.end && range.end <= head.len() {
        Some(head.slice(range))
    } else {
        None
    }
}

/// How many fields' offsets are kept inline (no allocation): more than most requests carry.
const INLINE_FIELDS: usize = 24;

/// Field offsets (name start and end, value start and end) recorded while `httparse` borrows
/// the read buffer: inline for the usual handful of fields, on the heap beyond. `u32`: a
/// head is never near 4 GiB (one that is cannot be recorded and is refused as malformed).
pub(crate) struct FieldRanges {
    len: usize,
    inline: [[u32; 4]; INLINE_FIELDS],
    spill: Vec<[u32; 4]>,
    overflow: bool,
}

impl FieldRanges {
    /// Forget every recorded field (a fast parse that gave up hands over to `httparse`).
    #[cfg_attr(
        not(all(target_arch = "x86_64", target_feature = "ssse3")),
        allow(dead_code)
    )]
    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.spill.clear();
        self.overflow = false;
    }

    pub(crate) fn push(&mut self, r: [u32; 4]) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = r,
            None => self.spill.push(r),
        }
        self.len += 1;
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u32; 4]> {
        self.inline
            .iter()
            .take(self.len.min(INLINE_FIELDS))
            .chain(self.spill.iter())
    }

    pub(crate) fn new() -> FieldRanges {
        FieldRanges {
            len: 0,
            inline: [[0; 4]; INLINE_FIELDS],
            spill: Vec::new(),
            overflow: false,
        }
    }
}

/// Record the offsets of `parsed` into `out` (filled in place: the inline array is not
/// moved about).
pub(crate) fn record_fields(out: &mut FieldRanges, base: &[u8], parsed: &[httparse::Header<'_>]) {
    for h in parsed {
        let (name, value) = (offset_in(base, h.name.as_bytes()), offset_in(base, h.value));
        match [name.start, name.end, value.start, value.end].map(u32::try_from) {
            [Ok(a), Ok(b), Ok(c), Ok(d)] => out.push([a, b, c, d]),
            _ => out.overflow = true,
        }
    }
}

/// Turn recorded offsets into zero-copy fields of the frozen `head`, noting the fields the
/// framing and connection rules read.
pub(crate) fn build_headers(
    head: &Bytes,
    ranges: &FieldRanges,
    err: HttpError,
) -> Result<(Headers, Noted), HttpError> {
    if ranges.overflow {
        return Err(err);
    }
    let mut fields = Vec::with_capacity(ranges.len);
    let mut noted = Noted::default();
    for (i, &[a, b, c, d]) in ranges.iter().enumerate() {
        let name = a as usize..b as usize;
        let value = c as usize..d as usize;
        match (slice(head, name), slice(head, value)) {
            (Some(name), Some(value)) => {
                noted.note(i, &name);
                fields.push(Header { name, value });
            }
            _ => return Err(err),
        }
    }
    Ok((Headers(fields), noted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(fields: &[(&'static str, &'static str)]) -> Headers {
        Headers(
            fields
                .iter()
                .map(|(n, v)| Header {
                    name: Bytes::from_static(n.as_bytes()),
                    value: Bytes::from_static(v.as_bytes()),
                })
                .collect(),
        )
    }

    #[test]
    fn identical_content_lengths_in_a_list_are_one_value() {
        let h = headers(&[("Content-Length", "5, 5"), ("content-length", "5")]);
        assert_eq!(content_length(&h), ContentLength::Value(5));
    }

    #[test]
    fn content_length_rejects_signs_spaces_and_overflow() {
        for bad in [
            "+5",
            "-1",
            "5 5",
            "",
            "0x10",
            "99999999999999999999",
            "9223372036854775808",
        ] {
            let h = headers(&[("Content-Length", bad)]);
            assert_eq!(content_length(&h), ContentLength::Invalid, "{bad:?}");
        }
        let h = headers(&[("Content-Length", "9223372036854775807")]);
        assert_eq!(content_length(&h), ContentLength::Value(i64::MAX as u64));
    }

    #[test]
    fn transfer_coding_reads_the_final_coding_across_fields() {
        let h = headers(&[
            ("Transfer-Encoding", "gzip"),
            ("transfer-encoding", "CHUNKED"),
        ]);
        assert_eq!(transfer_coding(&h), TransferCoding::Chunked);
        let h = headers(&[("Transfer-Encoding", "chunked, gzip")]);
        assert_eq!(transfer_coding(&h), TransferCoding::Other);
        let h = headers(&[("Transfer-Encoding", " , ")]);
        assert_eq!(transfer_coding(&h), TransferCoding::Invalid);
        let h = headers(&[("Transfer-Encoding", "chunked, chunked")]);
        assert_eq!(transfer_coding(&h), TransferCoding::Invalid);
    }

    #[test]
    fn a_nul_or_bare_cr_is_found_at_every_position_of_heads_of_every_length() {
        for len in 0..80 {
            let clean: Vec<u8> = (0..len)
                .map(|i| {
                    if i % 7 == 5 {
                        b'\r'
                    } else if i % 7 == 6 {
                        b'\n'
                    } else {
                        b'a'
                    }
                })
                .collect();
            // A CR at the very end has no LF after it: bare.
            let ends_in_cr = clean.last() == Some(&b'\r');
            assert_eq!(
                has_nul_or_bare_cr(&clean),
                ends_in_cr,
                "clean head of {len}"
            );
            for pos in 0..len {
                for bad in [0u8, b'\r'] {
                    let mut h = clean.clone();
                    if bad == b'\r' && h.get(pos + 1) == Some(&b'\n') {
                        continue; // that CR is not bare
                    }
                    h[pos] = bad;
                    assert!(has_nul_or_bare_cr(&h), "{bad} at {pos} of {len}");
                    assert_eq!(has_nul_or_bare_cr(&h), nul_or_bare_cr_bytes(&h));
                }
            }
        }
    }

    #[test]
    fn bare_cr_and_nul_are_found_but_crlf_is_fine() {
        assert!(!has_nul_or_bare_cr(b"a\r\nb\r\n\r\n"));
        assert!(has_nul_or_bare_cr(b"a\rb\r\n"));
        assert!(has_nul_or_bare_cr(b"a\r"));
        assert!(has_nul_or_bare_cr(b"a\0b"));
    }

    #[test]
    fn connection_tokens_are_found_in_lists_case_insensitively() {
        let h = headers(&[("Connection", "Upgrade, Keep-Alive")]);
        assert!(h.has_token("connection", "keep-alive"));
        assert!(!h.has_token("connection", "close"));
        let h = headers(&[("Connection", "closed")]);
        assert!(!h.has_token("connection", "close"));
    }
}
