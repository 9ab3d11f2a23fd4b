//! TLS for https `jwk_url`s (validator and signer), on the JWK fetch threads only: a
//! blocking `rustls::StreamOwned` over the std `TcpStream` (never an event loop).
//!
//! KrakenD (krakend-jose `SecretProvider`): the JWK client verifies the server against the
//! system roots plus `jwk_local_ca`; `disable_jwk_security` turns verification off
//! (`InsecureSkipVerify`); `jwk_fingerprints` pins the key: one certificate the server sends
//! must have a public key whose SHA-256 (over the DER SPKI, URL-safe base64) is listed;
//! `cipher_suites` narrows the TLS 1.2 suites; TLS 1.2 is the minimum.

use crate::config::tls::{client_default, FileRef};
use crate::config::Span;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;
use serde_json::{Map, Value};
use std::net::TcpStream;
use std::sync::Arc;

/// The TLS settings of one JWK URL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JwkTls {
    /// `disable_jwk_security`: the certificate is not verified (plain http is allowed too).
    pub insecure: bool,
    /// `jwk_local_ca`: a PEM CA file trusted besides the system roots.
    pub local_ca: Option<String>,
    /// `jwk_fingerprints`, decoded: SHA-256 digests of pinned SPKIs.
    pub fingerprints: Vec<Vec<u8>>,
    /// `cipher_suites`: TLS 1.2 suite IDs (None: the default six ECDHE AEAD suites).
    pub cipher_suites: Option<Vec<u16>>,
}

/// A JWK URL and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwkUrl {
    pub url: String,
    pub tls: JwkTls,
}

/// Read the TLS settings of a validator or signer block.
pub fn parse(ns: &str, m: &Map<String, Value>, insecure: bool) -> Result<JwkTls, String> {
    let local_ca = match m.get("jwk_local_ca") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => return Err(format!("{ns}.jwk_local_ca: must be a string, got {v}")),
    };
    let mut fingerprints = Vec::new();
    match m.get("jwk_fingerprints") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for (i, f) in a.iter().enumerate() {
                let text = f.as_str().ok_or_else(|| {
                    format!("{ns}.jwk_fingerprints[{i}]: must be a string, got {f}")
                })?;
                // KrakenD: `base64.URLEncoding` (URL-safe alphabet, padded).
                let d = super::b64::decode(text.trim_end_matches('=').as_bytes())
                    .filter(|d| d.len() == 32)
                    .ok_or_else(|| {
                        format!(
                            "{ns}.jwk_fingerprints[{i}] {text:?}: not the URL-safe base64 of a \
                             SHA-256 digest (KrakenD exits at startup on a bad fingerprint)"
                        )
                    })?;
                fingerprints.push(d);
            }
        }
        Some(v) => {
            return Err(format!(
                "{ns}.jwk_fingerprints: must be a list of strings, got {v}"
            ))
        }
    }
    let cipher_suites = match m.get("cipher_suites") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => {
            let mut ids = Vec::new();
            for (i, v) in a.iter().enumerate() {
                let id = v
                    .as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .ok_or_else(|| format!("{ns}.cipher_suites[{i}]: not a suite ID: {v}"))?;
                if [0x1301, 0x1302, 0x1303].contains(&id) {
                    continue; // KrakenD: Go ignores TLS 1.3 IDs; its 1.3 suites are always on.
                }
                let known = rustls::crypto::ring::ALL_CIPHER_SUITES
                    .iter()
                    .any(|s| u16::from_be_bytes(s.suite().to_array()) == id);
                if !known {
                    return Err(format!(
                        "{ns}.cipher_suites[{i}]: suite {id:#06x} is unknown or not implemented \
                         by rustls; use the ECDHE AES-GCM / ChaCha20 ones: 0xc02b, 0xc02f, \
                         0xc02c, 0xc030, 0xcca9, 0xcca8"
                    ));
                }
                ids.push(id);
            }
            Some(ids)
        }
        Some(v) => return Err(format!("{ns}.cipher_suites: must be a list, got {v}")),
    };
    let t = JwkTls {
        insecure,
        local_ca,
        fingerprints,
        cipher_suites,
    };
    // Read the CA file now: an unreadable one is a config error, not a 401 per request.
    config(&t).map_err(|e| format!("{ns}.jwk_local_ca: {e}"))?;
    Ok(t)
}

/// The rustls client for these settings (the CA file is read each time, so a fetch after
/// the file is replaced trusts the new CA).
pub fn config(t: &JwkTls) -> Result<Arc<ClientConfig>, String> {
    let mut c = client_default(Span::default());
    c.allow_insecure_connections = t.insecure;
    c.common.cipher_suites = t.cipher_suites.clone();
    if let Some(path) = &t.local_ca {
        c.common.ca_certs.push(FileRef {
            path: path.clone(),
            at: Span::default(),
        });
    }
    crate::tls::client::compile(&c)
        .map(|c| c.config)
        .map_err(|e| e.message)
}

/// TLS over a connected socket to `host` (SNI and the name verified), handshake done.
pub fn connect(
    tcp: TcpStream,
    host: &str,
    t: &JwkTls,
) -> Result<StreamOwned<ClientConnection, TcpStream>, String> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| format!("tls: invalid server name {host:?}"))?;
    let conn = ClientConnection::new(config(t)?, name).map_err(|e| format!("tls: {e}"))?;
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn
            .complete_io(&mut s.sock)
            .map_err(|e| format!("tls: {e}"))?;
    }
    if !t.fingerprints.is_empty() && !pinned(&s.conn, &t.fingerprints) {
        return Err("tls: no certificate of the server has a pinned key (jwk_fingerprints)".into());
    }
    Ok(s)
}

/// Whether a certificate the server sent has a public key listed in `fingerprints`.
fn pinned(conn: &ClientConnection, fingerprints: &[Vec<u8>]) -> bool {
    conn.peer_certificates().unwrap_or(&[]).iter().any(|c| {
        let Ok(cert) = webpki::EndEntityCert::try_from(c) else {
            return false;
        };
        let spki = cert.subject_public_key_info();
        let digest = ring::digest::digest(&ring::digest::SHA256, spki.as_ref());
        fingerprints.iter().any(|f| f.as_slice() == digest.as_ref())
    })
}

/// The startup warning for `disable_jwk_security` on an https URL.
pub fn warn_insecure(ns: &str, u: &JwkUrl) {
    if u.tls.insecure && u.url.starts_with("https://") {
        crate::warn!(
            "[ENDPOINT: {ns}] {}: disable_jwk_security is set: the JWK server's certificate is \
             NOT verified (anyone on the path can serve keys)",
            u.url
        );
    }
}

/// Split an `https://host[:port]/path` authority's host for SNI (brackets off an IPv6).
pub fn sni_host(authority: &str) -> &str {
    let host = if authority.starts_with('[') {
        authority.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    host.trim_start_matches('[')
}
