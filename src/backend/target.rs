//! Where a backend's requests go: its host list (fixed, or an `sd: dns` SRV name kept current
//! by the resolver) and, per host, the `Host` header and the addresses to dial.
//!
//! IP literals and `localhost` are resolved here, at compile time, with no thread and no
//! shared state on the request path. Any other name is looked up at run time by the
//! resolver (`backend::dns`) and re-resolved every `dns_cache_ttl`, so DNS changes reach the
//! gateway without a reload.

use super::dns::{self, HostEntry, SrvEntry};
use crate::config;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// One backend host.
#[derive(Clone, Debug)]
pub struct Target {
    /// `host[:port]` exactly as the client-visible authority (`Host` header).
    pub authority: String,
    pub addrs: Addrs,
    /// `https`: the name sent as SNI and verified against the certificate (the host without
    /// port, brackets or trailing dot). None: plain HTTP.
    pub tls: Option<Arc<str>>,
}

impl Target {
    /// The scheme, for URLs in messages.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// The addresses of a host.
#[derive(Clone)]
pub enum Addrs {
    /// An IP literal or `localhost`, known at compile time.
    Fixed(SocketAddr),
    /// A name and the port: its addresses come from the resolver, tried in order.
    Name(Arc<HostEntry>, u16),
}

impl std::fmt::Debug for Addrs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addrs::Fixed(a) => write!(f, "{a}"),
            Addrs::Name(e, port) => write!(f, "{}:{port} (resolved at run time)", e.name()),
        }
    }
}

impl PartialEq for Addrs {
    fn eq(&self, other: &Addrs) -> bool {
        match (self, other) {
            (Addrs::Fixed(a), Addrs::Fixed(b)) => a == b,
            (Addrs::Name(a, p), Addrs::Name(b, q)) => Arc::ptr_eq(a, b) && p == q,
            _ => false,
        }
    }
}

/// A backend's host list.
#[derive(Debug)]
pub enum Hosts {
    /// `host` as configured (KrakenD's `sd: static`).
    Static(Vec<Target>),
    /// `sd: dns`: the hosts the SRV records of this name give, refreshed every
    /// `dns_cache_ttl`; called over TLS with `sd_scheme: https`.
    Srv(Arc<SrvEntry>, bool),
}

impl Hosts {
    /// The authority a script sees in a backend URL: the first host's (its call still goes to
    /// the host the balancer picks), or the SRV name.
    pub fn first_authority(&self) -> String {
        match self {
            Hosts::Static(t) => t.first().map(|t| t.authority.clone()).unwrap_or_default(),
            Hosts::Srv(e, _) => e.name().to_string(),
        }
    }

    /// Compile a backend's `host` list according to its `sd`.
    pub fn compile(b: &config::Backend) -> Result<Hosts, String> {
        if b.sd == "dns" && !matches!(b.sd_scheme.as_str(), "" | "http" | "https") {
            // KrakenD calls the hosts found with this scheme: its HTTP client fails every
            // scheme but http and https.
            return Ok(Hosts::Static(Vec::new()));
        }
        if b.sd == "dns" {
            // KrakenD: lura's DNS SRV subscriber looks up `host[0]` only (the decoder warns
            // about the others).
            // KrakenD: lura's SRV subscriber indexes `Host[0]` when the proxy is built, a
            // panic at startup without one.
            let first = b.host.first().ok_or(
                "no host defined for this \"sd\": \"dns\" backend (nor at the root); KrakenD \
                 refuses it too: it panics at startup",
            )?;
            return Ok(Hosts::Srv(
                dns::srv(srv_name(first)?),
                b.sd_scheme == "https",
            ));
        }
        // KrakenD starts with hosts it cannot call and fails each request sent to one; the
        // decoder warned about each (`config::validate::host_use`) and they are left out here.
        // No host left: every call fails with "no hosts available", as in KrakenD.
        let targets = b
            .host
            .iter()
            .filter_map(|h| Target::compile(h).ok())
            .collect();
        Ok(Hosts::Static(targets))
    }
}

impl Target {
    /// `http(s)://host[:port]` -> a target. A name is registered with the resolver; nothing
    /// is looked up here.
    pub fn compile(host: &str) -> Result<Target, String> {
        let (authority, name, port) = split_host(host)?;
        let tls = host.starts_with("https://").then(|| tls_name(name));
        let addrs = match literal(name, port) {
            Some(a) => Addrs::Fixed(a),
            None => Addrs::Name(dns::host(name), port),
        };
        Ok(Target {
            authority: authority.to_string(),
            addrs,
            tls,
        })
    }
}

