//! `qos/ratelimit/router`: the endpoint limit (over it: 503) and the per-client limit (over
//! it: 429), checked client first, as krakend-ratelimit's gin middleware stacks them.

use super::clients::{ClientTable, DEFAULT_ENTRIES};
use super::cluster::{self, ClusterLimit};
use super::config::{RouterConfig, Strategy};
use super::{registry, Limiter};
use crate::http::request::RequestHead;
use crate::redis::Pools;
use std::net::IpAddr;
use std::sync::Arc;

/// Who may tell us the client's address (`router.trusted_proxies`), and in which headers
/// (`router.forwarded_by_client_ip` + `remote_ip_headers`).
#[derive(Clone, Debug, Default)]
pub struct ClientIpRule {
    /// Set with `forwarded_by_client_ip`: the headers gin reads.
    pub headers: Option<Vec<String>>,
    pub trusted: Vec<Cidr>,
}

/// An address block from `trusted_proxies` (an address alone is a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let bad = || format!("router.trusted_proxies: {s:?} is not an IP address or CIDR block");
        let (ip, bits) = match s.split_once('/') {
            Some((ip, b)) => (ip, Some(b.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let net: IpAddr = ip.trim().parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        if bits > max {
            return Err(bad());
        }
        Ok(Cidr { net, bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (bytes, rest) = (usize::from(bits / 8), bits % 8);
    if a.get(..bytes) != b.get(..bytes) {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    matches!((a.get(bytes), b.get(bytes)), (Some(x), Some(y)) if x & mask == y & mask)
}

impl ClientIpRule {
    fn trusts(&self, peer: IpAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(peer))
    }

    /// gin's `ClientIP` with trusted proxies: only a trusted peer's headers count, and in
    /// `X-Forwarded-For` the address is the rightmost one not itself a trusted proxy.
    fn resolve(&self, head: &RequestHead, peer: IpAddr) -> IpAddr {
        let Some(headers) = self.headers.as_deref() else {
            return peer;
        };
        if !self.trusts(peer) {
            return peer;
        }
        for name in headers {
            let Some(v) = head.headers.get(name) else {
                continue;
            };
            let Ok(v) = std::str::from_utf8(v) else {
                continue;
            };
            // Right to left, without collecting the list (this runs per request).
            let mut items = v.rsplit(',').peekable();
            while let Some(item) = items.next() {
                let Ok(ip) = item.trim().parse::<IpAddr>() else {
                    break;
                };
                if items.peek().is_none() || !self.trusts(ip) {
                    return ip;
                }
            }
        }
        peer
    }
}

/// How a client is named.
#[derive(Debug)]
enum ClientKey {
    /// The client's IP; with `header`, the first address in it when a trusted proxy sent it.
    Ip {
        header: Option<String>,
        rule: ClientIpRule,
    },
    Header(String),
    Param(String),
}

#[derive(Debug)]
struct ClientLimit {
    table: Arc<ClientTable>,
    key: ClientKey,
}

/// An endpoint's compiled `qos/ratelimit/router`.
#[derive(Debug)]
pub struct RouterLimit {
    endpoint: Option<Arc<Limiter>>,
    /// Set when `connection_name` makes `max_rate` cluster-wide (its limiter is `endpoint`).
    cluster: Option<Arc<ClusterLimit>>,
    clients: Option<ClientLimit>,
}

/// Why a request was refused: the status KrakenD answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// `client_max_rate` (or no client key): 429.
    Client,
    /// `max_rate`: 503.
    Endpoint,
}

impl Refused {
    pub fn status(self) -> u16 {
        match self {
            Refused::Client => 429,
            Refused::Endpoint => 503,
        }
    }
}

impl RouterLimit {
    /// Compile the block of endpoint `method path` whose placeholders are `params`. None when
    /// it limits nothing. Its state is shared with the previous plan's when nothing about it
    /// changed (see `registry`). `pools`: the service-level `redis` connections, for a
    /// block naming one (`connection_name`: its `max_rate` is cluster-wide).
    pub fn compile(
        v: &serde_json::Value,
        method: &str,
        path: &str,
        params: &[String],
        ip: &ClientIpRule,
        trusted_error: Option<&str>,
        pools: &Pools,
    ) -> Result<Option<RouterLimit>, String> {
        let c = RouterConfig::parse(v)?;
        let id = format!("router {method} {path} {v}");
        let make = || Limiter::new(c.max_rate, c.capacity, super::workers(), super::now_ns());
        let cluster = cluster::compile(
            v,
            pools,
            RouterConfig::NS,
            &id,
            &format!("{method} {path}"),
            c.max_rate,
            make,
        )?;
        let endpoint = match &cluster {
            Some(cl) => Some(Arc::clone(cl.limiter())),
            None => (c.max_rate > 0.0).then(|| registry::shared(format!("{id} endpoint"), make)),
        };
        let clients = if c.client_max_rate > 0.0 {
            let key = match c.strategy {
                Some(Strategy::Header) => ClientKey::Header(c.key.clone()),
                Some(Strategy::Param) => {
                    if !params.iter().any(|p| p == &c.key) {
                        return Err(format!(
                            "{}.key: {:?} is not a placeholder of {path}; KrakenD would \
                             answer 429 to every request",
                            RouterConfig::NS,
                            c.key
                        ));
                    }
                    ClientKey::Param(c.key.clone())
                }
                _ => {
                    let header = (!c.key.is_empty()).then(|| c.key.clone());
                    let forwarded = header.is_some() || ip.headers.is_some();
                    if let Some(e) = trusted_error.filter(|_| forwarded) {
                        return Err(e.to_string());
                    }
                    if forwarded && ip.trusted.is_empty() {
                        return Err(format!(
                            "{}: strategy ip reads the client address from a header (key, or \
                             router.forwarded_by_client_ip), but router.trusted_proxies is \
                             empty: list the proxies allowed to set it (KrakenD believes \
                             any client, who can then forge a fresh budget per request)",
                            RouterConfig::NS
                        ));
                    }
                    ClientKey::Ip {
                        header,
                        rule: ip.clone(),
                    }
                }
            };
            let table = registry::shared(format!("{id} clients"), || {
                ClientTable::new(c.client_max_rate, c.client_capacity, DEFAULT_ENTRIES)
            });
            Some(ClientLimit { table, key })
        } else {
            None
        };
        if endpoint.is_none() && clients.is_none() {
            return Ok(None);
        }
        Ok(Some(RouterLimit {
            endpoint,
            cluster,
            clients,
        }))
    }

    /// Admit a request, client limit first (KrakenD's order: a client over its limit does
    /// not spend the endpoint's tokens).
    pub fn admit(
        &self,
        head: &RequestHead,
        params: &[(&str, String)],
        peer: IpAddr,
    ) -> Result<(), Refused> {
        let mut now = None;
        let mut clock = || *now.get_or_insert_with(super::now_ns);
        if let Some(c) = &self.clients {
            if !c.admit(head, params, peer, clock()) {
                return Err(Refused::Client);
            }
        }
        if let Some(l) = &self.endpoint {
            // `on_failure: deny` while Redis is down: fail closed with the limit's 503.
            if self.cluster.as_ref().is_some_and(|c| c.denies()) || !l.admit(super::core(), clock) {
                return Err(Refused::Endpoint);
            }
        }
        Ok(())
    }

    /// Housekeeping on this core: quiet shards hand their tokens back.
    pub fn flush(&self, core: usize, now: u64) {
        if let Some(l) = &self.endpoint {
            l.flush(core, now);
        }
    }

    /// The endpoint limit, if any (tests and the external feed).
    pub fn endpoint_limiter(&self) -> Option<&Arc<Limiter>> {
        self.endpoint.as_ref()
    }

    /// The Redis side of the endpoint limit, when it is cluster-wide.
    pub fn cluster(&self) -> Option<&Arc<ClusterLimit>> {
        self.cluster.as_ref()
    }
}

impl ClientLimit {
    fn admit(&self, head: &RequestHead, params: &[(&str, String)], peer: IpAddr, now: u64) -> bool {
        match &self.key {
            ClientKey::Ip { header, rule } => {
                let ip = match header {
                    Some(h) if rule.trusts(peer) => {
                        header_ip(head, h).unwrap_or_else(|| rule.resolve(head, peer))
                    }
                    Some(_) => peer,
                    None => rule.resolve(head, peer),
                };
                match ip.to_canonical() {
                    IpAddr::V4(a) => self.table.admit(&a.octets(), now),
                    IpAddr::V6(a) => self.table.admit(&a.octets(), now),
                }
            }
            ClientKey::Header(name) => match head.headers.get(name) {
                // KrakenD: a missing or empty key is refused with 429.
                Some(v) if !v.is_empty() => self.table.admit(v, now),
                _ => false,
            },
            ClientKey::Param(name) => match params.iter().find(|(k, _)| k == name) {
                Some((_, v)) if !v.is_empty() => self.table.admit(v.as_bytes(), now),
                _ => false,
            },
        }
    }
}

/// krakend-ratelimit's `NewIPTokenExtractor`: the first comma-separated item of the header,
/// cut at its first `:` (a port; so an IPv6 address never parses and falls back).
fn header_ip(head: &RequestHead, name: &str) -> Option<IpAddr> {
    let v = std::str::from_utf8(head.headers.get(name)?).ok()?;
    let first = v.split(',').next()?.trim();
    // KrakenD: `strings.Split(clientIP, ":")[0]`.
    first.split(':').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_match_by_prefix() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(Cidr::parse("2001:db8::/33")
            .unwrap()
            .contains("2001:db8:7fff::1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope").is_err());
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
    }
}
