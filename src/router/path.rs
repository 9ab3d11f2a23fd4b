//! Path text helpers with Go semantics: percent-decoding as `net/url` does it, escaping for a
//! `Location`, gin's `cleanPath`, Go's `path.Clean`, and the body `http.Redirect` writes.

use std::borrow::Cow;

/// gin's `cleanPath`: the canonical form of `p` (no `.`/`..` elements, no repeated slashes,
/// always rooted). A trailing slash is kept, and a final `/.` also yields one.
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return "/".to_string();
    }
    // gin: a trailing slash survives, and `.` as the last element counts as one; `..` does not.
    let trailing = (p.len() > 1 && p.ends_with('/')) || p == "." || p.ends_with("/.");
    let mut stack: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                stack.pop();
            }
            s => stack.push(s),
        }
    }
    let mut out = String::with_capacity(p.len() + 1);
    for s in &stack {
        out.push('/');
        out.push_str(s);
    }
    // An empty result is the root; a trailing slash is re-added only after a real element.
    if out.is_empty() || trailing {
        out.push('/');
    }
    out
}

/// Go's `path.Clean` (lexical, never keeps a trailing slash, `""` -> `"."`).
pub(crate) fn go_path_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut stack: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if stack.last().is_some_and(|s| *s != "..") {
                    stack.pop();
                } else if !rooted {
                    stack.push("..");
                }
            }
            s => stack.push(s),
        }
    }
    let joined = stack.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Go's `url.PathUnescape` / the path half of `url.ParseRequestURI`: `%XX` decoded, `+` kept.
/// The error is Go's `EscapeError` text: `invalid URL escape "%zz"`.
///
/// Go strings may hold any bytes; a decoded path that is not UTF-8 is converted lossily
/// (U+FFFD), which can only differ from KrakenD for parameter values.
pub(crate) fn unescape(s: &str) -> Result<Cow<'_, str>, String> {
    let bytes = s.as_bytes();
    if !bytes.contains(&b'%') {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'%' {
            out.push(b);
            i += 1;
            continue;
        }
        let hi = bytes.get(i + 1).copied().and_then(hex_val);
        let lo = bytes.get(i + 2).copied().and_then(hex_val);
        match (hi, lo) {
            (Some(h), Some(l)) => {
                out.push(h << 4 | l);
                i += 3;
            }
            _ => {
                // Go: EscapeError(s[i:i+3]) (shorter at the end of the string).
                let end = (i + 3).min(bytes.len());
                let bad = bytes.get(i..end).unwrap_or_default();
                return Err(format!("invalid URL escape {}", go_quote(bad)));
            }
        }
    }
    Ok(match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    })
}

/// Go's `strconv.Quote` for the few bytes of an escape error.
fn go_quote(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{b}' => out.push_str("\\v"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    out.push_str(&format!("\\x{:02x}", c as u32));
                }
                c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

/// Go's `url.escape(s, encodePath)`: what `URL.EscapedPath` yields for a changed path.
pub(crate) fn escape_path(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_'
                    | b'.'
                    | b'~'
                    | b'$'
                    | b'&'
                    | b'+'
                    | b','
                    | b'/'
                    | b':'
                    | b';'
                    | b'='
                    | b'@'
            );
        if keep {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(*HEX.get(usize::from(b >> 4)).unwrap_or(&b'0')));
            out.push(char::from(*HEX.get(usize::from(b & 15)).unwrap_or(&b'0')));
        }
    }
    out
}

/// Go's `hexEscapeNonASCII`, applied by `http.Redirect` to the `Location` value.
fn hex_escape_non_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b >= 0x80 {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// The `Location` gin sends: `req.URL.String()` after gin rewrote `URL.Path` to `new_path`,
/// then passed through `http.Redirect` (relative -> absolute, `path.Clean` keeping a trailing
/// slash, non-ASCII hex-escaped). `query` is the raw query; `Some("")` is a bare `?`.
pub fn redirect_location(new_path: &str, query: Option<&str>) -> String {
    let mut url = escape_path(new_path);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    // Go: url.Parse sees `//host/...` as an authority and then leaves the URL alone.
    if url.starts_with("//") {
        return hex_escape_non_ascii(&url);
    }
    if !url.starts_with('/') {
        // Go: make a relative path absolute with the directory of r.URL.Path (the new path).
        let dir = new_path
            .rfind('/')
            .and_then(|i| new_path.get(..=i))
            .unwrap_or("");
        url = format!("{dir}{url}");
    }
    let (p, q) = match url.find('?') {
        Some(i) => (url.get(..i).unwrap_or(""), url.get(i..).unwrap_or("")),
        None => (url.as_str(), ""),
    };
    let mut cleaned = go_path_clean(p);
    if p.ends_with('/') && !cleaned.ends_with('/') {
        cleaned.push('/');
    }
    cleaned.push_str(q);
    hex_escape_non_ascii(&cleaned)
}

/// Go's `htmlEscape` used by `http.Redirect`.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            c => out.push(c),
        }
    }
    out
}

