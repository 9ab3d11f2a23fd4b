//! The floor of an HTTP/1 proxy on io_uring itself, without monoio: `floor_proxy`'s work (one
//! backend keep-alive connection per client, request heads found but not parsed, a fixed `GET`
//! to the backend, its answer copied behind a fixed head) driven by the `io-uring` crate with
//! every option issue 18 named:
//!
//! - registered (fixed) files for both sockets, so no `fget`/`fput` per operation;
//! - one multishot receive per socket, armed once, taking buffers from a provided-buffer ring;
//! - `SINGLE_ISSUER` + `DEFER_TASKRUN`: completions are run only inside our `io_uring_enter`;
//! - every submission of a loop turn carried by one `io_uring_enter`, which also waits.
//!
//! So it is the lowest CPU per request a gateway of ours could reach on this kernel if it
//! replaced monoio with a driver of its own, before doing any gateway work at all. Not part of
//! the gateway: GET only, one request at a time per connection, no error answers (a broken
//! peer just loses its connection pair), no timeouts.
//!
//! Each option can be switched off, to say what it is worth (`loadtest/abcpu ... --b-env`):
//! `FLOOR_URING_SINGLE_SHOT=1` submits one receive per read (still from the buffer ring) as
//! monoio does, `FLOOR_URING_PLAIN_FDS=1` uses the sockets' fds instead of registered files,
//! `FLOOR_URING_COOP=1` sets up the ring with `COOP_TASKRUN` (monoio's setting in the gateway)
//! instead of `DEFER_TASKRUN`.
//!
//! Same command line as the gateway, so `loadtest/abcpu` can run it as a build (put it in a
//! directory as `proxy`, with `mock_backend` beside it): `floor_uring run -c CONFIG [--cores N]`
//! listens on the config's `port` (one pinned thread, ring and `SO_REUSEPORT` listener per
//! core) and forwards to the first backend host's `/data`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "floor/common.rs"]
mod common;

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, IntoRawFd};

const ACCEPT: u64 = 0;
const RECV: u64 = 1;
const SEND: u64 = 2;
const GROUP: u16 = 7;
const BUFS: u16 = 1024;
const BUF_LEN: usize = 4096;
const SLOTS: u32 = 8192;

/// The provided-buffer ring: `BUFS` entries the kernel takes receive buffers from, and the
/// buffers themselves. A used buffer is given back by writing its entry at the tail.
struct BufRing {
    ring: *mut types::BufRingEntry,
    mem: Vec<u8>,
    tail: u16,
}

impl BufRing {
    fn new(ring: &IoUring) -> BufRing {
        let bytes = usize::from(BUFS) * std::mem::size_of::<types::BufRingEntry>();
        // Page-aligned, as the kernel requires; never freed (the ring lives as long as the
        // process).
        let layout = std::alloc::Layout::from_size_align(bytes, 4096).unwrap();
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) } as *mut types::BufRingEntry;
        assert!(!ptr.is_null());
        // SAFETY: `ptr` is page-aligned, `BUFS` entries long, and never freed.
        unsafe {
            ring.submitter()
                .register_buf_ring(ptr as u64, BUFS, GROUP)
                .expect("a provided-buffer ring (kernel 5.19+)");
        }
        let mut br = BufRing {
            ring: ptr,
            mem: vec![0; usize::from(BUFS) * BUF_LEN],
            tail: 0,
        };
        for bid in 0..BUFS {
            br.give_back(bid);
        }
        br
    }

    fn data(&self, bid: u16, len: usize) -> &[u8] {
        let at = usize::from(bid) * BUF_LEN;
        &self.mem[at..at + len]
    }

    fn give_back(&mut self, bid: u16) {
        let addr = self.mem.as_ptr() as u64 + u64::from(bid) * BUF_LEN as u64;
        // SAFETY: the index is masked into the ring's `BUFS` entries; the tail is the first
        // entry's `resv` field, which the kernel reads with acquire ordering.
        unsafe {
            let e = &mut *self.ring.add(usize::from(self.tail & (BUFS - 1)));
            e.set_addr(addr);
            e.set_len(BUF_LEN as u32);
            e.set_bid(bid);
            self.tail = self.tail.wrapping_add(1);
            let tail = types::BufRingEntry::tail(self.ring) as *const std::sync::atomic::AtomicU16;
            (*tail).store(self.tail, std::sync::atomic::Ordering::Release);
        }
    }
}

