//! `auth/signer` (krakend-jose `TokenSigner`): calls the backends as usual, then replaces each
//! `keys_to_sign` member of the response that is a JSON object with a JWS of it (compact, or
//! the flattened JSON serialization with `full: true`), protected header `{"alg","kid"}`.
//! Any error of the pipe, no data, or a signing error answers a bare 400; the answer is the
//! data as JSON, without KrakenD's completeness and cache headers (the signer replaces the
//! endpoint's handler in KrakenD).

use super::alg::{Alg, SignKey};
use super::config::{self, Source};
use super::jwk_tls::JwkUrl;
use super::{b64, jwk};
use crate::guard::fragment::{flag, strings};
use crate::json::Fields;
use serde_json::Value;
use std::sync::{Arc, OnceLock};

pub const NS: &str = "auth/signer";

pub struct Signer {
    alg: Alg,
    kid: String,
    keys_to_sign: Vec<String>,
    full: bool,
    source: Source,
    /// Loaded at compile time for a local file, when `proxy run` starts for a URL; a request
    /// meeting no key answers 400 (never unsigned data).
    key: Arc<OnceLock<SignKey>>,
}

impl Signer {
    pub fn compile(v: &Value) -> Result<Signer, String> {
        let m = v
            .as_object()
            .ok_or_else(|| format!("{NS}: must be an object, got {v}"))?;
        let text = |k: &str| m.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let alg = Alg::parse(text("alg").ok_or_else(|| format!("{NS}.alg: missing"))?)
            .map_err(|e| format!("{NS}.alg: {e}"))?;
        let kid = text("kid")
            .ok_or_else(|| format!("{NS}.kid: missing (the key to sign with)"))?
            .to_string();
        let source = config::source(NS, m)?;
        let key = Arc::new(OnceLock::new());
        if let Source::Local(path) = &source {
            let doc = std::fs::read(path)
                .map_err(|e| format!("{NS}.jwk_local_path {path:?}: cannot read it: {e}"))?;
            let k = jwk::signing_key(&doc, &kid, alg)
                .map_err(|e| format!("{NS}.jwk_local_path {path:?}: {e}"))?;
            let _ = key.set(k);
        }
        Ok(Signer {
            alg,
            kid,
            keys_to_sign: strings(NS, m, "keys_to_sign")?,
            full: flag(NS, m, "full")?,
            source,
            key,
        })
    }

    /// Fetch the key of a `jwk_url` signer (blocking: `proxy run` calls it before serving).
    /// When the fetch fails the endpoint answers 400 (never unsigned data) while a background
    /// thread retries with backoff (1 s doubling to 30 s) until the key loads or the plan is
    /// dropped. Returns the error of the first attempt, for the log.
    pub fn load(&self) -> Result<(), String> {
        let Source::Url(url) = &self.source else {
            return Ok(());
        };
        if self.key.get().is_some() {
            return Ok(());
        }
        super::jwk_tls::warn_insecure(NS, url);
        let first = fetch_key(url, &self.kid, self.alg).map(|k| {
            let _ = self.key.set(k);
        });
        if first.is_err() {
            let (weak, url, kid, alg) = (
                Arc::downgrade(&self.key),
                url.clone(),
                self.kid.clone(),
                self.alg,
            );
            std::thread::Builder::new()
                .name("proxy-jwk-signer".into())
                .spawn(move || retry_key(weak, &url, &kid, alg))
                .map_err(|e| format!("{NS}: cannot start the key fetch thread: {e}"))?;
        }
        first
    }

    /// Sign one payload (a JSON object) into a compact or full JWS.
    pub fn sign(&self, payload: &Value) -> Result<String, String> {
        let key = self.key.get().ok_or("the signing key is not loaded")?;
        let mut header = String::from("{\"alg\":");
        go_json(&Value::String(self.alg.name().into()), &mut header);
        header.push_str(",\"kid\":");
        go_json(&Value::String(self.kid.clone()), &mut header);
        header.push('}');
        let mut body = String::new();
        go_json(payload, &mut body);
        let protected = b64::encode_string(header.as_bytes());
        let payload = b64::encode_string(body.as_bytes());
        let input = format!("{protected}.{payload}");
        let sig = b64::encode_string(&key.sign(self.alg, input.as_bytes())?);
        Ok(if self.full {
            format!("{{\"payload\":\"{payload}\",\"protected\":\"{protected}\",\"signature\":\"{sig}\"}}")
        } else {
            format!("{input}.{sig}")
        })
    }

