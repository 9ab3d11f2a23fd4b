//! Backend compression as Go's transport does it for KrakenD: ask for gzip, unzip
//! transparently (also for no-op, which then loses Content-Encoding and Content-Length), and
//! never when `disable_compression` is set or the forwarded request already says what it
//! accepts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::config::one;
use common::*;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::json;
use std::io::Write;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A backend that gzips its JSON only when the request asks for it.
fn zipping_backend(body: &'static str) -> Backend {
    Backend::start(move |r| {
        if r.header("accept-encoding") == Some("gzip") {
            Reply::status(200)
                .header("Content-Type", "application/json")
                .header("Content-Encoding", "gzip")
                .body(gzip(body.as_bytes()))
        } else {
            Reply::json(body)
        }
    })
}

#[test]
fn backends_are_asked_for_gzip_and_the_answer_is_unzipped() {
    let b = zipping_backend(r#"{"zipped":true,"n":1.50}"#);
    let g = Gateway::start(&one("/z", "GET", &b.url(), "/z").to_string());
    let r = get(&g.url("/z"));
    assert_eq!(r.status, 200, "{}", g.output());
    assert_eq!(r.text(), r#"{"zipped":true,"n":1.50}"#);
    assert_eq!(b.last_request().header("accept-encoding"), Some("gzip"));
}

#[test]
fn no_op_relays_the_unzipped_body_without_content_encoding() {
    let b = zipping_backend(r#"{"raw":"yes"}"#);
    let mut cfg = one("/n", "GET", &b.url(), "/n");
    cfg["endpoints"][0]["output_encoding"] = json!("no-op");
    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/n"));
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), r#"{"raw":"yes"}"#);
    assert_eq!(r.header("content-encoding"), None);
}

#[test]
fn disable_compression_sends_no_accept_encoding() {
    let b = zipping_backend(r#"{"plain":true}"#);
    let mut cfg = one("/p", "GET", &b.url(), "/p");
    cfg["disable_compression"] = json!(true);
    let g = Gateway::start(&cfg.to_string());
    assert_eq!(get(&g.url("/p")).json(), json!({"plain": true}));
    assert_eq!(b.last_request().header("accept-encoding"), None);
}

#[test]
fn a_forwarded_accept_encoding_is_left_alone_and_the_body_is_not_unzipped() {
    let b = zipping_backend(r#"{"x":1}"#);
    let mut cfg = one("/f", "GET", &b.url(), "/f");
    cfg["endpoints"][0]["input_headers"] = json!(["Accept-Encoding"]);
    cfg["endpoints"][0]["output_encoding"] = json!("no-op");
    let g = Gateway::start(&cfg.to_string());
    let r = request("GET", &g.url("/f"), &[("Accept-Encoding", "gzip")], b"");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.body, gzip(br#"{"x":1}"#));
}

#[test]
fn a_gzip_body_that_is_not_gzip_fails_the_backend() {
    let b = Backend::start(|_| {
        Reply::status(200)
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .body("this is not gzip")
    });
    let g = Gateway::start(&one("/bad", "GET", &b.url(), "/bad").to_string());
    let r = get(&g.url("/bad"));
    assert_eq!(r.status, 500);
}
