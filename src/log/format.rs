//! Line shapes: KrakenD's application-log formats (`default`, `logstash`, `custom`), gin's
//! access-log line and our JSON access line. Pure functions, so they are tested in isolation.

use super::Level;
use std::fmt::Write as _;

/// Broken-down UTC time: (year, month, day, hour, minute, second).
pub fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
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

/// A wall-clock instant as (seconds, microseconds) since the epoch.
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    pub secs: u64,
    pub micros: u32,
}

impl Stamp {
    pub fn now() -> Stamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Stamp {
            secs: d.as_secs(),
            micros: d.subsec_micros(),
        }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Render `t` with a Go time layout (`2006-01-02T15:04:05.000Z07:00` and friends). The
/// common reference tokens are understood; anything else is copied as is. Times are UTC.
pub fn go_time(layout: &str, t: Stamp) -> String {
    let (y, mo, d, h, mi, s) = civil(t.secs);
    let mut out = String::with_capacity(layout.len() + 8);
    let mut rest = layout;
    // Longest tokens first so `2006` wins over `2` and `.000000` over `.000`.
    const TOKENS: [&str; 17] = [
        "2006", "Z07:00", "-07:00", "-0700", "Jan", ".000000", ".000", "01", "02", "_2", "15",
        "03", "04", "05", "PM", "MST", "1",
    ];
    'outer: while !rest.is_empty() {
        for tok in TOKENS {
            if let Some(after) = rest.strip_prefix(tok) {
                let _ = match tok {
                    "2006" => write!(out, "{y:04}"),
                    "Z07:00" => write!(out, "Z"),
                    "-07:00" => write!(out, "+00:00"),
                    "-0700" => write!(out, "+0000"),
                    "Jan" => write!(out, "{}", MONTHS.get(mo as usize - 1).unwrap_or(&"Jan")),
                    ".000000" => write!(out, ".{:06}", t.micros),
                    ".000" => write!(out, ".{:03}", t.micros / 1000),
                    "01" => write!(out, "{mo:02}"),
                    "02" => write!(out, "{d:02}"),
                    "_2" => write!(out, "{d:>2}"),
                    "15" => write!(out, "{h:02}"),
                    "03" => write!(out, "{:02}", if h % 12 == 0 { 12 } else { h % 12 }),
                    "04" => write!(out, "{mi:02}"),
                    "05" => write!(out, "{s:02}"),
                    "PM" => write!(out, "{}", if h < 12 { "AM" } else { "PM" }),
                    "MST" => write!(out, "UTC"),
                    _ => write!(out, "{mo}"),
                };
                rest = after;
                continue 'outer;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

/// One piece of a `custom_format` (go-logging's `%{verb}` / `%{verb:arg}` syntax).
#[derive(Clone, Debug, PartialEq)]
pub enum Piece {
    Text(String),
    Time(String),
    Level(Option<usize>),
    Message,
    Module,
    Pid,
    Id,
    Program,
    Color,
    ColorReset,
}

/// Parse a go-logging pattern; an unknown verb is an error (said at startup, not per line).
pub fn parse_pattern(p: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = p;
    while let Some(at) = rest.find("%{") {
        if at > 0 {
            out.push(Piece::Text(rest.get(..at).unwrap_or("").to_string()));
        }
        let after = rest.get(at + 2..).unwrap_or("");
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `%{{` in `{p}`"))?;
        let spec = after.get(..end).unwrap_or("");
        let (verb, arg) = match spec.split_once(':') {
            Some((v, a)) => (v, Some(a)),
            None => (spec, None),
        };
        out.push(match (verb, arg) {
            ("time", a) => Piece::Time(a.unwrap_or("2006-01-02T15:04:05.000Z07:00").to_string()),
            ("level", None) => Piece::Level(None),
            ("level", Some(a)) => {
                let w = a
                    .strip_prefix('.')
                    .and_then(|a| a.strip_suffix('s'))
                    .and_then(|n| n.parse().ok());
                match w {
                    Some(w) => Piece::Level(Some(w)),
                    None if a == "s" => Piece::Level(None),
                    None => return Err(format!("`%{{level:{a}}}`: only `.Ns` is supported")),
                }
            }
            ("message", _) => Piece::Message,
            ("module", _) => Piece::Module,
            ("pid", _) => Piece::Pid,
            ("id", _) => Piece::Id,
            ("program", _) => Piece::Program,
            ("color", Some("reset")) => Piece::ColorReset,
            ("color", _) => Piece::Color,
            _ => return Err(format!("unknown verb `%{{{spec}}}` in `{p}`")),
        });
        rest = after.get(end + 1..).unwrap_or("");
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_string()));
    }
    Ok(out)
}

/// What one application line carries.
pub struct Record<'a> {
    pub level: Level,
    pub at: Stamp,
    pub msg: &'a str,
    pub id: u64,
}

pub struct Context<'a> {
    pub module: &'a str,
    pub program: &'a str,
    pub pid: u32,
    pub host: &'a str,
}

