//! RFC 9111 freshness, sans-io: what a response says about being stored and reused, and whether
//! a stored one is still fresh at an injected `now`. Times are milliseconds since the Unix epoch
//! (the wall clock: `Date` and `Expires` are wall-clock dates).

use crate::http::Headers;

/// The `Cache-Control` directives this cache acts on (others are ignored, as RFC 9111 asks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Directives {
    pub no_store: bool,
    pub no_cache: bool,
    /// `max-age` in seconds (the first one; a malformed value counts as 0, RFC 9111 §4.2.1).
    pub max_age: Option<u64>,
}

/// Parse every `Cache-Control` field of `h` (directive names are case-insensitive).
pub fn directives(h: &Headers) -> Directives {
    directives_of(h.get_all("cache-control").map(|v| &v[..]))
}

/// Parse `Cache-Control` field values (a request's or a response's).
pub fn directives_of<'a>(values: impl Iterator<Item = &'a [u8]>) -> Directives {
    let mut d = Directives::default();
    for v in values {
        let text = String::from_utf8_lossy(v);
        for part in text.split(',') {
            let (name, arg) = match part.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (part.trim(), None),
            };
            if name.eq_ignore_ascii_case("no-store") {
                d.no_store = true;
            } else if name.eq_ignore_ascii_case("no-cache") {
                // `no-cache="field"` only limits what may be reused without revalidation:
                // treating it as a plain no-cache is the conservative reading.
                d.no_cache = true;
            } else if name.eq_ignore_ascii_case("max-age") && d.max_age.is_none() {
                d.max_age = Some(arg.and_then(|a| a.parse::<u64>().ok()).unwrap_or(0));
            }
        }
    }
    d
}

/// Statuses a cache may store without explicit permission (RFC 9110 §15.1 "heuristically
/// cacheable"), minus 206: partial content is never stored here.
fn cacheable_status(status: u16) -> bool {
    matches!(
        status,
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

fn date(h: &Headers, name: &str) -> Option<u64> {
    let v = std::str::from_utf8(h.get(name)?).ok()?;
    let t = httpdate::parse_http_date(v.trim()).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(d.as_millis()).ok()
}

/// How long a response stays fresh, in milliseconds (RFC 9111 §4.2.1): `max-age`, else
/// `Expires` minus `Date` (minus the receipt time without `Date`). An invalid `Expires` means
/// already expired. No heuristic freshness: without either header the response is stale at
/// once (it may still be stored for revalidation).
pub fn lifetime_ms(h: &Headers, d: &Directives, received_ms: u64) -> u64 {
    if let Some(s) = d.max_age {
        return s.saturating_mul(1000);
    }
    if h.get("expires").is_none() {
        return 0;
    }
    let Some(expires) = date(h, "expires") else {
        return 0;
    };
    let base = date(h, "date").unwrap_or(received_ms);
    expires.saturating_sub(base)
}

/// The response's age when it was received (RFC 9111 §4.2.3, simplified for one hop: the
/// `Age` header, or how far `Date` is behind the receipt time, whichever is larger).
pub fn initial_age_ms(h: &Headers, received_ms: u64) -> u64 {
    let age = h
        .get("age")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0)
        .saturating_mul(1000);
    let apparent = date(h, "date").map_or(0, |d| received_ms.saturating_sub(d));
    age.max(apparent)
}

/// What a stored response's headers decided when it was stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Freshness {
    /// When it was received (or last revalidated), ms since the epoch.
    pub received_ms: u64,
    /// Its age at that moment.
    pub initial_age_ms: u64,
    pub lifetime_ms: u64,
    /// `no-cache`: stored, but always revalidated before use.
    pub must_revalidate: bool,
}

impl Freshness {
    pub fn of(h: &Headers, received_ms: u64) -> Freshness {
        let d = directives(h);
        Freshness {
            received_ms,
            initial_age_ms: initial_age_ms(h, received_ms),
            lifetime_ms: lifetime_ms(h, &d, received_ms),
            must_revalidate: d.no_cache,
        }
    }

    /// Fresh at `now`: reusable without asking the backend.
    pub fn is_fresh(&self, now_ms: u64) -> bool {
        let age = self
            .initial_age_ms
            .saturating_add(now_ms.saturating_sub(self.received_ms));
        !self.must_revalidate && self.lifetime_ms > age
    }
}

