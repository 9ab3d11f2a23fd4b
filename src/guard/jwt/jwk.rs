//! JWK sets (RFC 7517) turned into keys once, when they are read or fetched: for the
//! validator, the public (or HMAC) keys usable with the configured algorithm, each with the
//! identifiers `key_identify_strategy` matches on; for the signer, one private key by `kid`.

use super::alg::{Alg, Family, SignKey, VerifyKey};
use super::b64;
use serde_json::{Map, Value};

/// How a token's header names its key (`key_identify_strategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Strategy {
    Kid,
    X5t,
    X5tS256,
    /// `kid` when the token has one, else `x5t`.
    KidX5t,
}

impl Strategy {
    pub fn parse(s: &str) -> Result<Strategy, String> {
        Ok(match s {
            "" | "kid" => Strategy::Kid,
            "x5t" => Strategy::X5t,
            "x5t#S256" => Strategy::X5tS256,
            "kid_x5t" => Strategy::KidX5t,
            other => {
                return Err(format!(
                    "key_identify_strategy: unknown {other:?}; one of kid, x5t, x5t#S256, kid_x5t"
                ))
            }
        })
    }
}

/// One usable verification key.
#[derive(Debug)]
pub struct Key {
    pub kid: Option<String>,
    pub x5t: Option<String>,
    pub x5t_s256: Option<String>,
    pub key: VerifyKey,
}

/// The keys of one JWK set usable with one algorithm.
#[derive(Debug, Default)]
pub struct KeySet {
    pub keys: Vec<Key>,
    /// Keys skipped, with the reason (for logs and `check`).
    pub skipped: Vec<String>,
}

/// The ids a token header carries.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokenIds<'a> {
    pub kid: Option<&'a str>,
    pub x5t: Option<&'a str>,
    pub x5t_s256: Option<&'a str>,
}

impl KeySet {
    /// The key this token names under `strategy`.
    pub fn find(&self, strategy: Strategy, ids: TokenIds<'_>) -> Option<&VerifyKey> {
        let by = |want: Option<&str>, field: fn(&Key) -> Option<&str>| {
            let want = want?;
            self.keys
                .iter()
                .find(|k| field(k) == Some(want))
                .map(|k| &k.key)
        };
        fn kid(k: &Key) -> Option<&str> {
            k.kid.as_deref()
        }
        fn x5t(k: &Key) -> Option<&str> {
            k.x5t.as_deref()
        }
        fn x5t_s256(k: &Key) -> Option<&str> {
            k.x5t_s256.as_deref()
        }
        match strategy {
            Strategy::Kid => by(ids.kid, kid),
            Strategy::X5t => by(ids.x5t, x5t),
            Strategy::X5tS256 => by(ids.x5t_s256, x5t_s256),
            Strategy::KidX5t => match ids.kid {
                Some(_) => by(ids.kid, kid),
                None => by(ids.x5t, x5t),
            },
        }
    }
}

/// The `keys` array of a JWK set document.
fn keys_of(doc: &Value) -> Result<&Vec<Value>, String> {
    doc.get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| "not a JWK set: no \"keys\" array".to_string())
}

/// Parse a JWK set document into the keys usable with `alg`.
pub fn parse_set(text: &[u8], alg: Alg) -> Result<KeySet, String> {
    let doc: Value =
        serde_json::from_slice(text).map_err(|e| format!("not a JWK set: invalid JSON: {e}"))?;
    let mut set = KeySet::default();
    for (i, k) in keys_of(&doc)?.iter().enumerate() {
        let Some(obj) = k.as_object() else {
            set.skipped.push(format!("keys[{i}]: not an object"));
            continue;
        };
        match verify_key(obj, alg) {
            Ok(Some(key)) => set.keys.push(Key {
                kid: text_of(obj, "kid"),
                x5t: text_of(obj, "x5t"),
                x5t_s256: text_of(obj, "x5t#S256"),
                key,
            }),
            Ok(None) => {}
            Err(e) => set.skipped.push(format!("keys[{i}]: {e}")),
        }
    }
    Ok(set)
}

fn text_of(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.get(key).and_then(Value::as_str).map(str::to_string)
}

fn bytes_of(obj: &Map<String, Value>, key: &str) -> Result<Vec<u8>, String> {
    let s = obj
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing {key:?}"))?;
    b64::decode(s.as_bytes()).ok_or_else(|| format!("{key:?} is not base64url"))
}

/// Big-endian integers in JWKs may carry leading zero bytes; ring wants them minimal.
fn unsigned(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|b| **b == 0).count();
    v.drain(..zeros.min(v.len().saturating_sub(1)));
    v
}

