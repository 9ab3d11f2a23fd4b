//! Certificates made for a test (rcgen; RSA keys from the openssl CLI, since ring cannot
//! generate them): a CA per test, leaves for servers and clients, expired ones, written as PEM
//! files under a fresh temp dir that is removed on drop.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// ECDSA P-256.
    Ecdsa,
    /// RSA 2048.
    Rsa,
}

/// A temp dir for PEM files.
pub struct Pki {
    pub dir: PathBuf,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A certificate and key written to files.
#[derive(Clone)]
pub struct Files {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Files {
    pub fn cert(&self) -> &str {
        self.cert.to_str().unwrap()
    }
    pub fn key(&self) -> &str {
        self.key.to_str().unwrap()
    }
}

pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub files: Files,
}

/// What a leaf is for.
pub struct Leaf<'a> {
    pub names: &'a [&'a str],
    pub alg: Alg,
    pub expired: bool,
    pub client: bool,
}

impl<'a> Leaf<'a> {
    pub fn server(names: &'a [&'a str]) -> Leaf<'a> {
        Leaf {
            names,
            alg: Alg::Ecdsa,
            expired: false,
            client: false,
        }
    }
}

fn key(alg: Alg, dir: &Path) -> KeyPair {
    match alg {
        Alg::Ecdsa => KeyPair::generate().unwrap(),
        Alg::Rsa => {
            let path = dir.join(format!("rsa-{}.pem", next()));
            let st = std::process::Command::new("openssl")
                .args([
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                    "-out",
                ])
                .arg(&path)
                .stderr(std::process::Stdio::null())
                .status()
                .expect("openssl genpkey");
            assert!(st.success());
            KeyPair::from_pem(&std::fs::read_to_string(&path).unwrap()).unwrap()
        }
    }
}

fn next() -> usize {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

impl Pki {
    pub fn new() -> Pki {
        let dir = std::env::temp_dir().join(format!("proxy-pki-{}-{}", std::process::id(), next()));
        std::fs::create_dir_all(&dir).unwrap();
        Pki { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn write(&self, cert_pem: &str, key: &KeyPair) -> Files {
        let n = next();
        let files = Files {
            cert: self.dir.join(format!("cert-{n}.pem")),
            key: self.dir.join(format!("key-{n}.pem")),
        };
        std::fs::write(&files.cert, cert_pem).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        files
    }

    pub fn ca(&self, name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let k = KeyPair::generate().unwrap();
        let issuer = CertifiedIssuer::self_signed(p, k).unwrap();
        let n = next();
        let files = Files {
            cert: self.dir.join(format!("ca-{n}.pem")),
            key: self.dir.join(format!("ca-key-{n}.pem")),
        };
        std::fs::write(&files.cert, issuer.pem()).unwrap();
        Ca { issuer, files }
    }

    /// A leaf signed by `ca`.
    pub fn leaf(&self, ca: &Ca, leaf: Leaf) -> Files {
        let names: Vec<String> = leaf.names.iter().map(|s| s.to_string()).collect();
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name.push(
            DnType::CommonName,
            leaf.names.first().copied().unwrap_or("client"),
        );
        p.extended_key_usages = vec![if leaf.client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        if leaf.expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let k = key(leaf.alg, &self.dir);
        let cert = p.signed_by(&k, &ca.issuer).unwrap();
        self.write(&cert.pem(), &k)
    }

    /// A self-signed server certificate (its own CA), with the IP and `localhost`.
    pub fn self_signed(&self, alg: Alg) -> Files {
        let mut p =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, "localhost");
        let k = key(alg, &self.dir);
        let cert = p.self_signed(&k).unwrap();
        self.write(&cert.pem(), &k)
    }
}
