//! `url_pattern` compiled once into literal pieces and placeholders, rendered per request.

/// One piece of a compiled url_pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Literal(String),
    /// `{name}`: an endpoint path parameter.
    Param(String),
    /// `{respN_a.b}`: a value from an earlier backend of a sequential endpoint.
    Resp(usize, String),
    /// `{JWT.claim}`.
    Jwt(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlTemplate {
    pieces: Vec<Piece>,
    /// Byte position (in rendered terms: piece index) where the literal query starts, if any.
    query_at: Option<usize>,
}

impl UrlTemplate {
    /// Compile a url_pattern (`/users/{id}/posts?limit={limit}`). A missing leading `/` is
    /// added, as KrakenD does.
    pub fn compile(pattern: &str) -> UrlTemplate {
        let mut pieces = Vec::new();
        let mut query_at = None;
        let mut lit = String::new();
        if !pattern.starts_with('/') {
            lit.push('/');
        }
        let mut rest = pattern;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest.get(open..).and_then(|r| r.find('}')).map(|c| c + open) else {
                break;
            };
            let before = rest.get(..open).unwrap_or("");
            let name = rest.get(open + 1..close).unwrap_or("");
            // KrakenD: a `{JWT.claim}` name may hold `:` and `/` (lura's `JWT\.([\w\-\.:/]+)`),
            // so URL-named claims (`{JWT.http://example.com/custom}`) are placeholders too.
            let jwt = name.starts_with("JWT.");
            if !name.chars().all(|c| {
                c.is_ascii_alphanumeric()
                    || matches!(c, '-' | '_' | '.')
                    || (jwt && matches!(c, ':' | '/'))
            }) || name.is_empty()
            {
                lit.push_str(rest.get(..=close).unwrap_or(""));
                rest = rest.get(close + 1..).unwrap_or("");
                continue;
            }
            lit.push_str(before);
            if query_at.is_none() && lit.contains('?') {
                query_at = Some(pieces.len());
            }
            if !lit.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut lit)));
            }
            pieces.push(classify(name));
            rest = rest.get(close + 1..).unwrap_or("");
        }
        lit.push_str(rest);
        if query_at.is_none() && lit.contains('?') {
            query_at = Some(pieces.len());
        }
        if !lit.is_empty() {
            pieces.push(Piece::Literal(lit));
        }
        UrlTemplate { pieces, query_at }
    }

    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// Names of the `{param}` placeholders.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Param(n) => Some(n.as_str()),
            _ => None,
        })
    }

    /// Names of the `{JWT.claim}` placeholders (the claim part).
    pub fn jwt_claims(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Jwt(c) => Some(c.as_str()),
            _ => None,
        })
    }

    /// Whether the pattern carries a literal query (`?a=b`).
    pub fn has_query(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Literal(l) if l.contains('?')))
    }

    /// Render into `out`, asking `value` for each placeholder. Values are inserted in decoded
    /// form and percent-encoded here, as Go's `url.URL.EscapedPath` does when lura sends them.
    pub fn render<'v>(
        &self,
        value: impl Fn(&Piece) -> Option<std::borrow::Cow<'v, str>>,
        out: &mut String,
    ) {
        for (i, piece) in self.pieces.iter().enumerate() {
            let in_query = self.query_at.is_some_and(|q| i >= q);
            match piece {
                Piece::Literal(l) => out.push_str(l),
                p => match value(p) {
                    Some(v) => escape_into(&v, in_query, out),
                    // KrakenD: lura rewrites `{x}` into the Go template key `{{.X}}` and
                    // leaves a key nothing fills (a `{respN_x}` the earlier response lacks,
                    // a `{JWT.x}` without a token) as it is: escaped in the path (Go's
                    // `EscapedPath`), raw in the query. Safer than an empty segment, which
                    // could name another resource (`/users//delete`).
                    None => {
                        let key = unfilled_key(p);
                        if in_query {
                            out.push_str(&key);
                        } else {
                            escape_into(&key, false, out);
                        }
                    }
                },
            }
        }
    }
}

