//! The `Host` field's grammar (RFC 9110 §7.2, RFC 3986 §3.2.2-3.2.3):
//! `uri-host [ ":" port ]`, where `uri-host` is a reg-name (which covers IPv4 addresses), or an
//! IP-literal in brackets. The value reaches backends (`X-Forwarded-Host`) and logs, so
//! anything else is refused before it can be mistaken for a path, a userinfo or a second host.

/// Whether `value` (already OWS-trimmed by the parser) is a valid `Host` field value.
///
/// An empty value is valid: RFC 9110 §7.2 has clients send one when the target URI has no
/// authority.
// KrakenD: Go's server (httpguts.ValidHostHeader) only checks that each byte is one a host
// may contain; it takes `a:b:c`, `[x`, `h:99999` or `h:port`. We check the structure too.
pub fn valid_host(value: &[u8]) -> bool {
    let (host, port) = match value.first() {
        Some(b'[') => {
            let Some(close) = memchr::memchr(b']', value) else {
                return false;
            };
            let literal = value.get(1..close).unwrap_or_default();
            if !ip_literal(literal) {
                return false;
            }
            match value.get(close + 1..).unwrap_or_default() {
                [] => return true,
                [b':', port @ ..] => (&[][..], Some(port)),
                _ => return false,
            }
        }
        _ => match memchr::memchr(b':', value) {
            Some(i) => (
                value.get(..i).unwrap_or_default(),
                value.get(i + 1..).map(|p| p as &[u8]),
            ),
            None => (value, None),
        },
    };
    reg_name(host) && port.is_none_or(valid_port)
}

/// `*DIGIT` at most 65535. Empty is allowed by the grammar (`host:` means the default port).
fn valid_port(port: &[u8]) -> bool {
    let mut n: u32 = 0;
    for &b in port {
        if !b.is_ascii_digit() {
            return false;
        }
        n = n * 10 + u32::from(b - b'0');
        if n > u32::from(u16::MAX) {
            return false;
        }
    }
    true
}

/// RFC 3986 unreserved.
const fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 sub-delims.
const fn sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// Bytes that stand for themselves in a reg-name (unreserved and sub-delims), as a table.
// Indexing runs at compile time only: an out-of-range index would fail the build.
#[allow(clippy::indexing_slicing)]
static PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = unreserved(b) || sub_delim(b);
        i += 1;
    }
    t
};

/// `reg-name = *( unreserved / pct-encoded / sub-delims )`; IPv4 addresses match it too.
/// Every request's Host goes through here: a name of plain bytes is settled by one branch-free
/// table pass, and only one with `%` (or a bad byte) takes the byte-by-byte walk.
fn reg_name(s: &[u8]) -> bool {
    let plain = s.iter().fold(true, |ok, &b| {
        ok & PLAIN.get(usize::from(b)).copied().unwrap_or(false)
    });
    plain || reg_name_escaped(s)
}

fn reg_name_escaped(s: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b == b'%' {
            let hex = |j: usize| s.get(j).is_some_and(|c| c.is_ascii_hexdigit());
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
            continue;
        }
        if !(unreserved(b) || sub_delim(b)) {
            return false;
        }
        i += 1;
    }
    true
}

/// The inside of `[...]`: an IPv6 address (no zone identifier) or `IPvFuture`.
fn ip_literal(s: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = s {
        // IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
        let Some(dot) = memchr::memchr(b'.', rest) else {
            return false;
        };
        let (version, tail) = (
            rest.get(..dot).unwrap_or_default(),
            rest.get(dot + 1..).unwrap_or_default(),
        );
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !tail.is_empty()
            && tail
                .iter()
                .all(|&b| unreserved(b) || sub_delim(b) || b == b':');
    }
    std::str::from_utf8(s).is_ok_and(|t| t.parse::<std::net::Ipv6Addr>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_addresses_and_ports_are_valid() {
        for ok in [
            "example.com",
            "example.com:8080",
            "EXAMPLE.com:0",
            "127.0.0.1",
            "127.0.0.1:65535",
            "[::1]",
            "[::1]:80",
            "[2001:db8::7]:443",
            "[v1.fe80::a+en1]",
            "xn--bcher-kva.example",
            "a_b~c-d",
            "h%41st",
            "sub!$&'()*+,;=",
            "h:",
            "",
            "localhost:00080",
        ] {
            assert!(valid_host(ok.as_bytes()), "{ok:?} should be valid");
        }
    }

    #[test]
    fn a_name_is_a_reg_name_exactly_when_each_byte_is_unreserved_or_a_sub_delim() {
        for b in 0..=255u8 {
            let want = unreserved(b) || sub_delim(b);
            assert_eq!(reg_name(&[b'h', b]), want, "byte {b}");
            assert_eq!(reg_name(&[b, b'h', b]), want, "byte {b}");
        }
    }

    #[test]
    fn bytes_and_shapes_outside_the_grammar_are_invalid() {
        for bad in [
            "exa mple.com",
            "example.com/path",
            "user@example.com",
            "example.com\t",
            "ex\x01ample",
            "ex\x7fample",
            "h:99999",
            "h:65536",
            "h:80x",
            "h:-1",
            "h: 80",
            "h:80:90",
            "::1",
            "[::1",
            "[::1]x",
            "[::1]:x",
            "[not-ip]",
            "[fe80::1%25eth0]",
            "[v.x]",
            "[v1.]",
            "h%4",
            "h%zz",
            "h?q",
            "h#f",
            "h\"",
            "h\\x",
            "héllo",
            "[]",
        ] {
            assert!(!valid_host(bad.as_bytes()), "{bad:?} should be invalid");
        }
    }
}
