//! Decoding the service `tls` (HTTPS listener) and `client_tls` (HTTPS backends) blocks, with
//! KrakenD's names and defaults. Only the shape and the names are checked here; the files are
//! read, and the pairs checked (unreadable, expired, key not matching), when the plan compiles
//! (`crate::tls`), with the positions recorded here.

use super::decode::{child, is_comment, item, Ctx};
use super::json::{Spanned, Value};
use super::types::Span;

/// A TLS protocol version rustls implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "TLS12",
            TlsVersion::Tls13 => "TLS13",
        }
    }
}

/// A file named in the config, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRef {
    pub path: String,
    pub at: Span,
}

/// A certificate (chain) and its private key, both PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPair {
    pub cert: FileRef,
    pub key: FileRef,
}

/// What both sides share: versions, suites, curves, extra CAs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsCommon {
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// TLS 1.2 suite IDs (Go's `uint16`s), checked against what rustls on ring implements.
    /// None: the default set (KrakenD's six ECDHE AES-GCM/ChaCha20 suites, which is rustls's).
    pub cipher_suites: Option<Vec<u16>>,
    /// Go `CurveID`s, checked against ring's key exchange groups. None: rustls's default.
    pub curves: Option<Vec<u16>>,
    pub ca_certs: Vec<FileRef>,
    pub disable_system_ca_pool: bool,
    pub at: Span,
}

/// The service `tls` block when it is not `disabled`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerTls {
    /// `public_key`/`private_key` first, then `keys` in order; the first is the default
    /// certificate, the others are chosen by SNI.
    pub keys: Vec<KeyPair>,
    pub enable_mtls: bool,
    pub common: TlsCommon,
}

/// `client_tls` (and the legacy root `allow_insecure_connections`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTls {
    pub allow_insecure_connections: bool,
    pub client_certs: Vec<KeyPair>,
    pub common: TlsCommon,
}

/// Go's TLS 1.2 suites that rustls does not implement (CBC, RSA key exchange, 3DES, RC4).
// KrakenD: Go's `tls.CipherSuites()` and `tls.InsecureCipherSuites()` IDs.
const GO_ONLY_SUITES: &[u16] = &[
    0x0005, 0x000a, 0x002f, 0x0035, 0x003c, 0x009c, 0x009d, 0xc007, 0xc009, 0xc00a, 0xc011, 0xc012,
    0xc013, 0xc014, 0xc023, 0xc027,
];
/// TLS 1.3 suite IDs: Go ignores them in `cipher_suites` (1.3 suites are not configurable).
const TLS13_SUITES: &[u16] = &[0x1301, 0x1302, 0x1303];
/// Go `CurveID`s ring lacks: P-521 and the ML-KEM hybrid.
const GO_ONLY_CURVES: &[(u16, &str)] = &[(25, "P-521"), (4588, "X25519MLKEM768")];

pub const LISTENER_KEYS: &[&str] = &[
    "public_key",
    "private_key",
    "keys",
    "disabled",
    "min_version",
    "max_version",
    "curve_preferences",
    "cipher_suites",
    "enable_mtls",
    "ca_certs",
    "disable_system_ca_pool",
    "prefer_server_cipher_suites",
];

pub const CLIENT_KEYS: &[&str] = &[
    "allow_insecure_connections",
    "ca_certs",
    "disable_system_ca_pool",
    "min_version",
    "max_version",
    "curve_preferences",
    "cipher_suites",
    "client_certs",
];

/// A version key as given: its value when it names one we speak, and where it is.
type GivenVersion<'v> = (Option<TlsVersion>, &'v Spanned);

fn span(v: &Spanned, path: &str) -> Span {
    Span {
        line: v.pos.line,
        col: v.pos.col,
        path: path.to_string(),
    }
}

fn loose_bool(v: &Value) -> bool {
    // KrakenD: mapstructure reads `"disabled": "true"` (or 1) as true too.
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => super::decode::go_parse_bool(s) == Some(true),
        Value::Number(n) => n.parse::<f64>().is_ok_and(|f| f != 0.0),
        _ => false,
    }
}

