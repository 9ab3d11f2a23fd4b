//! The `auth/validator` block read at plan time. Every setting KrakenD would fail on at
//! startup, and every one that would leave KrakenD answering 401 to every request, is an error
//! here (`proxy check` and `proxy run` refuse the config).

use super::alg::Alg;
use super::claims::{Propagate, Roles, Scopes};
use super::jwk::Strategy;
use super::jwk_tls::{self, JwkUrl};
use crate::guard::fragment::{flag, strings};
use serde_json::{Map, Value};
use std::time::Duration;

pub const NS: &str = "auth/validator";

/// Where the keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Local(String),
    /// An https URL, or a plain-http one with `disable_jwk_security`.
    Url(JwkUrl),
}

/// The validator's settings, checked.
#[derive(Clone, Debug)]
pub struct ValidatorConfig {
    pub alg: Alg,
    pub source: Source,
    pub strategy: Strategy,
    pub cache_duration: Duration,
    pub cooldown: Duration,
    pub issuer: Option<String>,
    pub audience: Vec<String>,
    pub roles: Roles,
    pub scopes: Option<Scopes>,
    pub propagate: Vec<Propagate>,
    pub preserve_array: bool,
    pub cookie_key: String,
    pub header: String,
    pub leeway: Duration,
    pub require_exp: bool,
    pub debug: bool,
}

/// KrakenD's default `cache_duration` (seconds).
const DEFAULT_CACHE: u64 = 900;
/// Unknown key ids refetch the set at most this often when `failed_jwk_key_cooldown` is
/// unset or shorter: one fetch per second at most, whatever clients send.
pub const MIN_COOLDOWN: Duration = Duration::from_secs(1);

fn text(m: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(format!("{NS}.{key}: must be a string, got {v}")),
    }
}

/// A duration: a Go duration string, or a number of seconds.
fn duration(m: &Map<String, Value>, key: &str) -> Result<Option<Duration>, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => crate::config::duration::parse_go_duration(s)
            .map(Some)
            .map_err(|e| format!("{NS}.{key}: {e}")),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|s| Some(Duration::from_secs(s)))
            .ok_or_else(|| format!("{NS}.{key}: must be a whole number of seconds, got {n}")),
        Some(v) => Err(format!(
            "{NS}.{key}: must be a duration such as \"1s\", got {v}"
        )),
    }
}

/// The common JWK source settings of the validator and the signer.
pub fn source(ns: &str, m: &Map<String, Value>) -> Result<Source, String> {
    let insecure_ok = flag(ns, m, "disable_jwk_security")?;
    if text(m, "secret_url")?.is_some() || m.get("cypher_key").is_some_and(|v| !v.is_null()) {
        return Err(format!(
            "{ns}.secret_url / cypher_key: encrypted JWK files are not supported by this gateway \
             yet; use a plain jwk_local_path"
        ));
    }
    if let Some(path) = text(m, "jwk_local_path")? {
        // KrakenD: the https check runs on the (empty) URL even for a local file, so without
        // `disable_jwk_security` KrakenD starts and answers 401 to every request.
        if !insecure_ok {
            return Err(format!(
                "{ns}.jwk_local_path needs \"disable_jwk_security\": true (KrakenD would start \
                 and answer 401 to every request)"
            ));
        }
        return Ok(Source::Local(path));
    }
    let Some(url) = text(m, "jwk_url")? else {
        return Err(format!(
            "{ns}: needs jwk_url or jwk_local_path (KrakenD would answer 401 to every request)"
        ));
    };
    let tls = jwk_tls::parse(ns, m, insecure_ok)?;
    if url.starts_with("https://") {
        return Ok(Source::Url(JwkUrl { url, tls }));
    }
    if !url.starts_with("http://") {
        return Err(format!(
            "{ns}.jwk_url {url:?}: must be an http:// or https:// URL"
        ));
    }
    if !insecure_ok {
        return Err(format!(
            "{ns}.jwk_url {url:?} is not https: KrakenD refuses it (401 to every request) \
             unless \"disable_jwk_security\": true"
        ));
    }
    Ok(Source::Url(JwkUrl { url, tls }))
}

