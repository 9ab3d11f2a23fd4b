//! The HTTPS listener: the service `tls` block compiled into a rustls `ServerConfig` (on each
//! plan compile, so SIGHUP picks up new certificates for new connections), and the accept
//! path: Go's answer to plain HTTP, the handshake under a deadline, the refusals logged.

use super::certs::{load_pair, load_roots, TlsConfigError};
use super::stream::TlsStream;
use super::{provider, versions};
use crate::config::tls::ListenerTls;
use bytes::BytesMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use rustls::server::{
    ClientHello, ResolvesServerCert, ServerSessionMemoryCache, StoresServerSessions,
    WebPkiClientVerifier,
};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// The compiled listener settings, shared read-only by every core.
#[derive(Clone)]
pub struct TlsListener {
    pub config: Arc<ServerConfig>,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsListener")
    }
}

/// Session tickets: one key set for the whole process (every core, every reload), so a client
/// that reconnects to any core resumes. rustls's ring `Ticketer` encrypts with
/// ChaCha20-Poly1305 and rotates the key every 6 hours, still accepting the previous one.
fn ticketer() -> Option<Arc<dyn rustls::server::ProducesTickets>> {
    static TICKETER: OnceLock<Option<Arc<dyn rustls::server::ProducesTickets>>> = OnceLock::new();
    TICKETER
        .get_or_init(|| rustls::crypto::ring::Ticketer::new().ok())
        .clone()
}

/// Session IDs (TLS 1.2 clients without tickets): one cache for the process, kept across
/// reloads. Its lock is taken only during handshakes.
fn session_cache() -> Arc<dyn StoresServerSessions> {
    static CACHE: OnceLock<Arc<ServerSessionMemoryCache>> = OnceLock::new();
    CACHE
        .get_or_init(|| ServerSessionMemoryCache::new(20_000))
        .clone()
}

/// Compile the `tls` block: read and check every file.
pub fn compile(cfg: &ListenerTls) -> Result<TlsListener, TlsConfigError> {
    let provider = Arc::new(provider(&cfg.common));
    let mut keys = Vec::with_capacity(cfg.keys.len());
    for pair in &cfg.keys {
        keys.push(Arc::new(load_pair(pair, &provider)?));
    }
    let at = cfg.common.at.clone();
    let fail = |message: String| TlsConfigError {
        at: at.clone(),
        message,
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions(&cfg.common))
        .map_err(|e| fail(format!("TLS versions: {e}")))?;
    let builder = if cfg.enable_mtls {
        let mut roots = rustls::RootCertStore::empty();
        load_roots(&cfg.common.ca_certs, &mut roots)?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| fail(format!("enable_mtls: {e}")))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_cert_resolver(Arc::new(BySni { keys }));
    // HTTP/2 is not served yet: advertise only HTTP/1.1 (the place to add "h2" is here and in
    // `crate::http::accept`).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if let Some(t) = ticketer() {
        config.ticketer = t;
    }
    config.session_storage = session_cache();
    Ok(TlsListener {
        config: Arc::new(config),
    })
}

/// The certificate for a handshake: the first one whose names cover the SNI name, or the first
/// one (KrakenD: Go's `tls.Config.Certificates` selection).
#[derive(Debug)]
struct BySni {
    keys: Vec<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if self.keys.len() > 1 {
            if let Some(name) = hello
                .server_name()
                .and_then(|n| ServerName::try_from(n).ok())
            {
                let found = self.keys.iter().find(|k| {
                    k.end_entity_cert()
                        .ok()
                        .and_then(|c| webpki::EndEntityCert::try_from(c).ok())
                        .is_some_and(|c| c.verify_is_valid_for_subject_name(&name).is_ok())
                });
                if let Some(k) = found {
                    return Some(k.clone());
                }
            }
        }
        self.keys.first().cloned()
    }
}

/// What an accepted connection became.
pub enum Accepted {
    Tls(Box<TlsStream<rustls::ServerConnection>>),
    /// Refused (plain HTTP answered, a failed handshake logged); the socket is closed.
    Closed,
}

/// KrakenD: Go's `http.Server` answers a plain-HTTP request on a TLS port with this, then
/// closes (`tlsRecordHeaderLooksLikeHTTP`).
const PLAIN_HTTP_ANSWER: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// Whether the first five bytes are an HTTP request line rather than a TLS record header.
fn looks_like_http(first: &[u8]) -> bool {
    // KrakenD: Go's `tlsRecordHeaderLooksLikeHTTP`.
    matches!(
        first.get(..5),
        Some(b"GET /" | b"HEAD " | b"POST " | b"PUT /" | b"OPTIO")
    )
}

/// Handshake on this core, by `deadline`.
pub async fn accept(
    mut tcp: TcpStream,
    peer: SocketAddr,
    tls: &TlsListener,
    deadline: Option<Instant>,
) -> Accepted {
    // Read the first bytes ourselves: plain HTTP gets Go's answer instead of an alert.
    let mut first = BytesMut::with_capacity(super::stream::READ_SMALL);
    let got = async {
        while first.len() < 5 {
            let len = first.len();
            let (r, b) = tcp
                .read(monoio::buf::IoBufMut::slice_mut(
                    std::mem::take(&mut first),
                    len..,
                ))
                .await;
            first = b.into_inner();
            match r {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
        }
        true
    };
    let got = match deadline {
        Some(d) => crate::runtime::timer::timeout_at(d, got)
            .await
            .unwrap_or(false),
        None => got.await,
    };
    if !got {
        crate::debug!("TLS handshake error from {peer}: closed or timed out before a ClientHello");
        return Accepted::Closed;
    }
    if looks_like_http(&first) {
        crate::debug!(
            "TLS handshake error from {peer}: client sent an HTTP request to an HTTPS server"
        );
        let (_, _) = tcp.write_all(PLAIN_HTTP_ANSWER).await;
        let _ = tcp.shutdown().await;
        return Accepted::Closed;
    }
    let conn = match rustls::ServerConnection::new(tls.config.clone()) {
        Ok(c) => c,
        Err(e) => {
            crate::warn!("TLS handshake error from {peer}: {e}");
            return Accepted::Closed;
        }
    };
    let mut stream = TlsStream::new(tcp, conn, first);
    match stream.handshake(deadline).await {
        Ok(()) => Accepted::Tls(Box::new(stream)),
        Err(e) => {
            // KrakenD: Go logs `http: TLS handshake error from ADDR: reason` (mTLS refusals too).
            crate::warn!("http: TLS handshake error from {peer}: {e}");
            Accepted::Closed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_request_lines_are_told_from_tls_records() {
        assert!(looks_like_http(b"GET / HTTP/1.1"));
        assert!(looks_like_http(b"OPTIONS * HTTP/1.1"));
        assert!(!looks_like_http(&[0x16, 0x03, 0x01, 0x02, 0x00]));
        assert!(!looks_like_http(b"GET"));
    }
}
