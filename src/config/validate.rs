//! KrakenD's startup rules for single values (endpoint paths, methods, hosts, url_pattern
//! placeholders), as pure functions. The decoder calls them with the value's position.

/// Methods an endpoint may declare.
// KrakenD: CE's router only registers GET, POST, PUT, PATCH and DELETE and skips other
// endpoints with a log line. We also serve HEAD and OPTIONS, which users ask for; anything else
// is rejected at load instead of being silently skipped.
pub const ENDPOINT_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// First path segments KrakenD keeps for itself.
// KrakenD: lura's `Init` refuses these three. The schema also lists `/__stats` and
// `/__catchall`, but CE serves endpoints there (its stats listen on another port and the
// catch-all is Enterprise), so we do too.
const RESERVED: &[&str] = &["__debug", "__echo", "__health"];

fn is_param_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The `{...}` placeholders of a template, in order (the text between the braces).
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = rest.get(open + 1..).unwrap_or_default();
        let Some(close) = after.find('}') else { break };
        out.push(after.get(..close).unwrap_or_default());
        rest = after.get(close + 1..).unwrap_or_default();
    }
    out
}

/// Check an endpoint path (already with its leading `/`).
pub fn check_endpoint_path(path: &str, disable_rest: bool) -> Result<(), String> {
    if path.contains(':') {
        return Err(format!(
            "invalid endpoint {path:?}: ':' is not allowed in paths (write parameters as {{name}})"
        ));
    }
    if let Some(i) = path.find('*') {
        if i + 1 != path.len() {
            return Err(format!(
                "invalid endpoint {path:?}: '*' is only allowed as the last character"
            ));
        }
    }
    let first = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    if RESERVED.contains(&first) {
        return Err(format!(
            "endpoint {path:?} uses the reserved path /{first} (KrakenD refuses it too: it \
             keeps /__debug, /__echo and /__health for itself)"
        ));
    }
    let mut non_rest = 0;
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        let opens = seg.matches('{').count();
        let closes = seg.matches('}').count();
        if opens != closes || placeholders(seg).len() != opens {
            return Err(format!(
                "invalid endpoint {path:?}: unbalanced '{{' or '}}' in segment {seg:?}"
            ));
        }
        for name in placeholders(seg) {
            if !is_param_name(name) {
                return Err(format!(
                    "invalid endpoint {path:?}: parameter name {name:?} may only contain \
                     letters, digits, '-' and '_'"
                ));
            }
        }
        if opens == 0 {
            continue;
        }
        let whole = opens == 1 && seg.starts_with('{') && seg.ends_with('}');
        if whole {
            continue;
        }
        if !disable_rest {
            return Err(format!(
                "invalid endpoint {path:?}: parameter in {seg:?} must be a whole path segment \
                 (set \"disable_rest\": true at the root to allow it)"
            ));
        }
        // KrakenD: with disable_rest only one non-RESTful placeholder, ending the path.
        non_rest += opens;
        if non_rest > 1 || i != last || !seg.ends_with('}') {
            return Err(format!(
                "invalid endpoint {path:?}: with disable_rest only one parameter may sit inside a \
                 segment, and it must end the path"
            ));
        }
    }
    Ok(())
}

/// The parameter names of an (already valid) endpoint path.
pub fn endpoint_params(path: &str) -> Vec<&str> {
    placeholders(path)
}

/// The same route for the router: parameter names erased (`/a/{x}` == `/a/{y}`).
pub fn route_shape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

/// What a url_pattern placeholder refers to.
#[derive(Debug, PartialEq, Eq)]
pub enum Placeholder<'a> {
    Param(&'a str),
    /// `{resp0_field}`: a value from a previous backend (sequential proxy).
    Sequential,
    /// `{JWT.claim}`: needs `auth/validator` on the endpoint.
    Jwt,
}

/// Classify one url_pattern placeholder.
pub fn classify_placeholder(name: &str) -> Placeholder<'_> {
    // KrakenD: lura `sequentialParamsPattern` = `^(resp[\d]+_.+)?(JWT\.([\w\-\.:/]+))?$`.
    if let Some(rest) = name.strip_prefix("resp") {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        let tail = rest.get(digits..).unwrap_or_default();
        if digits > 0 && tail.len() > 1 && tail.starts_with('_') {
            return Placeholder::Sequential;
        }
    }
    if name.len() > 4 && name.starts_with("JWT.") {
        return Placeholder::Jwt;
    }
    Placeholder::Param(name)
}

