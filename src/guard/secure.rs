//! `security/http` (service level), read as krakend-httpsecure reads it and applied as
//! unrolled/secure applies it, before routing: allowed hosts, the HTTPS redirect, HSTS and the
//! fixed security headers. Header values are built once here.

use crate::http::request::RequestHead;
use bytes::Bytes;
use serde_json::{Map, Value};

pub const NS: &str = "security/http";

const KNOWN: &[&str] = &[
    "allowed_hosts",
    "allowed_hosts_are_regex",
    "host_proxy_headers",
    "ssl_redirect",
    "ssl_host",
    "ssl_proxy_headers",
    "ssl_temporary_redirect",
    "sts_seconds",
    "sts_include_subdomains",
    "force_sts_header",
    "frame_deny",
    "custom_frame_options_value",
    "content_type_nosniff",
    "browser_xss_filter",
    "content_security_policy",
    "referrer_policy",
    "hpkp_public_key",
    "is_development",
];

/// Status for a Host outside `allowed_hosts`. KrakenD (unrolled/secure) answers 500 "Bad
/// Host"; the fault is the client's, so 400 here (README, "Where we differ").
pub const BAD_HOST_STATUS: u16 = 400;

#[derive(Clone, Debug)]
enum Hosts {
    Any,
    Exact(Vec<String>),
    Regex(regex::RegexSet),
}

/// The compiled `security/http` block.
#[derive(Clone, Debug)]
pub struct Secure {
    hosts: Hosts,
    host_proxy_headers: Vec<String>,
    ssl_redirect: bool,
    ssl_host: Option<String>,
    ssl_proxy_headers: Vec<(String, Bytes)>,
    redirect_status: u16,
    /// `Strict-Transport-Security`, when `sts_seconds` > 0 and not in development.
    sts: Option<Bytes>,
    force_sts: bool,
    hpkp: Option<Bytes>,
    /// The header lines every passing response carries, rendered as one block.
    fixed: Bytes,
}

/// What to do with a request.
pub enum Check {
    /// Serve it (then add [`Secure::headers`]).
    Pass,
    BadHost,
    /// Redirect to HTTPS: the status and the location.
    Redirect(u16, String),
}

fn strings(m: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    super::fragment::strings(NS, m, key)
}

fn flag(m: &Map<String, Value>, key: &str) -> Result<bool, String> {
    super::fragment::flag(NS, m, key)
}

fn text(m: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) => {
            Err(format!("{NS}.{key}: {s:?} cannot be sent in a header"))
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(format!("{NS}.{key}: must be a string, got {v}")),
    }
}

/// A header line rendered once (`Name: value CRLF`), written as it is on every response.
fn header(name: &'static str, value: String) -> Result<Bytes, String> {
    crate::http::write::field_line(name, &value).map_err(|e| format!("{NS}: {e}"))
}

