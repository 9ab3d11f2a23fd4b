//! JWS algorithms (RFC 7518 §3, RFC 8037) on ring: the configured algorithm picks the
//! verifier, never the token's header (RFC 8725 §3.1), so an RSA public key can never be
//! used as an HMAC secret and `alg: none` has no verifier at all.

use ring::{hmac, rand, signature};

/// The algorithms KrakenD CE accepts in `alg` (krakend-jose `supportedAlgorithms`), less
/// ES512: ring has no P-521, and a second crypto crate for one rarely used curve is not worth
/// its audit cost. `check` refuses ES512 with that reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

/// The key family an algorithm needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Hmac,
    Rsa,
    /// The JWK `crv` name and the coordinate length in bytes.
    Ec(&'static str, usize),
    Ed25519,
}

impl Alg {
    /// Parse a configured `alg`. Err says why a KrakenD name is not accepted.
    pub fn parse(name: &str) -> Result<Alg, String> {
        Ok(match name {
            "HS256" => Alg::HS256,
            "HS384" => Alg::HS384,
            "HS512" => Alg::HS512,
            "RS256" => Alg::RS256,
            "RS384" => Alg::RS384,
            "RS512" => Alg::RS512,
            "PS256" => Alg::PS256,
            "PS384" => Alg::PS384,
            "PS512" => Alg::PS512,
            "ES256" => Alg::ES256,
            "ES384" => Alg::ES384,
            "EdDSA" => Alg::EdDSA,
            "ES512" => {
                return Err(
                    "ES512 (ECDSA P-521) is not supported by this gateway: its crypto \
                            library (ring) has no P-521; use ES256, ES384 or EdDSA"
                        .into(),
                )
            }
            other => {
                return Err(format!(
                    "unknown algorithm {other:?} (KrakenD exits at startup too); one of EdDSA, \
                     HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384"
                ))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
        }
    }

    pub fn family(self) -> Family {
        match self {
            Alg::HS256 | Alg::HS384 | Alg::HS512 => Family::Hmac,
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => {
                Family::Rsa
            }
            Alg::ES256 => Family::Ec("P-256", 32),
            Alg::ES384 => Family::Ec("P-384", 48),
            Alg::EdDSA => Family::Ed25519,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Alg::HS384 => hmac::HMAC_SHA384,
            Alg::HS512 => hmac::HMAC_SHA512,
            _ => hmac::HMAC_SHA256,
        }
    }

    fn rsa_verify(self) -> &'static signature::RsaParameters {
        match self {
            Alg::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Alg::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Alg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
            Alg::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
            Alg::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
            _ => &signature::RSA_PKCS1_2048_8192_SHA256,
        }
    }

    fn rsa_sign(self) -> &'static dyn signature::RsaEncoding {
        match self {
            Alg::RS384 => &signature::RSA_PKCS1_SHA384,
            Alg::RS512 => &signature::RSA_PKCS1_SHA512,
            Alg::PS256 => &signature::RSA_PSS_SHA256,
            Alg::PS384 => &signature::RSA_PSS_SHA384,
            Alg::PS512 => &signature::RSA_PSS_SHA512,
            _ => &signature::RSA_PKCS1_SHA256,
        }
    }
}

/// A key that verifies one algorithm, built from a JWK once.
pub enum VerifyKey {
    Hmac(hmac::Key),
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// Uncompressed SEC1 point (`04 || x || y`) or the Ed25519 public key.
    Public(Vec<u8>),
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VerifyKey::Hmac(_) => "VerifyKey::Hmac",
            VerifyKey::Rsa { .. } => "VerifyKey::Rsa",
            VerifyKey::Public(_) => "VerifyKey::Public",
        })
    }
}

impl VerifyKey {
    pub fn hmac(alg: Alg, secret: &[u8]) -> VerifyKey {
        VerifyKey::Hmac(hmac::Key::new(alg.hmac(), secret))
    }

    /// Whether `sig` is `alg`'s signature of `msg` under this key. A key of another family
    /// never verifies (the key was built for the configured algorithm).
    pub fn verify(&self, alg: Alg, msg: &[u8], sig: &[u8]) -> bool {
        match (alg.family(), self) {
            (Family::Hmac, VerifyKey::Hmac(k)) => hmac::verify(k, msg, sig).is_ok(),
            (Family::Rsa, VerifyKey::Rsa { n, e }) => signature::RsaPublicKeyComponents { n, e }
                .verify(alg.rsa_verify(), msg, sig)
                .is_ok(),
            (Family::Ec(_, _), VerifyKey::Public(point)) => {
                let params: &dyn signature::VerificationAlgorithm = match alg {
                    Alg::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
                    _ => &signature::ECDSA_P256_SHA256_FIXED,
                };
                signature::UnparsedPublicKey::new(params, point)
                    .verify(msg, sig)
                    .is_ok()
            }
            (Family::Ed25519, VerifyKey::Public(pk)) => {
                signature::UnparsedPublicKey::new(&signature::ED25519, pk)
                    .verify(msg, sig)
                    .is_ok()
            }
            _ => false,
        }
    }
}

/// A private key that signs with one algorithm (`auth/signer`).
pub enum SignKey {
    Hmac(hmac::Key),
    Rsa(signature::RsaKeyPair),
    Ec(signature::EcdsaKeyPair),
    Ed25519(signature::Ed25519KeyPair),
}

impl SignKey {
    pub fn sign(&self, alg: Alg, msg: &[u8]) -> Result<Vec<u8>, String> {
        let rng = rand::SystemRandom::new();
        match self {
            SignKey::Hmac(k) => Ok(hmac::sign(k, msg).as_ref().to_vec()),
            SignKey::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(alg.rsa_sign(), &rng, msg, &mut sig)
                    .map_err(|_| "RSA signing failed".to_string())?;
                Ok(sig)
            }
            SignKey::Ec(k) => k
                .sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| "ECDSA signing failed".to_string()),
            SignKey::Ed25519(k) => Ok(k.sign(msg).as_ref().to_vec()),
        }
    }

    pub fn hmac(alg: Alg, secret: &[u8]) -> SignKey {
        SignKey::Hmac(hmac::Key::new(alg.hmac(), secret))
    }

    pub fn ecdsa_params(alg: Alg) -> &'static signature::EcdsaSigningAlgorithm {
        match alg {
            Alg::ES384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            _ => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        }
    }
}
