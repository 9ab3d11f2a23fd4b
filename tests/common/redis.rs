//! A real `redis-server` for a test: started on 127.0.0.1 on a free port, with no persistence
//! (`--save '' --appendonly no`, its directory a fresh temp dir), stopped by PID on drop.
//!
//! When the binary is missing the test is skipped with a message, unless the environment
//! variable `CI` is set: CI installs `redis-server` (`.ci/run`), so there a missing binary is
//! a broken setup and fails the test.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::wait_until;

pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    binary: PathBuf,
}

/// `redis-server` from `REDIS_SERVER` (a path; one that does not exist counts as absent),
/// else from `PATH` or the usual system directories.
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("REDIS_SERVER") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
}

impl RedisServer {
    /// Start one with default settings; `None` (test skipped) only without the binary and CI.
    pub fn start() -> Option<RedisServer> {
        RedisServer::start_with(&[])
    }

    /// Start one with extra `redis-server` arguments, e.g. `["--requirepass", "pw"]`.
    pub fn start_with(extra: &[&str]) -> Option<RedisServer> {
        let Some(binary) = binary() else {
            if std::env::var_os("CI").is_some() {
                panic!("redis-server is not installed, and CI is set: .ci/run must install it");
            }
            // Straight to stderr, past the test harness' capture, so the skip is seen.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: redis-server not found (apt-get install redis-server); this test needs a real Redis"
            );
            return None;
        };
        let dir = std::env::temp_dir().join(format!(
            "proxy-redis-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir for redis-server");
        let mut server = RedisServer {
            child: None,
            port: 0,
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            binary,
        };
        // A free port can be taken between our probe and redis' bind: try a few.
        for _ in 0..5 {
            server.port = free_port();
            if server.launch().is_ok() {
                return Some(server);
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL by PID and reap: Redis vanishes as in a crash, the port closes.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the process keeps its sockets but answers nothing (a "slow" Redis).
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT after [`RedisServer::pause`].
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) on our own child's PID; no memory is involved.
            unsafe {
                libc::kill(pid as libc::pid_t, sig);
            }
        }
    }

    /// Start again on the same port (after [`RedisServer::kill`]), empty.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.launch() {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => panic!("redis-server restart: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn launch(&mut self) -> Result<(), String> {
        let mut cmd = Command::new(&self.binary);
        cmd.args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().map_err(|e| format!("spawn {cmd:?}: {e}"))?;
        let addr = self.address();
        let up = wait_until(Duration::from_secs(5), || {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            answers_ping(&addr)
        });
        match child.try_wait() {
            Ok(Some(status)) => Err(format!("redis-server exited: {status}")),
            _ if !up => {
                let _ = child.kill();
                let _ = child.wait();
                Err("redis-server did not answer within 5 s".into())
            }
            _ => {
                self.child = Some(child);
                Ok(())
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // A paused server must be woken to die cleanly; SIGKILL works regardless.
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Any reply to PING (`+PONG`, or `-NOAUTH` when a password is set) means it is up.
fn answers_ping(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(n) if n > 0)
}
