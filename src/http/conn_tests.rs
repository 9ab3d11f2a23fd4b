//! Unit tests of the connection loop's write limits, over real loopback sockets on an epoll
//! runtime (the writes' semantics do not depend on the driver).
use super::*;
use std::io::Read;

fn runtime() -> monoio::Runtime<monoio::time::TimeDriver<monoio::LegacyDriver>> {
    match monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    }
}

/// A connected pair with small socket buffers (no autotuning), so that how fast the client
/// reads decides how fast the server can write.
fn pair() -> (std::net::TcpStream, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    socket2::SockRef::from(&client)
        .set_recv_buffer_size(32 * 1024)
        .unwrap();
    socket2::SockRef::from(&server)
        .set_send_buffer_size(32 * 1024)
        .unwrap();
    server.set_nonblocking(true).unwrap();
    (client, server)
}

/// Write `len` bytes from `server` under `limit`: (whether it all went, how long it took).
fn write_under(server: std::net::TcpStream, len: usize, limit: WriteLimit) -> (bool, Duration) {
    let t = Instant::now();
    let ok = runtime().block_on(async move {
        let mut s = TcpStream::from_std(server).unwrap();
        timed_write(&mut s, vec![b'x'; len], limit).await.is_some()
    });
    (ok, t.elapsed())
}

/// A client reading 16 KiB every 20 ms until EOF.
fn slow_reader(mut client: std::net::TcpStream) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        let mut total = 0;
        loop {
            match client.read(&mut buf) {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

#[test]
fn a_stall_limit_drops_a_client_that_never_reads() {
    let (client, server) = pair();
    let (ok, took) = write_under(
        server,
        4 << 20,
        WriteLimit::Stall(Duration::from_millis(200)),
    );
    assert!(!ok, "4 MiB went to a client that reads nothing");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    drop(client);
}

#[test]
fn a_stall_limit_lets_a_slow_but_steady_reader_take_longer_than_the_limit() {
    let (client, server) = pair();
    let reader = slow_reader(client);
    let (ok, took) = write_under(
        server,
        1 << 20,
        WriteLimit::Stall(Duration::from_millis(200)),
    );
    assert!(ok, "the write was cut after {took:?}");
    assert!(took > Duration::from_millis(400), "took only {took:?}");
    assert_eq!(reader.join().unwrap(), 1 << 20);
}

#[test]
fn a_total_limit_cuts_the_same_slow_reader() {
    let (client, server) = pair();
    let reader = slow_reader(client);
    let limit = WriteLimit::Until(deadline(Instant::now(), Duration::from_millis(200)));
    let (ok, took) = write_under(server, 1 << 20, limit);
    assert!(!ok);
    assert!(took < Duration::from_secs(1), "took {took:?}");
    let _ = reader.join();
}
