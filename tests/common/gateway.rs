//! `Gateway`: the `proxy` binary run as a child process on an ephemeral port, with its output
//! drained in background threads (kept for failure messages), reload by SIGHUP, stop by
//! SIGTERM, and killed by PID when dropped. Also `check`, which runs `proxy check`.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long the gateway may take to print its `listening on` line.
const STARTUP: Duration = Duration::from_secs(10);

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_proxy")
}

/// A unique path under the temp dir for a config file (`.json`).
pub fn temp_config_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "proxy-test-{}-{}-{}.json",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        nanos
    ))
}

/// Write `contents` to `path` atomically (temp file + rename), so a reload never reads half.
fn write_atomic(path: &Path, contents: &str) {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, contents).expect("write config");
    std::fs::rename(&tmp, path).expect("rename config");
}

/// A running gateway process.
pub struct Gateway {
    child: Child,
    addr: SocketAddr,
    config_path: PathBuf,
    output: Arc<Mutex<String>>,
}

impl Gateway {
    /// `proxy run -c FILE --cores 1 -p 0` with `config_json`.
    pub fn start(config_json: &str) -> Gateway {
        Gateway::start_with(config_json, &[], &[])
    }

    /// Like `start`, with extra CLI arguments and environment variables.
    pub fn start_with(config_json: &str, args: &[&str], env: &[(&str, &str)]) -> Gateway {
        Gateway::try_start_with(config_json, args, env).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like `start_with`, returning the failure text (exit or timeout, with the output)
    /// instead of panicking.
    pub fn try_start_with(
        config_json: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Gateway, String> {
        let config_path = temp_config_path();
        write_atomic(&config_path, config_json);
        let mut cmd = Command::new(binary());
        cmd.arg("run")
            .arg("-c")
            .arg(&config_path)
            .args(["--cores", "1", "-p", "0"])
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Gateway::spawn(cmd, config_path)
    }

    /// Start `cmd` (which should serve `config_path`) and wait for its `listening on` line.
    /// Exposed so the harness self-test can drive a stand-in process.
    pub fn spawn(mut cmd: Command, config_path: PathBuf) -> Result<Gateway, String> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Start the child with SIGHUP at its default: a test run under `nohup` hands an
        // ignored SIGHUP down, and a shell cannot trap a signal ignored on entry (POSIX), so a
        // stand-in gateway would never see its reload.
        // SAFETY: between fork and exec only `signal`, which is async-signal-safe, runs.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::signal(libc::SIGHUP, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| format!("spawn {cmd:?}: {e}"))?;
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<String>();
        if let Some(out) = child.stdout.take() {
            drain(out, "", Arc::clone(&output), tx.clone());
        }
        if let Some(err) = child.stderr.take() {
            drain(err, "[stderr] ", Arc::clone(&output), tx);
        }
        let deadline = Instant::now() + STARTUP;
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    if let Some(addr) = parse_listening(&line) {
                        return Ok(Gateway {
                            child,
                            addr,
                            config_path,
                            output,
                        });
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().ok();
                    return Err(startup_failure(
                        &mut child,
                        format!("it exited ({status:?})"),
                        &output,
                        &config_path,
                    ));
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(startup_failure(
                    &mut child,
                    format!("it exited ({status})"),
                    &output,
                    &config_path,
                ));
            }
            if Instant::now() >= deadline {
                let why = format!("no `listening on` line within {STARTUP:?}");
                return Err(startup_failure(&mut child, why, &output, &config_path));
            }
        }
    }

    /// The address to connect to (127.0.0.1:PORT).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT{path}`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Everything the process printed so far (stderr lines prefixed `[stderr] `).
    pub fn output(&self) -> String {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// Rewrite the config file and send SIGHUP.
    pub fn reload(&self, new_json: &str) {
        write_atomic(&self.config_path, new_json);
        self.signal(libc::SIGHUP);
    }

    /// Send a signal to the process.
    pub fn signal(&self, sig: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) on our own child's PID; no memory is involved.
        unsafe {
            libc::kill(pid, sig);
        }
    }

