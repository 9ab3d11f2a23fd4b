//! TLS on both sides, with rustls on the ring crypto provider, driven on each connection's own
//! core by our adapter over rustls's sans-io API ([`stream::TlsStream`]).
//!
//! - **Listener** ([`server`]): the service `tls` block becomes a `ServerConfig` when the plan
//!   compiles (so SIGHUP serves new certificates to new connections; a bad file keeps the old
//!   plan). [`server::accept`] answers plain HTTP as Go does, and runs the handshake under a
//!   deadline; `crate::http::accept` then picks the protocol by ALPN (HTTP/1.1 only today).
//! - **Backends** ([`client`]): `client_tls` becomes a `ClientConfig`; `crate::backend` dials,
//!   then calls [`client::connect`], and pools the TLS connection like a plain one.
//!
//! # Connecting to a TLS server from other code
//!
//! [`client::connect`] is the reusable piece (for example to fetch a JWK set over https):
//!
//! ```ignore
//! let tcp = monoio::net::TcpStream::connect_addr(addr).await?;
//! let client = tls::client::default_client()?;        // or client::compile(&client_tls)
//! let mut s = tls::client::connect(tcp, "idp.example.com", &client, Some(deadline)).await?;
//! // `s` implements monoio's AsyncReadRent / AsyncWriteRent: write the request, read the answer.
//! ```
//!
//! It verifies the certificate chain (system roots, plus `ca_certs` when compiled from a
//! `client_tls`) and the name, sends SNI, and reports a refusal with rustls's reason
//! (`invalid peer certificate: Expired`, `UnknownIssuer`, `NotValidForName`, ...).

pub mod certs;
pub mod client;
pub mod server;
pub mod stream;

use crate::config::tls::{TlsCommon, TlsVersion};
use rustls::crypto::{ring, CryptoProvider};
use rustls::SupportedProtocolVersion;

/// The ring provider narrowed to the configured TLS 1.2 suites and curves (in their order:
/// the order is the preference). TLS 1.3 suites are always all on, as in Go.
pub fn provider(c: &TlsCommon) -> CryptoProvider {
    // ring is the provider on the product's design card; rustls deprecates it only because it
    // has no post-quantum key exchange (X25519MLKEM768).
    #[allow(deprecated)]
    let mut p = ring::default_provider();
    if let Some(ids) = &c.cipher_suites {
        let all = p.cipher_suites.clone();
        let id_of = |s: &rustls::SupportedCipherSuite| u16::from_be_bytes(s.suite().to_array());
        let mut chosen: Vec<_> = all
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .cloned()
            .collect();
        chosen.extend(
            ids.iter()
                .filter_map(|id| all.iter().find(|s| id_of(s) == *id).cloned()),
        );
        p.cipher_suites = chosen;
    }
    if let Some(curves) = &c.curves {
        p.kx_groups = curves
            .iter()
            .filter_map(|id| match id {
                23 => Some(ring::kx_group::SECP256R1),
                24 => Some(ring::kx_group::SECP384R1),
                29 => Some(ring::kx_group::X25519),
                _ => None,
            })
            .collect();
    }
    p
}

/// The protocol versions from `min_version` to `max_version`.
pub fn versions(c: &TlsCommon) -> &'static [&'static SupportedProtocolVersion] {
    static BOTH: [&SupportedProtocolVersion; 2] =
        [&rustls::version::TLS13, &rustls::version::TLS12];
    static V12: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
    static V13: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    match (c.min_version, c.max_version) {
        (TlsVersion::Tls12, TlsVersion::Tls13) => &BOTH,
        (TlsVersion::Tls12, TlsVersion::Tls12) => &V12,
        _ => &V13,
    }
}
