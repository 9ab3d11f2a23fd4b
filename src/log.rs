//! Application log (levels from `telemetry/logging`) and the access log.
//!
//! The application log is rare (startup, reloads, backend failures) and writes straight to
//! stderr. The access log is on the request path, so each worker appends lines to a
//! thread-local buffer that is flushed when it passes 16 KiB and by the worker's periodic tick,
//! instead of paying a `write` syscall per request.

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

    fn name(self) -> &'static str {
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

/// Write one application log line: `2026/11/26 07:00:00 PROXY INFO: message`.
pub fn log(level: Level, msg: std::fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let ts = timestamp();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{ts} PROXY {}: {msg}", level.name());
}

#[macro_export]
macro_rules! debug { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Debug, format_args!($($t)*)) } }
#[macro_export]
macro_rules! info { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Info, format_args!($($t)*)) } }
#[macro_export]
macro_rules! warn { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Warning, format_args!($($t)*)) } }
#[macro_export]
macro_rules! error { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Error, format_args!($($t)*)) } }

thread_local! {
    static ACCESS_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

const ACCESS_FLUSH_AT: usize = 16 * 1024;

/// Append one access-log line (gin's format:
/// `[GIN] 2026/11/26 - 07:00:00 | 200 |  1.2ms | 127.0.0.1 | GET "/path"`).
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
    ACCESS_BUF.with(|b| {
        let Ok(mut buf) = b.try_borrow_mut() else {
            return;
        };
        let _ = write!(
            buf,
            "[PROXY] {} | {status} | {:>10?} | {client} | {} \"",
            timestamp_gin(),
            elapsed,
            String::from_utf8_lossy(method)
        );
        buf.extend_from_slice(path);
        buf.extend_from_slice(b"\"\n");
        if buf.len() >= ACCESS_FLUSH_AT {
            let _ = std::io::stdout().lock().write_all(&buf);
            buf.clear();
        }
    });
}

/// Flush this thread's access-log buffer (called by the worker tick and at shutdown).
pub fn flush_access() {
    ACCESS_BUF.with(|b| {
        if let Ok(mut buf) = b.try_borrow_mut() {
            if !buf.is_empty() {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&buf);
                let _ = out.flush();
                buf.clear();
            }
        }
    });
}

fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    // Days-to-civil (Howard Hinnant), UTC.
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        (rem % 60) as u32,
    )
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn timestamp() -> String {
    let (y, mo, d, h, mi, s) = civil(now_secs());
    format!("{y:04}/{mo:02}/{d:02} {h:02}:{mi:02}:{s:02}")
}

fn timestamp_gin() -> String {
    let (y, mo, d, h, mi, s) = civil(now_secs());
    format!("{y:04}/{mo:02}/{d:02} - {h:02}:{mi:02}:{s:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_date_matches_known_timestamps() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        // 2026-11-26 07:00:00 UTC
        assert_eq!(civil(1_795_676_400), (2026, 11, 26, 7, 0, 0));
        // leap day 2024-02-29 12:34:56
        assert_eq!(civil(1_709_210_096), (2024, 2, 29, 12, 34, 56));
    }

    #[test]
    fn level_names_parse_case_insensitively() {
        assert_eq!(Level::parse("warning"), Some(Level::Warning));
        assert_eq!(Level::parse("DEBUG"), Some(Level::Debug));
        assert_eq!(Level::parse("verbose"), None);
    }
}
