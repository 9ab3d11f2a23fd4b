//! One compact JWS (RFC 7515 §7.1) checked as a JWT (RFC 7519), sans-io: the clock is a
//! parameter. In KrakenD's order (go-auth0 `ValidateRequest`, go-jose `ValidateWithLeeway`):
//! the header's `alg` must be the configured one, the key is found by the header's id, the
//! signature is checked, then the claims: `iss`, `aud` (all configured), `exp`, `nbf`, `iat`
//! with the leeway.

use super::alg::Alg;
use super::b64;
use super::jwk::{KeySet, Strategy, TokenIds};
use serde_json::{Map, Value};

/// Tokens longer than this are refused before any decoding (RFC 8725 §3.x: bound the work an
/// unauthenticated client can ask for).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Top-level claims a token may carry.
pub const MAX_CLAIMS: usize = 256;

/// Why a token is refused; every one answers 401.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    Missing,
    TooLarge,
    Malformed,
    /// The header's `alg` is not the configured one (`none` included).
    Algorithm,
    /// `crit` names extensions this gateway does not understand (RFC 7515 §4.1.11).
    Critical,
    /// No key in the set has the token's id: worth a refetch of a remote set.
    UnknownKey,
    Signature,
    TooManyClaims,
    MissingExp,
    Expired,
    NotYetValid,
    IssuedInFuture,
    Issuer,
    Audience,
}

impl Reject {
    /// For `operation_debug` logs.
    pub fn text(self) -> &'static str {
        match self {
            Reject::Missing => "no token in the header or the cookie",
            Reject::TooLarge => "token too large",
            Reject::Malformed => "malformed token",
            Reject::Algorithm => "token alg is not the configured alg",
            Reject::Critical => "token has critical header extensions",
            Reject::UnknownKey => "no key matches the token's key id",
            Reject::Signature => "invalid signature",
            Reject::TooManyClaims => "too many claims",
            Reject::MissingExp => "token has no exp claim",
            Reject::Expired => "token is expired",
            Reject::NotYetValid => "token is not valid yet (nbf)",
            Reject::IssuedInFuture => "token issued in the future (iat)",
            Reject::Issuer => "invalid issuer claim (iss)",
            Reject::Audience => "invalid audience claim (aud)",
        }
    }
}

/// What the claims must satisfy.
#[derive(Clone, Debug)]
pub struct Rules {
    pub alg: Alg,
    pub strategy: Strategy,
    pub issuer: Option<String>,
    pub audience: Vec<String>,
    /// Milliseconds.
    pub leeway_ms: i64,
    pub require_exp: bool,
}

/// A token split and decoded, signature not checked yet.
pub struct Parsed {
    header: Map<String, Value>,
    payload: Vec<u8>,
    signing_input_len: usize,
    signature: Vec<u8>,
}

