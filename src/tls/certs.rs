//! Reading PEM certificates and keys named in the config, with the checks `check` and a
//! reload make: unreadable, empty, expired (or not yet valid), key not matching the
//! certificate. Each error names the file and the reason; callers add the config position.

use crate::config::tls::{FileRef, KeyPair};
use crate::config::Span;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::time::{SystemTime, UNIX_EPOCH};

/// A problem with a configured file, and where the config names it.
#[derive(Debug)]
pub struct TlsConfigError {
    pub at: Span,
    pub message: String,
}

fn err(f: &FileRef, message: String) -> TlsConfigError {
    TlsConfigError {
        at: f.at.clone(),
        message,
    }
}

/// All certificates in a PEM file (a chain, or a CA bundle); at least one.
pub fn load_certs(f: &FileRef) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let iter = CertificateDer::pem_file_iter(&f.path)
        .map_err(|e| err(f, format!("cannot read {:?}: {}", f.path, pem_reason(&e))))?;
    let certs = iter
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(f, format!("{:?}: {}", f.path, pem_reason(&e))))?;
    if certs.is_empty() {
        return Err(err(
            f,
            format!("{:?}: no PEM certificate found in the file", f.path),
        ));
    }
    Ok(certs)
}

fn pem_reason(e: &rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("not valid PEM ({other:?})"),
    }
}

/// A certificate chain and its key, checked: readable, currently valid, key matching.
pub fn load_pair(
    pair: &KeyPair,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsConfigError> {
    let chain = load_certs(&pair.cert)?;
    let key = PrivateKeyDer::from_pem_file(&pair.key.path).map_err(|e| {
        err(
            &pair.key,
            format!(
                "cannot read a private key from {:?}: {}",
                pair.key.path,
                pem_reason(&e)
            ),
        )
    })?;
    if let Some(leaf) = chain.first() {
        check_validity(leaf, now_unix())
            .map_err(|m| err(&pair.cert, format!("{:?}: {m}", pair.cert.path)))?;
    }
    CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        let why = match e {
            rustls::Error::InconsistentKeys(_) => {
                "the private key does not match the certificate's public key".to_string()
            }
            other => other.to_string(),
        };
        err(
            &pair.key,
            format!("{:?} with {:?}: {why}", pair.cert.path, pair.key.path),
        )
    })
}

/// CA certificates from every file, into a root store.
pub fn load_roots(
    files: &[FileRef],
    store: &mut rustls::RootCertStore,
) -> Result<(), TlsConfigError> {
    for f in files {
        for c in load_certs(f)? {
            store
                .add(c)
                .map_err(|e| err(f, format!("{:?}: not a usable CA certificate: {e}", f.path)))?;
        }
    }
    Ok(())
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A certificate's validity window must contain `now` (seconds since the epoch).
pub fn check_validity(cert: &[u8], now: i64) -> Result<(), String> {
    let (not_before, not_after) =
        validity(cert).ok_or("cannot read the certificate's validity dates")?;
    if now > not_after {
        return Err(format!(
            "the certificate has expired ({} seconds ago)",
            now - not_after
        ));
    }
    if now < not_before {
        return Err("the certificate is not valid yet".to_string());
    }
    Ok(())
}

/// One DER element: (tag, contents, rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = rest.get(..n)?;
        let len = bytes.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b));
        (len, rest.get(n..)?)
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// The issuer `Name` of an X.509 certificate, DER with its SEQUENCE header (the form TLS
/// servers list the CAs they accept client certificates from in).
pub fn issuer(cert: &[u8]) -> Option<&[u8]> {
    let (_, certificate, _) = der(cert)?;
    let (_, tbs, _) = der(certificate)?;
    let mut rest = tbs;
    let (tag, _, r) = der(rest)?;
    if tag == 0xa0 {
        rest = r;
    }
    // serialNumber, signature, then issuer.
    for _ in 0..2 {
        rest = der(rest)?.2;
    }
    let (_, _, after) = der(rest)?;
    rest.get(..rest.len() - after.len())
}

/// `notBefore` and `notAfter` of an X.509 certificate, in seconds since the epoch.
fn validity(cert: &[u8]) -> Option<(i64, i64)> {
    let (_, certificate, _) = der(cert)?;
    let (_, tbs, _) = der(certificate)?;
    let mut rest = tbs;
    // [0] version (optional), serialNumber, signature, issuer, then validity.
    let (tag, _, r) = der(rest)?;
    if tag == 0xa0 {
        rest = r;
    }
    for _ in 0..3 {
        rest = der(rest)?.2;
    }
    let (_, validity, _) = der(rest)?;
    let (t1, nb, r) = der(validity)?;
    let (t2, na, _) = der(r)?;
    Some((time(t1, nb)?, time(t2, na)?))
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn time(tag: u8, v: &[u8]) -> Option<i64> {
    let digits = |s: &[u8]| -> Option<i64> {
        s.iter().try_fold(0i64, |a, c| {
            c.is_ascii_digit().then(|| a * 10 + i64::from(c - b'0'))
        })
    };
    let (year, rest) = match tag {
        0x17 => {
            let yy = digits(v.get(..2)?)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, v.get(2..)?)
        }
        0x18 => (digits(v.get(..4)?)?, v.get(4..)?),
        _ => return None,
    };
    let f = |i: usize| rest.get(i..i + 2).and_then(digits);
    let (mo, d, h, mi, s) = (f(0)?, f(2)?, f(4)?, f(6)?, f(8)?);
    Some(days_from_civil(year, mo, d) * 86400 + h * 3600 + mi * 60 + s)
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> Vec<u8> {
        let mut p = rcgen::CertificateParams::new(vec!["a.test".into()]).unwrap();
        p.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        p.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn validity_dates_are_read_from_the_certificate() {
        let c = cert((2020, 1, 2), (2049, 12, 31));
        let (nb, na) = validity(&c).unwrap();
        assert_eq!(nb, 1_577_923_200);
        assert_eq!(na, days_from_civil(2049, 12, 31) * 86400);
        // 2050 and later is a GeneralizedTime.
        let c = cert((2020, 1, 2), (2051, 1, 1));
        assert_eq!(validity(&c).unwrap().1, days_from_civil(2051, 1, 1) * 86400);
    }

    #[test]
    fn the_issuer_name_is_the_issuing_cas_subject() {
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "Issuer Test CA");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer_ca = rcgen::Issuer::new(ca, ca_key);
        let leaf = rcgen::CertificateParams::new(vec!["a.test".into()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = leaf.signed_by(&key, &issuer_ca).unwrap();
        let name = issuer(cert.der()).unwrap();
        assert_eq!(name.first(), Some(&0x30));
        // The CA's own certificate is self-issued: its issuer is its subject.
        assert_eq!(Some(name), issuer(ca_cert.der()));
        assert!(name.windows(14).any(|w| w == b"Issuer Test CA"));
    }

    #[test]
    fn an_expired_certificate_is_refused() {
        let c = cert((2020, 1, 1), (2021, 1, 1));
        assert!(check_validity(&c, now_unix())
            .unwrap_err()
            .contains("expired"));
        let c = cert((2020, 1, 1), (2090, 1, 1));
        assert!(check_validity(&c, now_unix()).is_ok());
    }
}