/// Sanitise a backend host the way KrakenD does: `scheme://host[:port]`, `http://` added when
/// the scheme is missing, a trailing `/` dropped; anything with a path is refused.
pub fn sanitize_host(host: &str) -> Result<String, String> {
    // KrakenD: lura `hostPattern` `(https?://)?([\[\]:a-zA-Z0-9\._\-]+)(:[0-9]{2,6})?/?` must match
    // exactly once.
    let (scheme, rest) = if let Some(r) = host.strip_prefix("http://") {
        ("http://", r)
    } else if let Some(r) = host.strip_prefix("https://") {
        ("https://", r)
    } else {
        ("http://", host)
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let valid = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "[]:._-".contains(c));
    if !valid {
        return Err(format!(
            "invalid host {host:?}: expected scheme://host[:port] without a path (KrakenD \
             refuses it too: lura panics at startup with \"invalid host\"; set \
             \"disable_host_sanitize\": true on the backend to use it verbatim)"
        ));
    }
    Ok(format!("{scheme}{authority}"))
}

/// What this gateway does with one backend host (sanitised, or verbatim with
/// `disable_host_sanitize`), when the backend is not `sd: dns`.
#[derive(Debug, PartialEq, Eq)]
pub enum HostUse {
    /// Called as KrakenD calls it.
    Ok,
    /// KrakenD calls it, but the means are not built here: the endpoint answers 501.
    /// (what, what it does)
    NotBuilt(&'static str, &'static str),
    /// KrakenD starts, then fails every request sent to it: it is left out, with a warning.
    Fails(String),
}

/// Judge a backend host the way the plan will compile it (`backend::target::split_host`).
pub fn host_use(host: &str) -> HostUse {
    let (scheme, rest) = host.split_once("://").unwrap_or(("http", host));
    if matches!(scheme, "http" | "https") && rest.trim_end_matches('/').contains('/') {
        return HostUse::NotBuilt("a path in the host", HOST_PATH);
    }
    match crate::backend::target::split_host(host) {
        Ok(_) => HostUse::Ok,
        Err(e) => HostUse::Fails(e),
    }
}

/// What a host with a path does (with `disable_host_sanitize`).
pub const HOST_PATH: &str = "puts the path written in the host before every url_pattern";

/// Output encodings CE knows (`fast-json` is Enterprise-only).
pub const OUTPUT_ENCODINGS: &[&str] = &[
    "json",
    "json-collection",
    "xml",
    "yaml",
    "negotiate",
    "string",
    "no-op",
];

/// Backend encodings CE knows.
pub const BACKEND_ENCODINGS: &[&str] = &["json", "safejson", "xml", "rss", "string", "no-op"];

/// Output encodings CE has that are not built here yet, with what they do: an endpoint using
/// one answers 501 rather than render JSON where XML or YAML was asked for.
pub const OUTPUT_NOT_BUILT: &[(&str, &str)] = &[];

/// Backend encodings CE has that are not built here yet: decoding their bodies as JSON would
/// fail every call or change the data, so the endpoint answers 501.
pub const BACKEND_NOT_BUILT: &[(&str, &str)] = &[];