/// The service `tls` block: None when absent, disabled, or broken (errors recorded).
pub fn listener(ctx: &mut Ctx, v: &Spanned, path: &str) -> Option<ListenerTls> {
    let members = ctx.object(v, path)?;
    if members
        .iter()
        .find(|m| m.key == "disabled")
        .is_some_and(|m| loose_bool(&m.value.value))
    {
        return None;
    }
    let mut common = TlsCommon::new(span(v, path));
    let (mut public, mut private) = (None, None);
    let mut keys = Vec::new();
    let mut enable_mtls = false;
    let mut versions = (None, None);
    for m in members.iter().filter(|m| !is_comment(&m.key)) {
        let p = child(path, &m.key);
        let mv = &m.value;
        match m.key.as_str() {
            "public_key" => public = file(ctx, mv, &p),
            "private_key" => private = file(ctx, mv, &p),
            "keys" => {
                for (i, k) in ctx.array(mv, &p).unwrap_or_default().iter().enumerate() {
                    let ip = item(&p, i);
                    if let Some(pair) = pair(ctx, k, &ip, "public_key", "private_key") {
                        keys.push(pair);
                    }
                }
            }
            "disabled" | "prefer_server_cipher_suites" => {
                let _ = ctx.bool(mv, &p);
            }
            "enable_mtls" => enable_mtls = ctx.bool(mv, &p).unwrap_or_default(),
            "min_version" => versions.0 = Some((version(ctx, mv, &p), mv)),
            "max_version" => versions.1 = Some((version(ctx, mv, &p), mv)),
            _ if common.member(ctx, &m.key, mv, &p) => {}
            _ => ctx.unknown_key(m, path, LISTENER_KEYS),
        }
    }
    common.versions(ctx, versions, &child(path, "max_version"));
    let first = match (public, private) {
        (Some(cert), Some(key)) => Some(KeyPair { cert, key }),
        (None, None) => None,
        // KrakenD: lura `ParseTLSConfig`: "public key not defined" / "private key not defined".
        (Some(_), None) => {
            ctx.error(
                v.pos,
                path,
                "private key not defined: set \"private_key\" beside \"public_key\"",
            );
            None
        }
        (None, Some(_)) => {
            ctx.error(
                v.pos,
                path,
                "public key not defined: set \"public_key\" beside \"private_key\"",
            );
            None
        }
    };
    keys.splice(0..0, first);
    if keys.is_empty() {
        // KrakenD logs "public key not defined" and exits 0 without serving; we exit non-zero.
        ctx.error(
            v.pos,
            path,
            "public key not defined: an HTTPS listener needs \"public_key\" and \"private_key\" \
             (or a \"keys\" list); set \"disabled\": true to serve plain HTTP",
        );
        return None;
    }
    if enable_mtls && common.ca_certs.is_empty() {
        ctx.error(
            v.pos,
            &child(path, "enable_mtls"),
            "enable_mtls needs \"ca_certs\": the CAs that sign the client certificates (this \
             gateway does not trust the system CAs, nor its own certificates, for client \
             certificates: any publicly issued certificate would pass)",
        );
        return None;
    }
    Some(ListenerTls {
        keys,
        enable_mtls,
        common,
    })
}

/// `client_tls`. `legacy_insecure` is the root `allow_insecure_connections`.
pub fn client(ctx: &mut Ctx, v: &Spanned, path: &str, legacy_insecure: bool) -> Option<ClientTls> {
    let members = ctx.object(v, path)?;
    let mut common = TlsCommon::new(span(v, path));
    let mut out_certs = Vec::new();
    let mut insecure = legacy_insecure;
    let mut versions = (None, None);
    for m in members.iter().filter(|m| !is_comment(&m.key)) {
        let p = child(path, &m.key);
        let mv = &m.value;
        match m.key.as_str() {
            "allow_insecure_connections" => {
                insecure |= ctx.bool(mv, &p).unwrap_or_default();
            }
            "client_certs" => {
                for (i, k) in ctx.array(mv, &p).unwrap_or_default().iter().enumerate() {
                    let ip = item(&p, i);
                    if let Some(pair) = pair(ctx, k, &ip, "certificate", "private_key") {
                        out_certs.push(pair);
                    }
                }
            }
            "min_version" => versions.0 = Some((version(ctx, mv, &p), mv)),
            "max_version" => versions.1 = Some((version(ctx, mv, &p), mv)),
            _ if common.member(ctx, &m.key, mv, &p) => {}
            _ => ctx.unknown_key(m, path, CLIENT_KEYS),
        }
    }
    common.versions(ctx, versions, &child(path, "max_version"));
    Some(ClientTls {
        allow_insecure_connections: insecure,
        client_certs: out_certs,
        common,
    })
}

