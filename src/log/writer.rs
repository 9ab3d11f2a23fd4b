//! The log writer thread. Every thread that logs owns a bounded channel (registered on first
//! use); the writer drains them all and does the blocking writes. A full channel means the
//! sink is not keeping up: the lines are dropped and counted, and the count is reported by
//! the writer (at most once a second, and at shutdown) instead of stalling an event loop.
// std's Mutex guards the list of new queues: a thread takes it once, on its first line, and
// the writer only to move new queues out (no I/O under it), so it is never held for long.
#![allow(clippy::disallowed_types)]

use super::config::{Format, LogConfig, SyslogTarget};
use super::format::{self, Context, Record, Stamp};
use super::Level;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Messages waiting per thread: an access batch (up to 16 KiB, or one 200 ms tick of lines)
/// or one application line. A core buffers at most about 1 MiB for a stalled output before it
/// drops, and a burst of application lines (backend errors under load) has room.
const QUEUE: usize = 64;

pub enum Msg {
    /// Ready-made access lines for stdout.
    Access(Vec<u8>, u64),
    App(Level, Stamp, String),
}

pub struct Writer {
    pending: Mutex<Vec<Receiver<Msg>>>,
    dropped: AtomicU64,
    stop: AtomicBool,
    done: Mutex<Option<Receiver<()>>>,
}

static WRITER: OnceLock<Writer> = OnceLock::new();

/// A new channel for the calling thread, or None before `start`.
pub fn register() -> Option<SyncSender<Msg>> {
    let w = WRITER.get()?;
    let (tx, rx) = sync_channel(QUEUE);
    if let Ok(mut p) = w.pending.lock() {
        p.push(rx);
    }
    Some(tx)
}