/// Which of the options above are on (all, unless the environment switches one off).
#[derive(Clone, Copy)]
struct Options {
    multishot: bool,
    fixed: bool,
    defer: bool,
}

impl Options {
    fn from_env() -> Options {
        let off = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0");
        Options {
            multishot: !off("FLOOR_URING_SINGLE_SHOT"),
            fixed: !off("FLOOR_URING_PLAIN_FDS"),
            defer: !off("FLOOR_URING_COOP"),
        }
    }
}

/// A client connection and the backend connection it alone uses.
struct Pair {
    /// Tags this pair's operations: a completion that arrives after the pair closed and its
    /// fd number went to a new connection must not be taken for the new one's.
    gen: u64,
    client: i32,
    backend: i32,
    /// Request heads received and not yet forwarded.
    pending: usize,
    /// A backend call in flight (its request sent or its answer being read).
    calling: bool,
    req_sent: usize,
    cbuf: Vec<u8>,
    bbuf: Vec<u8>,
    out: Vec<u8>,
    out_sent: usize,
}

struct Proxy {
    ring: IoUring,
    bufs: BufRing,
    listener: TcpListener,
    backend: SocketAddr,
    request: Vec<u8>,
    /// By client fd; `owner` maps a backend fd to its client fd.
    pairs: Vec<Option<Box<Pair>>>,
    owner: Vec<i32>,
    next_gen: u64,
    opts: Options,
}

const GEN_BITS: u64 = 24;

/// An operation's tag: the pair's generation, the fd, the kind.
fn ud(kind: u64, fd: i32, gen: u64) -> u64 {
    ((gen & ((1 << GEN_BITS) - 1)) << 40) | (u64::from(fd as u32) << 8) | kind
}

impl Proxy {
    fn push(&mut self, e: squeue::Entry) {
        // SAFETY: what an entry points at outlives its operation: the fixed request lives as
        // long as the proxy, an answer's buffer is not touched until its send completed (a
        // pair closed with a send in flight frees a buffer the kernel only reads from), and
        // receives use the provided-buffer ring.
        unsafe {
            while self.ring.submission().push(&e).is_err() {
                self.ring.submit().expect("io_uring_enter");
            }
        }
    }