/// lura's template key for a placeholder: `{{.` + the name with its first letter upper-cased
/// + `}}` (`{resp0_id}` -> `{{.Resp0_id}}`, `{JWT.sub}` -> `{{.JWT.sub}}`).
fn unfilled_key(p: &Piece) -> String {
    let name = match p {
        Piece::Literal(l) => return l.clone(),
        Piece::Param(n) => n.clone(),
        Piece::Resp(i, f) => format!("resp{i}_{f}"),
        Piece::Jwt(c) => format!("JWT.{c}"),
    };
    let mut chars = name.chars();
    let first: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    format!("{{{{.{first}{}}}}}", chars.as_str())
}

fn classify(name: &str) -> Piece {
    if let Some(claim) = name.strip_prefix("JWT.") {
        return Piece::Jwt(claim.to_string());
    }
    if let Some(rest) = name.strip_prefix("resp") {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let (Ok(n), Some(field)) = (
            digits.parse::<usize>(),
            rest.get(digits.len()..).and_then(|r| r.strip_prefix('_')),
        ) {
            return Piece::Resp(n, field.to_string());
        }
    }
    Piece::Param(name.to_string())
}

/// Percent-encode what may not appear raw in a path (or query) component. `/` stays a
/// separator in paths (Go re-parses the joined URL, so a decoded `/` splits segments).
pub fn escape_into(v: &str, in_query: bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in v.as_bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
                    | b'%'
            )
            || (in_query && b == b'?');
        if keep {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX.get((b >> 4) as usize).copied().unwrap_or(b'0') as char);
            out.push(HEX.get((b & 15) as usize).copied().unwrap_or(b'0') as char);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn render(t: &UrlTemplate, vals: &[(&str, &str)]) -> String {
        let mut out = String::new();
        t.render(
            |p| match p {
                Piece::Param(n) => vals
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| Cow::Owned(v.to_string())),
                Piece::Resp(i, f) => vals
                    .iter()
                    .find(|(k, _)| *k == format!("resp{i}_{f}"))
                    .map(|(_, v)| Cow::Owned(v.to_string())),
                _ => None,
            },
            &mut out,
        );
        out
    }

    #[test]
    fn params_are_substituted_in_path_and_literal_query() {
        let t = UrlTemplate::compile("/users/{id}/posts?limit={limit}&x=1");
        assert_eq!(
            render(&t, &[("id", "42"), ("limit", "5")]),
            "/users/42/posts?limit=5&x=1"
        );
        assert!(t.has_query());
        assert_eq!(t.params().collect::<Vec<_>>(), vec!["id", "limit"]);
    }

    #[test]
    fn missing_leading_slash_is_added() {
        let t = UrlTemplate::compile("users/{id}");
        assert_eq!(render(&t, &[("id", "7")]), "/users/7");
        assert!(!t.has_query());
    }

    #[test]
    fn decoded_values_are_escaped_for_the_wire() {
        let t = UrlTemplate::compile("/u/{id}");
        assert_eq!(render(&t, &[("id", "a b\"c")]), "/u/a%20b%22c");
    }

    #[test]
    fn sequential_and_jwt_placeholders_are_recognised() {
        let t = UrlTemplate::compile("/x/{resp0_user.id}/{JWT.sub}");
        assert_eq!(t.pieces().get(1), Some(&Piece::Resp(0, "user.id".into())));
        assert_eq!(t.pieces().get(3), Some(&Piece::Jwt("sub".into())));
        assert_eq!(
            render(&t, &[("resp0_user.id", "9")]),
            "/x/9/%7B%7B.JWT.sub%7D%7D"
        );
    }

    #[test]
    fn an_unfilled_placeholder_is_sent_as_luras_template_key() {
        let t = UrlTemplate::compile("/users/{resp0_id}/delete?who={resp0_id}");
        assert_eq!(
            render(&t, &[]),
            "/users/%7B%7B.Resp0_id%7D%7D/delete?who={{.Resp0_id}}"
        );
    }
}
