//! Writing one short header field (`name: value CRLF`, name and value at most 32 bytes each)
//! without a `memcpy` call or a per-byte loop: every request and response head carries 4–5
//! such fields, and callgrind put [`super::write`]'s byte-wise field writer (token check,
//! line-break check, four appends, two `memcpy` calls) at about 250 instructions per field,
//! a tenth of a 1:1 request's own work.
//!
//! A name or value of 1..=32 bytes is read as two 16-byte vectors whose lanes are all its own
//! bytes (the first and the last 16, 8, 4 or 1–3 bytes, overlapping), which are checked
//! (the RFC 9110 `tchar` set by a nibble lookup; CR, LF and NUL by compares) and stored
//! straight into the output's spare capacity the same way. Needs SSSE3 (`pshufb`), which the
//! release build has (x86-64-v3); other builds use the byte-wise writer.

use std::arch::x86_64::{
    __m128i, _mm_and_si128, _mm_andnot_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_cvtsi128_si32,
    _mm_cvtsi128_si64, _mm_loadl_epi64, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
    _mm_set1_epi32, _mm_set1_epi64x, _mm_set1_epi8, _mm_setr_epi8, _mm_setzero_si128,
    _mm_shuffle_epi8, _mm_srli_epi16, _mm_srli_si128, _mm_storel_epi64, _mm_storeu_si128,
    _mm_unpacklo_epi64,
};

/// The longest name or value written here.
pub(super) const MAX: usize = 32;

/// `tchar` as two nibble tables: byte `b` is a token byte iff
/// `LO[b & 15] & HI[b >> 4] != 0`, where `HI[h]` is bit `h` for the ASCII rows 2–7 (0 for
/// control and non-ASCII rows) and `LO[l]` has bit `h` set when `h * 16 + l` is a `tchar`.
// Indexing runs at compile time only: an out-of-range index would fail the build.
#[allow(clippy::indexing_slicing)]
const LO: [u8; 16] = {
    let mut t = [0u8; 16];
    let mut l = 0;
    while l < 16 {
        let mut h = 2;
        while h < 8 {
            if super::write::TOKEN[h * 16 + l] {
                t[l] |= 1 << h;
            }
            h += 1;
        }
        l += 1;
    }
    t
};

/// Whether every lane of `v` is a token byte.
#[inline(always)]
fn all_token(v: __m128i) -> bool {
    // SAFETY: SSE2 and SSSE3 are enabled for this build (the module is compiled only then).
    unsafe {
        #[rustfmt::skip]
        let lo = _mm_setr_epi8(
            LO[0] as i8, LO[1] as i8, LO[2] as i8, LO[3] as i8,
            LO[4] as i8, LO[5] as i8, LO[6] as i8, LO[7] as i8,
            LO[8] as i8, LO[9] as i8, LO[10] as i8, LO[11] as i8,
            LO[12] as i8, LO[13] as i8, LO[14] as i8, LO[15] as i8,
        );
        #[rustfmt::skip]
        let hi = _mm_setr_epi8(0, 0, 4, 8, 16, 32, 64, -128, 0, 0, 0, 0, 0, 0, 0, 0);
        let nibble = _mm_set1_epi8(0x0f);
        let low = _mm_and_si128(v, nibble);
        let high = _mm_and_si128(_mm_srli_epi16(v, 4), nibble);
        let hit = _mm_and_si128(_mm_shuffle_epi8(lo, low), _mm_shuffle_epi8(hi, high));
        // A lane fails when its two lookups share no bit.
        _mm_movemask_epi8(_mm_cmpeq_epi8(hit, _mm_setzero_si128())) == 0
    }
}

/// Whether any lane of `v` is CR, LF or NUL.
#[inline(always)]
fn breaks_line(v: __m128i) -> bool {
    // SAFETY: SSE2 is part of x86-64.
    unsafe {
        let cr = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\r' as i8));
        let lf = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8));
        let nul = _mm_cmpeq_epi8(v, _mm_setzero_si128());
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(cr, lf), nul)) != 0
    }
}

/// `s` (1..=[`MAX`] bytes) as two vectors made only of its bytes: its first and last 16
/// bytes, or (shorter) its first and last 8 or 4 bytes side by side, or its first, middle and
/// last byte repeated. Every byte of `s` is in one of the two.
#[inline(always)]
fn load(s: &[u8]) -> (__m128i, __m128i) {
    let n = s.len();
    let p = s.as_ptr();
    debug_assert!((1..=MAX).contains(&n));
    // SAFETY: in every branch each load reads inside `s`: offsets 0 and n - k for a k-byte
    // piece with k <= n (and n / 2 < n).
    unsafe {
        if n >= 16 {
            (
                _mm_loadu_si128(p.cast()),
                _mm_loadu_si128(p.add(n - 16).cast()),
            )
        } else if n >= 8 {
            let v = _mm_unpacklo_epi64(
                _mm_loadl_epi64(p.cast()),
                _mm_loadl_epi64(p.add(n - 8).cast()),
            );
            (v, v)
        } else if n >= 4 {
            let a = p.cast::<u32>().read_unaligned();
            let b = p.add(n - 4).cast::<u32>().read_unaligned();
            let v = _mm_set1_epi64x((u64::from(a) | (u64::from(b) << 32)) as i64);
            (v, v)
        } else {
            let v = _mm_set1_epi32(i32::from_le_bytes([*p, *p.add(n / 2), *p.add(n - 1), *p]));
            (v, v)
        }
    }
}