/// The name a TLS connection to `host` verifies: no brackets around an IPv6 address, no
/// trailing dot (certificates name hosts without it).
pub fn tls_name(host: &str) -> Arc<str> {
    Arc::from(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.'),
    )
}

/// `http(s)://host[:port][/]` -> (authority, host name, port): port 80 for `http`, 443 for
/// `https`. Other schemes are refused.
pub fn split_host(host: &str) -> Result<(&str, &str, u16), String> {
    let (rest, default_port) = match host.split_once("://") {
        Some(("http", rest)) => (rest, 80),
        Some(("https", rest)) => (rest, 443),
        Some((scheme, _)) => {
            return Err(format!(
                "host {host:?}: scheme {scheme} is not supported (only http and https)"
            ))
        }
        None => (host, 80),
    };
    let authority = rest.trim_end_matches('/');
    if authority.contains('/') {
        return Err(format!(
            "host {host:?}: a path in the host is not supported"
        ));
    }
    let (name, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => match p.parse::<u16>() {
            Ok(port) => (h, port),
            Err(_) if authority.starts_with('[') && authority.ends_with(']') => {
                (authority, default_port)
            }
            Err(_) => return Err(format!("host {host:?}: invalid port")),
        },
        _ => (authority, default_port),
    };
    if name.is_empty() {
        return Err(format!("host {host:?}: no host name"));
    }
    Ok((authority, name, port))
}

/// The SRV name of an `sd: dns` host entry: `_api._tcp.service.consul`, written with or
/// without `http://` (KrakenD's docs set `disable_host_sanitize` to keep it bare).
pub fn srv_name(host: &str) -> Result<&str, String> {
    let name = host
        .strip_prefix("http://")
        .unwrap_or(host)
        .trim_end_matches('/');
    let valid = !name.is_empty()
        && name.len() <= 254
        && name.split('.').enumerate().all(|(i, label)| {
            // The root's trailing dot leaves an empty last label.
            (label.is_empty() && i > 0 && name.ends_with('.'))
                || (label.len() <= 63
                    && !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        });
    if !valid {
        return Err(format!(
            "host {host:?}: with \"sd\": \"dns\" the host is a DNS SRV name such as \
             \"_api._tcp.service.consul\" (no scheme other than http, no port, no path)"
        ));
    }
    Ok(name)
}

/// An IP literal (`127.0.0.1`, `[::1]`) or `localhost`, without any lookup.
pub fn literal(host: &str, port: u16) -> Option<SocketAddr> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, port));
    }
    if h.trim_end_matches('.').eq_ignore_ascii_case("localhost") {
        return Some(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_and_localhost_need_no_lookup() {
        assert_eq!(
            literal("127.0.0.1", 80),
            Some("127.0.0.1:80".parse().unwrap())
        );
        assert_eq!(literal("[::1]", 8080), Some("[::1]:8080".parse().unwrap()));
        assert_eq!(
            literal("LocalHost", 1),
            Some("127.0.0.1:1".parse().unwrap())
        );
        assert_eq!(literal("example.com", 80), None);
    }

    #[test]
    fn hosts_split_into_authority_name_and_port() {
        assert_eq!(
            split_host("http://svc.test:8080/").unwrap(),
            ("svc.test:8080", "svc.test", 8080)
        );
        assert_eq!(split_host("http://[::1]").unwrap(), ("[::1]", "[::1]", 80));
        assert!(split_host("http://h:x")
            .unwrap_err()
            .contains("invalid port"));
        assert!(split_host("http://h/p").unwrap_err().contains("path"));
    }

    #[test]
    fn srv_names_are_bare_dns_names() {
        assert_eq!(
            srv_name("http://_api._tcp.svc.test").unwrap(),
            "_api._tcp.svc.test"
        );
        assert_eq!(
            srv_name("_api._tcp.svc.test.").unwrap(),
            "_api._tcp.svc.test."
        );
        assert!(srv_name("http://svc.test:8080").is_err());
        assert!(srv_name("https://_api._tcp.svc.test").is_err());
        assert!(srv_name("a..b").is_err());
    }
}
