//! TLS towards backends: `client_tls` compiled into a rustls `ClientConfig`, and [`connect`],
//! the one function that turns a TCP connection into a verified TLS one.

use super::certs::{load_pair, load_roots, TlsConfigError};
use super::stream::TlsStream;
use super::{provider, versions};
use crate::config::tls::ClientTls;
use bytes::BytesMut;
use monoio::net::TcpStream;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// The compiled client settings, shared read-only by every core (its session cache, used only
/// during handshakes, lets re-dials to a backend resume).
#[derive(Clone)]
pub struct TlsClient {
    pub config: Arc<ClientConfig>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsClient")
    }
}

/// The system's CA certificates, read once per process: rustls-native-certs reads what Go's
/// `x509.SystemCertPool` reads on Linux (the distribution bundle, `SSL_CERT_FILE`,
/// `SSL_CERT_DIR`), so a CA an operator added to the system store is trusted here as in
/// KrakenD.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        if found.certs.is_empty() {
            crate::warn!(
                "[SERVICE: proxy] no system CA certificates found ({} errors): https backends \
                 are verified only against client_tls.ca_certs",
                found.errors.len()
            );
        }
        found.certs
    })
}

/// Compile `client_tls` (None: Go's defaults, TLS 1.2 and 1.3 against the system roots).
pub fn compile(cfg: &ClientTls) -> Result<TlsClient, TlsConfigError> {
    let provider = Arc::new(provider(&cfg.common));
    let fail = |message: String| TlsConfigError {
        at: cfg.common.at.clone(),
        message,
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions(&cfg.common))
        .map_err(|e| fail(format!("TLS versions: {e}")))?;
    let builder = if cfg.allow_insecure_connections {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider.clone())))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        if !cfg.common.disable_system_ca_pool {
            roots.add_parsable_certificates(system_roots().iter().cloned());
        }
        load_roots(&cfg.common.ca_certs, &mut roots)?;
        builder.with_root_certificates(roots)
    };
    let config = if cfg.client_certs.is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut keys = Vec::with_capacity(cfg.client_certs.len());
        for pair in &cfg.client_certs {
            let ck = load_pair(pair, &provider)?;
            let issuers = ck
                .cert
                .iter()
                .filter_map(|c| super::certs::issuer(c).map(<[u8]>::to_vec))
                .collect();
            keys.push((issuers, Arc::new(ck)));
        }
        builder.with_client_cert_resolver(Arc::new(ByIssuer { keys }))
    };
    Ok(TlsClient {
        config: Arc::new(config),
    })
}

/// `client_certs`: the certificate a backend asks for.
// KrakenD: Go's `getClientCertificate` sends the first certificate whose chain was issued by
// one of the CAs the server lists (and whose key can sign with a scheme it accepts), the
// first one when the server lists none, and no certificate when none fits.
#[derive(Debug)]
struct ByIssuer {
    /// The issuer names of each chain's certificates, and the chain with its key.
    keys: Vec<(Vec<Vec<u8>>, Arc<rustls::sign::CertifiedKey>)>,
}

impl rustls::client::ResolvesClientCert for ByIssuer {
    fn resolve(
        &self,
        hints: &[&[u8]],
        schemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.keys
            .iter()
            .filter(|(_, k)| k.key.choose_scheme(schemes).is_some())
            .find(|(issuers, _)| {
                hints.is_empty()
                    || issuers
                        .iter()
                        .any(|i| hints.iter().any(|h| same_name(h, i)))
            })
            .map(|(_, k)| k.clone())
    }

    fn has_certs(&self) -> bool {
        !self.keys.is_empty()
    }
}

/// A listed CA name against an issuer name (with its SEQUENCE header); some servers list
/// names without the header.
fn same_name(hint: &[u8], issuer: &[u8]) -> bool {
    hint == issuer || issuer.ends_with(hint) && issuer.len() - hint.len() <= 4
}

/// The process's default client (no `client_tls`): built once.
pub fn default_client() -> Result<TlsClient, TlsConfigError> {
    compile(&crate::config::tls::client_default(
        crate::config::Span::default(),
    ))
}

/// Why a TLS connection to a server failed.
#[derive(Debug)]
pub enum ConnectError {
    /// The host is not a valid DNS name or IP address for SNI and verification.
    BadName(String),
    /// The handshake failed: the reason (expired, unknown CA, name mismatch, ...) or I/O.
    Handshake(std::io::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::BadName(n) => write!(f, "tls: invalid server name {n:?}"),
            ConnectError::Handshake(e) => write!(f, "tls: {e}"),
        }
    }
}

/// Turn a connected TCP stream into a TLS stream to `host` (a DNS name, sent as SNI and
/// verified against the certificate; or an IP address, verified against its IP SANs), with
/// the handshake done on this core by `deadline`. The stream reads and writes as monoio's
/// `AsyncReadRent`/`AsyncWriteRent`.
pub async fn connect(
    tcp: TcpStream,
    host: &str,
    client: &TlsClient,
    deadline: Option<Instant>,
) -> Result<TlsStream<rustls::ClientConnection>, ConnectError> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| ConnectError::BadName(host.to_string()))?;
    let conn = rustls::ClientConnection::new(client.config.clone(), name)
        .map_err(|e| ConnectError::Handshake(std::io::Error::other(e)))?;
    let mut stream = TlsStream::new(tcp, conn, BytesMut::new());
    stream
        .handshake(deadline)
        .await
        .map_err(ConnectError::Handshake)?;
    Ok(stream)
}

/// `allow_insecure_connections`: any certificate is accepted (Go's `InsecureSkipVerify`), but
/// the handshake signatures are still checked, so the server must hold the key of the
/// certificate it sent.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
