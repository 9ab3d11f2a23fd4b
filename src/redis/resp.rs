//! RESP2, the Redis wire format, sans-io: [`parse`] takes the bytes read so far and returns a
//! whole reply and how many bytes it used, or `None` when more bytes are needed; [`encode`]
//! writes a command as an array of bulk strings.
//!
//! The server is trusted as far as being Redis, not as far as its bytes: a proxy in between,
//! a wrong port or a bug must give an error, never a panic or an unbounded allocation. Every
//! length is checked against a limit before anything is reserved, and nesting is bounded so a
//! stream of `*1\r\n*1\r\n...` cannot exhaust the stack.

/// One reply from Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Simple(String),
    /// `-ERR message`: the server refused the command (not a transport failure).
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$3\r\nabc`; `None` is the null bulk string `$-1`.
    Bulk(Option<Vec<u8>>),
    /// `*2\r\n...`; `None` is the null array `*-1`.
    Array(Option<Vec<Reply>>),
}

/// Why bytes are not a RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// The first byte of a reply is not one of `+ - : $ *`.
    UnknownType(u8),
    /// A length or integer is not a decimal number that fits.
    BadNumber,
    /// A line is not terminated by CRLF where one must be (bulk payload, or a bare CR/LF).
    BadTerminator,
    /// A simple string or error line is not UTF-8.
    NotUtf8,
    /// A length, a line or the nesting exceeds [`Limits`].
    TooLarge(&'static str),
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtocolError::UnknownType(b) => write!(f, "unknown reply type byte 0x{b:02x}"),
            ProtocolError::BadNumber => f.write_str("malformed number"),
            ProtocolError::BadTerminator => f.write_str("missing CRLF terminator"),
            ProtocolError::NotUtf8 => f.write_str("status line is not UTF-8"),
            ProtocolError::TooLarge(what) => write!(f, "{what} exceeds the limit"),
        }
    }
}

/// Bounds on what a reply may claim. Our replies are tiny (an integer, `OK`, a SHA); the
/// defaults leave room for `INFO`-sized answers and nothing more.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_bulk: usize,
    pub max_array: usize,
    pub max_line: usize,
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk: 512 * 1024,
            max_array: 1024,
            max_line: 64 * 1024,
            max_depth: 8,
        }
    }
}

/// Parse one reply from the start of `buf`. `Ok(None)`: incomplete, read more and call again
/// with the longer buffer. `Ok(Some((reply, used)))`: `used` bytes form the reply.
pub fn parse(buf: &[u8], limits: &Limits) -> Result<Option<(Reply, usize)>, ProtocolError> {
    parse_at(buf, 0, limits, 0)
}

fn parse_at(
    buf: &[u8],
    pos: usize,
    limits: &Limits,
    depth: usize,
) -> Result<Option<(Reply, usize)>, ProtocolError> {
    if depth > limits.max_depth {
        return Err(ProtocolError::TooLarge("nesting depth"));
    }
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    let Some((line, after)) = line_at(buf, pos + 1, limits)? else {
        return Ok(None);
    };
    match kind {
        b'+' => Ok(Some((Reply::Simple(utf8(line)?), after))),
        b'-' => Ok(Some((Reply::Error(utf8(line)?), after))),
        b':' => Ok(Some((Reply::Integer(number(line)?), after))),
        b'$' => {
            let len = number(line)?;
            if len == -1 {
                return Ok(Some((Reply::Bulk(None), after)));
            }
            let len = usize::try_from(len).map_err(|_| ProtocolError::BadNumber)?;
            if len > limits.max_bulk {
                return Err(ProtocolError::TooLarge("bulk string length"));
            }
            let end = after + len;
            let Some(tail) = buf.get(end..end + 2) else {
                return Ok(None);
            };
            if tail != b"\r\n" {
                return Err(ProtocolError::BadTerminator);
            }
            let data = buf.get(after..end).ok_or(ProtocolError::BadTerminator)?;
            Ok(Some((Reply::Bulk(Some(data.to_vec())), end + 2)))
        }
        b'*' => {
            let len = number(line)?;
            if len == -1 {
                return Ok(Some((Reply::Array(None), after)));
            }
            let len = usize::try_from(len).map_err(|_| ProtocolError::BadNumber)?;
            if len > limits.max_array {
                return Err(ProtocolError::TooLarge("array length"));
            }
            // Each element takes at least 3 bytes (`:0\r\n` is 4), so a claimed length cannot
            // reserve more than the bytes already read justify.
            let mut items = Vec::with_capacity(len.min(buf.len().saturating_sub(after) / 3));
            let mut at = after;
            for _ in 0..len {
                match parse_at(buf, at, limits, depth + 1)? {
                    Some((item, next)) => {
                        items.push(item);
                        at = next;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Reply::Array(Some(items)), at)))
        }
        other => Err(ProtocolError::UnknownType(other)),
    }
}

/// The line starting at `pos` up to (not including) CRLF, and the position after the CRLF.
fn line_at<'a>(
    buf: &'a [u8],
    pos: usize,
    limits: &Limits,
) -> Result<Option<(&'a [u8], usize)>, ProtocolError> {
    let rest = buf.get(pos..).unwrap_or_default();
    match memchr::memchr(b'\n', rest) {
        Some(nl) => {
            let line = rest.get(..nl).unwrap_or_default();
            if nl > limits.max_line {
                return Err(ProtocolError::TooLarge("line length"));
            }
            let Some(line) = line.strip_suffix(b"\r") else {
                return Err(ProtocolError::BadTerminator);
            };
            if memchr::memchr(b'\r', line).is_some() {
                return Err(ProtocolError::BadTerminator);
            }
            Ok(Some((line, pos + nl + 1)))
        }
        None if rest.len() > limits.max_line => Err(ProtocolError::TooLarge("line length")),
        None => Ok(None),
    }
}

fn utf8(line: &[u8]) -> Result<String, ProtocolError> {
    std::str::from_utf8(line)
        .map(str::to_owned)
        .map_err(|_| ProtocolError::NotUtf8)
}

/// A RESP integer: optional `-`, then 1 to 19 digits, fitting in i64. `+5`, ` 5`, `` are errors.
fn number(line: &[u8]) -> Result<i64, ProtocolError> {
    let digits = line.strip_prefix(b"-").unwrap_or(line);
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ProtocolError::BadNumber);
    }
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(ProtocolError::BadNumber)
}

/// Append a command (`*N` array of bulk strings) to `out`.
pub fn encode(args: &[&[u8]], out: &mut Vec<u8>) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for arg in args {
        out.push(b'$');
        out.extend_from_slice(itoa::Buffer::new().format(arg.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Result<Option<(Reply, usize)>, ProtocolError> {
        parse(bytes, &Limits::default())
    }

    fn whole(bytes: &[u8]) -> Reply {
        let (reply, used) = one(bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len(), "the reply uses every byte of {bytes:?}");
        reply
    }

    #[test]
    fn each_reply_type_parses() {
        assert_eq!(whole(b"+OK\r\n"), Reply::Simple("OK".into()));
        assert_eq!(
            whole(b"-NOSCRIPT No matching script\r\n"),
            Reply::Error("NOSCRIPT No matching script".into())
        );
        assert_eq!(whole(b":-42\r\n"), Reply::Integer(-42));
        assert_eq!(
            whole(b"$3\r\na\r\n\r\n"),
            Reply::Bulk(Some(b"a\r\n".to_vec()))
        );
        assert_eq!(whole(b"$0\r\n\r\n"), Reply::Bulk(Some(Vec::new())));
        assert_eq!(whole(b"$-1\r\n"), Reply::Bulk(None));
        assert_eq!(whole(b"*-1\r\n"), Reply::Array(None));
        assert_eq!(
            whole(b"*2\r\n$10\r\n1733500000\r\n$6\r\n123456\r\n"),
            Reply::Array(Some(vec![
                Reply::Bulk(Some(b"1733500000".to_vec())),
                Reply::Bulk(Some(b"123456".to_vec())),
            ]))
        );
        assert_eq!(
            whole(b"*2\r\n*1\r\n:1\r\n+x\r\n"),
            Reply::Array(Some(vec![
                Reply::Array(Some(vec![Reply::Integer(1)])),
                Reply::Simple("x".into())
            ]))
        );
    }

    #[test]
    fn a_reply_followed_by_another_uses_only_its_own_bytes() {
        let (reply, used) = one(b":1\r\n:2\r\n").unwrap().unwrap();
        assert_eq!((reply, used), (Reply::Integer(1), 4));
    }

    #[test]
    fn every_proper_prefix_of_a_reply_asks_for_more_bytes() {
        let full: &[u8] = b"*3\r\n$5\r\nhello\r\n:7\r\n*1\r\n-ERR x\r\n";
        for cut in 0..full.len() {
            assert_eq!(one(&full[..cut]), Ok(None), "prefix of {cut} bytes");
        }
        assert!(one(full).unwrap().is_some());
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let cases: &[&[u8]] = &[
            b"?x\r\n",                    // unknown type
            b":\r\n",                     // empty integer
            b":12a\r\n",                  // not a digit
            b":+5\r\n",                   // sign Redis never sends
            b": 5\r\n",                   // space
            b":99999999999999999999\r\n", // overflows i64
            b":-\r\n",                    // lone minus
            b"$-2\r\n",                   // negative length other than -1
            b"*-5\r\n",                   // negative count other than -1
            b"$3\r\nabcd\r\n",            // payload longer than its length
            b"$3\r\nab\r\n\r\n",          // payload with the CRLF in the wrong place
            b"+OK\n",                     // bare LF
            b"+O\rK\r\n",                 // CR inside a line
            b"+\xff\xfe\r\n",             // not UTF-8
            b"*1\r\n?\r\n",               // bad element inside an array
        ];
        for case in cases {
            assert!(
                one(case).is_err(),
                "{:?} must be refused",
                String::from_utf8_lossy(case)
            );
        }
    }

    #[test]
    fn claimed_sizes_beyond_the_limits_are_refused_before_reading_them() {
        assert_eq!(
            one(b"$999999999999\r\n"),
            Err(ProtocolError::TooLarge("bulk string length"))
        );
        assert_eq!(
            one(b"*1000000\r\n"),
            Err(ProtocolError::TooLarge("array length"))
        );
        let long_line = [b'+'; 70 * 1024];
        assert_eq!(one(&long_line), Err(ProtocolError::TooLarge("line length")));
        let deep = b"*1\r\n".repeat(100);
        assert_eq!(one(&deep), Err(ProtocolError::TooLarge("nesting depth")));
    }

    #[test]
    fn random_bytes_never_panic() {
        // A cheap deterministic fuzz: every byte string from a small xorshift stream, and
        // every mutation of a valid reply, must parse to something or fail cleanly.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"+-:$*0123456789\r\n-aZ";
        for _ in 0..20_000 {
            let mut len = 0;
            let mut buf = [0u8; 24];
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = alphabet[(x % alphabet.len() as u64) as usize];
                len += 1;
                if x % 29 == 0 {
                    break;
                }
            }
            let _ = one(&buf[..len]);
        }
        let valid = b"*2\r\n$3\r\nabc\r\n:12\r\n".to_vec();
        for i in 0..valid.len() {
            for v in [0u8, b'\r', b'\n', b'-', b'9', b'*'] {
                let mut m = valid.clone();
                m[i] = v;
                let _ = one(&m);
            }
        }
    }

    #[test]
    fn commands_encode_as_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode(&[b"EVALSHA", b"ab", b"1", b""], &mut out);
        assert_eq!(
            out,
            b"*4\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n$0\r\n\r\n"
        );
        let (reply, _) = one(&out).unwrap().unwrap();
        assert!(matches!(reply, Reply::Array(Some(ref v)) if v.len() == 4));
    }
}
