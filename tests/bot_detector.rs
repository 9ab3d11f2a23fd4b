//! `security/bot-detector`: requests whose User-Agent is in `deny`, matches one of `patterns`,
//! or is empty with `empty_user_agent_is_bot`, get a bare 403 and reach no backend; `allow`
//! wins over both. At service level it runs before routing (404s included) on every path but
//! the health check; at endpoint level, only on that endpoint.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::config::{backend, endpoint, service};
use common::*;
use serde_json::{json, Value};

fn ua(g: &Gateway, path: &str, agent: &str) -> client::Response {
    request("GET", &g.url(path), &[("User-Agent", agent)], b"")
}

/// Endpoints `/a` and `/b` on backend `b`, with `detector` at service level.
fn service_level(b: &Backend, detector: Value) -> Gateway {
    let mut cfg = service(vec![
        endpoint("/a", "GET", vec![backend(&b.url(), "/a")]),
        endpoint("/b", "GET", vec![backend(&b.url(), "/b")]),
    ]);
    cfg["extra_config"] = json!({ "security/bot-detector": detector });
    Gateway::start(&cfg.to_string())
}

fn assert_bare_403(r: &client::Response, what: &str) {
    assert_eq!(r.status, 403, "{what}: {}", r.text());
    assert!(r.body.is_empty(), "{what}: {}", r.text());
    assert_eq!(r.header("content-type"), None, "{what}");
    assert_eq!(r.header("x-krakend-completed"), None, "{what}");
}

#[test]
fn a_denied_user_agent_gets_a_bare_403_and_never_reaches_the_backend() {
    let b = Backend::json(r#"{"ok":true}"#);
    let g = service_level(&b, json!({"deny": ["EvilBot/1.0"]}));
    assert_bare_403(&ua(&g, "/a", "EvilBot/1.0"), "deny");
    assert!(b.requests().is_empty(), "{:?}", b.requests());
    // Deny entries are exact, not substrings or prefixes.
    assert_eq!(ua(&g, "/a", "EvilBot/1.01").status, 200);
    assert_eq!(ua(&g, "/a", "xEvilBot/1.0").status, 200);
    assert_eq!(b.requests().len(), 2);
}

#[test]
fn a_user_agent_matching_any_pattern_anywhere_is_a_bot() {
    let b = Backend::json(r#"{"ok":true}"#);
    let g = service_level(&b, json!({"patterns": ["^curl/", "(?i)spider", "bot\\b"]}));
    for agent in [
        "curl/8.4.0",
        "Mozilla/5.0 (compatible; Baiduspider/2.0)",
        "a bot here",
    ] {
        assert_bare_403(&ua(&g, "/a", agent), agent);
    }
    for agent in [
        "Mozilla/5.0 curl/8",
        "robots",
        "Mozilla/5.0 (X11; Linux x86_64)",
    ] {
        assert_eq!(ua(&g, "/a", agent).status, 200, "{agent}");
    }
}

#[test]
fn an_allowed_user_agent_passes_even_when_a_pattern_or_the_deny_list_names_it() {
    let b = Backend::json(r#"{"ok":true}"#);
    let g = service_level(
        &b,
        json!({
            "allow": ["Pingdom.com_bot_version_1.1", "twice"],
            "deny": ["twice"],
            "patterns": ["(Pingdom.com_bot_version_).*"]
        }),
    );
    assert_eq!(ua(&g, "/a", "Pingdom.com_bot_version_1.1").status, 200);
    assert_eq!(ua(&g, "/a", "twice").status, 200);
    assert_bare_403(&ua(&g, "/a", "Pingdom.com_bot_version_1.14"), "pattern");
}

#[test]
fn a_missing_user_agent_is_a_bot_only_with_empty_user_agent_is_bot() {
    let b = Backend::json(r#"{"ok":true}"#);
    let g = service_level(&b, json!({"deny": ["x"]}));
    assert_eq!(get(&g.url("/a")).status, 200);
    assert_eq!(ua(&g, "/a", "").status, 200);
    drop(g);
    let g = service_level(&b, json!({"deny": ["x"], "empty_user_agent_is_bot": true}));
    assert_bare_403(&get(&g.url("/a")), "no User-Agent");
    assert_bare_403(&ua(&g, "/a", ""), "empty User-Agent");
    assert_eq!(ua(&g, "/a", "Mozilla/5.0").status, 200);
}

#[test]
fn cached_verdicts_stay_right_for_bots_and_humans_alike() {
    let b = Backend::json(r#"{"ok":true}"#);
    // A cache of 2 with 4 distinct agents: entries are evicted and classified again.
    let g = service_level(
        &b,
        json!({"patterns": ["bot"], "deny": ["d"], "cache_size": 2}),
    );
    for round in 0..3 {
        for (agent, status) in [("a bot", 403), ("human", 200), ("d", 403), ("other", 200)] {
            assert_eq!(ua(&g, "/a", agent).status, status, "round {round}: {agent}");
        }
    }
    assert_eq!(b.requests().len(), 6);
}

#[test]
fn service_level_detection_covers_unknown_paths_but_not_the_health_check() {
    let b = Backend::json(r#"{"ok":true}"#);
    let g = service_level(&b, json!({"deny": ["bad"]}));
    // KrakenD: the middleware also wraps gin's 404 handler.
    assert_bare_403(&ua(&g, "/nowhere", "bad"), "404 path");
    assert_eq!(ua(&g, "/nowhere", "good").status, 404);
    // KrakenD: /__health is registered before the middleware.
    assert_eq!(ua(&g, "/__health", "bad").status, 200);
    assert_bare_403(&ua(&g, "/b", "bad"), "second endpoint");
}

#[test]
fn endpoint_level_detection_guards_only_its_endpoint() {
    let b = Backend::json(r#"{"ok":true}"#);
    let mut guarded = endpoint("/a", "GET", vec![backend(&b.url(), "/a")]);
    guarded["extra_config"] = json!({"security/bot-detector": {"patterns": ["^Go-http"]}});
    let cfg = service(vec![
        guarded,
        endpoint("/b", "GET", vec![backend(&b.url(), "/b")]),
    ]);
    let g = Gateway::start(&cfg.to_string());
    assert_bare_403(&ua(&g, "/a", "Go-http-client/1.1"), "guarded endpoint");
    assert_eq!(ua(&g, "/b", "Go-http-client/1.1").status, 200);
    assert_eq!(ua(&g, "/a", "Mozilla/5.0").status, 200);
    let paths: Vec<String> = b.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/b", "/a"]);
}

#[test]
fn a_pattern_that_does_not_compile_is_refused_at_startup() {
    // KrakenD logs it and runs without any bot detection.
    let mut cfg = service(vec![endpoint(
        "/a",
        "GET",
        vec![backend("http://127.0.0.1:9", "/a")],
    )]);
    cfg["extra_config"] = json!({"security/bot-detector": {"patterns": ["(unclosed"]}});
    let (code, out, err) = gateway::check(&cfg.to_string());
    assert_ne!(code, 0, "{out}{err}");
    assert!(format!("{out}{err}").contains("patterns[0]"), "{out}{err}");
}