    /// Whether the process has exited, without waiting.
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM, wait up to 5 s, then SIGKILL. Returns the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_within(Duration::from_secs(5))
    }

    /// SIGTERM, wait up to `wait`, then SIGKILL.
    pub fn stop_within(&mut self, wait: Duration) -> ExitStatus {
        if let Some(s) = self.try_exit_status() {
            return s;
        }
        self.signal(libc::SIGTERM);
        self.wait_exit(wait).unwrap_or_else(|| {
            let _ = self.child.kill();
            self.child.wait().expect("wait after SIGKILL")
        })
    }

    /// Wait up to `wait` for the process to exit on its own.
    pub fn wait_exit(&mut self, wait: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(s) = self.try_exit_status() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Stop the gateway `pid` when this test process exits. A gateway kept in a `static` (a fixture
/// shared by a file's tests) is never dropped, since Rust runs no destructors for statics: it
/// outlived the test binary, one stray `proxy run` per `cargo test`. The harness ends with
/// `exit`, which runs `atexit` handlers; the gateway is still our unreaped child then, so its
/// pid cannot have been reused.
#[allow(dead_code)] // not every test binary keeps a gateway in a static
pub fn stop_at_exit(pid: u32) {
    static PIDS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
    static REGISTER: std::sync::Once = std::sync::Once::new();
    extern "C" fn kill_all() {
        if let Ok(pids) = PIDS.lock() {
            for &pid in pids.iter() {
                if let Ok(pid) = libc::pid_t::try_from(pid) {
                    // SAFETY: kill has no memory-safety preconditions.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
    }
    if let Ok(mut pids) = PIDS.lock() {
        pids.push(pid);
    }
    // SAFETY: `kill_all` is a plain `extern "C"` function that stays valid for the process.
    REGISTER.call_once(|| unsafe {
        libc::atexit(kill_all);
    });
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if self.try_exit_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.config_path);
    }
}

/// Kill a gateway that failed to start and describe why, with everything it printed.
fn startup_failure(
    child: &mut Child,
    why: String,
    output: &Arc<Mutex<String>>,
    config_path: &Path,
) -> String {
    let _ = child.kill();
    let _ = child.wait();
    // Give the drain threads a moment to collect the last lines.
    thread::sleep(Duration::from_millis(100));
    let _ = std::fs::remove_file(config_path);
    let text = output.lock().map(|o| o.clone()).unwrap_or_default();
    format!("gateway did not start: {why}\n--- output ---\n{text}")
}

/// Read `pipe` line by line into `output`, forwarding each line to `tx` (while anyone listens).
fn drain(
    pipe: impl Read + Send + 'static,
    prefix: &'static str,
    output: Arc<Mutex<String>>,
    tx: mpsc::Sender<String>,
) {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if let Ok(mut o) = output.lock() {
                        o.push_str(prefix);
                        o.push_str(&line);
                    }
                    let _ = tx.send(line.clone());
                }
            }
        }
    });
}

/// The address in a `... listening on <ip>:<port> ...` line, mapped to loopback when the
/// gateway listens on all interfaces.
pub fn parse_listening(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    let token = rest
        .split_whitespace()
        .next()?
        .trim_end_matches([',', ')', ';']);
    let addr: SocketAddr = token.parse().ok()?;
    let ip = if addr.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        addr.ip()
    };
    Some(SocketAddr::new(ip, addr.port()))
}

/// Output of `proxy check`.
#[derive(Clone, Debug)]
pub struct CheckOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The config file that was checked (diagnostics start with it).
    pub path: PathBuf,
}

/// `proxy check -c FILE` on `config_json`: (exit code, stdout, stderr).
pub fn check(config_json: &str) -> (i32, String, String) {
    let out = check_file(config_json, &[]);
    (out.code, out.stdout, out.stderr)
}

/// `proxy check -c FILE [args]`, keeping the file path for assertions.
pub fn check_file(config_json: &str, args: &[&str]) -> CheckOutput {
    check_file_env(config_json, args, &[])
}

/// Like `check_file`, with extra environment variables.
pub fn check_file_env(config_json: &str, args: &[&str], env: &[(&str, &str)]) -> CheckOutput {
    let path = temp_config_path();
    write_atomic(&path, config_json);
    let mut argv = vec!["check", "-c", path.to_str().expect("utf-8 temp path")];
    argv.extend_from_slice(args);
    let out = run_cli_env(&argv, env);
    let _ = std::fs::remove_file(&path);
    CheckOutput {
        code: out.0,
        stdout: out.1,
        stderr: out.2,
        path,
    }
}

/// Run the binary with `args`, killing it after 10 s: (exit code, stdout, stderr). A
/// process killed by a signal reports -1.
pub fn run_cli(args: &[&str]) -> (i32, String, String) {
    run_cli_env(args, &[])
}

/// Like `run_cli`, with extra environment variables.
pub fn run_cli_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut child = Command::new(binary())
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn proxy");
    let mut stdout = child.stdout.take().expect("stdout pipe");
    let mut stderr = child.stderr.take().expect("stderr pipe");
    let out_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break Some(s);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    let code = status.and_then(|s| s.code()).unwrap_or(-1);
    (code, stdout, stderr)
}
