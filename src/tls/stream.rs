//! [`TlsStream`]: rustls's sans-io connection driven over a monoio `TcpStream` with owned
//! buffers, on the connection's own core. Ciphertext is read into one owned buffer lent to
//! io_uring and fed to `read_tls`; records to send are collected with `write_tls` into one
//! owned buffer and written whole. Plaintext is copied once, from rustls's buffer into the
//! caller's.
//!
//! Memory is bounded: the read buffer is one TLS record's worth ([`READ_CHUNK`]); rustls keeps
//! at most one record being reassembled (it refuses records over 16 KiB + 256) and at most its
//! buffer limit of plaintext.

use bytes::{Buf, BytesMut};
use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use monoio::BufResult;
use rustls::{ConnectionCommon, SideData};
use std::io::{self, BufRead, Write};
use std::ops::{Deref, DerefMut};
use std::time::Instant;

/// One TLS record plus header: what a read asks the kernel for while data keeps coming.
pub const READ_CHUNK: usize = 16 * 1024 + 5 + 256;
/// What a read asks for when the last one did not fill its buffer (between requests, most
/// of the time): a connection waiting for its next request pins 4 KiB, not 16, and rustls
/// reassembles a record that takes several reads.
pub const READ_SMALL: usize = 4096;

/// A TLS connection over TCP. `C` is `rustls::ServerConnection` or `rustls::ClientConnection`.
pub struct TlsStream<C> {
    tcp: TcpStream,
    conn: C,
    /// Ciphertext read but not yet taken by rustls.
    rbuf: BytesMut,
    /// Records to send (reused between writes).
    wbuf: Vec<u8>,
    eof: bool,
    /// Our close_notify is on its way: an alert we send is expected.
    closing: bool,
    /// The size of the next socket read ([`READ_SMALL`] or [`READ_CHUNK`]).
    next_read: usize,
}

impl<C, SD> TlsStream<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<SD>>,
    SD: SideData,
{
    /// Wrap `tcp`; `first` are bytes already read from it (the server peeks at them).
    pub fn new(tcp: TcpStream, conn: C, first: BytesMut) -> TlsStream<C> {
        TlsStream {
            tcp,
            conn,
            rbuf: first,
            wbuf: Vec::new(),
            eof: false,
            closing: false,
            next_read: READ_SMALL,
        }
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    pub fn conn(&self) -> &C {
        &self.conn
    }

    /// Drive the handshake to its end, or fail by `deadline`. A refused handshake sends its
    /// alert before the error comes back.
    pub async fn handshake(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        let work = async {
            while self.conn.is_handshaking() {
                self.send_pending().await?;
                if !self.conn.is_handshaking() {
                    break;
                }
                if self.eof {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed during the TLS handshake",
                    ));
                }
                self.read_records().await?;
            }
            // The last flight (server Finished, a client's Finished, tickets).
            self.send_pending().await
        };
        match deadline {
            None => work.await,
            Some(d) => match crate::runtime::timer::timeout_at(d, work).await {
                Ok(r) => r,
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "TLS handshake timed out",
                )),
            },
        }
    }

    /// Whether decrypted bytes, or ciphertext not yet decrypted, are waiting: a wait for the
    /// socket to become readable would then wait for nothing.
    pub fn buffered(&mut self) -> bool {
        !self.rbuf.is_empty() || self.conn.reader().fill_buf().is_ok_and(|b| !b.is_empty())
    }

    /// Read from the socket once (unless bytes are left over) and hand rustls what it takes.
    async fn read_records(&mut self) -> io::Result<()> {
        if self.rbuf.is_empty() && !self.eof {
            let mut b = std::mem::take(&mut self.rbuf);
            b.reserve(self.next_read);
            let cap = b.capacity();
            let (res, b) = self.tcp.read(b).await;
            self.rbuf = b;
            let n = res?;
            if n == 0 {
                self.eof = true;
            }
            self.next_read = if n == cap { READ_CHUNK } else { READ_SMALL };
        }
        self.feed().await
    }

    /// Give buffered ciphertext to rustls and process it; a protocol error sends its alert.
    async fn feed(&mut self) -> io::Result<()> {
        if self.eof && self.rbuf.is_empty() {
            // rustls learns of the close from a zero-length read.
            let _ = self.conn.read_tls(&mut io::empty());
        }
        while !self.rbuf.is_empty() && self.conn.wants_read() {
            let n = self.conn.read_tls(&mut &self.rbuf[..])?;
            self.rbuf.advance(n);
            if let Err(e) = self.conn.process_new_packets() {
                let _ = self.send_pending().await;
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            if n == 0 {
                break;
            }
        }
        // What processing queued (alerts, a KeyUpdate answer, tickets) goes out now: the next
        // step may be a read that waits for the peer, who may be waiting for it.
        self.send_pending().await?;
        if self.rbuf.is_empty() {
            // Give the record-sized buffer back: an idle connection keeps none.
            self.rbuf = BytesMut::new();
            if let Err(e) = self.conn.process_new_packets() {
                let _ = self.send_pending().await;
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
        Ok(())
    }

    /// Write every record rustls has queued (handshake flights, alerts, data, tickets).
    async fn send_pending(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            let mut w = std::mem::take(&mut self.wbuf);
            w.clear();
            while self.conn.wants_write() {
                self.conn.write_tls(&mut w)?;
            }
            let refused = !self.closing && !self.conn.is_handshaking() && has_alert(&w);
            let (res, w) = self.tcp.write_all(w).await;
            self.wbuf = w;
            res?;
            if refused {
                // After the handshake the only alert rustls sends of its own accord (fatal
                // ones come back as errors) is the `no_renegotiation` warning: the peer asked
                // for a TLS 1.2 renegotiation. Close rather than leave it waiting.
                let peer = self
                    .tcp
                    .peer_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                crate::warn!("TLS: renegotiation refused with {peer}; connection closed");
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "TLS renegotiation refused",
                ));
            }
        }
        Ok(())
    }

    /// Copy decrypted bytes into `dst` (at most `cap` bytes), reading records as needed.
    /// Ok(0) is the end of the stream (close_notify, or TCP closed).
    async fn read_plain(&mut self, dst: *mut u8, cap: usize) -> io::Result<usize> {
        if cap == 0 {
            return Ok(0);
        }
        loop {
            match self.conn.reader().fill_buf() {
                Ok(avail) => {
                    let n = avail.len().min(cap);
                    // SAFETY: `dst` points at `cap` writable bytes of the caller's buffer (an
                    // `IoBufMut`'s spare capacity, owned by this call), `avail` at `n <= cap`
                    // initialised bytes inside rustls; the two cannot overlap.
                    unsafe { std::ptr::copy_nonoverlapping(avail.as_ptr(), dst, n) };
                    self.conn.reader().consume(n);
                    if n > 0 {
                        // Reading may have queued records to send (a KeyUpdate answer).
                        self.send_pending().await?;
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // Closed without close_notify: the HTTP framing tells a cut body apart.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if self.eof && self.rbuf.is_empty() {
                return Ok(0);
            }
            self.read_records().await?;
        }
    }

    /// Encrypt `data` (rustls may take part of it: its buffer is bounded) and send it.
    async fn write_plain(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.conn.writer().write(data)?;
        self.send_pending().await?;
        Ok(n)
    }
}

impl<C, SD> AsyncReadRent for TlsStream<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<SD>>,
    SD: SideData,
{
    async fn read<T: IoBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        let (ptr, cap) = (buf.write_ptr(), buf.bytes_total());
        let res = self.read_plain(ptr, cap).await;
        if let Ok(n) = res {
            // SAFETY: `read_plain` initialised the first `n` bytes at `write_ptr`.
            unsafe { buf.set_init(n) };
        }
        (res, buf)
    }

    async fn readv<T: IoVecBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        // Only the first iovec is filled: callers read again for more (a short read).
        let (ptr, cap) = {
            let iov = buf.write_iovec_ptr();
            if buf.write_iovec_len() == 0 || iov.is_null() {
                return (Ok(0), buf);
            }
            // SAFETY: the pointer is valid for `write_iovec_len()` (>= 1) iovecs.
            let first = unsafe { *iov };
            (first.iov_base.cast::<u8>(), first.iov_len)
        };
        let res = self.read_plain(ptr, cap).await;
        if let Ok(n) = res {
            // SAFETY: the first `n` bytes were initialised by `read_plain`.
            unsafe { buf.set_init(n) };
        }
        (res, buf)
    }
}