impl Parsed {
    pub fn parse(token: &[u8]) -> Result<Parsed, Reject> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Reject::TooLarge);
        }
        let mut parts = token.splitn(4, |b| *b == b'.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Reject::Malformed);
        };
        let header_json = b64::decode(h).ok_or(Reject::Malformed)?;
        let header: Map<String, Value> =
            serde_json::from_slice(&header_json).map_err(|_| Reject::Malformed)?;
        Ok(Parsed {
            header,
            payload: b64::decode(p).ok_or(Reject::Malformed)?,
            signing_input_len: h.len() + 1 + p.len(),
            signature: b64::decode(s).ok_or(Reject::Malformed)?,
        })
    }

    fn header_str(&self, key: &str) -> Option<&str> {
        self.header.get(key).and_then(Value::as_str)
    }

    /// The key ids the header carries.
    pub fn ids(&self) -> TokenIds<'_> {
        TokenIds {
            kid: self.header_str("kid"),
            x5t: self.header_str("x5t"),
            x5t_s256: self.header_str("x5t#S256"),
        }
    }

    /// `alg` and `crit`, before any key is looked up.
    pub fn check_header(&self, alg: Alg) -> Result<(), Reject> {
        // RFC 8725 §3.1: the configured algorithm only; `none` never has a verifier.
        if self.header_str("alg") != Some(alg.name()) {
            return Err(Reject::Algorithm);
        }
        if self.header.contains_key("crit") {
            return Err(Reject::Critical);
        }
        Ok(())
    }

    /// Check the signature with the key named by the header.
    pub fn verify_signature(
        &self,
        token: &[u8],
        rules: &Rules,
        keys: &KeySet,
    ) -> Result<(), Reject> {
        self.check_header(rules.alg)?;
        let key = keys
            .find(rules.strategy, self.ids())
            .ok_or(Reject::UnknownKey)?;
        let input = token
            .get(..self.signing_input_len)
            .ok_or(Reject::Malformed)?;
        if key.verify(rules.alg, input, &self.signature) {
            Ok(())
        } else {
            Err(Reject::Signature)
        }
    }

    /// Decode and check the claims (after the signature). `now_ms`: Unix time in ms.
    pub fn claims(&self, rules: &Rules, now_ms: i64) -> Result<Verified, Reject> {
        let claims: Map<String, Value> =
            serde_json::from_slice(&self.payload).map_err(|_| Reject::Malformed)?;
        if claims.len() > MAX_CLAIMS {
            return Err(Reject::TooManyClaims);
        }
        check_claims(&claims, rules, now_ms).map(|(exp_ms, nbf_ms)| Verified {
            claims,
            exp_ms,
            nbf_ms,
        })
    }
}

/// Claims that passed every check.
#[derive(Debug)]
pub struct Verified {
    pub claims: Map<String, Value>,
    /// `exp` in ms, or None when the token has none (only with `require_exp: false`).
    pub exp_ms: Option<i64>,
    pub nbf_ms: Option<i64>,
}

/// A NumericDate claim in ms. Err when present and not a number.
fn date_ms(claims: &Map<String, Value>, key: &str) -> Result<Option<i64>, Reject> {
    match claims.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|f| f.is_finite())
            .map(|f| Some((f * 1000.0) as i64))
            .ok_or(Reject::Malformed),
    }
}

/// Whether `now` is inside a token's validity with the leeway: go-jose's rules
/// (`now > exp + leeway` is expired; `now + leeway < nbf` or `< iat` is too early).
pub fn in_time(exp_ms: Option<i64>, nbf_ms: Option<i64>, leeway_ms: i64, now_ms: i64) -> bool {
    exp_ms.is_none_or(|e| now_ms <= e.saturating_add(leeway_ms))
        && nbf_ms.is_none_or(|n| now_ms.saturating_add(leeway_ms) >= n)
}

fn check_claims(
    claims: &Map<String, Value>,
    rules: &Rules,
    now_ms: i64,
) -> Result<(Option<i64>, Option<i64>), Reject> {
    if let Some(iss) = &rules.issuer {
        if claims.get("iss").and_then(Value::as_str) != Some(iss.as_str()) {
            return Err(Reject::Issuer);
        }
    }
    if !rules.audience.is_empty() {
        // KrakenD (go-jose `Audience`): a string or an array of strings; every configured
        // audience must be in it.
        let has = |want: &str| match claims.get("aud") {
            Some(Value::String(s)) => s == want,
            Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(want)),
            _ => false,
        };
        if !rules.audience.iter().all(|a| has(a)) {
            return Err(Reject::Audience);
        }
    }
    let exp = date_ms(claims, "exp")?;
    let nbf = date_ms(claims, "nbf")?;
    let iat = date_ms(claims, "iat")?;
    if exp.is_none() && rules.require_exp {
        return Err(Reject::MissingExp);
    }
    if exp.is_some_and(|e| now_ms > e.saturating_add(rules.leeway_ms)) {
        return Err(Reject::Expired);
    }
    if nbf.is_some_and(|n| now_ms.saturating_add(rules.leeway_ms) < n) {
        return Err(Reject::NotYetValid);
    }
    if iat.is_some_and(|i| now_ms.saturating_add(rules.leeway_ms) < i) {
        return Err(Reject::IssuedInFuture);
    }
    Ok((exp, nbf))
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