/// What a not-built encoding does, when `value` is one of `list`.
pub fn not_built(value: &str, list: &[(&str, &'static str)]) -> Option<&'static str> {
    list.iter()
        .find(|(name, _)| *name == value)
        .map(|(_, about)| *about)
}

/// `check`'s warning for a not-built encoding `value` of `key`; `who` answers 501.
pub fn not_built_warning(key: &str, value: &str, who: &str, about: &str) -> String {
    format!(
        "{key} {value:?} is not built yet, so {who} answers 501 Not Implemented until it is: \
         {about}"
    )
}

/// A warning for an encoding KrakenD doesn't know (it silently falls back to JSON).
pub fn unknown_encoding(value: &str, known: &[&str]) -> Option<String> {
    if known.contains(&value) {
        return None;
    }
    // KrakenD: unknown encodings fall back to JSON without a word; say so.
    Some(format!(
        "unknown encoding {value:?} falls back to \"json\" (known: {})",
        known.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restful_paths_are_accepted() {
        for p in ["/", "/users", "/users/{id}", "/a/{b}/c/{d-e_f}", "/files/*"] {
            assert_eq!(check_endpoint_path(p, false), Ok(()), "{p}");
        }
    }

    #[test]
    fn colons_and_inner_stars_are_rejected() {
        assert!(check_endpoint_path("/users/:id", false).is_err());
        assert!(check_endpoint_path("/a*/b", false).is_err());
    }

    #[test]
    fn reserved_paths_are_rejected() {
        for p in ["/__debug", "/__debug/x", "/__echo/", "/__health"] {
            assert!(check_endpoint_path(p, false).is_err(), "{p}");
        }
        assert_eq!(check_endpoint_path("/health/__debug", false), Ok(()));
        // KrakenD CE serves these (the schema reserves them, `krakend run` does not).
        assert_eq!(check_endpoint_path("/__stats/a", false), Ok(()));
        assert_eq!(check_endpoint_path("/__catchall", false), Ok(()));
    }

    #[test]
    fn bad_placeholders_are_rejected() {
        assert!(check_endpoint_path("/a/{b.c}", false).is_err());
        assert!(check_endpoint_path("/a/{}", false).is_err());
        assert!(check_endpoint_path("/a/{b", false).is_err());
        assert!(check_endpoint_path("/a/b}", false).is_err());
    }

    #[test]
    fn inner_segment_placeholder_needs_disable_rest_and_last_position() {
        assert!(check_endpoint_path("/file.{ext}", false).is_err());
        assert_eq!(check_endpoint_path("/file.{ext}", true), Ok(()));
        assert_eq!(check_endpoint_path("/f/{name}/base.{ext}", true), Ok(()));
        assert!(check_endpoint_path("/file.{ext}/x", true).is_err());
        assert!(check_endpoint_path("/file.{ext}.json", true).is_err());
        assert!(check_endpoint_path("/{a}.{b}", true).is_err());
    }

    #[test]
    fn placeholders_are_classified() {
        assert_eq!(classify_placeholder("id"), Placeholder::Param("id"));
        assert_eq!(classify_placeholder("resp0_id"), Placeholder::Sequential);
        assert_eq!(classify_placeholder("resp12_a.b"), Placeholder::Sequential);
        assert_eq!(classify_placeholder("resp_x"), Placeholder::Param("resp_x"));
        assert_eq!(classify_placeholder("resp1_"), Placeholder::Param("resp1_"));
        assert_eq!(classify_placeholder("JWT.sub"), Placeholder::Jwt);
        assert_eq!(classify_placeholder("JWT."), Placeholder::Param("JWT."));
    }

    #[test]
    fn hosts_get_a_scheme_and_lose_a_trailing_slash() {
        assert_eq!(
            sanitize_host("example.com"),
            Ok("http://example.com".to_string())
        );
        assert_eq!(
            sanitize_host("https://example.com:8443/"),
            Ok("https://example.com:8443".to_string())
        );
        assert_eq!(
            sanitize_host("10.0.0.1:80"),
            Ok("http://10.0.0.1:80".to_string())
        );
        assert_eq!(
            sanitize_host("[::1]:8080"),
            Ok("http://[::1]:8080".to_string())
        );
    }

    #[test]
    fn hosts_with_paths_or_other_schemes_are_rejected() {
        assert!(sanitize_host("http://example.com/api").is_err());
        assert!(sanitize_host("ftp://example.com").is_err());
        assert!(sanitize_host("").is_err());
        assert!(sanitize_host("http://").is_err());
    }

    #[test]
    fn hosts_are_judged_as_the_plan_compiles_them() {
        assert_eq!(host_use("http://h:8080"), HostUse::Ok);
        assert_eq!(host_use("h.test"), HostUse::Ok);
        assert_eq!(host_use("https://h"), HostUse::Ok);
        assert!(matches!(
            host_use("https://h/api"),
            HostUse::NotBuilt("a path in the host", _)
        ));
        assert!(matches!(
            host_use("http://h/api"),
            HostUse::NotBuilt("a path in the host", _)
        ));
        assert!(matches!(host_use("h/api"), HostUse::NotBuilt(..)));
        assert!(matches!(host_use("amqp://q/x"), HostUse::Fails(_)));
        assert!(matches!(host_use("http://h:99999"), HostUse::Fails(_)));
    }

    #[test]
    fn unknown_encodings_warn() {
        assert_eq!(unknown_encoding("negotiate", OUTPUT_ENCODINGS), None);
        assert_eq!(unknown_encoding("safejson", BACKEND_ENCODINGS), None);
        assert!(unknown_encoding("fast-json", OUTPUT_ENCODINGS).is_some());
        assert!(unknown_encoding("JSON", BACKEND_ENCODINGS).is_some());
        assert!(not_built("xml", OUTPUT_NOT_BUILT).is_none());
        assert!(not_built("rss", BACKEND_NOT_BUILT).is_none());
        assert!(not_built("json", OUTPUT_NOT_BUILT).is_none());
        for (name, _) in OUTPUT_NOT_BUILT {
            assert!(OUTPUT_ENCODINGS.contains(name));
        }
        for (name, _) in BACKEND_NOT_BUILT {
            assert!(BACKEND_ENCODINGS.contains(name));
        }
    }

    #[test]
    fn route_shape_erases_parameter_names() {
        assert_eq!(route_shape("/u/{id}/p"), route_shape("/u/{name}/p"));
        assert_ne!(route_shape("/u/{id}"), route_shape("/u/id"));
    }
}
