//! Backend `encoding: xml` / `rss` and `output_encoding` `xml` / `yaml` / `negotiate`, over real
//! sockets: KrakenD's shapes, and hostile XML (entity bombs, external entities, deep nesting,
//! huge documents) failing the backend with bounded memory instead of hanging or growing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::config::{backend_with, endpoint, service};
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn xml_backend(body: &'static [u8]) -> Backend {
    Backend::start(move |_| {
        Reply::status(200)
            .header("Content-Type", "application/xml")
            .body(body)
    })
}

fn gateway_for(b: &Backend, enc: &str, output: Option<&str>) -> Gateway {
    let mut e = endpoint(
        "/x",
        "GET",
        vec![backend_with(&b.url(), "/doc", json!({"encoding": enc}))],
    );
    if let Some(o) = output {
        e["output_encoding"] = json!(o);
    }
    Gateway::start(&service(vec![e]).to_string())
}

/// Resident memory of a process, in KiB (Linux `/proc`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn xml_backend_body_becomes_krakends_json_shape_and_can_be_filtered() {
    let b = xml_backend(
        br#"<?xml version="1.0"?><user id="7"><name>Ann</name><tag>a</tag><tag>b</tag><x/></user>"#,
    );
    let mut e = endpoint(
        "/x",
        "GET",
        vec![backend_with(
            &b.url(),
            "/doc",
            json!({"encoding": "xml", "target": "user", "deny": ["x"]}),
        )],
    );
    e["cache_ttl"] = json!("1m");
    let g = Gateway::start(&service(vec![e]).to_string());
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"-id": "7", "name": "Ann", "tag": ["a", "b"]})
    );
    assert_eq!(r.header("x-krakend-completed"), Some("true"));
}

#[test]
fn xml_output_of_an_xml_backend_keeps_the_root_and_attributes() {
    let b = xml_backend(br#"<user type="admin"><name>E &amp; co</name></user>"#);
    let g = gateway_for(&b, "xml", Some("xml"));
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/xml"));
    assert_eq!(
        r.text(),
        r#"<user type="admin"><name>E &amp; co</name></user>"#
    );
}

#[test]
fn an_unknown_output_encoding_with_one_xml_backend_renders_xml_as_krakend_falls_back() {
    let b = xml_backend(b"<a>1</a>");
    let g = gateway_for(&b, "xml", Some("fast-json"));
    let r = get(&g.url("/x"));
    assert_eq!((r.status, r.text()), (200, "<a>1</a>".to_string()));
}

#[test]
fn yaml_output_renders_sorted_keys_with_two_space_indentation() {
    let b = Backend::json(r#"{"b":{"k":[1,"two"]},"a":"x: y"}"#);
    let g = gateway_for(&b, "json", Some("yaml"));
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/x-yaml; charset=utf-8")
    );
    assert_eq!(r.text(), "a: 'x: y'\nb:\n  k:\n  - 1\n  - two\n");
}

#[test]
fn negotiate_picks_xml_yaml_or_json_from_accept() {
    let b = Backend::json(r#"{"a":1,"b":"t"}"#);
    let g = gateway_for(&b, "json", Some("negotiate"));
    let with = |accept: &str| request("GET", &g.url("/x"), &[("Accept", accept)], b"");
    let x = with("application/xml");
    assert_eq!(x.header("content-type"), Some("application/xml"));
    assert_eq!(x.text(), "<doc><a>1</a><b>t</b></doc>");
    let y = with("text/plain");
    assert_eq!(y.text(), "a: 1\nb: t\n");
    let j = with("image/png");
    assert_eq!(
        j.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(j.json(), json!({"a": 1, "b": "t"}));
    assert_eq!(get(&g.url("/x")).json(), json!({"a": 1, "b": "t"}));
}

#[test]
fn rss_backend_becomes_krakends_feed_object() {
    let b = xml_backend(
        br#"<rss version="2.0"><channel><title>T</title><description>D</description>
            <item><title>i1</title><link>http://l</link></item></channel></rss>"#,
    );
    let g = gateway_for(&b, "rss", None);
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["title"], "T");
    assert_eq!(v["type"], "rss");
    assert_eq!(v["items"], json!([{"title": "i1", "link": "http://l"}]));
}

#[test]
fn entity_bombs_and_external_entities_fail_the_backend_without_expanding() {
    let laughs: &'static [u8] = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]><lolz>&lol9;</lolz>"#;
    let b = xml_backend(laughs);
    let g = gateway_for(&b, "xml", None);
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 500);
    let xxe: &'static [u8] =
        br#"<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>"#;
    let b2 = xml_backend(xxe);
    let g2 = gateway_for(&b2, "xml", None);
    let r = get(&g2.url("/x"));
    assert_eq!(r.status, 500);
    assert!(!r.text().contains("root:"));
}

#[test]
fn deep_nesting_fails_the_backend() {
    let deep: &'static [u8] = Box::leak(
        format!("{}x{}", "<a>".repeat(100_000), "</a>".repeat(100_000))
            .into_bytes()
            .into_boxed_slice(),
    );
    let b = xml_backend(deep);
    let g = gateway_for(&b, "xml", None);
    assert_eq!(get(&g.url("/x")).status, 500);
    // The worker survived: the next request is answered too.
    assert_eq!(get(&g.url("/x")).status, 500);
}

#[test]
fn a_50_mb_xml_document_fails_quickly_with_bounded_memory() {
    let mut doc = b"<r>".to_vec();
    while doc.len() < 50 << 20 {
        doc.extend_from_slice(b"<i a=\"1\">x</i>");
    }
    doc.extend_from_slice(b"</r>");
    let doc: &'static [u8] = Box::leak(doc.into_boxed_slice());
    let b = xml_backend(doc);
    let g = gateway_for(&b, "xml", None);
    let before = rss_kib(g.pid());
    let start = Instant::now();
    let r = get(&g.url("/x"));
    assert_eq!(r.status, 500);
    assert!(start.elapsed() < Duration::from_secs(20));
    // The body is read (capped by the backend body limit) but never decoded into a tree.
    let grown = rss_kib(g.pid()).saturating_sub(before);
    assert!(grown < 200 * 1024, "grew by {grown} KiB");
}

#[test]
fn millions_of_tiny_elements_hit_the_node_cap_with_bounded_memory() {
    let mut doc = b"<r>".to_vec();
    while doc.len() < (8 << 20) - 16 {
        doc.extend_from_slice(b"<a/>");
    }
    doc.extend_from_slice(b"</r>");
    let doc: &'static [u8] = Box::leak(doc.into_boxed_slice());
    let b = xml_backend(doc);
    let g = gateway_for(&b, "xml", None);
    let before = rss_kib(g.pid());
    assert_eq!(get(&g.url("/x")).status, 500);
    let grown = rss_kib(g.pid()).saturating_sub(before);
    assert!(grown < 150 * 1024, "grew by {grown} KiB");
}