/// Whether a response to a GET/HEAD request may be stored at all: a storable status, no
/// `no-store` on either side, no `Vary: *`, and something to gain (fresh for a while, or a
/// validator to revalidate with).
pub fn storable(status: u16, resp: &Headers, req_no_store: bool, received_ms: u64) -> bool {
    let d = directives(resp);
    if req_no_store || d.no_store || !cacheable_status(status) {
        return false;
    }
    if resp
        .get_all("vary")
        .any(|v| v.split(|&c| c == b',').any(|n| n.trim_ascii() == b"*"))
    {
        return false;
    }
    let validator = resp.get("etag").is_some() || resp.get("last-modified").is_some();
    validator || lifetime_ms(resp, &d, received_ms) > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Header;
    use bytes::Bytes;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        Headers(
            pairs
                .iter()
                .map(|(n, v)| Header {
                    name: Bytes::copy_from_slice(n.as_bytes()),
                    value: Bytes::copy_from_slice(v.as_bytes()),
                })
                .collect(),
        )
    }

    /// 2026-12-06 10:00:00 UTC in ms, and its HTTP-date.
    const T0: u64 = 1_796_551_200_000;
    const T0_DATE: &str = "Sun, 06 Dec 2026 10:00:00 GMT";

    #[test]
    fn the_test_clock_matches_its_http_date() {
        assert_eq!(date(&h(&[("date", T0_DATE)]), "date"), Some(T0));
    }

    #[test]
    fn max_age_makes_a_response_fresh_until_it_is_reached() {
        let f = Freshness::of(&h(&[("Cache-Control", "public, max-age=10")]), T0);
        assert!(f.is_fresh(T0));
        assert!(f.is_fresh(T0 + 9_999));
        assert!(!f.is_fresh(T0 + 10_000));
    }

    #[test]
    fn max_age_wins_over_expires() {
        let resp = h(&[
            ("cache-control", "max-age=5"),
            ("date", T0_DATE),
            ("expires", "Sun, 06 Dec 2026 11:00:00 GMT"),
        ]);
        assert_eq!(Freshness::of(&resp, T0).lifetime_ms, 5_000);
    }

    #[test]
    fn expires_counts_from_the_date_header() {
        let resp = h(&[
            ("date", T0_DATE),
            ("expires", "Sun, 06 Dec 2026 10:01:00 GMT"),
        ]);
        // Received 2 s after Date: 2 s of the 60 are already used.
        let f = Freshness::of(&resp, T0 + 2_000);
        assert_eq!(f.lifetime_ms, 60_000);
        assert!(f.is_fresh(T0 + 59_000));
        assert!(!f.is_fresh(T0 + 60_000));
    }

    #[test]
    fn an_invalid_or_past_expires_is_stale_at_once() {
        for e in ["0", "yesterday", "Sun, 06 Dec 2026 09:00:00 GMT"] {
            let f = Freshness::of(&h(&[("date", T0_DATE), ("expires", e)]), T0);
            assert!(!f.is_fresh(T0), "{e}");
        }
    }

    #[test]
    fn the_age_header_is_subtracted() {
        let f = Freshness::of(&h(&[("cache-control", "max-age=10"), ("age", "8")]), T0);
        assert!(f.is_fresh(T0 + 1_999));
        assert!(!f.is_fresh(T0 + 2_000));
    }

    #[test]
    fn no_cache_is_never_fresh_but_storable_with_a_validator() {
        let resp = h(&[("cache-control", "no-cache, max-age=60"), ("etag", "\"a\"")]);
        assert!(!Freshness::of(&resp, T0).is_fresh(T0));
        assert!(storable(200, &resp, false, T0));
    }

    #[test]
    fn a_malformed_max_age_counts_as_zero() {
        let d = directives(&h(&[("cache-control", "max-age=soon")]));
        assert_eq!(d.max_age, Some(0));
    }

    #[test]
    fn what_is_not_stored() {
        let fresh = [("cache-control", "max-age=60")];
        assert!(storable(200, &h(&fresh), false, T0));
        assert!(!storable(200, &h(&fresh), true, T0), "request no-store");
        assert!(!storable(206, &h(&fresh), false, T0), "partial content");
        assert!(!storable(500, &h(&fresh), false, T0), "server error");
        let no_store = [("Cache-Control", "max-age=60, No-Store")];
        assert!(!storable(200, &h(&no_store), false, T0));
        let vary_all = [("cache-control", "max-age=60"), ("vary", "Accept, *")];
        assert!(!storable(200, &h(&vary_all), false, T0));
        assert!(!storable(200, &h(&[]), false, T0), "nothing to gain");
        assert!(storable(200, &h(&[("last-modified", T0_DATE)]), false, T0));
    }
}
