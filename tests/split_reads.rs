//! Messages that arrive in many small reads: request heads and bodies from clients, response
//! heads and chunk-size lines from backends. Each read must append to what was buffered
//! (monoio reads into the start of a buffer unless given the spare capacity).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::config::one;
use common::*;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn trickle_client(g: &Gateway, bytes: &[u8], piece: usize) -> String {
    let mut s = TcpStream::connect(g.addr()).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for part in bytes.chunks(piece) {
        s.write_all(part).unwrap();
        std::thread::sleep(Duration::from_millis(3));
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_request_head_sent_a_few_bytes_at_a_time_is_answered() {
    let b = Backend::json(r#"{"ok":true}"#);
    let g = Gateway::start(&one("/x", "GET", &b.url(), "/x").to_string());
    let got = trickle_client(
        &g,
        b"GET /x HTTP/1.1\r\nHost: x\r\nX-Pad: aaaaaaaaaaaa\r\nConnection: close\r\n\r\n",
        5,
    );
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(got.ends_with(r#"{"ok":true}"#), "{got}");
}

#[test]
fn pipelined_requests_split_mid_head_are_answered_in_order() {
    let b = Backend::start(|r| Reply::json(&format!(r#"{{"path":"{}"}}"#, r.path)));
    let mut cfg = one("/a", "GET", &b.url(), "/a");
    cfg["endpoints"].as_array_mut().unwrap().push(json!({
        "endpoint": "/b", "backend": [{"host": [b.url()], "url_pattern": "/b"}]
    }));
    let g = Gateway::start(&cfg.to_string());
    let req = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let got = trickle_client(&g, req, 7);
    let a = got.find(r#"{"path":"/a"}"#).expect(&got);
    let bpos = got.find(r#"{"path":"/b"}"#).expect(&got);
    assert!(a < bpos, "{got}");
}

#[test]
fn a_chunked_request_body_sent_byte_by_byte_reaches_the_backend_whole() {
    let b = Backend::json(r#"{"ok":true}"#);
    let g = Gateway::start(&one("/p", "POST", &b.url(), "/p").to_string());
    let req = b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n";
    let got = trickle_client(&g, req, 1);
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert_eq!(b.last_request().body, b"hello world");
}

#[test]
fn a_backend_response_head_split_across_reads_is_parsed() {
    let body = r#"{"name":"split","n":12345678901234567890}"#;
    let b = Backend::start(move |_| {
        Reply::json(body)
            .header("X-Padding", &"p".repeat(300))
            .trickle(7, Duration::from_millis(1))
    });
    let g = Gateway::start(&one("/s", "GET", &b.url(), "/s").to_string());
    let r = get(&g.url("/s"));
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), body);
}

#[test]
fn a_chunked_backend_body_with_split_size_lines_is_decoded() {
    let big: String = (0..400).map(|i| format!(r#""k{i}":{i},"#)).collect();
    let body = format!("{{{big}\"end\":true}}");
    let expect: serde_json::Value = serde_json::from_str(&body).unwrap();
    let b = Backend::start(move |_| {
        Reply::json(&body)
            .chunked()
            .trickle(3, Duration::from_micros(200))
    });
    let g = Gateway::start(&one("/c", "GET", &b.url(), "/c").to_string());
    let r = get(&g.url("/c"));
    assert_eq!(r.status, 200, "{}", g.output());
    assert_eq!(r.json(), expect);
}

#[test]
fn a_no_op_endpoint_relays_a_trickled_chunked_body_intact() {
    let body: String = "0123456789".repeat(500);
    let want = body.clone();
    let b = Backend::start(move |_| {
        Reply::text(&body)
            .chunked()
            .trickle(11, Duration::from_micros(200))
    });
    let mut cfg = one("/n", "GET", &b.url(), "/n");
    cfg["endpoints"][0]["output_encoding"] = json!("no-op");
    let g = Gateway::start(&cfg.to_string());
    let r = get(&g.url("/n"));
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), want);
}
