//! Value formats inside martian blocks: base64 bodies (Go's JSON for `[]byte`) and the
//! `Set-Cookie` text of `cookie.Modifier` (Go's `http.Cookie.String()`).

use super::{flag, text};
use serde_json::{Map, Value};

/// Standard base64 with padding (Go's JSON encoding of `[]byte`).
pub(super) fn base64(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= val(*c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(bytes.get(1..4)?),
            3 => out.extend_from_slice(bytes.get(1..3)?),
            2 => out.extend_from_slice(bytes.get(1..2)?),
            _ => return None,
        }
    }
    Some(out)
}

/// `http.Cookie.String()` for a response's `Set-Cookie`.
pub(super) fn set_cookie(
    name: &str,
    value: &str,
    m: &Map<String, Value>,
    at: &str,
) -> Result<String, String> {
    let mut s = format!("{name}={value}");
    let path = text(m, "path", at)?;
    if !path.is_empty() {
        s.push_str("; Path=");
        s.push_str(&path);
    }
    let domain = text(m, "domain", at)?;
    if !domain.is_empty() {
        s.push_str("; Domain=");
        s.push_str(domain.trim_start_matches('.'));
    }
    let expires = text(m, "expires", at)?;
    if !expires.is_empty() {
        if let Some(t) = parse_time(&expires) {
            s.push_str("; Expires=");
            s.push_str(&httpdate::fmt_http_date(t));
        }
    }
    if let Some(age) = m.get("maxAge").and_then(Value::as_i64) {
        if age > 0 {
            s.push_str(&format!("; Max-Age={age}"));
        } else if age < 0 {
            s.push_str("; Max-Age=0");
        }
    }
    if flag(m, "httpOnly", at)? {
        s.push_str("; HttpOnly");
    }
    if flag(m, "secure", at)? {
        s.push_str("; Secure");
    }
    Ok(s)
}

/// An RFC 3339 time (Go's JSON for `time.Time`).
fn parse_time(s: &str) -> Option<std::time::SystemTime> {
    httpdate::parse_http_date(s).ok().or_else(|| {
        // YYYY-MM-DDTHH:MM:SSZ only.
        let b = s.as_bytes();
        if b.len() < 20 {
            return None;
        }
        let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u64>().ok();
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let days = days_from_civil(y as i64, mo as i64, d as i64);
        let secs = u64::try_from(days).ok()? * 86400 + h * 3600 + mi * 60 + se;
        Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
    })
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base64_decodes_padded_and_unpadded_text_and_refuses_other_bytes() {
        assert_eq!(base64("c2VudA==").unwrap(), b"sent");
        assert_eq!(base64("c2VudA").unwrap(), b"sent");
        assert_eq!(base64("YWJj").unwrap(), b"abc");
        assert_eq!(base64("").unwrap(), b"");
        assert!(base64("not base64!").is_none());
    }

    #[test]
    fn set_cookie_text_is_gos_cookie_string() {
        let m = json!({"path": "/", "domain": ".example.com", "maxAge": 60,
                       "httpOnly": true, "secure": true,
                       "expires": "2030-01-02T03:04:05Z"});
        let s = set_cookie("a", "b", m.as_object().unwrap(), "cookie.Modifier").unwrap();
        assert_eq!(
            s,
            "a=b; Path=/; Domain=example.com; Expires=Wed, 02 Jan 2030 03:04:05 GMT; \
             Max-Age=60; HttpOnly; Secure"
        );
    }
}