/// Go's settings for a client without `client_tls` (TLS 1.2 and 1.3, system roots): what an
/// `https://` backend gets by default, and what the legacy root `allow_insecure_connections`
/// starts from.
pub fn client_default(at: Span) -> ClientTls {
    let mut common = TlsCommon::new(at);
    common.min_version = TlsVersion::Tls12;
    ClientTls {
        allow_insecure_connections: false,
        client_certs: Vec::new(),
        common,
    }
}

impl TlsCommon {
    fn new(at: Span) -> TlsCommon {
        TlsCommon {
            // KrakenD: lura `parseTLSVersion` maps an unset (or unknown) version to TLS 1.3,
            // for min and max alike: without `min_version` only TLS 1.3 is accepted.
            min_version: TlsVersion::Tls13,
            max_version: TlsVersion::Tls13,
            cipher_suites: None,
            curves: None,
            ca_certs: Vec::new(),
            disable_system_ca_pool: false,
            at,
        }
    }

    /// Keys both blocks have; false when `key` is not one of them.
    fn member(&mut self, ctx: &mut Ctx, key: &str, v: &Spanned, p: &str) -> bool {
        match key {
            "ca_certs" => {
                for (i, c) in ctx.array(v, p).unwrap_or_default().iter().enumerate() {
                    if let Some(f) = file(ctx, c, &item(p, i)) {
                        self.ca_certs.push(f);
                    }
                }
            }
            "disable_system_ca_pool" => {
                self.disable_system_ca_pool = ctx.bool(v, p).unwrap_or_default();
            }
            "cipher_suites" => self.cipher_suites = Some(suites(ctx, v, p)),
            "curve_preferences" => self.curves = Some(curves(ctx, v, p)),
            _ => return false,
        }
        true
    }

    fn versions(
        &mut self,
        ctx: &mut Ctx,
        (min, max): (Option<GivenVersion>, Option<GivenVersion>),
        max_path: &str,
    ) {
        if let Some((Some(v), _)) = min {
            self.min_version = v;
        }
        if let Some((Some(v), _)) = max {
            self.max_version = v;
        }
        if let Some((_, at)) = max.filter(|_| self.max_version < self.min_version) {
            // KrakenD starts, and then every handshake fails: refuse it instead.
            ctx.error(
                at.pos,
                max_path,
                format!(
                    "max_version {} is below min_version {} (an unset min_version means TLS13, \
                     as in KrakenD): every handshake would fail; set \"min_version\": \"TLS12\"",
                    self.max_version.name(),
                    self.min_version.name()
                ),
            );
        }
    }
}

fn file(ctx: &mut Ctx, v: &Spanned, path: &str) -> Option<FileRef> {
    let s = ctx.string(v, path)?;
    if s.is_empty() {
        ctx.error(v.pos, path, "empty file name");
        return None;
    }
    Some(FileRef {
        path: s,
        at: span(v, path),
    })
}

fn pair(ctx: &mut Ctx, v: &Spanned, path: &str, cert_key: &str, key_key: &str) -> Option<KeyPair> {
    let members = ctx.object(v, path)?;
    let (mut cert, mut key) = (None, None);
    for m in members.iter().filter(|m| !is_comment(&m.key)) {
        let p = child(path, &m.key);
        if m.key == cert_key {
            cert = file(ctx, &m.value, &p);
        } else if m.key == key_key {
            key = file(ctx, &m.value, &p);
        } else {
            ctx.unknown_key(m, path, &[cert_key, key_key]);
        }
    }
    match (cert, key) {
        (Some(cert), Some(key)) => Some(KeyPair { cert, key }),
        (c, _) => {
            let missing = if c.is_none() { cert_key } else { key_key };
            ctx.error(v.pos, path, format!("{missing:?} not defined"));
            None
        }
    }
}

fn version(ctx: &mut Ctx, v: &Spanned, path: &str) -> Option<TlsVersion> {
    let s = ctx.string(v, path)?;
    match s.as_str() {
        "TLS12" => Some(TlsVersion::Tls12),
        "TLS13" => Some(TlsVersion::Tls13),
        "SSL3.0" | "TLS10" | "TLS11" => {
            ctx.error(
                v.pos,
                path,
                format!(
                    "{s}: rustls does not implement SSL 3.0, TLS 1.0 or TLS 1.1 (all deprecated, \
                     RFC 8996); the lowest version this gateway speaks is \"TLS12\""
                ),
            );
            None
        }
        _ => {
            // KrakenD silently reads an unknown name as TLS 1.3: a typo would narrow the
            // versions without a word.
            ctx.error(
                v.pos,
                path,
                format!(
                    "unknown TLS version {s:?}; expected one of SSL3.0, TLS10, TLS11, TLS12, TLS13"
                ),
            );
            None
        }
    }
}

