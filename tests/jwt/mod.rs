//! Tokens and JWK sets minted by an independent implementation (PyJWT + cryptography, run by
//! `tests/jwt/mint.py`), shared by the JWT test files (each uses part of it).
#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

/// The Python that has PyJWT: Debian's (`python3-jwt`, installed by `.ci/run`) first.
fn python() -> &'static str {
    for p in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(p)
            .args(["-c", "import jwt, cryptography"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return p;
        }
    }
    panic!(
        "no python3 with PyJWT and cryptography (apt-get install python3-jwt python3-cryptography)"
    );
}

/// Run mint.py on `req` (see its docstring): {"public", "private", "tokens"}.
pub fn mint(req: Value) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/jwt/mint.py");
    let mut child = Command::new(python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(req.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "mint.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Now, in seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Write `v` to a fresh temp file; returns its path.
pub fn temp_json(v: &Value) -> String {
    let path = crate::common::gateway::temp_config_path().with_extension("jwk.json");
    std::fs::write(&path, v.to_string()).unwrap();
    path.to_string_lossy().into_owned()
}

/// Standard claims valid for an hour.
pub fn claims(extra: Value) -> Value {
    let mut c = json!({
        "iss": "https://issuer.test",
        "aud": ["api"],
        "sub": "user-1",
        "exp": now() + 3600,
        "iat": now() - 10,
    });
    if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            if v.is_null() {
                c.remove(k);
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
    }
    c
}
