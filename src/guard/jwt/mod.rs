//! JWT: `auth/validator` (KrakenD CE, krakend-jose) and `auth/signer` ([`signer`]).
//!
//! The validator runs after the bot detector and before the router rate limit. It takes the
//! token from `auth_header_name` (a `Bearer ` prefix, any case, is optional) or else from the
//! `cookie_key` cookie; checks it ([`token`]: the configured alg only, the key by its id, the
//! signature on ring, then `iss`, `aud`, `exp`/`nbf`/`iat` with `leeway`); then roles and
//! scopes ([`claims`]). 401 (no body) for a missing or invalid token, 403 for missing roles or
//! scopes. What a valid token grants — headers from `propagate_claims`, values for
//! `{JWT.claim}` in url_patterns — is computed once and kept in a per-core cache
//! ([`cache`]) until the token expires, so a repeated token costs one hash lookup.
//!
//! Keys come from `jwk_local_path` (read when the plan is compiled) or `jwk_url` ([`remote`]:
//! one fetch thread per set and process, never on an event loop).

pub mod alg;
pub mod b64;
pub mod cache;
pub mod claims;
pub mod config;
pub mod jwk;
pub mod jwk_tls;
pub mod remote;
pub mod signer;
pub mod token;

use crate::guard::cel::CelChecks;
use crate::http::request::RequestHead;
use alg::Alg;
use bytes::Bytes;
use cache::{Entry, PerCore};
use claims::{Propagate, Roles, Scopes};
use config::{Source, ValidatorConfig};
use jwk::KeySet;
use remote::Remote;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use token::{Parsed, Reject, Rules};

pub use config::NS;

/// Where a validator's keys are.
pub enum KeySource {
    Local(Arc<KeySet>),
    Remote(Arc<Remote>),
}

/// What a valid token with the required roles and scopes grants the request.
#[derive(Debug, Default)]
pub struct Grant {
    /// `propagate_claims` headers (canonical names), set on the request in place of any the
    /// client sent.
    pub headers: Vec<(Bytes, Bytes)>,
    /// `{JWT.claim}` values (claim name, text), for the claims the url_patterns use.
    pub params: Vec<(String, String)>,
}

impl Grant {
    /// The value for `{JWT.<claim>}`.
    pub fn param(&self, claim: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(c, _)| c == claim)
            .map(|(_, v)| v.as_str())
    }
}

/// The outcome of a verified token, as cached, with its claims when the endpoint's CEL
/// rejecter needs them (it runs on every request: its expressions may read `now`).
struct Decision {
    verdict: Verdict,
    claims: Option<Map<String, Value>>,
}

enum Verdict {
    Allow(Rc<Grant>),
    /// Valid token, missing roles or scopes: 403.
    Forbid,
}