impl<C, SD> AsyncWriteRent for TlsStream<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<SD>>,
    SD: SideData,
{
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        // SAFETY: `read_ptr` points at `bytes_init` initialised bytes owned by `buf`, which
        // this call holds until it returns.
        let data = unsafe { std::slice::from_raw_parts(buf.read_ptr(), buf.bytes_init()) };
        let res = self.write_plain(data).await;
        (res, buf)
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        let mut total = 0;
        let (ptr, len) = (buf.read_iovec_ptr(), buf.read_iovec_len());
        for i in 0..len {
            // SAFETY: the pointer is valid for `len` iovecs, each describing initialised
            // bytes owned by `buf`, held by this call until it returns.
            let data = unsafe {
                let iov = *ptr.add(i);
                std::slice::from_raw_parts(iov.iov_base.cast::<u8>(), iov.iov_len)
            };
            match self.conn.writer().write(data) {
                Ok(n) => {
                    total += n;
                    if n < data.len() {
                        break;
                    }
                }
                Err(e) => return (Err(e), buf),
            }
        }
        let res = self.send_pending().await.map(|_| total);
        (res, buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.send_pending().await?;
        self.tcp.flush().await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.closing = true;
        self.conn.send_close_notify();
        let _ = self.send_pending().await;
        self.tcp.shutdown().await
    }
}

/// Whether whole TLS records in `w` include an alert (content type 21). Record headers stay in
/// clear in TLS 1.2 (in TLS 1.3 an alert travels as application data and is not seen here,
/// but TLS 1.3 has no renegotiation to refuse).
fn has_alert(mut w: &[u8]) -> bool {
    while let (Some(&kind), Some(len)) = (w.first(), w.get(3..5)) {
        if kind == 21 {
            return true;
        }
        let len = <[u8; 2]>::try_from(len).map_or(0, |b| usize::from(u16::from_be_bytes(b)));
        w = w.get(5 + len..).unwrap_or(&[]);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::has_alert;

    #[test]
    fn alerts_are_found_among_whole_records() {
        let data = [23u8, 3, 3, 0, 2, 0xaa, 0xbb];
        let alert = [21u8, 3, 3, 0, 2, 1, 100];
        assert!(!has_alert(&data));
        assert!(has_alert(&[&data[..], &alert[..]].concat()));
        assert!(!has_alert(&[]));
    }
}
