//! HPACK (RFC 7541) for the OTLP/gRPC client: the encoder sends every field as a literal
//! without indexing (legal, and it keeps no state); the decoder reads what a collector sends
//! (indexed fields, the dynamic table, Huffman strings), enough to find `:status` and
//! `grpc-status`. Bounded: the dynamic table holds at most the 4,096 bytes we allow, strings
//! are at most the header block's length.

use super::hpack_tables::{HUFFMAN, STATIC};
use std::collections::{HashMap, VecDeque};
use std::sync::OnceLock;

/// Our SETTINGS_HEADER_TABLE_SIZE (the default): the most the peer's table may hold.
pub const TABLE_MAX: usize = 4096;

/// Append `name: value` as a literal field without indexing, with a new name.
pub fn encode(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0);
    int(out, 0, 7, name.len());
    out.extend_from_slice(name.as_bytes());
    int(out, 0, 7, value.len());
    out.extend_from_slice(value.as_bytes());
}

/// An integer with an `n`-bit prefix, the byte's other bits being `flags`.
fn int(out: &mut Vec<u8>, flags: u8, n: u32, v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(flags | v as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = v - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// The decoder's state for one connection: its dynamic table.
pub struct Decoder {
    table: VecDeque<(String, String)>,
    size: usize,
    max: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max: TABLE_MAX,
        }
    }
}

type Fields = Vec<(String, String)>;

impl Decoder {
    /// Decode one whole header block.
    pub fn decode(&mut self, mut b: &[u8]) -> Result<Fields, String> {
        let mut out = Vec::new();
        while let Some(&first) = b.first() {
            if first & 0x80 != 0 {
                let i = read_int(&mut b, 7)?;
                out.push(self.get(i)?);
            } else if first & 0xc0 == 0x40 {
                let (n, v) = self.literal(&mut b, 6)?;
                self.insert(n.clone(), v.clone());
                out.push((n, v));
            } else if first & 0xe0 == 0x20 {
                let size = read_int(&mut b, 5)?;
                if size > TABLE_MAX {
                    return Err("HPACK table size update above our limit".into());
                }
                self.max = size;
                self.evict();
            } else {
                // Without indexing (0000) or never indexed (0001).
                out.push(self.literal(&mut b, 4)?);
            }
        }
        Ok(out)
    }

    fn literal(&self, b: &mut &[u8], prefix: u32) -> Result<(String, String), String> {
        let i = read_int(b, prefix)?;
        let name = if i == 0 { read_str(b)? } else { self.get(i)?.0 };
        Ok((name, read_str(b)?))
    }

    fn get(&self, i: usize) -> Result<(String, String), String> {
        if i == 0 {
            return Err("HPACK index 0".into());
        }
        if let Some((n, v)) = STATIC.get(i - 1) {
            return Ok((n.to_string(), v.to_string()));
        }
        self.table
            .get(i - 1 - STATIC.len())
            .cloned()
            .ok_or_else(|| format!("HPACK index {i} out of the table"))
    }

    fn insert(&mut self, n: String, v: String) {
        let size = n.len() + v.len() + 32;
        if size > self.max {
            // An entry larger than the table empties it (RFC 7541 §4.4).
            self.table.clear();
            self.size = 0;
            return;
        }
        self.size += size;
        self.table.push_front((n, v));
        self.evict();
    }

    fn evict(&mut self) {
        while self.size > self.max {
            match self.table.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + 32,
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }
}

fn read_int(b: &mut &[u8], n: u32) -> Result<usize, String> {
    let (&first, rest) = b.split_first().ok_or("HPACK: truncated integer")?;
    *b = rest;
    let max = (1usize << n) - 1;
    let mut v = usize::from(first) & max;
    if v < max {
        return Ok(v);
    }
    let mut shift = 0u32;
    loop {
        let (&c, rest) = b.split_first().ok_or("HPACK: truncated integer")?;
        *b = rest;
        if shift > 21 {
            return Err("HPACK: integer too large".into());
        }
        v += usize::from(c & 0x7f) << shift;
        shift += 7;
        if c & 0x80 == 0 {
            return Ok(v);
        }
    }
}

fn read_str(b: &mut &[u8]) -> Result<String, String> {
    let huffman = b.first().is_some_and(|c| c & 0x80 != 0);
    let len = read_int(b, 7)?;
    let (s, rest) = b.split_at_checked(len).ok_or("HPACK: truncated string")?;
    *b = rest;
    let bytes = if huffman { unhuffman(s)? } else { s.to_vec() };
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// (bit length, code) → symbol, built once.
fn codes() -> &'static HashMap<(u8, u32), u16> {
    static CODES: OnceLock<HashMap<(u8, u32), u16>> = OnceLock::new();
    CODES.get_or_init(|| {
        HUFFMAN
            .iter()
            .enumerate()
            .map(|(sym, (code, len))| ((*len, *code), sym as u16))
            .collect()
    })
}

/// Decode a Huffman string: codes of 5 to 30 bits, then at most 7 bits of EOS's prefix (all
/// ones) as padding.
fn unhuffman(s: &[u8]) -> Result<Vec<u8>, String> {
    let codes = codes();
    let mut out = Vec::with_capacity(s.len() * 8 / 5);
    let (mut code, mut len) = (0u32, 0u8);
    for byte in s {
        for i in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> i) & 1);
            len += 1;
            if len < 5 {
                continue;
            }
            match codes.get(&(len, code)) {
                Some(256) => return Err("HPACK: EOS inside a string".into()),
                Some(sym) => {
                    out.push(*sym as u8);
                    code = 0;
                    len = 0;
                }
                None if len >= 30 => return Err("HPACK: bad Huffman code".into()),
                None => {}
            }
        }
    }
    // Padding: fewer than 8 bits, all ones.
    if len >= 8 || code != (1u32 << len) - 1 {
        return Err("HPACK: bad Huffman padding".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_rfc_7541_examples_with_huffman_and_the_dynamic_table() {
        // RFC 7541 C.4.1 and C.4.2: requests with Huffman strings and indexing.
        let hex = |s: &str| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect::<Vec<u8>>()
        };
        let mut d = Decoder::default();
        let first = d
            .decode(&hex("828684418cf1e3c2e5f23a6ba0ab90f4ff"))
            .unwrap();
        assert_eq!(
            first,
            vec![
                (":method".into(), "GET".into()),
                (":scheme".into(), "http".into()),
                (":path".into(), "/".into()),
                (":authority".into(), "www.example.com".into()),
            ]
        );
        let second = d.decode(&hex("828684be5886a8eb10649cbf")).unwrap();
        assert_eq!(second[3], (":authority".into(), "www.example.com".into()));
        assert_eq!(second[4], ("cache-control".into(), "no-cache".into()));
    }

    #[test]
    fn what_we_encode_decodes() {
        let mut out = Vec::new();
        encode(&mut out, ":path", &"x".repeat(300));
        encode(&mut out, "te", "trailers");
        let f = Decoder::default().decode(&out).unwrap();
        assert_eq!(f[0].1.len(), 300);
        assert_eq!(f[1], ("te".into(), "trailers".into()));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &[0xffu8, 0xff, 0xff, 0xff, 0xff, 0xff][..],
            &[0x00, 0x85, 0xff],
            &[0x80],
            &[0x41],
        ] {
            assert!(Decoder::default().decode(bad).is_err(), "{bad:?}");
        }
    }
}