impl ValidatorConfig {
    pub fn parse(v: &Value) -> Result<ValidatorConfig, String> {
        let m = v
            .as_object()
            .ok_or_else(|| format!("{NS}: must be an object, got {v}"))?;
        let alg = match text(m, "alg")? {
            Some(a) => Alg::parse(&a).map_err(|e| format!("{NS}.alg: {e}"))?,
            None => {
                return Err(format!(
                    "{NS}.alg: missing (KrakenD exits at startup: unknown algorithm)"
                ))
            }
        };
        let source = source(NS, m)?;
        // KrakenD: `cache` with a local file is fatal at startup (exit 1).
        if flag(NS, m, "cache")? && matches!(source, Source::Local(_)) {
            return Err(format!(
                "{NS}: \"cache\": true with jwk_local_path is fatal in KrakenD (it exits at \
                 startup); a local file needs no cache: remove \"cache\""
            ));
        }
        let strategy = Strategy::parse(&text(m, "key_identify_strategy")?.unwrap_or_default())
            .map_err(|e| format!("{NS}.{e}"))?;
        let cache_duration = match m.get("cache_duration") {
            None | Some(Value::Null) => Duration::from_secs(DEFAULT_CACHE),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(0) | None => Duration::from_secs(DEFAULT_CACHE),
                Some(s) => Duration::from_secs(s),
            },
            Some(v) => {
                return Err(format!(
                    "{NS}.cache_duration: must be a whole number of seconds, got {v}"
                ))
            }
        };
        let cooldown = duration(m, "failed_jwk_key_cooldown")?
            .unwrap_or(MIN_COOLDOWN)
            .max(MIN_COOLDOWN);
        let roles = Roles {
            key: text(m, "roles_key")?.unwrap_or_else(|| "roles".into()),
            nested: flag(NS, m, "roles_key_is_nested")?,
            required: strings(NS, m, "roles")?,
        };
        let required_scopes = strings(NS, m, "scopes")?;
        let scopes_key = text(m, "scopes_key")?;
        let all = match text(m, "scopes_matcher")?.as_deref() {
            None | Some("any") => false,
            Some("all") => true,
            Some(o) => return Err(format!("{NS}.scopes_matcher: {o:?}: must be any or all")),
        };
        // KrakenD: scopes are checked only when both `scopes` and `scopes_key` are set.
        let scopes = match scopes_key {
            Some(key) if !required_scopes.is_empty() => Some(Scopes {
                key,
                all,
                required: required_scopes,
            }),
            _ => None,
        };
        let propagate = propagate_pairs(m)?;
        Ok(ValidatorConfig {
            alg,
            source,
            strategy,
            cache_duration,
            cooldown,
            issuer: text(m, "issuer")?,
            audience: strings(NS, m, "audience")?,
            roles,
            scopes,
            propagate,
            preserve_array: flag(NS, m, "propagate_claims_preserve_array")?,
            cookie_key: text(m, "cookie_key")?.unwrap_or_else(|| "access_token".into()),
            header: text(m, "auth_header_name")?.unwrap_or_else(|| "Authorization".into()),
            leeway: duration(m, "leeway")?.unwrap_or(Duration::from_secs(1)),
            require_exp: match m.get("require_exp") {
                None | Some(Value::Null) => true,
                _ => flag(NS, m, "require_exp")?,
            },
            debug: flag(NS, m, "operation_debug")?,
        })
    }
}

fn propagate_pairs(m: &Map<String, Value>) -> Result<Vec<Propagate>, String> {
    let list = match m.get("propagate_claims") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(v) => {
            return Err(format!(
                "{NS}.propagate_claims: must be a list of pairs, got {v}"
            ))
        }
    };
    list.iter()
        .map(|pair| match pair.as_array().map(Vec::as_slice) {
            Some([Value::String(claim), Value::String(header)]) if !header.is_empty() => {
                Ok(Propagate {
                    claim: claim.clone(),
                    header: crate::gateway::forward::canonical(header.as_bytes()),
                })
            }
            _ => Err(format!(
                "{NS}.propagate_claims: every entry must be [\"claim\", \"Header-Name\"], got \
                 {pair}"
            )),
        })
        .collect()
}
