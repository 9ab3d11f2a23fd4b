//! A config KrakenD starts must start here: KrakenD CE's own integration-test config
//! (`tests/ce_specs/krakend.json`, unmodified) and a config of our own with the same shapes
//! (xml and rss endpoints, a host that does not resolve, a backend-level GraphQL, a service-level
//! namespace not built) start with warnings, and only what is not built answers 501 — per
//! endpoint.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::config::{backend, backend_with, endpoint, service};
use common::*;
use serde_json::{json, Value};

/// The fixture's shapes around one working endpoint, all backends on `url` except the one
/// whose host does not resolve.
fn fixture_shapes(url: &str) -> Value {
    let mut xml_out = endpoint("/xml/xml", "GET", vec![backend(url, "/x")]);
    xml_out["output_encoding"] = json!("xml");
    let rss_in = endpoint(
        "/show/{id}",
        "GET",
        vec![backend_with(url, "/rss/{id}", json!({"encoding": "rss"}))],
    );
    let negotiate = {
        let mut e = endpoint("/negotiate", "GET", vec![backend(url, "/x")]);
        e["output_encoding"] = json!("negotiate");
        e
    };
    let graphql_backend = endpoint(
        "/graphql",
        "GET",
        vec![backend_with(
            url,
            "/graphql",
            json!({"extra_config": {"backend/graphql": {"type": "query", "query": "{ a }"}}}),
        )],
    );
    let unresolvable = endpoint(
        "/offline",
        "GET",
        vec![backend("http://does-not-resolve.invalid", "/x")],
    );
    let plain = endpoint("/plain", "GET", vec![backend(url, "/x")]);
    service(vec![
        plain,
        xml_out,
        rss_in,
        negotiate,
        graphql_backend,
        unresolvable,
    ])
}

#[test]
fn a_config_with_the_fixtures_shapes_starts_and_only_what_is_not_built_answers_501() {
    let b = Backend::json(r#"{"a":1}"#);
    let cfg = fixture_shapes(&b.url());
    let out = check_file(&cfg.to_string(), &[]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    for warned in ["backend/graphql", "does-not-resolve"] {
        assert!(
            out.stderr.contains(warned),
            "no warning about {warned}: {}",
            out.stderr
        );
    }
    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/plain"));
    assert_eq!((r.status, r.json()), (200, json!({"a": 1})));
    // xml, rss and negotiate are built: they answer as KrakenD does (tests/encodings.rs).
    let r = get(&g.url("/xml/xml"));
    assert_eq!((r.status, r.text()), (200, "<a>1</a>".to_string()));
    assert_eq!(get(&g.url("/negotiate")).json(), json!({"a": 1}));
    let r = get(&g.url("/graphql"));
    assert_eq!(r.status, 501, "/graphql: {}", r.text());
    assert!(
        r.text().contains("backend/graphql"),
        "/graphql: {}",
        r.text()
    );
    // A host that does not resolve fails only its own requests, as a backend error.
    assert_eq!(get(&g.url("/offline")).status, 500);
    assert_eq!(get(&g.url("/plain")).status, 200);
    // Only the working endpoints' backends were called.
    assert!(
        b.requests()
            .iter()
            .all(|r| r.path == "/x" || r.path.starts_with("/rss/")),
        "{:?}",
        b.requests()
    );
}

#[test]
fn a_service_level_namespace_not_built_makes_every_endpoint_answer_501_but_the_gateway_starts() {
    let b = Backend::json(r#"{"a":1}"#);
    let mut cfg = fixture_shapes(&b.url());
    cfg["extra_config"] = json!({"plugin/http-server": {"name": ["x"]}});
    let g = Gateway::start(&cfg.to_string());
    for path in ["/plain", "/xml/xml", "/offline"] {
        let r = get(&g.url(path));
        assert_eq!(r.status, 501, "{path}");
        assert!(r.text().contains("plugin/http-server"), "{}", r.text());
    }
    assert_eq!(get(&g.url("/__health")).status, 200);
    assert!(b.requests().is_empty());
}

#[test]
fn krakend_ces_own_fixture_starts_unmodified() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/ce_specs/krakend.json"
    ))
    .unwrap();
    // Its `telemetry/metrics` listens on :8090; tests running at once (and other checkouts on
    // this machine) would race for that port, so only that address moves to a free one.
    let text = text.replace("\":8090\"", "\"127.0.0.1:0\"");
    // KrakenD CE runs it from its `tests/` folder, where `fixtures/lua/*.lua` (its Lua
    // sources, read at startup) are found: the same layout, in a scratch folder.
    let cwd = std::env::temp_dir().join(format!("proxy-ce-fixture-{}", std::process::id()));
    std::fs::create_dir_all(cwd.join("fixtures")).unwrap();
    let lua = cwd.join("fixtures/lua");
    let _ = std::fs::remove_file(&lua);
    std::os::unix::fs::symlink(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ce_specs/lua"),
        &lua,
    )
    .unwrap();
    let config_path = gateway::temp_config_path();
    std::fs::write(&config_path, &text).unwrap();
    let out = std::process::Command::new(gateway::binary())
        .args(["check", "-c"])
        .arg(&config_path)
        .current_dir(&cwd)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.ends_with("Syntax OK!\n"), "{stdout}");
    let mut cmd = std::process::Command::new(gateway::binary());
    cmd.arg("run")
        .arg("-c")
        .arg(&config_path)
        .args(["--cores", "1", "-p", "0"])
        .current_dir(&cwd);
    let g = Gateway::spawn(cmd, config_path).unwrap();
    // Its service-level bot detector and CORS are built: endpoints are served (this one's
    // backend, 127.0.0.1:8081, is not running here: a backend error, as in KrakenD)...
    let r = get(&g.url("/crash"));
    assert_eq!(r.status, 500, "{}", r.text());
    // ... bots are refused, `validation/cel` runs (the request check on the id rejects 1), and
    // the endpoint checking `JWT` claims with CEL refuses a request without a token (401).
    let bot = request(
        "GET",
        &g.url("/crash"),
        &[("User-Agent", "facebookexternalhit/1.1")],
        b"",
    );
    assert_eq!(bot.status, 403);
    let r = request(
        "GET",
        &g.url("/cel/req-resp/1"),
        &[("X-Header", "something")],
        b"",
    );
    assert_eq!(r.status, 500, "{}", r.text());
    let r = get(&g.url("/cel/jwt/1"));
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(get(&g.url("/__health")).status, 200);
}