fn color(level: Level) -> &'static str {
    match level {
        Level::Critical => "\x1b[35m",
        Level::Error => "\x1b[31m",
        Level::Warning => "\x1b[33m",
        Level::Info => "\x1b[32m",
        Level::Debug => "\x1b[36m",
    }
}

pub fn render_pattern(pieces: &[Piece], r: &Record<'_>, c: &Context<'_>) -> String {
    let mut out = String::with_capacity(r.msg.len() + 48);
    for p in pieces {
        let _ = match p {
            Piece::Text(t) => write!(out, "{t}"),
            Piece::Time(layout) => write!(out, "{}", go_time(layout, r.at)),
            Piece::Level(None) => write!(out, "{}", r.level.name()),
            Piece::Level(Some(w)) => {
                let name = r.level.name();
                write!(out, "{}", name.get(..(*w).min(name.len())).unwrap_or(name))
            }
            Piece::Message => write!(out, "{}", r.msg),
            Piece::Module => write!(out, "{}", c.module),
            Piece::Pid => write!(out, "{}", c.pid),
            Piece::Id => write!(out, "{:04x}", r.id),
            Piece::Program => write!(out, "{}", c.program),
            Piece::Color => write!(out, "{}", color(r.level)),
            Piece::ColorReset => write!(out, "\x1b[0m"),
        };
    }
    out
}

/// KrakenD's `default` format (krakend-gologging's pattern, colours left out because the
/// backend is not a terminal): `[KRAKEND] 2006/01/02 - 15:04:05.000 ▶ INFO message`.
pub fn default_line(prefix: &str, r: &Record<'_>) -> String {
    let name = r.level.name();
    // KrakenD: `%{level:.6s}` cuts WARNING and CRITICAL to WARNIN and CRITIC.
    let level = name.get(..6.min(name.len())).unwrap_or(name);
    let time = go_time("2006/01/02 - 15:04:05.000", r.at);
    if prefix.is_empty() {
        format!("{time} ▶ {level} {}", r.msg)
    } else {
        format!("{prefix} {time} ▶ {level} {}", r.msg)
    }
}

/// krakend-logstash's record: one JSON object per line, keys sorted as Go's encoder does.
pub fn logstash_line(r: &Record<'_>, c: &Context<'_>) -> String {
    format!(
        "{{\"@timestamp\":{},\"@version\":1,\"host\":{},\"level\":{},\"message\":{},\"module\":{}}}",
        json_str(&go_time("2006-01-02T15:04:05.000000-07:00", r.at)),
        json_str(c.host),
        json_str(r.level.name()),
        json_str(r.msg),
        json_str(c.module),
    )
}

pub fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// gin's LoggerWithFormatter default, without colours (the output is not a terminal):
/// `[GIN] 2006/01/02 - 15:04:05 | 200 |     1.234ms |       127.0.0.1 | GET      "/path"`.
pub fn gin_line(
    out: &mut Vec<u8>,
    at: Stamp,
    status: u16,
    elapsed: std::time::Duration,
    client: &std::net::IpAddr,
    method: &[u8],
    path: &[u8],
) {
    use std::io::Write as _;
    let _ = write!(
        out,
        "[GIN] {} | {status:>3} | {:>13} | {:>15} | {:<7} \"",
        go_time("2006/01/02 - 15:04:05", at),
        format!("{elapsed:?}"),
        client.to_string(),
        String::from_utf8_lossy(method),
    );
    // Go's %#v quoting: backslash, quote and control bytes escaped.
    for &b in path {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..=0x1f | 0x7f => {
                let _ = write!(out, "\\x{b:02x}");
            }
            _ => out.push(b),
        }
    }
    out.extend_from_slice(b"\"\n");
}

