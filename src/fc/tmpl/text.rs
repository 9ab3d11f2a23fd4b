//! Text helpers of Sprig's functions: `expandenv`, `title`, base64.

use super::Env;
pub(crate) fn expand_env(s: &str, env: &Env) -> String {
    // os.ExpandEnv: $NAME and ${NAME}; an unset variable expands to nothing.
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b.get(i) == Some(&b'$') {
            if b.get(i + 1) == Some(&b'{') {
                if let Some(end) = s.get(i + 2..).and_then(|r| r.find('}')) {
                    let name = s.get(i + 2..i + 2 + end).unwrap_or("");
                    out.push_str(&(env.var)(name).unwrap_or_default());
                    i += end + 3;
                    continue;
                }
            } else {
                let mut j = i + 1;
                while b
                    .get(j)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    j += 1;
                }
                if j > i + 1 {
                    out.push_str(&(env.var)(s.get(i + 1..j).unwrap_or("")).unwrap_or_default());
                    i = j;
                    continue;
                }
            }
        }
        let ch = s
            .get(i..)
            .and_then(|r| r.chars().next())
            .unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    out
}

pub(crate) fn title(s: &str) -> String {
    let mut out = String::new();
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c.is_whitespace();
    }
    out
}

pub(crate) const B64: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn b64enc(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b0 = chunk.first().copied().unwrap_or(0) as u32;
        let b1 = chunk.get(1).copied().unwrap_or(0) as u32;
        let b2 = chunk.get(2).copied().unwrap_or(0) as u32;
        let n = (b0 << 16) | (b1 << 8) | b2;
        for (k, shift) in [18u32, 12, 6, 0].iter().enumerate() {
            if k <= chunk.len() {
                out.push(
                    B64.get(((n >> shift) & 63) as usize)
                        .map(|c| *c as char)
                        .unwrap_or('='),
                );
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub(crate) fn b64dec(s: &str) -> Result<String, String> {
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in s.trim_end_matches('=').bytes() {
        let v = B64
            .iter()
            .position(|x| *x == c)
            .ok_or("illegal base64 data")? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    // Sprig returns the decoded bytes as a string.
    Ok(String::from_utf8_lossy(&out).into_owned())
}