/// Copy `s` (1..=[`MAX`] bytes) to `dst` from the vectors [`load`] made of it, and return them.
///
/// # Safety
/// `dst` must be valid for writes of `s.len()` bytes.
#[inline(always)]
unsafe fn copy(s: &[u8], dst: *mut u8) -> (__m128i, __m128i) {
    let n = s.len();
    let (a, b) = load(s);
    // SAFETY: every store writes inside `dst[..n]` (offsets 0 and n - k for a k-byte piece
    // with k <= n), with the bytes `load` took from the same offsets of `s`.
    unsafe {
        if n >= 16 {
            _mm_storeu_si128(dst.cast(), a);
            _mm_storeu_si128(dst.add(n - 16).cast(), b);
        } else if n >= 8 {
            _mm_storel_epi64(dst.cast(), a);
            _mm_storel_epi64(dst.add(n - 8).cast(), _mm_srli_si128(a, 8));
        } else if n >= 4 {
            let v = _mm_cvtsi128_si64(a) as u64;
            dst.cast::<u32>().write_unaligned(v as u32);
            dst.add(n - 4)
                .cast::<u32>()
                .write_unaligned((v >> 32) as u32);
        } else {
            let [first, middle, last, _] = _mm_cvtsi128_si32(a).to_le_bytes();
            *dst = first;
            *dst.add(n / 2) = middle;
            *dst.add(n - 1) = last;
        }
    }
    (a, b)
}

/// Whether `name` is a non-empty `tchar` run (RFC 9110), of any length.
pub(super) fn is_token(name: &[u8]) -> bool {
    if name.is_empty() || name.len() > MAX {
        return super::write::is_token(name);
    }
    let (a, b) = load(name);
    all_token(a) && all_token(b)
}

/// Whether every byte of `value` is visible ASCII, a space or a tab (no control character,
/// no DEL, no byte above 0x7f), of any length; an empty value is.
pub(super) fn is_text(value: &[u8]) -> bool {
    if value.is_empty() {
        return true;
    }
    if value.len() > MAX {
        return value
            .iter()
            .all(|&b| b == b'\t' || (0x20..=0x7e).contains(&b));
    }
    let (a, b) = load(value);
    all_text(a) && all_text(b)
}

/// Whether every lane of `v` is 0x20..=0x7e or a tab.
#[inline(always)]
fn all_text(v: __m128i) -> bool {
    // SAFETY: SSE2 is part of x86-64.
    unsafe {
        // Signed: bytes above 0x7f are negative, so "greater than 0x1f" keeps 0x20..=0x7f.
        let printable = _mm_andnot_si128(
            _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)),
            _mm_cmpgt_epi8(v, _mm_set1_epi8(0x1f)),
        );
        let ok = _mm_or_si128(printable, _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\t' as i8)));
        _mm_movemask_epi8(ok) == 0xffff
    }
}

/// Append `name: value CRLF` when `name` is a non-empty token of at most [`MAX`] bytes and
/// `value` is at most [`MAX`] bytes without CR, LF or NUL; returns whether it did. On false
/// nothing was appended (the caller's byte-wise writer decides: drop the field, or write it
/// with the line breaks turned into spaces).
pub(super) fn push_short(out: &mut Vec<u8>, name: &[u8], value: &[u8]) -> bool {
    if name.is_empty() || name.len() > MAX || value.len() > MAX {
        return false;
    }
    let total = name.len() + value.len() + 4;
    out.reserve(total);
    let spare = out.spare_capacity_mut();
    if spare.len() < total {
        return false;
    }
    let dst = spare.as_mut_ptr().cast::<u8>();
    // SAFETY: `dst` has room for `total` bytes (checked above) and is the vector's spare
    // capacity, which no slice argument can overlap while `out` is borrowed mutably. The
    // length is raised only once every byte up to `total` has been written.
    unsafe {
        let (n0, n1) = copy(name, dst);
        if !(all_token(n0) && all_token(n1)) {
            return false;
        }
        dst.add(name.len())
            .cast::<[u8; 2]>()
            .write_unaligned(*b": ");
        let at = dst.add(name.len() + 2);
        if !value.is_empty() {
            let (v0, v1) = copy(value, at);
            if breaks_line(v0) || breaks_line(v1) {
                return false;
            }
        }
        at.add(value.len())
            .cast::<[u8; 2]>()
            .write_unaligned(*b"\r\n");
        out.set_len(out.len() + total);
    }
    true
}