    /// Sign the `keys_to_sign` members of `data` that are objects (others are left as they
    /// are, as KrakenD does).
    pub fn sign_fields(&self, data: &mut Fields) -> Result<(), String> {
        for k in &self.keys_to_sign {
            let Some(raw) = data.get(k) else { continue };
            let Ok(v) = serde_json::from_slice::<Value>(&raw) else {
                continue;
            };
            if !v.is_object() {
                continue;
            }
            let token = self.sign(&v)?;
            data.set_string(k, &token);
        }
        Ok(())
    }
}

fn fetch_key(src: &JwkUrl, kid: &str, alg: Alg) -> Result<SignKey, String> {
    let url = &src.url;
    let doc = super::remote::http_get(src).map_err(|e| format!("{NS}: {url}: {e}"))?;
    jwk::signing_key(&doc, kid, alg).map_err(|e| format!("{NS}: {url}: {e}"))
}

fn retry_key(slot: std::sync::Weak<OnceLock<SignKey>>, src: &JwkUrl, kid: &str, alg: Alg) {
    let url = &src.url;
    let mut wait = std::time::Duration::from_secs(1);
    loop {
        std::thread::sleep(wait);
        let Some(slot) = slot.upgrade() else { return };
        if slot.get().is_some() {
            return;
        }
        match fetch_key(src, kid, alg) {
            Ok(k) => {
                let _ = slot.set(k);
                crate::info!("[ENDPOINT: {NS}] key {kid:?} loaded from {url}");
                return;
            }
            Err(e) => crate::warn!("[ENDPOINT: {NS}] {e}; retrying"),
        }
        wait = (wait * 2).min(std::time::Duration::from_secs(30));
    }
}

/// Go's `json.Marshal` of a decoded value: object keys sorted, `<`, `>`, `&`, U+2028 and
/// U+2029 escaped, numbers as Go prints float64.
pub fn go_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => go_number(n, out),
        Value::String(s) => go_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json(e, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_string(k, out);
                out.push(':');
                if let Some(e) = m.get(k) {
                    go_json(e, out);
                }
            }
            out.push('}');
        }
    }
}

fn go_number(n: &serde_json::Number, out: &mut String) {
    if let Some(i) = n.as_i64() {
        // float64 in Go: exact up to 2^53, and printed without an exponent below 1e21.
        out.push_str(itoa::Buffer::new().format(i));
        return;
    }
    if let Some(u) = n.as_u64() {
        out.push_str(itoa::Buffer::new().format(u));
        return;
    }
    let f = n.as_f64().unwrap_or(0.0);
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Go: `strconv.FormatFloat(f, 'e', -1, 64)` with a two-digit exponent minimum.
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        out.push_str(mant);
        out.push('e');
        out.push(sign);
        if digits.len() < 2 {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        out.push_str(&f.to_string());
    }
}

fn go_string(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\u{0}'..='\u{1f}' => {
                let u = c as u32;
                out.push_str("\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(
                        HEX.get(((u >> shift) & 15) as usize)
                            .copied()
                            .unwrap_or(b'0') as char,
                    );
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payloads_are_serialised_as_go_marshals_maps() {
        let mut s = String::new();
        go_json(
            &json!({"b": 1, "a": [true, null, 1.5], "c": "<&>", "d": {"z": 1, "y": 2}}),
            &mut s,
        );
        assert_eq!(
            s,
            r#"{"a":[true,null,1.5],"b":1,"c":"\u003c\u0026\u003e","d":{"y":2,"z":1}}"#
        );
        let mut s = String::new();
        go_json(&json!([1e21, 1e-7, 0.000001]), &mut s);
        assert_eq!(s, "[1e+21,1e-07,0.000001]");
    }
}