    fn recv(&mut self, fd: i32, gen: u64) {
        let e = match (self.opts.multishot, self.opts.fixed) {
            (true, true) => opcode::RecvMulti::new(types::Fixed(fd as u32), GROUP).build(),
            (true, false) => opcode::RecvMulti::new(types::Fd(fd), GROUP).build(),
            (false, true) => opcode::Recv::new(types::Fixed(fd as u32), std::ptr::null_mut(), 0)
                .buf_group(GROUP)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT),
            (false, false) => opcode::Recv::new(types::Fd(fd), std::ptr::null_mut(), 0)
                .buf_group(GROUP)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT),
        };
        self.push(e.user_data(ud(RECV, fd, gen)));
    }

    fn send(&mut self, fd: i32, data: *const u8, len: usize, tag: u64) {
        let e = if self.opts.fixed {
            opcode::Send::new(types::Fixed(fd as u32), data, len as u32).build()
        } else {
            opcode::Send::new(types::Fd(fd), data, len as u32).build()
        };
        self.push(e.user_data(tag));
    }

    fn accept(&mut self) {
        let e = opcode::AcceptMulti::new(types::Fd(self.listener.as_raw_fd()))
            .build()
            .user_data(ud(ACCEPT, 0, 0));
        self.push(e);
    }

    fn send_request(&mut self, cfd: i32) {
        let Some(p) = self.pairs[cfd as usize].as_mut() else {
            return;
        };
        let rest = &self.request[p.req_sent..];
        let (fd, data, len, tag) = (
            p.backend,
            rest.as_ptr(),
            rest.len(),
            ud(SEND, p.backend, p.gen),
        );
        self.send(fd, data, len, tag);
    }

    fn send_answer(&mut self, cfd: i32) {
        let Some(p) = self.pairs[cfd as usize].as_mut() else {
            return;
        };
        let rest = &p.out[p.out_sent..];
        let (data, len, tag) = (rest.as_ptr(), rest.len(), ud(SEND, cfd, p.gen));
        self.send(cfd, data, len, tag);
    }

    fn register(&mut self, fd: i32) {
        if !self.opts.fixed {
            return;
        }
        self.ring
            .submitter()
            .register_files_update(fd as u32, &[fd])
            .expect("a fixed-file slot");
    }

    fn open(&mut self, cfd: i32) {
        let one: libc::c_int = 1;
        // SAFETY: `cfd` was just accepted and is ours; the option value is a live c_int.
        unsafe {
            libc::setsockopt(
                cfd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                &one as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as u32,
            );
        }
        let Ok(up) = TcpStream::connect(self.backend) else {
            // SAFETY: `cfd` is ours and used nowhere else yet.
            unsafe { libc::close(cfd) };
            return;
        };
        let _ = up.set_nodelay(true);
        let bfd = up.into_raw_fd();
        if cfd as u32 >= SLOTS || bfd as u32 >= SLOTS {
            // SAFETY: both fds are ours and used nowhere else yet.
            unsafe {
                libc::close(cfd);
                libc::close(bfd);
            }
            return;
        }
        self.register(cfd);
        self.register(bfd);
        if self.pairs.len() <= cfd as usize {
            self.pairs.resize_with(cfd as usize + 1, || None);
        }
        if self.owner.len() <= bfd as usize {
            self.owner.resize(bfd as usize + 1, -1);
        }
        self.owner[bfd as usize] = cfd;
        let gen = self.next_gen & ((1 << GEN_BITS) - 1);
        self.next_gen += 1;
        self.pairs[cfd as usize] = Some(Box::new(Pair {
            gen,
            client: cfd,
            backend: bfd,
            pending: 0,
            calling: false,
            req_sent: 0,
            cbuf: Vec::with_capacity(1024),
            bbuf: Vec::with_capacity(16 * 1024),
            out: Vec::with_capacity(16 * 1024),
            out_sent: 0,
        }));
        self.recv(cfd, gen);
        self.recv(bfd, gen);
    }

    fn close(&mut self, cfd: i32) {
        let Some(p) = self.pairs.get_mut(cfd as usize).and_then(Option::take) else {
            return;
        };
        self.owner[p.backend as usize] = -1;
        for fd in [p.client, p.backend] {
            // SAFETY: the pair owns `fd`. Shutting it down ends its armed multishot receive
            // (which holds the socket open through the fixed-file table) and tells the peer.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
            if self.opts.fixed {
                let _ = self
                    .ring
                    .submitter()
                    .register_files_update(fd as u32, &[-1]);
            }
            // SAFETY: the pair owned `fd`, and it was just taken out of the table.
            unsafe { libc::close(fd) };
        }
    }

    /// The client fd of the pair `fd` belongs to, and whether `fd` is its backend.
    fn pair_of(&self, fd: i32) -> Option<(i32, bool)> {
        if self
            .pairs
            .get(fd as usize)
            .is_some_and(|p| p.as_ref().is_some_and(|p| p.client == fd))
        {
            return Some((fd, false));
        }
        match self.owner.get(fd as usize) {
            Some(&c) if c >= 0 => Some((c, true)),
            _ => None,
        }
    }

    fn next_call(&mut self, cfd: i32) {
        let Some(p) = self.pairs[cfd as usize].as_mut() else {
            return;
        };
        if p.calling || p.pending == 0 || p.out_sent < p.out.len() {
            return;
        }
        p.pending -= 1;
        p.calling = true;
        p.req_sent = 0;
        p.bbuf.clear();
        self.send_request(cfd);
    }

    fn received(&mut self, cfd: i32, is_backend: bool, bid: u16, len: usize) {
        let data = self.bufs.data(bid, len);
        let Some(p) = self.pairs[cfd as usize].as_mut() else {
            return;
        };
        if is_backend {
            p.bbuf.extend_from_slice(data);
            self.bufs.give_back(bid);
            if p.bbuf.len() > common::MAX_ANSWER {
                self.close(cfd);
                return;
            }
            let Some((end, clen)) = common::head_end(&p.bbuf) else {
                return;
            };
            if p.bbuf.len() < end + clen {
                return;
            }
            p.out_sent = 0;
            common::answer(&mut p.out, &p.bbuf[end..end + clen]);
            p.calling = false;
            self.send_answer(cfd);
        } else {
            p.cbuf.extend_from_slice(data);
            self.bufs.give_back(bid);
            let mut start = 0;
            while let Some(e) = memchr::memmem::find(&p.cbuf[start..], b"\r\n\r\n") {
                p.pending += 1;
                start += e + 4;
            }
            p.cbuf.drain(..start);
            if p.cbuf.len() > common::MAX_HEAD {
                self.close(cfd);
                return;
            }
            self.next_call(cfd);
        }
    }

    fn complete(&mut self, user_data: u64, res: i32, flags: u32) {
        let kind = user_data & 0xff;
        let fd = ((user_data >> 8) & 0xffff_ffff) as i32;
        let gen = user_data >> 40;
        if kind == ACCEPT {
            if res >= 0 {
                self.open(res);
            }
            if !cqueue::more(flags) {
                self.accept();
            }
            return;
        }
        let live = self.pair_of(fd).filter(|&(cfd, _)| {
            self.pairs[cfd as usize]
                .as_ref()
                .is_some_and(|p| p.gen == gen)
        });
        let Some((cfd, is_backend)) = live else {
            // A late completion for a closed pair: give its buffer back.
            if let Some(bid) = cqueue::buffer_select(flags) {
                self.bufs.give_back(bid);
            }
            return;
        };
        if kind == RECV {
            if res == -libc::ENOBUFS {
                self.recv(fd, gen);
                return;
            }
            if res <= 0 {
                if let Some(bid) = cqueue::buffer_select(flags) {
                    self.bufs.give_back(bid);
                }
                self.close(cfd);
                return;
            }
            let bid = cqueue::buffer_select(flags).expect("a selected buffer");
            self.received(cfd, is_backend, bid, res as usize);
            if !cqueue::more(flags) && self.pair_of(fd).is_some() {
                self.recv(fd, gen);
            }
            return;
        }
        // SEND
        if res < 0 {
            self.close(cfd);
            return;
        }
        let Some(p) = self.pairs[cfd as usize].as_mut() else {
            return;
        };
        if is_backend {
            p.req_sent += res as usize;
            if p.req_sent < self.request.len() {
                self.send_request(cfd);
            }
        } else {
            p.out_sent += res as usize;
            if p.out_sent < p.out.len() {
                self.send_answer(cfd);
            } else {
                self.next_call(cfd);
            }
        }
    }

    fn run(&mut self) {
        self.ring
            .submitter()
            .register_files_sparse(SLOTS)
            .expect("a sparse fixed-file table");
        self.accept();
        let mut done: Vec<(u64, i32, u32)> = Vec::with_capacity(1024);
        loop {
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => panic!("io_uring_enter: {e}"),
            }
            done.extend(
                self.ring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            for (u, r, f) in done.drain(..) {
                self.complete(u, r, f);
            }
        }
    }
}

fn main() {
    let args = common::args();
    let request = common::backend_request(args.backend);
    let backend = args.backend;
    let opts = Options::from_env();
    common::per_core(args.port, args.cores, move |listener| {
        let mut b = IoUring::builder();
        b.setup_single_issuer();
        if opts.defer {
            b.setup_defer_taskrun();
        } else {
            b.setup_coop_taskrun();
        }
        let ring = b
            .build(4096)
            .expect("io_uring with SINGLE_ISSUER and DEFER_TASKRUN (kernel 6.1+)");
        let bufs = BufRing::new(&ring);
        let mut proxy = Proxy {
            ring,
            bufs,
            listener,
            backend,
            request: request.clone(),
            pairs: Vec::new(),
            owner: Vec::new(),
            next_gen: 0,
            opts,
        };
        proxy.run();
    });
}