/// Our JSON access line (`telemetry/logging.access_log_format: "json"`, beyond CE).
pub fn json_access_line(
    out: &mut Vec<u8>,
    at: Stamp,
    status: u16,
    elapsed: std::time::Duration,
    client: &std::net::IpAddr,
    method: &[u8],
    path: &[u8],
) {
    use std::io::Write as _;
    let _ = writeln!(
        out,
        "{{\"time\":{},\"status\":{status},\"latency_seconds\":{},\"client_ip\":\"{client}\",\"method\":{},\"path\":{}}}",
        json_str(&go_time("2006-01-02T15:04:05.000000Z07:00", at)),
        elapsed.as_secs_f64(),
        json_str(&String::from_utf8_lossy(method)),
        json_str(&String::from_utf8_lossy(path)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Stamp = Stamp {
        secs: 1_795_676_400,
        micros: 123_456,
    };

    #[test]
    fn civil_date_matches_known_timestamps() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(1_795_676_400), (2026, 11, 26, 7, 0, 0));
        assert_eq!(civil(1_709_210_096), (2024, 2, 29, 12, 34, 56));
    }

    #[test]
    fn go_layouts_render_the_reference_tokens() {
        assert_eq!(
            go_time("2006/01/02 - 15:04:05.000", T),
            "2026/11/26 - 07:00:00.123"
        );
        assert_eq!(
            go_time("2006-01-02T15:04:05.000000-07:00", T),
            "2026-11-26T07:00:00.123456+00:00"
        );
        assert_eq!(go_time("Jan _2 15:04:05", T), "Nov 26 07:00:00");
    }

    #[test]
    fn custom_patterns_render_each_verb_and_reject_unknown_ones() {
        let p = parse_pattern("%{time:2006} %{level:.4s} <%{module}> %{message}!").unwrap();
        let r = Record {
            level: Level::Warning,
            at: T,
            msg: "hi",
            id: 1,
        };
        let c = Context {
            module: "KRAKEND",
            program: "proxy",
            pid: 7,
            host: "h",
        };
        assert_eq!(render_pattern(&p, &r, &c), "2026 WARN <KRAKEND> hi!");
        assert!(parse_pattern("%{shortfunc}").is_err());
        assert!(parse_pattern("%{level").is_err());
    }

    #[test]
    fn default_and_logstash_lines_look_like_krakends() {
        let r = Record {
            level: Level::Warning,
            at: T,
            msg: "[SERVICE: Gin] \"x\"",
            id: 1,
        };
        assert_eq!(
            default_line("[KRAKEND]", &r),
            "[KRAKEND] 2026/11/26 - 07:00:00.123 ▶ WARNIN [SERVICE: Gin] \"x\""
        );
        let c = Context {
            module: "KRAKEND",
            program: "proxy",
            pid: 7,
            host: "h",
        };
        let v: serde_json::Value = serde_json::from_str(&logstash_line(&r, &c)).unwrap();
        assert_eq!(v["level"], "WARNING");
        assert_eq!(v["@version"], 1);
        assert_eq!(v["message"], "[SERVICE: Gin] \"x\"");
        assert_eq!(v["@timestamp"], "2026-11-26T07:00:00.123456+00:00");
    }

    #[test]
    fn gin_lines_pad_like_gin_and_quote_the_path() {
        let mut out = Vec::new();
        let ip: std::net::IpAddr = [127, 0, 0, 1].into();
        gin_line(
            &mut out,
            T,
            200,
            std::time::Duration::from_micros(1500),
            &ip,
            b"GET",
            b"/a\"b",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[GIN] 2026/11/26 - 07:00:00 | 200 |         1.5ms |       127.0.0.1 | GET     \"/a\\\"b\"\n"
        );
    }
}
