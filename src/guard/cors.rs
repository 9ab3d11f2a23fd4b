//! `security/cors` (service level), read as krakend-cors reads it and answered as rs/cors
//! answers, before routing: preflights work on any path. Everything that depends only on the
//! config (origin lists, the `Access-Control-Expose-Headers` and `-Max-Age` values) is computed
//! once here; a request only compares and copies reference-counted values.

use crate::config::duration::parse_go_duration;
use crate::http::request::RequestHead;
use bytes::Bytes;
use serde_json::{Map, Value};

pub const NS: &str = "security/cors";

const KNOWN: &[&str] = &[
    "allow_origins",
    "allow_methods",
    "allow_headers",
    "expose_headers",
    "allow_credentials",
    "allow_private_network",
    "max_age",
    "options_passthrough",
    "options_success_status",
    "debug",
];

type Header = (Bytes, Bytes);

const fn h(name: &'static str, value: &'static str) -> Header {
    (
        Bytes::from_static(name.as_bytes()),
        Bytes::from_static(value.as_bytes()),
    )
}

const ACAO: &str = "Access-Control-Allow-Origin";
const VARY_PREFLIGHT: Header = h(
    "Vary",
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
);
const VARY_PRIVATE: Header = h("Vary", "Access-Control-Request-Private-Network");
const ANY_ORIGIN: Header = h(ACAO, "*");
const CREDENTIALS: Header = h("Access-Control-Allow-Credentials", "true");
const PRIVATE: Header = h("Access-Control-Allow-Private-Network", "true");
// The same, as header lines written as they are (`crate::http::write::response_head_lines`).
const VARY_ORIGIN_LINE: Bytes = Bytes::from_static(b"Vary: Origin\r\n");
const ANY_ORIGIN_LINE: Bytes = Bytes::from_static(b"Access-Control-Allow-Origin: *\r\n");
const CREDENTIALS_LINE: Bytes = Bytes::from_static(b"Access-Control-Allow-Credentials: true\r\n");

/// The compiled `security/cors` block.
#[derive(Clone, Debug)]
pub struct Cors {
    any_origin: bool,
    /// Lower-cased exact origins.
    origins: Vec<String>,
    /// `prefix*suffix` origins, lower-cased.
    wildcards: Vec<(String, String)>,
    /// Upper-cased.
    methods: Vec<String>,
    any_header: bool,
    /// Lower-cased; `Origin` is always there (rs/cors appends it).
    headers: Vec<String>,
    /// `Access-Control-Expose-Headers` as a header line, for actual requests.
    expose_line: Option<Bytes>,
    credentials: bool,
    private_network: bool,
    max_age: Option<Header>,
    passthrough: bool,
    /// Status of an answered preflight.
    status: u16,
}

/// What the gateway does with a request, CORS-wise.
pub enum Verdict {
    /// A preflight answered here: status and headers (no body).
    Answer(u16, Vec<Header>),
    /// A preflight passed through to the router (`options_passthrough`), these headers added.
    Pass(Vec<Header>),
    /// Not a preflight: add [`Cors::actual`]'s headers to whatever the router answers.
    Actual,
}

fn strings(m: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    super::fragment::strings(NS, m, key)
}

fn flag(m: &Map<String, Value>, key: &str) -> Result<bool, String> {
    super::fragment::flag(NS, m, key)
}

/// Go's `http.CanonicalHeaderKey` for a token (`x-pingother` -> `X-Pingother`), as the
/// gateway already writes forwarded header names.
fn canonical(name: &str) -> String {
    String::from_utf8_lossy(&crate::gateway::forward::canonical(name.as_bytes())).into_owned()
}

