//! A small write sent with one non-blocking `send(2)` before falling back to io_uring.
//!
//! A response or a backend request of a few KiB nearly always fits the socket's send buffer.
//! Through io_uring it still costs an operation (a submission, a completion, a timer entry for
//! its deadline) and, above all, one more wake-up and poll of the whole request task once the
//! completion arrives; a plain `send` finishes in the call and the task goes on to its read.
//! nginx writes the same way. When the buffer is full (`EAGAIN`) or the send is partial, the
//! rest goes through io_uring as before, with its deadline.
use monoio::net::TcpStream;
use std::os::fd::AsRawFd;

/// Send as much of `data` as the socket takes now, without blocking: the bytes sent (0 when it
/// would block or was interrupted), or the socket's error (reset, broken pipe...).
pub fn send_now(stream: &TcpStream, data: &[u8]) -> std::io::Result<usize> {
    if data.is_empty() {
        return Ok(0);
    }
    // SAFETY: `data` is a live slice for the whole call and `send` reads at most `data.len()`
    // bytes of it; the descriptor is the stream's own, open while `stream` is borrowed.
    // MSG_DONTWAIT: never block the core's event loop; MSG_NOSIGNAL: a peer that went away
    // is an EPIPE error here, not a SIGPIPE.
    let n = unsafe {
        libc::send(
            stream.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    match usize::try_from(n) {
        Ok(n) => Ok(n),
        Err(_) => {
            let e = std::io::Error::last_os_error();
            match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            }
        }
    }
}
