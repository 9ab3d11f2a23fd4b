//! The floor of a monoio HTTP/1 proxy: what a 1:1 request costs with no gateway in it. Issue 18
//! asks for CPU per request ≤ 0.75× nginx's; this says how close to that any gateway built on
//! monoio 0.2.4 can get, by doing only what a proxy cannot avoid:
//!
//! - one client connection ↔ one backend keep-alive connection, dialled once;
//! - a request head read until its blank line (no parsing, no routing, no headers kept);
//! - a fixed `GET` written to the backend, issued in the same loop turn as the read of its
//!   answer (as the gateway's backend call does);
//! - the answer read to its `Content-Length`, its body copied behind a fixed head;
//! - that answer sent in the same turn as the read of the client's next request (the gateway's
//!   "send behind the next read").
//!
//! No JSON validation, no header handling, no timers: so it is the floor for `no-op` and below
//! the floor for `json`. Not part of the gateway, and not a proxy anyone should run: one
//! request at a time per connection, GET only, no error answers (a broken peer just closes).
//!
//! It takes the gateway's command line so `loadtest/abcpu` can run it as a build: put it in a
//! directory as `proxy` (with `mock_backend` beside it) and pass that directory.
//!
//! `floor_proxy run -c loadtest/configs/1to1.json [--cores N]` listens on the config's `port`
//! (one pinned thread and `SO_REUSEPORT` listener per core) and forwards every request to the
//! first backend host's `/data`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "floor/common.rs"]
mod common;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt, Splitable};
use monoio::net::{TcpListener, TcpStream};

/// Read into `buf` after what it holds. `None` on EOF or error.
async fn read_more<R: AsyncReadRent>(r: &mut R, mut buf: Vec<u8>) -> Option<Vec<u8>> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(16 * 1024);
    }
    let len = buf.len();
    let (res, b) = r.read(buf.slice_mut(len..)).await;
    match res {
        Ok(n) if n > 0 => Some(b.into_inner()),
        _ => None,
    }
}

async fn serve(client: TcpStream, backend: std::net::SocketAddr, request: &'static [u8]) {
    let _ = client.set_nodelay(true);
    let Ok(upstream) = TcpStream::connect(backend).await else {
        return;
    };
    let _ = upstream.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut br, mut bw) = upstream.into_split();
    let mut cbuf: Vec<u8> = Vec::with_capacity(8192);
    let mut bbuf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut answer: Option<Vec<u8>> = None;
    loop {
        // The client's next request head, read in the same turn as the last answer's send.
        loop {
            if let Some(end) = memchr::memmem::find(&cbuf, b"\r\n\r\n") {
                cbuf.drain(..end + 4);
                break;
            }
            let read = read_more(&mut cr, std::mem::take(&mut cbuf));
            let got = match answer.take() {
                Some(out) => {
                    let ((sent, _), got) = monoio::join!(cw.write_all(out), read);
                    if sent.is_err() {
                        return;
                    }
                    got
                }
                None => read.await,
            };
            let Some(b) = got else {
                return;
            };
            if b.len() > common::MAX_HEAD {
                return;
            }
            cbuf = b;
        }
        // The backend call: the fixed request's send and its answer's read in one turn.
        bbuf.clear();
        let read = read_more(&mut br, std::mem::take(&mut bbuf));
        let ((sent, _), got) = monoio::join!(bw.write_all(request), read);
        if sent.is_err() {
            return;
        }
        let Some(mut b) = got else {
            return;
        };
        let (end, len) = loop {
            if let Some(found) = common::head_end(&b) {
                if b.len() >= found.0 + found.1 {
                    break found;
                }
            }
            if b.len() > common::MAX_ANSWER {
                return;
            }
            match read_more(&mut br, b).await {
                Some(more) => b = more,
                None => return,
            }
        };
        let mut out = Vec::with_capacity(96 + len);
        common::answer(&mut out, &b[end..end + len]);
        answer = Some(out);
        bbuf = b;
    }
}

fn main() {
    let args = common::args();
    // Leaked once: monoio's write takes its buffer by value, and a static one costs nothing.
    let request: &'static [u8] =
        Box::leak(common::backend_request(args.backend).into_boxed_slice());
    let backend = args.backend;
    common::per_core(args.port, args.cores, move |listener| {
        let mut b = io_uring::IoUring::builder();
        b.setup_coop_taskrun().setup_single_issuer();
        let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .uring_builder(b)
            .with_entries(1024)
            .build()
            .expect("an io_uring runtime");
        rt.block_on(async move {
            let listener = TcpListener::from_std(listener).expect("a monoio listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                monoio::spawn(serve(stream, backend, request));
            }
        });
    });
}