impl Cors {
    pub fn compile(v: &Value) -> Result<Cors, String> {
        let m = v
            .as_object()
            .ok_or_else(|| format!("{NS}: must be an object"))?;
        if let Some(k) = m.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(format!(
                "{NS}.{k}: unknown key (known: {}); a misspelt CORS rule would be dropped silently",
                KNOWN.join(", ")
            ));
        }
        let mut origins = strings(m, "allow_origins")?;
        // KrakenD: no origins means every origin (krakend-cors sets `["*"]`).
        if origins.is_empty() {
            origins.push("*".into());
        }
        let mut any_origin = false;
        let mut exact = Vec::new();
        let mut wildcards = Vec::new();
        for o in &origins {
            let o = o.to_ascii_lowercase();
            if o == "*" {
                any_origin = true;
                continue;
            }
            match o.split_once('*') {
                // KrakenD (rs/cors): a second `*` would be a literal that no origin carries;
                // refused so that the rule does not silently match nothing.
                Some((_, s)) if s.contains('*') => {
                    return Err(format!(
                        "{NS}.allow_origins: {o:?} has more than one `*` (one wildcard allowed)"
                    ))
                }
                Some((p, s)) => wildcards.push((p.to_string(), s.to_string())),
                None => exact.push(o),
            }
        }
        if any_origin {
            exact.clear();
            wildcards.clear();
        }
        let mut methods: Vec<String> = strings(m, "allow_methods")?
            .iter()
            .map(|s| s.to_ascii_uppercase())
            .collect();
        // KrakenD (rs/cors): no methods means GET, POST and HEAD.
        if methods.is_empty() {
            methods = vec!["GET".into(), "POST".into(), "HEAD".into()];
        }
        let mut headers = strings(m, "allow_headers")?;
        // KrakenD: no headers means every header (krakend-cors sets `["*"]`; the schema says
        // `[]`). rs/cors always allows `Origin`.
        if headers.is_empty() {
            headers.push("*".into());
        }
        headers.push("Origin".into());
        let any_header = headers.iter().any(|h| h == "*");
        let headers = headers.iter().map(|h| h.to_ascii_lowercase()).collect();
        let expose = strings(m, "expose_headers")?;
        let expose_line = if expose.is_empty() {
            None
        } else {
            let list: Vec<String> = expose.iter().map(|e| canonical(e)).collect();
            let line =
                crate::http::write::field_line("Access-Control-Expose-Headers", &list.join(", "))
                    .map_err(|e| format!("{NS}.expose_headers: {e}"))?;
            Some(line)
        };
        let max_age = match m.get("max_age") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                // KrakenD ignores an unparsable max_age (no header); refused here.
                let d = parse_go_duration(s).map_err(|e| format!("{NS}.max_age: {e}"))?;
                let secs = d.as_secs();
                (secs > 0).then(|| {
                    (
                        Bytes::from_static(b"Access-Control-Max-Age"),
                        Bytes::from(secs.to_string()),
                    )
                })
            }
            Some(v) => return Err(format!("{NS}.max_age: must be a duration string, got {v}")),
        };
        let status = match m.get("options_success_status") {
            // KrakenD CE answers preflights through rs/cors' gin wrapper, which aborts with
            // 200 (its own specs cors_1..4 expect 200).
            None | Some(Value::Null) => 200,
            Some(v) => match v.as_u64() {
                Some(0) => 200,
                Some(s @ 200..=299) => s as u16,
                _ => {
                    return Err(format!(
                        "{NS}.options_success_status: must be a 2xx status, got {v}"
                    ))
                }
            },
        };
        // `debug`: KrakenD logs rs/cors' decisions at DEBUG; accepted and ignored.
        let _ = flag(m, "debug")?;
        Ok(Cors {
            any_origin,
            origins: exact,
            wildcards,
            methods,
            any_header,
            headers,
            expose_line,
            credentials: flag(m, "allow_credentials")?,
            private_network: flag(m, "allow_private_network")?,
            max_age,
            passthrough: flag(m, "options_passthrough")?,
            status,
        })
    }

    fn origin_allowed(&self, origin: &[u8]) -> bool {
        if self.any_origin {
            return true;
        }
        // Case-insensitive without lower-casing a copy (the lists are lower case already).
        let o = origin;
        self.origins
            .iter()
            .any(|x| x.as_bytes().eq_ignore_ascii_case(o))
            || self.wildcards.iter().any(|(p, s)| {
                o.len() >= p.len() + s.len()
                    && o.get(..p.len())
                        .is_some_and(|h| h.eq_ignore_ascii_case(p.as_bytes()))
                    && o.get(o.len() - s.len()..)
                        .is_some_and(|t| t.eq_ignore_ascii_case(s.as_bytes()))
            })
    }

    fn method_allowed(&self, method: &[u8]) -> bool {
        // KrakenD (rs/cors): OPTIONS is always allowed.
        method.eq_ignore_ascii_case(b"OPTIONS")
            || self
                .methods
                .iter()
                .any(|m| m.as_bytes().eq_ignore_ascii_case(method))
    }

    fn allow_origin(&self, origin: &Bytes) -> Header {
        if self.any_origin {
            ANY_ORIGIN
        } else {
            (Bytes::from_static(ACAO.as_bytes()), origin.clone())
        }
    }

    /// Decide on a request: a preflight is `OPTIONS` with `Access-Control-Request-Method`.
    pub fn check(&self, head: &RequestHead) -> Verdict {
        // The method first: most requests are not OPTIONS and skip the header lookup.
        if &head.method[..] != b"OPTIONS" {
            return Verdict::Actual;
        }
        let acrm = head
            .headers
            .get("access-control-request-method")
            .filter(|v| !v.is_empty());
        let Some(acrm) = acrm else {
            return Verdict::Actual;
        };
        let headers = self.preflight(head, acrm);
        if self.passthrough {
            Verdict::Pass(headers)
        } else {
            Verdict::Answer(self.status, headers)
        }
    }

    /// rs/cors `handlePreflight`: the headers of an allowed preflight, or only `Vary`.
    fn preflight(&self, head: &RequestHead, acrm: &Bytes) -> Vec<Header> {
        let mut out = vec![VARY_PREFLIGHT];
        if self.private_network {
            out.push(VARY_PRIVATE);
        }
        let Some(origin) = head.headers.get("origin").filter(|o| !o.is_empty()) else {
            return out;
        };
        if !self.origin_allowed(origin) || !self.method_allowed(acrm) {
            return out;
        }
        // Requested headers: comma/space separated, canonicalised, all of them allowed.
        let mut requested: Vec<String> = Vec::new();
        for v in head.headers.get_all("access-control-request-headers") {
            let Ok(v) = std::str::from_utf8(v) else {
                return out;
            };
            requested.extend(
                v.split([',', ' ', '\t'])
                    .filter(|t| !t.is_empty())
                    .map(canonical),
            );
        }
        if !self.any_header
            && !requested
                .iter()
                .all(|r| self.headers.iter().any(|a| a.eq_ignore_ascii_case(r)))
        {
            return out;
        }
        out.push(self.allow_origin(origin));
        out.push((
            Bytes::from_static(b"Access-Control-Allow-Methods"),
            Bytes::from(acrm.to_ascii_uppercase()),
        ));
        if !requested.is_empty() {
            // KrakenD (rs/cors): the requested headers are echoed, canonical, `, `-joined.
            out.push((
                Bytes::from_static(b"Access-Control-Allow-Headers"),
                Bytes::from(requested.join(", ")),
            ));
        }
        if self.credentials {
            out.push(CREDENTIALS);
        }
        let pna = head
            .headers
            .get("access-control-request-private-network")
            .is_some_and(|v| &v[..] == b"true");
        if self.private_network && pna {
            out.push(PRIVATE);
        }
        if let Some(m) = &self.max_age {
            out.push(m.clone());
        }
        out
    }

    /// rs/cors `handleActualRequest`: `Vary: Origin` always; the allow headers when the origin
    /// and the method are allowed. What depends only on the config goes to `lines`, the
    /// echoed origin (request input, checked when written) to `headers`.
    pub fn actual(&self, head: &RequestHead, headers: &mut Vec<Header>, lines: &mut Vec<Bytes>) {
        lines.reserve(4);
        lines.push(VARY_ORIGIN_LINE);
        let Some(origin) = head.headers.get("origin").filter(|o| !o.is_empty()) else {
            return;
        };
        // KrakenD (rs/cors): the method of an actual request is checked too.
        if !self.origin_allowed(origin) || !self.method_allowed(&head.method) {
            return;
        }
        // KrakenD (rs/cors): with every origin allowed the answer is `*` even with
        // credentials, which browsers refuse for credentialed requests: list the origins.
        if self.any_origin {
            lines.push(ANY_ORIGIN_LINE);
        } else {
            headers.push((Bytes::from_static(ACAO.as_bytes()), origin.clone()));
        }
        if let Some(e) = &self.expose_line {
            lines.push(e.clone());
        }
        if self.credentials {
            lines.push(CREDENTIALS_LINE);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_errors_are_refused_at_startup() {
        for bad in [
            json!({"allow_origins": "x"}),
            json!({"allow_origins": ["https://*.*.example.com"]}),
            json!({"max_age": "12 hours"}),
            json!({"allow_credentials": "yes"}),
            json!({"alow_origins": []}),
            json!({"options_success_status": 404}),
        ] {
            assert!(Cors::compile(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_wildcard_origin_matches_its_prefix_and_suffix_only() {
        let c = Cors::compile(&json!({"allow_origins": ["https://*.Example.com"]})).unwrap();
        assert!(c.origin_allowed(b"https://a.example.com"));
        assert!(c.origin_allowed(b"HTTPS://A.B.EXAMPLE.COM"));
        assert!(!c.origin_allowed(b"https://example.com"));
        assert!(!c.origin_allowed(b"http://a.example.com"));
        assert!(!c.origin_allowed(b"https://a.example.com.evil"));
    }
}
