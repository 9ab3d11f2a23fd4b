//! `TlsBackend`: an HTTPS fixture backend (rustls over std::net, one thread per connection)
//! answering every request with one JSON body, keep-alive. It records the connections it
//! accepted, the SNI names it saw, and whether the client presented a certificate.

use super::pki::Files;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Seen {
    pub connections: usize,
    pub handshakes_ok: usize,
    pub sni: Vec<Option<String>>,
    pub client_cert: Vec<bool>,
    pub requests: usize,
}

pub struct TlsBackend {
    addr: SocketAddr,
    pub seen: Arc<Mutex<Seen>>,
}

impl TlsBackend {
    /// Serve `body` with `cert`; with `client_ca`, a client certificate signed by it is required.
    pub fn start(cert: &Files, client_ca: Option<&Files>, body: &'static str) -> TlsBackend {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert.cert)
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
        let key = PrivateKeyDer::from_pem_file(&cert.key).unwrap();
        // ring, as the gateway uses (deprecated only for lacking post-quantum key exchange).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .unwrap();
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_file_iter(&ca.cert).unwrap() {
                    roots.add(c.unwrap()).unwrap();
                }
                let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(v)
            }
            None => builder.with_no_client_auth(),
        };
        let config = Arc::new(builder.with_single_cert(chain, key).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s2 = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(tcp) = conn else { return };
                s2.lock().unwrap().connections += 1;
                let (config, seen) = (config.clone(), s2.clone());
                std::thread::spawn(move || serve(tcp, config, seen, body));
            }
        });
        TlsBackend { addr, seen }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `https://localhost:PORT`.
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }
}

fn serve(
    mut tcp: std::net::TcpStream,
    config: Arc<rustls::ServerConfig>,
    seen: Arc<Mutex<Seen>>,
    body: &'static str,
) {
    let Ok(mut conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    while conn.is_handshaking() {
        if conn.complete_io(&mut tcp).is_err() {
            return;
        }
    }
    {
        let mut s = seen.lock().unwrap();
        s.handshakes_ok += 1;
        s.sni.push(conn.server_name().map(str::to_string));
        s.client_cert.push(conn.peer_certificates().is_some());
    }
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            seen.lock().unwrap().requests += 1;
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if tls.write_all(resp.as_bytes()).is_err() || tls.flush().is_err() {
                return;
            }
        }
        match tls.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
