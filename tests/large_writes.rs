//! Writes larger than a socket's send buffer: the io_uring write completes in parts, and each
//! part must be followed by exactly the remaining bytes, in order, to a client and to a backend
//! that are slow to read.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::config::one;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// 8 MiB: more than loopback's largest send buffer here (tcp_wmem max 4 MiB), so the first
/// write can only be partial.
const BIG: usize = 8 << 20;

/// Bytes that show a reordered, repeated or dropped piece: position-dependent letters.
fn pattern(len: usize) -> String {
    (0..len)
        .map(|i| char::from(b'a' + ((i / 7 + i % 13) % 26) as u8))
        .collect()
}

#[test]
fn a_response_larger_than_the_socket_buffer_reaches_a_slow_reader_whole() {
    let blob = pattern(BIG);
    let body = format!(r#"{{"blob":"{blob}"}}"#);
    let served = body.clone();
    let b = Backend::start(move |_| Reply::json(&served));
    let g = Gateway::start(&one("/big", "GET", &b.url(), "/big").to_string());
    let mut s = TcpStream::connect(g.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    // Not reading yet: the gateway's write fills the buffers and must wait for the rest.
    std::thread::sleep(Duration::from_millis(400));
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    let text = String::from_utf8(got).unwrap();
    let (head, payload) = text.split_once("\r\n\r\n").expect("a response head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("Content-Length: {}", body.len())),
        "{head}"
    );
    assert_eq!(payload.len(), body.len());
    assert!(payload == body, "the body arrived altered");
}

#[test]
fn a_request_body_larger_than_the_socket_buffer_reaches_a_slow_backend_whole() {
    // A backend that waits before reading anything, then reads the head and the whole body.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let backend = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        std::thread::sleep(Duration::from_millis(400));
        let mut r = BufReader::new(s);
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0u8; length];
        r.read_exact(&mut body).unwrap();
        let mut s = r.into_inner();
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}")
            .unwrap();
        body
    });
    let g = Gateway::start(&one("/up", "POST", &url, "/up").to_string());
    let sent = pattern(BIG);
    let r = request("POST", &g.url("/up"), &[], sent.as_bytes());
    assert_eq!(r.status, 200, "{}", g.output());
    let got = backend.join().unwrap();
    assert_eq!(got.len(), sent.len());
    assert!(
        got == sent.as_bytes(),
        "the body reached the backend altered"
    );
}
