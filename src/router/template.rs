//! KrakenD endpoint templates (`/users/{id}`, `/file.{ext}` with `disable_rest`) -> segments,
//! rejecting what lura or gin would refuse or panic on.

use super::tree::Seg;

/// lura's placeholder names: `[a-zA-Z\-_0-9]+` (`endpointURLKeysPattern`).
fn is_rest_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// With `disable_rest` lura uses `simpleURLKeysPattern` (`[\w\-\.:/]+`); `:` is refused as a
/// colon and `/` cannot survive segment splitting, so `.` is the only extra character.
fn is_simple_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Placeholders `{name}` inside one segment: (start, end) byte offsets of each `{...}`.
fn placeholders(seg: &str, valid: fn(&str) -> bool) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(open) = seg.get(from..).and_then(|s| s.find('{')).map(|i| i + from) {
        let Some(close) = seg.get(open..).and_then(|s| s.find('}')).map(|i| i + open) else {
            break;
        };
        match seg.get(open + 1..close) {
            Some(name) if valid(name) => {
                found.push((open, close + 1));
                from = close + 1;
            }
            _ => from = open + 1,
        }
    }
    found
}

/// Parses a template into segments (the part after the leading `/`, split on `/`; an empty
/// segment is a trailing or doubled slash). `Err` is the reason, without the route name.
pub(crate) fn parse(path: &str, disable_rest: bool) -> Result<Vec<Seg>, String> {
    if path.contains(':') {
        // KrakenD: gin would read `:x` as its own parameter syntax.
        return Err("colons are not allowed in endpoint paths".to_string());
    }
    if let Some(i) = path.find('*') {
        if i + 1 != path.len() {
            return Err("a '*' is only allowed as the last character of the path".to_string());
        }
        // KrakenD: CE hands `/foo/*` to gin, which panics ("wildcards must be named with a
        // non-empty name"); wildcard endpoints are an Enterprise feature.
        return Err(
            "wildcard endpoints (a trailing '*') are KrakenD Enterprise only; CE's router rejects them"
                .to_string(),
        );
    }
    // lura's CleanPath: exactly one leading slash is ensured.
    let body = path.strip_prefix('/').unwrap_or(path);
    let raw: Vec<&str> = body.split('/').collect();
    let last = raw.len().saturating_sub(1);
    let mut segs = Vec::with_capacity(raw.len());
    for (i, seg) in raw.into_iter().enumerate() {
        let valid = if disable_rest {
            is_simple_name
        } else {
            is_rest_name
        };
        let found = placeholders(seg, valid);
        match found.as_slice() {
            [] => segs.push(Seg::Static(seg.to_string())),
            [(0, end)] if *end == seg.len() => {
                let name = seg.get(1..seg.len() - 1).unwrap_or_default();
                segs.push(Seg::Param(name.to_string()));
            }
            [(start, end)] if disable_rest && *end == seg.len() => {
                if i != last {
                    return Err(format!(
                        "the placeholder in '{seg}' must be in the last segment of the path"
                    ));
                }
                let prefix = seg.get(..*start).unwrap_or_default();
                let name = seg.get(start + 1..end - 1).unwrap_or_default();
                segs.push(Seg::PrefixParam {
                    prefix: prefix.to_string(),
                    name: name.to_string(),
                });
            }
            [(0, _)] if !disable_rest => {
                // KrakenD: `/{id}.json` becomes gin's `:id.json`, a parameter named "id.json".
                return Err(format!(
                    "the placeholder in '{seg}' must be a whole segment (set disable_rest for '/file.{{ext}}')"
                ));
            }
            [_] if disable_rest => {
                return Err(format!("the placeholder in '{seg}' must end its segment"));
            }
            // KrakenD: without disable_rest, `x{id}` is not a placeholder and stays literal.
            [_] => segs.push(Seg::Static(seg.to_string())),
            _ => {
                // gin: "only one wildcard per path segment is allowed".
                return Err(format!(
                    "only one placeholder per segment is allowed, has '{seg}'"
                ));
            }
        }
    }
    Ok(segs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(s: &str) -> Seg {
        Seg::Static(s.to_string())
    }

    #[test]
    fn whole_segment_placeholders_become_params() {
        assert_eq!(
            parse("/users/{id}/posts", false),
            Ok(vec![st("users"), Seg::Param("id".into()), st("posts")])
        );
        assert_eq!(parse("/", false), Ok(vec![st("")]));
        assert_eq!(parse("/a/", false), Ok(vec![st("a"), st("")]));
    }

    #[test]
    fn missing_leading_slash_is_added() {
        assert_eq!(
            parse("a/{b}", false),
            Ok(vec![st("a"), Seg::Param("b".into())])
        );
    }

    #[test]
    fn colons_and_stars_are_rejected() {
        assert!(parse("/a/:id", false).is_err_and(|e| e.contains("colons")));
        assert!(parse("/a/*/b", false).is_err_and(|e| e.contains("last character")));
        assert!(parse("/a/*", false).is_err_and(|e| e.contains("Enterprise")));
    }

    #[test]
    fn in_segment_placeholder_needs_disable_rest_and_the_last_segment() {
        assert!(parse("/file.{ext}", false).is_ok_and(|s| s == vec![st("file.{ext}")]));
        assert!(parse("/{id}.json", false).is_err_and(|e| e.contains("whole segment")));
        assert_eq!(
            parse("/file.{ext}", true),
            Ok(vec![Seg::PrefixParam {
                prefix: "file.".into(),
                name: "ext".into()
            }])
        );
        assert!(parse("/f.{x}/b", true).is_err_and(|e| e.contains("last segment")));
        assert!(parse("/{a}.{b}", true).is_err_and(|e| e.contains("only one")));
        assert!(parse("/{a}.json", true).is_err_and(|e| e.contains("end its segment")));
    }

    #[test]
    fn braces_that_are_not_placeholders_stay_literal() {
        assert_eq!(parse("/a/{}", false), Ok(vec![st("a"), st("{}")]));
        assert_eq!(parse("/a/{b c}", false), Ok(vec![st("a"), st("{b c}")]));
    }
}
