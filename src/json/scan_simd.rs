//! Block masks for the scanner (scan.rs): one bit per byte of a 16- or 32-byte block, by SSE2
//! (part of x86-64 itself) and AVX2 where the build targets it, with portable versions for
//! other targets that the tests also use as the reference.

/// One bit per JSON whitespace byte of a 32-byte block: a table lookup on the low nibble gives
/// the only whitespace byte with that nibble (or 0, which no byte with that nibble equals), and
/// one compare checks it.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[inline(always)]
pub(super) fn space32(block: &[u8; 32]) -> u32 {
    use std::arch::x86_64::{
        _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_setr_epi8,
        _mm256_shuffle_epi8,
    };
    // SAFETY: this is compiled only when the target has AVX2 (`cfg(target_feature)`); the
    // unaligned load reads exactly the 32 bytes `block` refers to.
    unsafe {
        let v = _mm256_loadu_si256(block.as_ptr().cast());
        // Per 128-bit lane: index = low nibble; bytes >= 0x80 look up 0, which they never equal.
        #[rustfmt::skip]
        let table = _mm256_setr_epi8(
            0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0x09, 0x0A, 0, 0, 0x0D, 0, 0,
            0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0x09, 0x0A, 0, 0, 0x0D, 0, 0,
        );
        let expected = _mm256_shuffle_epi8(table, v);
        _mm256_movemask_epi8(_mm256_cmpeq_epi8(expected, v)) as u32
    }
}

// Block masks: one bit per byte (bit k for byte k). "Special" bytes end a fast string scan: `"`,
// `\`, a control character or a non-ASCII byte. The 16-byte versions use SSE2, part of x86-64
// itself; the 32-byte ones AVX2 where the build has it (the release build targets x86-64-v3),
// else two 16-byte halves. The portable versions are the reference the tests compare with.

/// The special bytes of a 16-byte block, its non-ASCII bytes and its quotes. Each caller keeps
/// two of the three; inlined, the unused one is never computed.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn classes16(block: &[u8; 16]) -> [u32; 3] {
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
        let special = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, slash), low)) as u32;
        // The sign bits are the non-ASCII bytes: no compare needed.
        [
            special,
            _mm_movemask_epi8(v) as u32,
            _mm_movemask_epi8(quote) as u32,
        ]
    }
}

/// The special bytes of a 16-byte block, and the non-ASCII ones alone.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn masks16(block: &[u8; 16]) -> (u32, u32) {
    let [special, high, _] = classes16(block);
    (special, high)
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(super) fn masks16(block: &[u8; 16]) -> (u32, u32) {
    let (special, _) = masks16_portable(block);
    let mut high = 0u32;
    for (k, &b) in block.iter().enumerate() {
        if b >= 0x80 {
            high |= 1 << k;
        }
    }
    (special, high)
}

/// The special bytes of a 16-byte block, and the quotes alone.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn masks16_quote(block: &[u8; 16]) -> (u32, u32) {
    let [special, _, quote] = classes16(block);
    (special, quote)
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(super) fn masks16_quote(block: &[u8; 16]) -> (u32, u32) {
    masks16_portable(block)
}

/// Reference masks, byte by byte: the special bytes and the quotes.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
pub(super) fn masks16_portable(block: &[u8; 16]) -> (u32, u32) {
    let (mut special, mut quote) = (0u32, 0u32);
    for (k, &b) in block.iter().enumerate() {
        if b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b) {
            special |= 1 << k;
        }
        if b == b'"' {
            quote |= 1 << k;
        }
    }
    (special, quote)
}

/// [`classes16`] for a 32-byte block, by AVX2.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[inline(always)]
fn classes32(block: &[u8; 32]) -> [u32; 3] {
    use std::arch::x86_64::{
        _mm256_cmpeq_epi8, _mm256_cmpgt_epi8, _mm256_loadu_si256, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_set1_epi8,
    };
    // SAFETY: this is compiled only when the target has AVX2 (`cfg(target_feature)`); the
    // unaligned load reads exactly the 32 bytes `block` refers to.
    unsafe {
        let v = _mm256_loadu_si256(block.as_ptr().cast());
        let quote = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'"' as i8));
        let slash = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'\\' as i8));
        let low = _mm256_cmpgt_epi8(_mm256_set1_epi8(0x20), v);
        let special = _mm256_or_si256(_mm256_or_si256(quote, slash), low);
        [
            _mm256_movemask_epi8(special) as u32,
            _mm256_movemask_epi8(v) as u32,
            _mm256_movemask_epi8(quote) as u32,
        ]
    }
}

/// The special bytes of a 32-byte block, and the non-ASCII ones alone: [`masks16`] doubled.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[inline(always)]
pub(super) fn masks32(block: &[u8; 32]) -> (u32, u32) {
    let [special, high, _] = classes32(block);
    (special, high)
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "avx2")))]
#[inline(always)]
pub(super) fn masks32(block: &[u8; 32]) -> (u32, u32) {
    halves(block, masks16)
}

/// The special bytes of a 32-byte block, and the quotes alone: [`masks16_quote`] doubled.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[inline(always)]
pub(super) fn masks32_quote(block: &[u8; 32]) -> (u32, u32) {
    let [special, _, quote] = classes32(block);
    (special, quote)
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "avx2")))]
#[inline(always)]
pub(super) fn masks32_quote(block: &[u8; 32]) -> (u32, u32) {
    halves(block, masks16_quote)
}

/// A 32-byte mask pair from two 16-byte ones: the build without AVX2, and the tests.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "avx2"), allow(dead_code))]
#[inline(always)]
pub(super) fn halves(block: &[u8; 32], masks: impl Fn(&[u8; 16]) -> (u32, u32)) -> (u32, u32) {
    let (lo, hi) = block.split_at(16);
    let half = |b: &[u8]| <&[u8; 16]>::try_from(b).map_or((u32::MAX, 0), &masks);
    let (lo_a, lo_b) = half(lo);
    let (hi_a, hi_b) = half(hi);
    (lo_a | hi_a << 16, lo_b | hi_b << 16)
}

/// One bit per ASCII digit of a 16-byte block.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn digits16(block: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_set1_epi8,
        _mm_sub_epi8,
    };
    // SAFETY: SSE2 is always available on x86_64; the unaligned load reads exactly the 16
    // bytes `block` refers to.
    unsafe {
        let v = _mm_loadu_si128(block.as_ptr().cast());
        // A digit is 0..=9 after subtracting '0' (wrapping), as an unsigned byte.
        let t = _mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8));
        let digit = _mm_cmpeq_epi8(_mm_min_epu8(t, _mm_set1_epi8(9)), t);
        _mm_movemask_epi8(digit) as u32
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(super) fn digits16(block: &[u8; 16]) -> u32 {
    let mut bits = 0u32;
    for (k, b) in block.iter().enumerate() {
        if b.is_ascii_digit() {
            bits |= 1 << k;
        }
    }
    bits
}
