//! Application log (`telemetry/logging`) and the access log.
//!
//! Nothing here blocks the caller: a line is formatted (access lines batched per thread, up
//! to 16 KiB or the worker's periodic tick) and handed to the log writer thread through the
//! calling thread's own bounded queue (`writer.rs`). When the output stalls the queue fills
//! and lines are dropped and counted, never waited for. Before `start` (config loading,
//! `proxy check`), application lines go straight to stderr.

mod config;
mod format;
mod gelf;
mod writer;

pub use config::LogConfig;

use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warning = 2,
    Error = 3,
    Critical = 4,
}

impl Level {
    /// KrakenD's level names (`telemetry/logging.level`), case-insensitive.
    pub fn parse(s: &str) -> Option<Level> {
        match s.to_ascii_uppercase().as_str() {
            "DEBUG" => Some(Level::Debug),
            "INFO" => Some(Level::Info),
            "WARNING" | "WARN" => Some(Level::Warning),
            "ERROR" => Some(Level::Error),
            "CRITICAL" => Some(Level::Critical),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static ACCESS_LOG: AtomicBool = AtomicBool::new(true);
static ACCESS_JSON: AtomicBool = AtomicBool::new(false);

pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 >= LEVEL.load(Ordering::Relaxed)
}

pub fn set_access_log(on: bool) {
    ACCESS_LOG.store(on, Ordering::Relaxed);
}

pub fn access_log_enabled() -> bool {
    ACCESS_LOG.load(Ordering::Relaxed)
}

/// Start the writer thread with `cfg`'s outputs (once per process; a reload changes the
/// level and the access-log switch only).
pub fn start(cfg: LogConfig) -> Result<(), String> {
    set_level(cfg.level);
    ACCESS_JSON.store(cfg.access_json, Ordering::Relaxed);
    writer::start(cfg)
}

/// Flush this thread, then let the writer drain and report drops (bounded wait).
pub fn shutdown() {
    flush_access();
    writer::shutdown(std::time::Duration::from_secs(2));
}

struct Local {
    access: Vec<u8>,
    lines: u64,
    tx: Option<std::sync::mpsc::SyncSender<writer::Msg>>,
}

thread_local! {
    static LOCAL: RefCell<Local> = const { RefCell::new(Local { access: Vec::new(), lines: 0, tx: None }) };
}

fn with_tx(l: &mut Local, msg: writer::Msg) -> Result<(), writer::Msg> {
    if l.tx.is_none() {
        l.tx = writer::register();
    }
    match &l.tx {
        Some(tx) => {
            writer::send(tx, msg);
            Ok(())
        }
        None => Err(msg),
    }
}

/// Log one application line at `level`.
pub fn log(level: Level, msg: std::fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let at = format::Stamp::now();
    let text = msg.to_string();
    let queued = LOCAL.with(|l| match l.try_borrow_mut() {
        Ok(mut l) => with_tx(&mut l, writer::Msg::App(level, at, text)),
        Err(_) => Err(writer::Msg::App(level, at, String::new())),
    });
    if let Err(writer::Msg::App(_, _, text)) = queued {
        // No writer yet: startup, `proxy check`. Nothing is on an event loop then.
        let ts = format::go_time("2006/01/02 15:04:05", at);
        let _ = writeln!(
            std::io::stderr().lock(),
            "{ts} PROXY {}: {text}",
            level.name()
        );
    }
}

#[macro_export]
macro_rules! debug { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Debug, format_args!($($t)*)) } }
#[macro_export]
macro_rules! info { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Info, format_args!($($t)*)) } }
#[macro_export]
macro_rules! warn { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Warning, format_args!($($t)*)) } }
#[macro_export]
macro_rules! error { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Error, format_args!($($t)*)) } }

const ACCESS_FLUSH_AT: usize = 16 * 1024;

/// Append one access-log line: gin's format, or our JSON line on request.
pub fn access(
    status: u16,
    elapsed: std::time::Duration,
    client: &std::net::IpAddr,
    method: &[u8],
    path: &[u8],
) {
    if !access_log_enabled() {
        return;
    }
    let at = format::Stamp::now();
    let full = LOCAL.with(|l| {
        let Ok(mut l) = l.try_borrow_mut() else {
            return false;
        };
        if ACCESS_JSON.load(Ordering::Relaxed) {
            format::json_access_line(&mut l.access, at, status, elapsed, client, method, path);
        } else {
            format::gin_line(&mut l.access, at, status, elapsed, client, method, path);
        }
        l.lines += 1;
        l.access.len() >= ACCESS_FLUSH_AT
    });
    if full {
        flush_access();
    }
}

/// Hand this thread's access lines to the writer (the worker tick, a full batch, shutdown).
pub fn flush_access() {
    LOCAL.with(|l| {
        let Ok(mut l) = l.try_borrow_mut() else {
            return;
        };
        if l.access.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut l.access, Vec::with_capacity(ACCESS_FLUSH_AT + 512));
        let n = std::mem::take(&mut l.lines);
        if let Err(writer::Msg::Access(batch, _)) = with_tx(&mut l, writer::Msg::Access(batch, n)) {
            // No writer (a unit test or a tool): write in place.
            let _ = std::io::stdout().lock().write_all(&batch);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_parse_case_insensitively() {
        assert_eq!(Level::parse("warning"), Some(Level::Warning));
        assert_eq!(Level::parse("DEBUG"), Some(Level::Debug));
        assert_eq!(Level::parse("verbose"), None);
    }
}