/// Content type and body Go's `http.Redirect` writes for a **GET** redirect, byte for byte
/// (`fmt.Fprintln` of a line that already ends in `\n`, hence two newlines). A HEAD redirect
/// gets the same content type and no body; any other method gets neither.
pub fn redirect_body(status: u16, location: &str) -> (&'static str, String) {
    let text = match status {
        301 => "Moved Permanently",
        307 => "Temporary Redirect",
        302 => "Found",
        308 => "Permanent Redirect",
        _ => "",
    };
    (
        "text/html; charset=utf-8",
        format!("<a href=\"{}\">{}</a>.\n\n", html_escape(location), text),
    )
}

/// gin's `X-Forwarded-Prefix` sanitising in `redirectTrailingSlash`: `path.Clean`, then drop
/// everything but `[a-zA-Z0-9/-]`, then collapse repeated slashes. `None` when gin ignores it.
pub(crate) fn forwarded_prefix(header: &str) -> Option<String> {
    let cleaned = go_path_clean(header);
    if cleaned == "." {
        return None;
    }
    let mut out = String::with_capacity(cleaned.len());
    for c in cleaned.chars() {
        if !(c.is_ascii_alphanumeric() || c == '/' || c == '-') {
            continue;
        }
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_matches_gin_table() {
        let cases = [
            ("", "/"),
            ("/", "/"),
            ("abc", "/abc"),
            ("/abc/", "/abc/"),
            ("//abc//def//", "/abc/def/"),
            ("/abc/./def", "/abc/def"),
            ("/abc/.", "/abc/"),
            ("/abc/def/..", "/abc"),
            ("/abc/../../def", "/def"),
            ("/../abc", "/abc"),
            ("/abc/..", "/"),
            ("/..", "/"),
            (".", "/"),
        ];
        for (input, want) in cases {
            assert_eq!(clean_path(input), want, "clean_path({input:?})");
        }
    }

    #[test]
    fn go_path_clean_keeps_relative_dotdot() {
        assert_eq!(go_path_clean("a/../../b"), "../b");
        assert_eq!(go_path_clean("/a/b/"), "/a/b");
        assert_eq!(go_path_clean(""), ".");
    }

    #[test]
    fn unescape_decodes_and_reports_go_escape_errors() {
        assert_eq!(unescape("/a%20b").as_deref(), Ok("/a b"));
        assert_eq!(unescape("/a+b").as_deref(), Ok("/a+b"));
        assert_eq!(unescape("/a%2Fb").as_deref(), Ok("/a/b"));
        assert_eq!(
            unescape("/%zz"),
            Err("invalid URL escape \"%zz\"".to_string())
        );
        assert_eq!(
            unescape("/x%4"),
            Err("invalid URL escape \"%4\"".to_string())
        );
        assert_eq!(
            unescape("100%"),
            Err("invalid URL escape \"%\"".to_string())
        );
    }

    #[test]
    fn escape_path_keeps_path_safe_bytes_and_escapes_the_rest() {
        assert_eq!(escape_path("/a b/c?d#e%é"), "/a%20b/c%3Fd%23e%25%C3%A9");
        assert_eq!(escape_path("/a:b@c;d,e=f+g$h&i~"), "/a:b@c;d,e=f+g$h&i~");
    }

    #[test]
    fn redirect_location_keeps_query_and_cleans_like_http_redirect() {
        assert_eq!(
            redirect_location("/foo", Some("a=1&b=%20")),
            "/foo?a=1&b=%20"
        );
        assert_eq!(redirect_location("/foo/", Some("")), "/foo/?");
        assert_eq!(redirect_location("/a//b/", None), "/a/b/");
        assert_eq!(redirect_location("/x", Some("q=é")), "/x?q=%c3%a9");
    }

    #[test]
    fn redirect_body_matches_go_http_redirect() {
        let (ct, body) = redirect_body(301, "/foo?a=1&b=2");
        assert_eq!(ct, "text/html; charset=utf-8");
        assert_eq!(
            body,
            "<a href=\"/foo?a=1&amp;b=2\">Moved Permanently</a>.\n\n"
        );
    }

    #[test]
    fn forwarded_prefix_is_sanitised_as_gin_does() {
        assert_eq!(forwarded_prefix(""), None);
        assert_eq!(forwarded_prefix("/api/"), Some("/api".to_string()));
        assert_eq!(forwarded_prefix("/a$b//c"), Some("/ab/c".to_string()));
    }
}