fn suites(ctx: &mut Ctx, v: &Spanned, path: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for (i, it) in ctx.array(v, path).unwrap_or_default().iter().enumerate() {
        let p = item(path, i);
        let Some(id) = ctx.uint::<u16>(it, &p) else {
            continue;
        };
        let known = rustls::crypto::ring::ALL_CIPHER_SUITES
            .iter()
            .any(|s| u16::from_be_bytes(s.suite().to_array()) == id);
        if TLS13_SUITES.contains(&id) {
            // KrakenD: Go ignores TLS 1.3 IDs here; its three 1.3 suites are always on.
            continue;
        } else if known {
            out.push(id);
        } else if GO_ONLY_SUITES.contains(&id) {
            ctx.error(
                it.pos,
                &p,
                format!(
                    "cipher suite {id:#06x} is not implemented by rustls (CBC, RSA key exchange, \
                     3DES and RC4 suites are not); use the ECDHE AES-GCM / ChaCha20 ones: 0xc02b, \
                     0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8"
                ),
            );
        } else {
            ctx.error(it.pos, &p, format!("unknown cipher suite {id:#06x}"));
        }
    }
    if out.is_empty() {
        ctx.error(
            v.pos,
            path,
            "no TLS 1.2 cipher suite left that this gateway implements",
        );
    }
    out
}

fn curves(ctx: &mut Ctx, v: &Spanned, path: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for (i, it) in ctx.array(v, path).unwrap_or_default().iter().enumerate() {
        let p = item(path, i);
        let Some(id) = ctx.uint::<u16>(it, &p) else {
            continue;
        };
        if matches!(id, 23 | 24 | 29) {
            out.push(id);
        } else if let Some((_, name)) = GO_ONLY_CURVES.iter().find(|(c, _)| *c == id) {
            ctx.error(
                it.pos,
                &p,
                format!(
                    "curve {id} ({name}) is not available with the ring provider; use 23 (P-256), \
                     24 (P-384) or 29 (X25519)"
                ),
            );
        } else {
            ctx.error(it.pos, &p, format!("unknown curve id {id}"));
        }
    }
    if out.is_empty() {
        ctx.error(v.pos, path, "no curve left that this gateway implements");
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::load_str;

    fn errors(tls: &str) -> Vec<String> {
        let text = format!(r#"{{"version": 3, "tls": {tls}, "endpoints": []}}"#);
        match load_str("t.json", &text, &|_| None) {
            Ok(_) => Vec::new(),
            Err(d) => d.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn a_tls_block_without_keys_is_an_error() {
        let e = errors(r#"{"min_version": "TLS12"}"#);
        assert!(
            e.iter().any(|e| e.contains("public key not defined")),
            "{e:?}"
        );
    }

    #[test]
    fn a_disabled_tls_block_is_accepted() {
        assert!(errors(r#"{"disabled": true}"#).is_empty());
    }

    #[test]
    fn tls10_is_refused_with_its_position() {
        let e = errors(r#"{"public_key": "a", "private_key": "b", "min_version": "TLS10"}"#);
        assert!(
            e.iter()
                .any(|e| e.contains("t.json:1:") && e.contains("TLS10")),
            "{e:?}"
        );
    }

    #[test]
    fn a_cbc_suite_is_refused_and_gcm_accepted() {
        let e =
            errors(r#"{"public_key": "a", "private_key": "b", "cipher_suites": [49199, 49171]}"#);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e.iter().any(|e| e.contains("0xc013")), "{e:?}");
    }

    #[test]
    fn max_below_the_default_min_is_refused() {
        let e = errors(r#"{"public_key": "a", "private_key": "b", "max_version": "TLS12"}"#);
        assert!(
            e.iter().any(|e| e.contains("every handshake would fail")),
            "{e:?}"
        );
    }

    #[test]
    fn p521_is_refused() {
        let e = errors(r#"{"public_key": "a", "private_key": "b", "curve_preferences": [23, 25]}"#);
        assert!(e.iter().any(|e| e.contains("P-521")), "{e:?}");
    }
}
