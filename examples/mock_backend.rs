//! A fast mock backend for load tests: monoio on one pinned core, answers every request
//! (GET, no body expected) with `200 application/json` and a fixed JSON object of about
//! `--size` bytes. Keep-alive and pipelining; nothing else. Not part of the gateway.
//!
//! `cargo run --release --example mock_backend -- --port 9000 --size 1024 [--core 1]`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};
use std::rc::Rc;

fn body(size: usize) -> String {
    // Fields a shaping test can keep: id, name, email, active, score; then padding.
    let mut s = String::from(
        r#"{"id":42,"name":"Ada Lovelace","email":"ada@example.com","active":true,"score":97.5,"tags":["a","b","c"],"address":{"city":"London","zip":"N1"}"#,
    );
    let mut i = 0;
    while s.len() + 30 < size {
        s.push_str(&format!(r#","pad{i:04}":"{}""#, "x".repeat(12)));
        i += 1;
    }
    s.push('}');
    s
}

async fn serve(mut stream: TcpStream, resp: Rc<Vec<u8>>) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(8192);
    let mut pending: usize = 0;
    loop {
        let (res, b) = stream.read(buf).await;
        buf = b;
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        // Count complete request heads; keep any partial tail.
        let mut start = 0;
        while let Some(end) = memchr::memmem::find(&buf[start..], b"\r\n\r\n") {
            pending += 1;
            start += end + 4;
        }
        buf.drain(..start);
        if pending > 0 {
            let mut out = Vec::with_capacity(resp.len() * pending);
            for _ in 0..pending {
                out.extend_from_slice(&resp);
            }
            pending = 0;
            let (r, _) = stream.write_all(out).await;
            if r.is_err() {
                return;
            }
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(4096);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let port = arg("--port", 9000);
    let size = arg("--size", 1024);
    if let Some(core) = args
        .iter()
        .position(|a| a == "--core")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse::<usize>().ok())
    {
        if let Some(id) =
            core_affinity::get_core_ids().and_then(|ids| ids.into_iter().find(|c| c.id == core))
        {
            core_affinity::set_for_current(id);
        }
    }
    let body = body(size);
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        body
    )
    .into_bytes();
    let mut b = io_uring::IoUring::builder();
    b.setup_coop_taskrun().setup_single_issuer();
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .uring_builder(b)
        .enable_timer()
        .build()
        .expect("io_uring runtime");
    rt.block_on(async move {
        let listener = TcpListener::bind(format!("127.0.0.1:{port}")).expect("bind");
        println!(
            "mock backend: listening on 127.0.0.1:{port}, body {} bytes",
            body.len()
        );
        let resp = Rc::new(resp);
        loop {
            if let Ok((s, _)) = listener.accept().await {
                monoio::spawn(serve(s, resp.clone()));
            }
        }
    });
}
