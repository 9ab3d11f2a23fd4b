//! Status codes, bodies and headers the client gets back (reference §4): only 200/201 from a
//! backend is success, failures become an empty 500, error strategies, KrakenD's headers and
//! the output/backend encodings.
// A test crate: its helpers (not only #[test] fns) index JSON configs and fail loudly.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod common;

use common::config::one;
use common::*;
use serde_json::{json, Value};

/// A gateway with `GET /e` -> a backend answering `reply`, after `tweak` on the config.
fn setup(reply: Reply, tweak: impl FnOnce(&mut Value)) -> (Backend, Gateway) {
    let b = Backend::start(move |_| reply.clone());
    let mut cfg = one("/e", "GET", &b.url(), "/b");
    tweak(&mut cfg);
    let g = Gateway::start(&cfg.to_string());
    (b, g)
}

fn backend_extra(cfg: &mut Value, ns: &str, value: Value) {
    cfg["endpoints"][0]["backend"][0]["extra_config"] = json!({ ns: value });
}

#[test]
fn backend_200_and_201_are_answered_as_200_with_the_body() {
    for status in [200, 201] {
        let reply = Reply::status(status)
            .header("Content-Type", "application/json")
            .header("X-Ignored", "1")
            .body(r#"{"a":1}"#);
        let (_b, g) = setup(reply, |_| {});
        let r = get(&g.url("/e"));
        assert_eq!(r.status, 200, "backend {status}");
        assert_eq!(r.json(), json!({"a": 1}));
        assert_eq!(r.header("x-krakend-completed"), Some("true"));
        // KrakenD: backend headers are dropped outside no-op.
        assert_eq!(r.header("x-ignored"), None);
    }
}

#[test]
fn backend_204_404_and_500_become_an_empty_500() {
    for status in [202, 204, 404, 500] {
        let (_b, g) = setup(
            Reply::status(status)
                .header("Content-Type", "application/json")
                .body(r#"{"e":1}"#),
            |_| {},
        );
        let r = get(&g.url("/e"));
        assert_eq!(r.status, 500, "backend {status}");
        assert!(r.body.is_empty(), "backend {status}: body {:?}", r.text());
        assert_eq!(
            r.header("x-krakend-completed"),
            Some("false"),
            "backend {status}"
        );
        assert_eq!(r.header("cache-control"), None);
    }
}

#[test]
fn return_error_code_passes_the_backend_status_with_an_empty_body() {
    let (_b, g) = setup(
        Reply::status(404)
            .header("Content-Type", "application/json")
            .body(r#"{"e":1}"#),
        |c| {
            backend_extra(c, "backend/http", json!({"return_error_code": true}));
        },
    );
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty(), "{:?}", r.text());
}

#[test]
fn return_error_code_with_return_error_msg_passes_the_backend_body() {
    let (_b, g) = setup(
        Reply::status(418)
            .header("Content-Type", "application/json")
            .body(r#"{"e":"teapot"}"#),
        |c| {
            backend_extra(c, "backend/http", json!({"return_error_code": true}));
            c["extra_config"] = json!({"router": {"return_error_msg": true}});
        },
    );
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 418);
    assert_eq!(r.text(), r#"{"e":"teapot"}"#);
}

#[test]
fn return_error_msg_puts_the_error_text_in_the_body() {
    let (b, g) = setup(Reply::status(404).body("nope"), |c| {
        c["extra_config"] = json!({"router": {"return_error_msg": true}});
    });
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 500);
    // KrakenD: `invalid status code <N> [<METHOD> <url_pattern>]: <full URL>`.
    let want = format!("invalid status code 404 [GET /b]: {}/b", b.url());
    assert!(
        r.text().contains(&want),
        "body {:?} lacks {want:?}",
        r.text()
    );
    assert!(r
        .header("content-type")
        .is_some_and(|ct| ct.starts_with("text/plain")));
}

#[test]
fn cache_ttl_sets_public_max_age_on_success_only() {
    let (_b, g) = setup(Reply::json(r#"{"a":1}"#), |c| {
        c["endpoints"][0]["cache_ttl"] = json!("1h")
    });
    assert_eq!(
        get(&g.url("/e")).header("cache-control"),
        Some("public, max-age=3600")
    );
    let (_b2, g2) = setup(Reply::status(500), |c| {
        c["endpoints"][0]["cache_ttl"] = json!("1h")
    });
    assert_eq!(get(&g2.url("/e")).header("cache-control"), None);
}

#[test]
fn root_cache_ttl_is_inherited_by_endpoints() {
    let (_b, g) = setup(Reply::json(r#"{"a":1}"#), |c| c["cache_ttl"] = json!("30s"));
    assert_eq!(
        get(&g.url("/e")).header("cache-control"),
        Some("public, max-age=30")
    );
}

#[test]
fn no_cache_control_without_cache_ttl() {
    let (_b, g) = setup(Reply::json(r#"{"a":1}"#), |_| {});
    assert_eq!(get(&g.url("/e")).header("cache-control"), None);
}

#[test]
fn version_header_is_present_on_success_and_failure() {
    for reply in [Reply::json("{}"), Reply::status(500)] {
        let (_b, g) = setup(reply, |_| {});
        let r = get(&g.url("/e"));
        let v = r.header("x-krakend").expect("X-KrakenD header");
        assert!(v.starts_with("Version ") && v != "Version undefined", "{v}");
    }
}

#[test]
fn hide_version_header_says_version_undefined() {
    let (_b, g) = setup(Reply::json("{}"), |c| {
        c["extra_config"] = json!({"router": {"hide_version_header": true}});
    });
    assert_eq!(
        get(&g.url("/e")).header("x-krakend"),
        Some("Version undefined")
    );
}

#[test]
fn json_output_has_charset_utf8_and_keeps_the_backend_text() {
    let (_b, g) = setup(Reply::json(r#"{"b":1,"a":{"d":2,"c":3}}"#), |_| {});
    let r = get(&g.url("/e"));
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    // Intended difference: KrakenD re-encodes with Go's encoding/json (sorted keys); we copy the
    // backend's raw text (same JSON value, no re-serialisation). No trailing newline either way.
    assert_eq!(r.text(), r#"{"b":1,"a":{"d":2,"c":3}}"#);
    assert_eq!(r.json(), serde_json::json!({"a": {"c": 3, "d": 2}, "b": 1}));
}

#[test]
fn json_numbers_keep_their_text() {
    let (_b, g) = setup(
        Reply::json(r#"{"big":12345678901234567890,"f":1.50}"#),
        |_| {},
    );
    // KrakenD: lura decodes with UseNumber, so numeric literals come out as written.
    assert_eq!(
        get(&g.url("/e")).text(),
        r#"{"big":12345678901234567890,"f":1.50}"#
    );
}

#[test]
fn string_output_with_string_backend_passes_the_text() {
    let (_b, g) = setup(Reply::text("plain words"), |c| {
        c["endpoints"][0]["output_encoding"] = json!("string");
        c["endpoints"][0]["backend"][0]["encoding"] = json!("string");
    });
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "plain words");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
}

#[test]
fn string_backend_encoding_wraps_the_body_in_content() {
    let (_b, g) = setup(Reply::text("plain words"), |c| {
        c["endpoints"][0]["backend"][0]["encoding"] = json!("string");
    });
    assert_eq!(get(&g.url("/e")).json(), json!({"content": "plain words"}));
}

#[test]
fn json_collection_output_writes_the_collection_array() {
    let (_b, g) = setup(Reply::json(r#"[{"a":1},{"a":2}]"#), |c| {
        c["endpoints"][0]["output_encoding"] = json!("json-collection");
        c["endpoints"][0]["backend"][0]["is_collection"] = json!(true);
    });
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!([{"a": 1}, {"a": 2}]));
}

#[test]
fn is_collection_wraps_an_array_under_collection() {
    let (_b, g) = setup(Reply::json(r#"[1,2]"#), |c| {
        c["endpoints"][0]["backend"][0]["is_collection"] = json!(true);
    });
    assert_eq!(get(&g.url("/e")).json(), json!({"collection": [1, 2]}));
}

#[test]
fn safejson_wraps_arrays_and_scalars() {
    for (body, want) in [
        (r#"{"a":1}"#, json!({"a": 1})),
        (r#"[1,2]"#, json!({"collection": [1, 2]})),
        // KrakenD CE 2.13 puts scalars (null too) under "content" (recorded answers).
        (r#""hi""#, json!({"content": "hi"})),
        ("42", json!({"content": 42})),
        ("null", json!({"content": null})),
    ] {
        let (_b, g) = setup(Reply::json(body), |c| {
            c["endpoints"][0]["backend"][0]["encoding"] = json!("safejson");
        });
        let r = get(&g.url("/e"));
        assert_eq!(r.status, 200, "{body}");
        assert_eq!(r.json(), want, "{body}");
    }
}

#[test]
fn no_op_passes_status_headers_and_body_through() {
    let reply = Reply::status(418)
        .header("Content-Type", "application/xml")
        .header("Set-Cookie", "a=1")
        .header("Set-Cookie", "b=2")
        .header("X-Custom", "yes")
        .body("<raw>not json</raw>");
    let (_b, g) = setup(reply, |c| {
        c["endpoints"][0]["output_encoding"] = json!("no-op")
    });
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 418);
    assert_eq!(r.text(), "<raw>not json</raw>");
    assert_eq!(r.header("content-type"), Some("application/xml"));
    assert_eq!(r.header_all("set-cookie"), vec!["a=1", "b=2"]);
    assert_eq!(r.header("x-custom"), Some("yes"));
    // KrakenD: no-op responses always say false (the merged data is empty).
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
    assert!(r.header("x-krakend").is_some());
}

#[test]
fn no_op_with_an_unreachable_backend_is_an_empty_500() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let mut cfg = one("/e", "GET", &url, "/b");
    cfg["endpoints"][0]["output_encoding"] = json!("no-op");
    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 500);
    assert!(r.body.is_empty());
}

#[test]
fn invalid_json_from_the_backend_is_a_500() {
    let (_b, g) = setup(Reply::json(r#"{"a":"#), |_| {});
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 500);
    assert!(r.body.is_empty());
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
}

#[test]
fn empty_object_from_the_backend_is_200_but_not_completed() {
    let (_b, g) = setup(Reply::json("{}"), |_| {});
    let r = get(&g.url("/e"));
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "{}");
    // KrakenD: X-Krakend-Completed is false whenever the merged data is empty (reference §4,
    // marked to verify against a live 2.13 binary).
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
}
