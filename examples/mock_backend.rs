//! A fast mock backend for load tests: monoio event loops pinned to cores, answering every
//! request (GET, no body expected) with `200 application/json` and a fixed JSON object of about
//! `--size` bytes. Keep-alive and pipelining; nothing else. Not part of the gateway.
//!
//! `cargo run --release --example mock_backend -- --port 9000 --size 1024 [--core 1[,2]] [--threads N]`
//!
//! `--threads N` runs N event loops, each with its own `SO_REUSEPORT` listener (the kernel
//! spreads connections), pinned round-robin to the `--core` list: `loadtest/run` uses one
//! thread per gateway core when the backend itself is measured as the floor.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use monoio::buf::IoBufMut;
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
        // monoio reads into the start of a buffer: append after a kept partial head.
        let len = buf.len();
        let (res, b) = stream.read(buf.slice_mut(len..)).await;
        buf = b.into_inner();
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
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let num =
        |name: &str, default: usize| value(name).and_then(|v| v.parse().ok()).unwrap_or(default);
    let port = num("--port", 9000);
    let size = num("--size", 1024);
    let threads = num("--threads", 1).max(1);
    let cores: Vec<usize> = value("--core")
        .map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_default();
    let body = body(size);
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        body
    )
    .into_bytes();
    println!(
        "mock backend: listening on 127.0.0.1:{port}, body {} bytes, {threads} thread(s), cores {cores:?}",
        body.len()
    );
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let core = if cores.is_empty() {
                None
            } else {
                Some(cores[t % cores.len()])
            };
            let resp = resp.clone();
            std::thread::spawn(move || serve_loop(port, core, resp))
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}

/// One pinned io_uring event loop with its own `SO_REUSEPORT` listener.
fn serve_loop(port: usize, core: Option<usize>, resp: Vec<u8>) {
    if let Some(core) = core {
        if let Some(id) =
            core_affinity::get_core_ids().and_then(|ids| ids.into_iter().find(|c| c.id == core))
        {
            core_affinity::set_for_current(id);
        }
    }
    let mut b = io_uring::IoUring::builder();
    b.setup_coop_taskrun().setup_single_issuer();
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .uring_builder(b)
        .enable_timer()
        .build()
        .expect("io_uring runtime");
    rt.block_on(async move {
        let opts = monoio::net::ListenerOpts::new()
            .reuse_port(true)
            .reuse_addr(true)
            .backlog(4096);
        let listener =
            TcpListener::bind_with_config(format!("127.0.0.1:{port}"), &opts).expect("bind");
        let resp = Rc::new(resp);
        loop {
            if let Ok((s, _)) = listener.accept().await {
                monoio::spawn(serve(s, resp.clone()));
            }
        }
    });
}