thread_local! {
    static CACHES: cache::Caches<Decision> = RefCell::new(HashMap::new());
}
static PER_CORE: PerCore<Decision> = PerCore::new(&CACHES);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub struct Validator {
    rules: Rules,
    keys: KeySource,
    roles: Roles,
    scopes: Option<Scopes>,
    propagate: Vec<Propagate>,
    preserve_array: bool,
    /// Claims named by `{JWT.x}` in this endpoint's url_patterns.
    params: Vec<String>,
    header: String,
    cookie_key: String,
    debug: bool,
    /// The endpoint's `validation/cel` expressions on `JWT` (krakend-cel's rejecter).
    rejecter: Option<CelChecks>,
    id: u64,
    alive: Arc<()>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Validator {
    /// Compile the endpoint's `auth/validator` block; `params` are the `{JWT.x}` claims its
    /// url_patterns use; `rejecter` the endpoint's CEL checks on `JWT`. Reads a local JWK file
    /// now (an unreadable one is a config error).
    pub fn compile(
        v: &Value,
        params: Vec<String>,
        rejecter: Option<CelChecks>,
    ) -> Result<Validator, String> {
        let c = ValidatorConfig::parse(v)?;
        let keys = match &c.source {
            Source::Local(path) => KeySource::Local(Arc::new(local_keys(path, c.alg)?)),
            Source::Url(u) => {
                KeySource::Remote(Remote::shared(u, c.alg, c.cache_duration, c.cooldown))
            }
        };
        Ok(Validator {
            rules: Rules {
                alg: c.alg,
                strategy: c.strategy,
                issuer: c.issuer,
                audience: c.audience,
                leeway_ms: c.leeway.as_millis().min(i64::MAX as u128) as i64,
                require_exp: c.require_exp,
            },
            keys,
            roles: c.roles,
            scopes: c.scopes,
            propagate: c.propagate,
            preserve_array: c.preserve_array,
            params,
            header: c.header,
            cookie_key: c.cookie_key,
            debug: c.debug,
            rejecter: rejecter.filter(CelChecks::has_jwt),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            alive: Arc::new(()),
        })
    }

    pub fn alg(&self) -> Alg {
        self.rules.alg
    }

    /// The remote key set, for `proxy run` to start its fetch thread.
    pub fn remote(&self) -> Option<&Arc<Remote>> {
        match &self.keys {
            KeySource::Remote(r) => Some(r),
            KeySource::Local(_) => None,
        }
    }

    /// Whether a client header is replaced by a propagated claim (compared case-insensitively).
    pub fn replaces_header(&self, name: &[u8]) -> bool {
        self.propagate
            .iter()
            .any(|p| p.header.eq_ignore_ascii_case(name))
    }

    /// The token of a request: the header (first value, `Bearer ` optional), else the cookie.
    pub fn extract<'a>(&self, head: &'a RequestHead) -> Option<&'a [u8]> {
        // KrakenD (krakend-jose `FromHeader`): a 7-byte `bearer ` prefix in any case is cut.
        if let Some(v) = head.headers.get(&self.header) {
            let raw: &[u8] = v;
            let raw = match raw.get(..7) {
                Some(p) if raw.len() > 7 && p.eq_ignore_ascii_case(b"bearer ") => {
                    raw.get(7..).unwrap_or_default()
                }
                _ => raw,
            };
            if !raw.is_empty() {
                return Some(raw);
            }
        }
        cookie(head, &self.cookie_key)
    }

    /// Check the request's token: the grant, or the status to answer (401 or 403).
    pub async fn admit(&self, head: &RequestHead) -> Result<Rc<Grant>, u16> {
        let Some(token) = self.extract(head) else {
            return Err(self.refuse(Reject::Missing));
        };
        let now = now_ms();
        let hit = PER_CORE
            .with(self.id, &self.alive, |g| g.get(token))
            .flatten();
        let entry = match hit {
            Some(e) => e,
            None => {
                let e = self.verify(token, now).await.map_err(|r| self.refuse(r))?;
                PER_CORE.with(self.id, &self.alive, |g| g.put(token, e.clone()));
                e
            }
        };
        if !token::in_time(entry.exp_ms, entry.nbf_ms, self.rules.leeway_ms, now) {
            return Err(self.refuse(Reject::Expired));
        }
        // KrakenD (krakend-jose): the CEL rejecter runs on the claims before the roles and
        // scopes, and refuses with a bare 401.
        if let (Some(r), Some(claims)) = (&self.rejecter, &entry.value.claims) {
            if let Err(why) = r.check_jwt(claims, &crate::guard::cel::now_rfc3339()) {
                if self.debug {
                    crate::error!("[ENDPOINT: JWT][CEL] {why}");
                }
                return Err(401);
            }
        }
        match &entry.value.verdict {
            Verdict::Allow(g) => Ok(g.clone()),
            Verdict::Forbid => Err(403),
        }
    }

    fn refuse(&self, why: Reject) -> u16 {
        if self.debug {
            crate::error!("[ENDPOINT: JWT] {}", why.text());
        }
        401
    }

    /// Verify a token not in the cache (sans cache, with the remote set's refetch).
    async fn verify(&self, token: &[u8], now: i64) -> Result<Entry<Decision>, Reject> {
        let parsed = Parsed::parse(token)?;
        parsed.check_header(self.rules.alg)?;
        match &self.keys {
            KeySource::Local(set) => parsed.verify_signature(token, &self.rules, set)?,
            KeySource::Remote(r) => {
                let first = match r.keys() {
                    Some(set) => parsed.verify_signature(token, &self.rules, &set),
                    None => Err(Reject::UnknownKey),
                };
                match first {
                    Err(Reject::UnknownKey) if r.unknown_key() => {
                        wait_for_fetch(r).await;
                        let set = r.keys().ok_or(Reject::UnknownKey)?;
                        parsed.verify_signature(token, &self.rules, &set)?;
                    }
                    other => other?,
                }
            }
        }
        let v = parsed.claims(&self.rules, now)?;
        Ok(Entry {
            exp_ms: v.exp_ms,
            nbf_ms: v.nbf_ms,
            value: Rc::new(Decision {
                verdict: self.decide(&v.claims),
                claims: self.rejecter.is_some().then(|| v.claims.clone()),
            }),
        })
    }

    fn decide(&self, claims: &Map<String, Value>) -> Verdict {
        if !self.roles.allow(claims) || self.scopes.as_ref().is_some_and(|s| !s.allow(claims)) {
            return Verdict::Forbid;
        }
        let mut grant = Grant::default();
        claims::propagate(
            &self.propagate,
            self.preserve_array,
            claims,
            &mut grant.headers,
        );
        // KrakenD: `{JWT.x}` reads top-level claims only; a missing one is not filled.
        for p in &self.params {
            if let Some(v) = claims.get(p) {
                grant.params.push((p.clone(), claims::claim_text(v)));
            }
        }
        Verdict::Allow(Rc::new(grant))
    }

    /// Verify without the cache or the clock's help (benches): the decision's status.
    pub fn verify_uncached(&self, token: &[u8], now_ms: i64) -> u16 {
        let parsed = match Parsed::parse(token) {
            Ok(p) => p,
            Err(_) => return 401,
        };
        let set = match &self.keys {
            KeySource::Local(s) => s.clone(),
            KeySource::Remote(r) => match r.keys() {
                Some(s) => s,
                None => return 401,
            },
        };
        if parsed.verify_signature(token, &self.rules, &set).is_err() {
            return 401;
        }
        match parsed
            .claims(&self.rules, now_ms)
            .map(|v| self.decide(&v.claims))
        {
            Ok(Verdict::Allow(_)) => 200,
            Ok(Verdict::Forbid) => 403,
            Err(_) => 401,
        }
    }
}

