//! base64url without padding (RFC 7515 §2), the only encoding JOSE uses. Decoding is strict:
//! no padding, no whitespace, no other alphabet, and unused trailing bits must be zero, so one
//! token has exactly one text (a cached token cannot be re-spelled to dodge the cache key).

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    } as u32)
}

/// Decode; None on any character outside the alphabet, a length of 1 mod 4, or non-zero
/// padding bits.
pub fn decode(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 2);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = (acc << 6) | value(c)?;
        }
        match chunk.len() {
            4 => out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]),
            3 => {
                if acc & 0b11 != 0 {
                    return None;
                }
                out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]);
            }
            2 => {
                if acc & 0b1111 != 0 {
                    return None;
                }
                out.push((acc >> 4) as u8);
            }
            _ => {}
        }
    }
    Some(out)
}

/// Encode without padding.
pub fn encode(bytes: &[u8], out: &mut String) {
    let sym = |i: u32| ALPHABET.get((i & 63) as usize).copied().unwrap_or(b'A') as char;
    for chunk in bytes.chunks(3) {
        let b = |i: usize| chunk.get(i).copied().unwrap_or(0) as u32;
        let acc = (b(0) << 16) | (b(1) << 8) | b(2);
        out.push(sym(acc >> 18));
        out.push(sym(acc >> 12));
        if chunk.len() > 1 {
            out.push(sym(acc >> 6));
        }
        if chunk.len() > 2 {
            out.push(sym(acc));
        }
    }
}

pub fn encode_string(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    encode(bytes, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length() {
        for n in 0..40u8 {
            let data: Vec<u8> = (0..n)
                .map(|i| i.wrapping_mul(37).wrapping_add(200))
                .collect();
            let e = encode_string(&data);
            assert!(!e.contains('='));
            assert_eq!(decode(e.as_bytes()).unwrap(), data, "{n}");
        }
    }

    #[test]
    fn rfc_4648_vectors_in_the_url_alphabet() {
        assert_eq!(encode_string(b"foobar"), "Zm9vYmFy");
        assert_eq!(encode_string(b"fo"), "Zm8");
        assert_eq!(encode_string(&[0xfb, 0xff]), "-_8");
        assert_eq!(decode(b"-_8").unwrap(), vec![0xfb, 0xff]);
    }

    #[test]
    fn padding_other_alphabets_and_stray_bits_are_refused() {
        assert_eq!(decode(b"Zm8="), None);
        assert_eq!(decode(b"+/8"), None);
        assert_eq!(decode(b"Zm9"), None, "non-zero trailing bits");
        assert_eq!(decode(b"Z"), None);
        assert_eq!(decode(b"Zm 8"), None);
    }
}