/// Whether a key meant for another algorithm or for encryption must be left out.
fn declared_for_other_use(obj: &Map<String, Value>, alg: Alg) -> bool {
    let other_alg = obj
        .get("alg")
        .and_then(Value::as_str)
        .is_some_and(|a| a != alg.name());
    let enc = obj.get("use").and_then(Value::as_str) == Some("enc");
    other_alg || enc
}

/// The verification key in this JWK for `alg`; None when it is of another family or declared
/// for another algorithm or for encryption; Err when it claims the family but is malformed.
fn verify_key(obj: &Map<String, Value>, alg: Alg) -> Result<Option<VerifyKey>, String> {
    let kty = obj.get("kty").and_then(Value::as_str).unwrap_or_default();
    let fits = match alg.family() {
        Family::Hmac => kty == "oct",
        Family::Rsa => kty == "RSA",
        Family::Ec(crv, _) => kty == "EC" && obj.get("crv").and_then(Value::as_str) == Some(crv),
        Family::Ed25519 => {
            kty == "OKP" && obj.get("crv").and_then(Value::as_str) == Some("Ed25519")
        }
    };
    if !fits || declared_for_other_use(obj, alg) {
        return Ok(None);
    }
    Ok(Some(match alg.family() {
        Family::Hmac => {
            let k = bytes_of(obj, "k")?;
            if k.is_empty() {
                return Err("empty HMAC key".into());
            }
            VerifyKey::hmac(alg, &k)
        }
        Family::Rsa => {
            let n = unsigned(bytes_of(obj, "n")?);
            let e = unsigned(bytes_of(obj, "e")?);
            // ring verifies RSA from 2048 bits (RFC 7518 §3.3 requires them).
            if n.len() < 256 {
                return Err(format!(
                    "RSA key of {} bits; at least 2048 are required (RFC 7518 §3.3)",
                    n.len() * 8
                ));
            }
            VerifyKey::Rsa { n, e }
        }
        Family::Ec(_, size) => VerifyKey::Public(ec_point(obj, size)?),
        Family::Ed25519 => {
            let x = bytes_of(obj, "x")?;
            if x.len() != 32 {
                return Err("Ed25519 \"x\" must be 32 bytes".into());
            }
            VerifyKey::Public(x)
        }
    }))
}

fn ec_point(obj: &Map<String, Value>, size: usize) -> Result<Vec<u8>, String> {
    let x = bytes_of(obj, "x")?;
    let y = bytes_of(obj, "y")?;
    if x.len() != size || y.len() != size {
        return Err(format!("EC coordinates must be {size} bytes"));
    }
    let mut point = Vec::with_capacity(1 + 2 * size);
    point.push(4);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(point)
}

/// The signing key `kid` of a JWK set, for `alg` (`auth/signer`).
pub fn signing_key(text: &[u8], kid: &str, alg: Alg) -> Result<SignKey, String> {
    let doc: Value =
        serde_json::from_slice(text).map_err(|e| format!("not a JWK set: invalid JSON: {e}"))?;
    let obj = keys_of(&doc)?
        .iter()
        .filter_map(Value::as_object)
        .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
        .ok_or_else(|| format!("no key with kid {kid:?} in the JWK set"))?;
    if verify_key(obj, alg)?.is_none() {
        return Err(format!(
            "key {kid:?} cannot sign {}: wrong key type, curve or declared alg/use",
            alg.name()
        ));
    }
    let rejected = |e: ring::error::KeyRejected| format!("key {kid:?} rejected: {e}");
    Ok(match alg.family() {
        Family::Hmac => SignKey::hmac(alg, &bytes_of(obj, "k")?),
        Family::Rsa => {
            let get = |k: &str| bytes_of(obj, k).map(unsigned);
            let c = ring::rsa::KeyPairComponents {
                public_key: ring::rsa::PublicKeyComponents {
                    n: get("n")?,
                    e: get("e")?,
                },
                d: get("d")?,
                p: get("p")?,
                q: get("q")?,
                dP: get("dp")?,
                dQ: get("dq")?,
                qInv: get("qi")?,
            };
            SignKey::Rsa(ring::signature::RsaKeyPair::from_components(&c).map_err(rejected)?)
        }
        Family::Ec(_, size) => {
            let point = ec_point(obj, size)?;
            let d = bytes_of(obj, "d")?;
            let rng = ring::rand::SystemRandom::new();
            SignKey::Ec(
                ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
                    SignKey::ecdsa_params(alg),
                    &d,
                    &point,
                    &rng,
                )
                .map_err(rejected)?,
            )
        }
        Family::Ed25519 => SignKey::Ed25519(
            ring::signature::Ed25519KeyPair::from_seed_and_public_key(
                &bytes_of(obj, "d")?,
                &bytes_of(obj, "x")?,
            )
            .map_err(rejected)?,
        ),
    })
}