/// Wait (without blocking the event loop) until the fetch thread finishes its next attempt.
async fn wait_for_fetch(r: &Remote) {
    let start = r.generation();
    let deadline = Instant::now() + remote::FETCH_DEADLINE + Duration::from_millis(500);
    while r.generation() == start && Instant::now() < deadline {
        crate::runtime::timer::sleep(Duration::from_millis(2)).await;
    }
}

/// Read a local JWK set for `alg`; at least one key must be usable.
fn local_keys(path: &str, alg: Alg) -> Result<KeySet, String> {
    let text = std::fs::read(path)
        .map_err(|e| format!("{NS}.jwk_local_path {path:?}: cannot read it: {e}"))?;
    let set =
        jwk::parse_set(&text, alg).map_err(|e| format!("{NS}.jwk_local_path {path:?}: {e}"))?;
    if set.keys.is_empty() {
        let why = if set.skipped.is_empty() {
            String::new()
        } else {
            format!(" ({})", set.skipped.join("; "))
        };
        return Err(format!(
            "{NS}.jwk_local_path {path:?}: no key usable with {}{why}",
            alg.name()
        ));
    }
    Ok(set)
}

/// Go's `Request.Cookie(name)`: the first cookie of that name in any `Cookie` header, with
/// surrounding double quotes removed.
fn cookie<'a>(head: &'a RequestHead, name: &str) -> Option<&'a [u8]> {
    for v in head.headers.get_all("cookie") {
        for part in v.split(|b| *b == b';') {
            let part = part.trim_ascii();
            let Some(eq) = part.iter().position(|b| *b == b'=') else {
                continue;
            };
            let (k, val) = (part.get(..eq)?, part.get(eq + 1..)?);
            if k == name.as_bytes() {
                let val = val
                    .strip_prefix(b"\"")
                    .and_then(|x| x.strip_suffix(b"\""))
                    .unwrap_or(val);
                return (!val.is_empty()).then_some(val);
            }
        }
    }
    None
}

/// How long `proxy run` (and a reload) waits for the first fetch of each JWK set.
pub const FIRST_FETCH_WAIT: Duration = Duration::from_secs(6);

/// Start the fetch threads of these JWK sets and wait (bounded) for their first answer, then
/// load the signers' keys from their URLs. Called before a plan serves; blocking is fine here.
/// A signer whose key does not load answers 400 until a background retry loads it (KrakenD
/// would serve that endpoint unsigned). Err only when a thread cannot be started.
pub fn start(remotes: &[Arc<Remote>], signers: &[&signer::Signer]) -> Result<(), String> {
    let mut waiting = Vec::new();
    for r in remotes {
        if r.start()? {
            waiting.push(r.clone());
        }
    }
    let deadline = Instant::now() + FIRST_FETCH_WAIT;
    while waiting.iter().any(|r| r.generation() == 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    for r in &waiting {
        if r.keys().is_none() {
            crate::warn!(
                "[JWK] {}: no keys yet; its endpoints answer 401 until a fetch succeeds",
                r.url
            );
        }
    }
    for s in signers {
        if let Err(e) = s.load() {
            crate::warn!("{e}; the endpoint answers 400 until the key loads (retried)");
        }
    }
    Ok(())
}