/// Hand `msg` to the writer without ever waiting; a full queue drops it (counted).
pub fn send(tx: &SyncSender<Msg>, msg: Msg) {
    match tx.try_send(msg) {
        Ok(()) => {}
        Err(TrySendError::Full(m)) | Err(TrySendError::Disconnected(m)) => {
            let n = match m {
                Msg::Access(_, n) => n,
                Msg::App(..) => 1,
            };
            if let Some(w) = WRITER.get() {
                w.dropped.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

pub fn start(cfg: LogConfig) -> Result<(), String> {
    let mut sinks = Sinks::open(cfg)?;
    let (done_tx, done_rx) = sync_channel(1);
    let w = Writer {
        pending: Mutex::new(Vec::new()),
        dropped: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        done: Mutex::new(Some(done_rx)),
    };
    if WRITER.set(w).is_err() {
        return Err("the log writer is already running".into());
    }
    std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            if let Some(w) = WRITER.get() {
                run(w, &mut sinks);
            }
            let _ = done_tx.send(());
        })
        .map_err(|e| format!("log writer thread: {e}"))?;
    Ok(())
}

/// Ask the writer to drain, report drops and exit; wait for it at most `limit` (a sink that
/// never drains must not keep the process from exiting).
pub fn shutdown(limit: Duration) {
    let Some(w) = WRITER.get() else { return };
    w.stop.store(true, Ordering::Relaxed);
    let rx = w.done.lock().ok().and_then(|mut d| d.take());
    if let Some(rx) = rx {
        let _ = rx.recv_timeout(limit);
    }
}

fn run(w: &Writer, sinks: &mut Sinks) {
    let mut queues: Vec<Receiver<Msg>> = Vec::new();
    let mut reported = 0u64;
    let mut last_report = Instant::now();
    loop {
        let stopping = w.stop.load(Ordering::Relaxed);
        if let Ok(mut p) = w.pending.lock() {
            queues.append(&mut p);
        }
        let mut got = false;
        queues.retain(|rx| loop {
            match rx.try_recv() {
                Ok(m) => {
                    got = true;
                    sinks.write(m);
                }
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        });
        sinks.flush();
        let dropped = w.dropped.load(Ordering::Relaxed);
        if dropped > reported && (stopping || last_report.elapsed() >= Duration::from_secs(1)) {
            let msg = format!(
                "[SERVICE: logging] {} log lines dropped ({dropped} since start): the log output \
                 was not keeping up",
                dropped - reported
            );
            sinks.write(Msg::App(Level::Warning, Stamp::now(), msg));
            sinks.flush();
            reported = dropped;
            last_report = Instant::now();
        }
        if stopping && !got {
            return;
        }
        if !got {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

enum Syslog {
    Unix(std::os::unix::net::UnixDatagram),
    Udp(std::net::UdpSocket),
}

struct Sinks {
    cfg: LogConfig,
    stdout: std::io::BufWriter<std::io::Stdout>,
    syslog: Option<(Syslog, u8)>,
    gelf: Option<super::gelf::Gelf>,
    host: String,
    program: String,
    seq: u64,
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(buf.get(..end).unwrap_or(&[])).into_owned()
}

fn open_syslog(t: &SyslogTarget) -> Result<Syslog, String> {
    use std::os::unix::net::UnixDatagram;
    match t {
        SyslogTarget::Local => {
            for p in ["/dev/log", "/var/run/syslog", "/var/run/log"] {
                if let Ok(s) = UnixDatagram::unbound() {
                    if s.connect(p).is_ok() {
                        return Ok(Syslog::Unix(s));
                    }
                }
            }
            Err("telemetry/logging.syslog: no local syslog socket (/dev/log) answers".into())
        }
        SyslogTarget::Unix(p) => {
            let s = UnixDatagram::unbound().map_err(|e| format!("syslog socket: {e}"))?;
            s.connect(p)
                .map_err(|e| format!("syslog socket {}: {e}", p.display()))?;
            Ok(Syslog::Unix(s))
        }
        SyslogTarget::Udp(a) => {
            let s = std::net::UdpSocket::bind("0.0.0.0:0")
                .or_else(|_| std::net::UdpSocket::bind("[::]:0"))
                .map_err(|e| format!("syslog socket: {e}"))?;
            s.connect(a)
                .map_err(|e| format!("syslog address {a}: {e}"))?;
            Ok(Syslog::Udp(s))
        }
    }
}

fn severity(l: Level) -> u8 {
    match l {
        Level::Critical => 2,
        Level::Error => 3,
        Level::Warning => 4,
        Level::Info => 6,
        Level::Debug => 7,
    }
}

impl Sinks {
    fn open(cfg: LogConfig) -> Result<Sinks, String> {
        let syslog = match &cfg.syslog {
            Some((t, fac)) => Some((open_syslog(t)?, *fac)),
            None => None,
        };
        let gelf = match &cfg.gelf {
            Some((addr, tcp)) => Some(super::gelf::Gelf::open(addr, *tcp)?),
            None => None,
        };
        let program = std::env::args()
            .next()
            .and_then(|a| {
                std::path::Path::new(&a)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "proxy".into());
        Ok(Sinks {
            cfg,
            stdout: std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout()),
            syslog,
            gelf,
            host: hostname(),
            program,
            seq: 0,
        })
    }

    fn line(&self, r: &Record<'_>) -> String {
        let module = if self.cfg.prefix.is_empty() {
            "KRAKEND"
        } else {
            &self.cfg.prefix
        };
        let c = Context {
            module,
            program: &self.program,
            pid: std::process::id(),
            host: &self.host,
        };
        match &self.cfg.format {
            Format::Plain => format!(
                "{} {} {}: {}",
                format::go_time("2006/01/02 15:04:05", r.at),
                self.cfg.prefix,
                r.level.name(),
                r.msg
            ),
            Format::Default => format::default_line(&self.cfg.prefix, r),
            Format::Logstash => format::logstash_line(r, &c),
            Format::Custom(p) => format::render_pattern(p, r, &c),
        }
    }

    fn write(&mut self, m: Msg) {
        match m {
            Msg::Access(bytes, _) => {
                let _ = self.stdout.write_all(&bytes);
            }
            Msg::App(level, at, msg) => {
                self.seq += 1;
                let r = Record {
                    level,
                    at,
                    msg: &msg,
                    id: self.seq,
                };
                let text = self.line(&r);
                if self.cfg.stdout {
                    let _ = writeln!(self.stdout, "{text}");
                }
                if self.cfg.stderr {
                    let _ = writeln!(std::io::stderr().lock(), "{text}");
                }
                if let Some(g) = &mut self.gelf {
                    // The line as formatted for the other outputs, as krakend-gelf sends it;
                    // the level is the line's (go-gelf always says 6, informational).
                    let at_secs = at.secs as f64 + f64::from(at.micros) / 1e6;
                    let m = super::gelf::message(
                        &self.host,
                        &self.program,
                        &text,
                        severity(level),
                        at_secs,
                    );
                    g.send(&m);
                }
                if let Some((sock, fac)) = &self.syslog {
                    // KrakenD: go-logging's syslog backend sends the formatted line under the
                    // prefix as tag, framed as Go's log/syslog does for the local socket:
                    // `<PRI>Jan _2 15:04:05 tag[pid]: msg` (RFC 3164 without the hostname).
                    let pri = u16::from(*fac) * 8 + u16::from(severity(level));
                    let tag = if self.cfg.prefix.is_empty() {
                        &self.program
                    } else {
                        &self.cfg.prefix
                    };
                    let frame = format!(
                        "<{pri}>{} {tag}[{}]: {text}\n",
                        format::go_time("Jan _2 15:04:05", at),
                        std::process::id()
                    );
                    let _ = match sock {
                        Syslog::Unix(s) => s.send(frame.as_bytes()),
                        Syslog::Udp(s) => s.send(frame.as_bytes()),
                    };
                }
            }
        }
    }

    fn flush(&mut self) {
        let _ = self.stdout.flush();
    }
}
