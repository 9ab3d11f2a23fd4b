//! `auth/validator` with a `jwk_url` served by a JWK server on 127.0.0.1 that counts fetches:
//! one fetch per process (not per core or request), refetch on an unknown key at most once
//! per cooldown, rotation of keys mid-run, refresh before `cache_duration` runs out, and a
//! server that does not answer JSON.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_types
)]

mod common;
mod jwt;

use common::config::{backend, endpoint, service};
use common::*;
use jwt::{claims, mint};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A JWK server whose document a test can swap.
struct JwkServer {
    doc: Arc<Mutex<String>>,
    server: Backend,
}

impl JwkServer {
    fn start(doc: &Value, content_type: &'static str) -> JwkServer {
        let doc = Arc::new(Mutex::new(doc.to_string()));
        let d = doc.clone();
        let server = Backend::start(move |_| {
            Reply::status(200)
                .header("Content-Type", content_type)
                .body(d.lock().unwrap().clone())
        });
        JwkServer { doc, server }
    }

    fn set(&self, doc: &Value) {
        *self.doc.lock().unwrap() = doc.to_string();
    }

    fn fetches(&self) -> usize {
        self.server.requests().len()
    }

    fn url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.server.url())
    }
}

/// Two key sets (kids a1 and b1) and tokens for each, plus one naming an unknown kid.
fn keys_and_tokens() -> Value {
    mint(json!({
        "keys": [{"kid": "a1", "type": "EC256"}, {"kid": "b1", "type": "EC256"}],
        "tokens": [
            {"name": "a", "kid": "a1", "alg": "ES256", "claims": claims(json!({}))},
            {"name": "a_other", "kid": "a1", "alg": "ES256", "claims": claims(json!({"sub": "2"}))},
            {"name": "b", "kid": "b1", "alg": "ES256", "claims": claims(json!({}))},
            {"name": "unknown", "kid": "zz", "kid_sign": "a1", "alg": "ES256", "claims": claims(json!({}))}
        ]
    }))
}

fn only(m: &Value, kid: &str) -> Value {
    let keys: Vec<Value> = m["public"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["kid"] == kid)
        .cloned()
        .collect();
    json!({ "keys": keys })
}

fn config(jwk_url: &str, host: &str, extra: Value) -> String {
    let mut v = json!({"alg": "ES256", "jwk_url": jwk_url, "disable_jwk_security": true,
                       "cache": true});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    let eps = ["/p1", "/p2"]
        .iter()
        .map(|p| {
            let mut e = endpoint(p, "GET", vec![backend(host, "/")]);
            e["extra_config"] = json!({"auth/validator": v});
            e
        })
        .collect();
    service(eps).to_string()
}

fn two_cores(config: &str) -> Gateway {
    let path = common::gateway::temp_config_path();
    std::fs::write(&path, config).unwrap();
    let mut cmd = std::process::Command::new(common::gateway::binary());
    cmd.arg("run")
        .arg("-c")
        .arg(&path)
        .args(["--cores", "2", "-p", "0"]);
    Gateway::spawn(cmd, path).unwrap()
}

fn status(gw: &Gateway, path: &str, m: &Value, token: &str) -> u16 {
    let auth = format!("Bearer {}", m["tokens"][token].as_str().unwrap());
    request("GET", &gw.url(path), &[("Authorization", &auth)], b"").status
}

#[test]
fn the_key_set_is_fetched_once_per_process_whatever_the_cores_endpoints_and_requests() {
    let m = keys_and_tokens();
    let jwk = JwkServer::start(&m["public"], "application/json");
    let b = Backend::json("{}");
    let gw = two_cores(&config(&jwk.url(), &b.url(), json!({})));
    for i in 0..20 {
        let path = if i % 2 == 0 { "/p1" } else { "/p2" };
        assert_eq!(status(&gw, path, &m, "a"), 200);
        assert_eq!(status(&gw, path, &m, "b"), 200);
    }
    assert_eq!(jwk.fetches(), 1);
    let req = jwk.server.last_request();
    assert_eq!(req.path, "/.well-known/jwks.json");
}

#[test]
fn a_rotated_key_is_fetched_when_a_token_names_it_and_the_old_key_stops_working() {
    let m = keys_and_tokens();
    let jwk = JwkServer::start(&only(&m, "a1"), "application/json");
    let b = Backend::json("{}");
    let gw = Gateway::start(&config(&jwk.url(), &b.url(), json!({})));
    assert_eq!(status(&gw, "/p1", &m, "a"), 200);
    assert_eq!(jwk.fetches(), 1);
    jwk.set(&only(&m, "b1"));
    // The first request naming b1 waits for the refetch and passes.
    assert_eq!(status(&gw, "/p1", &m, "b"), 200);
    assert_eq!(jwk.fetches(), 2);
    // a1 is gone: a token signed with it that was never seen is refused.
    assert_eq!(status(&gw, "/p1", &m, "a_other"), 401);
}

#[test]
fn unknown_keys_refetch_at_most_once_per_cooldown() {
    let m = keys_and_tokens();
    let jwk = JwkServer::start(&only(&m, "a1"), "application/json");
    let b = Backend::json("{}");
    let gw = Gateway::start(&config(
        &jwk.url(),
        &b.url(),
        json!({"failed_jwk_key_cooldown": "1h"}),
    ));
    assert_eq!(jwk.fetches(), 1);
    for _ in 0..10 {
        assert_eq!(status(&gw, "/p1", &m, "unknown"), 401);
    }
    assert_eq!(jwk.fetches(), 2, "one refetch for the first unknown kid");
    // Within the cooldown even a real rotation waits.
    jwk.set(&only(&m, "b1"));
    assert_eq!(status(&gw, "/p2", &m, "b"), 401);
    assert_eq!(jwk.fetches(), 2);
}

#[test]
fn keys_are_refreshed_before_cache_duration_runs_out() {
    let m = keys_and_tokens();
    let jwk = JwkServer::start(&m["public"], "application/json");
    let b = Backend::json("{}");
    let gw = Gateway::start(&config(&jwk.url(), &b.url(), json!({"cache_duration": 1})));
    assert!(wait_until(Duration::from_secs(5), || jwk.fetches() >= 3));
    assert_eq!(status(&gw, "/p1", &m, "a"), 200);
}

#[test]
fn keys_expire_when_refreshes_fail_so_new_tokens_are_refused() {
    let m = keys_and_tokens();
    let jwk = JwkServer::start(&m["public"], "application/json");
    let b = Backend::json("{}");
    let gw = Gateway::start(&config(&jwk.url(), &b.url(), json!({"cache_duration": 1})));
    assert_eq!(status(&gw, "/p1", &m, "a"), 200);
    jwk.set(&json!("not a key set"));
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(status(&gw, "/p1", &m, "b"), 401);
}

#[test]
fn a_jwk_answer_that_is_not_json_is_never_used() {
    let m = keys_and_tokens();
    let jwk = JwkServer::start(&m["public"], "text/plain");
    let b = Backend::json("{}");
    let gw = Gateway::start(&config(&jwk.url(), &b.url(), json!({})));
    assert_eq!(status(&gw, "/p1", &m, "a"), 401);
    assert!(jwk.fetches() >= 1);
    assert!(
        wait_until(Duration::from_secs(2), || gw
            .output()
            .contains("not application/json")),
        "{}",
        gw.output()
    );
}