impl Secure {
    pub fn compile(v: &Value) -> Result<Secure, String> {
        let m = v
            .as_object()
            .ok_or_else(|| format!("{NS}: must be an object"))?;
        if let Some(k) = m.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(format!(
                "{NS}.{k}: unknown key (known: {}); a misspelt security rule would be dropped \
                 silently",
                KNOWN.join(", ")
            ));
        }
        let dev = flag(m, "is_development")?;
        let allowed = strings(m, "allowed_hosts")?;
        let hosts = if allowed.is_empty() || dev {
            // KrakenD: `is_development` turns the host, SSL and HSTS checks off.
            Hosts::Any
        } else if flag(m, "allowed_hosts_are_regex")? {
            // KrakenD (unrolled/secure): each pattern is anchored, `^pattern$`.
            let anchored = allowed.iter().map(|p| format!("^(?:{p})$"));
            let set = regex::RegexSet::new(anchored)
                .map_err(|e| format!("{NS}.allowed_hosts: bad regular expression: {e}"))?;
            Hosts::Regex(set)
        } else {
            Hosts::Exact(allowed)
        };
        let mut ssl_proxy_headers = Vec::new();
        match m.get("ssl_proxy_headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(o)) => {
                for (k, v) in o {
                    let v = v.as_str().ok_or_else(|| {
                        format!("{NS}.ssl_proxy_headers.{k}: must be a string, got {v}")
                    })?;
                    ssl_proxy_headers.push((k.clone(), Bytes::from(v.to_string())));
                }
            }
            Some(v) => {
                return Err(format!(
                    "{NS}.ssl_proxy_headers: must be an object, got {v}"
                ))
            }
        }
        let sts_seconds = match m.get("sts_seconds") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_u64()
                .or_else(|| {
                    // KrakenD: int64(float64); a fraction is cut off.
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    v.as_f64()
                        .filter(|f| *f >= 0.0 && f.is_finite())
                        .map(|f| f as u64)
                })
                .ok_or_else(|| format!("{NS}.sts_seconds: must be a number ≥ 0, got {v}"))?,
        };
        let sts = (sts_seconds > 0 && !dev).then(|| {
            let sub = if flag(m, "sts_include_subdomains").unwrap_or(false) {
                "; includeSubDomains"
            } else {
                ""
            };
            header(
                "Strict-Transport-Security",
                format!("max-age={sts_seconds}{sub}"),
            )
        });
        let sts = sts.transpose()?;
        // Type errors in flags read inside closures are reported here.
        flag(m, "sts_include_subdomains")?;
        let mut fixed = Vec::new();
        if let Some(v) = text(m, "custom_frame_options_value")? {
            fixed.push(header("X-Frame-Options", v)?);
        } else if flag(m, "frame_deny")? {
            fixed.push(header("X-Frame-Options", "DENY".into())?);
        }
        if flag(m, "content_type_nosniff")? {
            fixed.push(header("X-Content-Type-Options", "nosniff".into())?);
        }
        if flag(m, "browser_xss_filter")? {
            fixed.push(header("X-XSS-Protection", "1; mode=block".into())?);
        }
        if let Some(v) = text(m, "content_security_policy")? {
            fixed.push(header("Content-Security-Policy", v)?);
        }
        if let Some(v) = text(m, "referrer_policy")? {
            fixed.push(header("Referrer-Policy", v)?);
        }
        let fixed = Bytes::from(fixed.concat());
        let hpkp = text(m, "hpkp_public_key")?
            .filter(|_| !dev)
            .map(|v| header("Public-Key-Pins", v))
            .transpose()?;
        Ok(Secure {
            hosts,
            host_proxy_headers: strings(m, "host_proxy_headers")?,
            ssl_redirect: flag(m, "ssl_redirect")? && !dev,
            ssl_host: text(m, "ssl_host")?,
            ssl_proxy_headers,
            redirect_status: if flag(m, "ssl_temporary_redirect")? {
                307
            } else {
                301
            },
            sts,
            force_sts: flag(m, "force_sts_header")?,
            hpkp,
            fixed,
        })
    }

    /// The request's host: the first non-empty `host_proxy_headers` value, else `Host`.
    fn host<'a>(&self, head: &'a RequestHead) -> &'a [u8] {
        for name in &self.host_proxy_headers {
            if let Some(v) = head.headers.get(name).filter(|v| !v.is_empty()) {
                return v;
            }
        }
        head.headers.get("host").map_or(&[], |v| &v[..])
    }

    /// Whether the request came over HTTPS: our TLS listener, or a proxy header
    /// (`ssl_proxy_headers`, exact value) in front of a plaintext one.
    // KrakenD: unrolled/secure `isSSL`: `r.TLS != nil` or a matching proxy header.
    fn is_ssl(&self, head: &RequestHead) -> bool {
        head.tls
            || self
                .ssl_proxy_headers
                .iter()
                .any(|(k, v)| head.headers.get(k).is_some_and(|h| h == v))
    }

    /// unrolled/secure `processRequest`: the host check, then the HTTPS redirect.
    pub fn check(&self, head: &RequestHead) -> Check {
        let host = self.host(head);
        let good = match &self.hosts {
            Hosts::Any => true,
            Hosts::Exact(list) => list.iter().any(|h| h.as_bytes().eq_ignore_ascii_case(host)),
            Hosts::Regex(set) => std::str::from_utf8(host).is_ok_and(|h| set.is_match(h)),
        };
        if !good {
            return Check::BadHost;
        }
        if self.ssl_redirect && !self.is_ssl(head) {
            let host = match &self.ssl_host {
                Some(h) => h.clone(),
                None => String::from_utf8_lossy(host).into_owned(),
            };
            let target = String::from_utf8_lossy(&head.target);
            return Check::Redirect(self.redirect_status, format!("https://{host}{target}"));
        }
        Check::Pass
    }

    /// The header lines of a request that passed [`Secure::check`] (see
    /// [`crate::http::write::response_head_lines`]).
    pub fn lines(&self, head: &RequestHead, out: &mut Vec<Bytes>) {
        let need_ssl = self.sts.is_some() || self.hpkp.is_some();
        let ssl = need_ssl && self.is_ssl(head);
        out.reserve(3);
        if let Some(s) = &self.sts {
            // KrakenD (unrolled/secure): HSTS only over HTTPS (RFC 6797 §7.2) unless forced.
            if ssl || self.force_sts {
                out.push(s.clone());
            }
        }
        if !self.fixed.is_empty() {
            out.push(self.fixed.clone());
        }
        if let Some(p) = self.hpkp.as_ref().filter(|_| ssl) {
            out.push(p.clone());
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
            json!({"allowed_hosts": ["("], "allowed_hosts_are_regex": true}),
            json!({"allowed_hosts": "a"}),
            json!({"sts_seconds": "1"}),
            json!({"frame_deny": 1}),
            json!({"ssl_proxy_headers": ["X-Forwarded-Proto"]}),
            json!({"content_security_policy": "a\r\nb"}),
            json!({"allowed_host": ["a"]}),
        ] {
            assert!(Secure::compile(&bad).is_err(), "{bad}");
        }
    }
}
