//! `telemetry/logging` (and `telemetry/logstash`) read into the writer's settings.

use super::format::{parse_pattern, Piece};
use super::Level;
use crate::config::types::ExtraConfig;
use serde_json::Value;

#[derive(Clone, Debug)]
pub enum Format {
    /// No `telemetry/logging`: our historical `2006/01/02 15:04:05 PROXY INFO: msg` on stderr.
    Plain,
    Default,
    Logstash,
    Custom(Vec<Piece>),
}

#[derive(Clone, Debug)]
pub enum SyslogTarget {
    /// Go's log/syslog: the first local socket that answers (/dev/log, /var/run/syslog...).
    Local,
    Unix(std::path::PathBuf),
    Udp(String),
}

#[derive(Clone, Debug)]
pub struct LogConfig {
    pub level: Level,
    pub prefix: String,
    pub stdout: bool,
    /// Application lines to stderr: only without the namespace (our default).
    pub stderr: bool,
    pub syslog: Option<(SyslogTarget, u8)>,
    pub format: Format,
    pub access_json: bool,
    /// `telemetry/gelf`: (address, enable_tcp).
    pub gelf: Option<(String, bool)>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: Level::Info,
            prefix: "PROXY".into(),
            stdout: false,
            stderr: true,
            syslog: None,
            format: Format::Plain,
            access_json: false,
            gelf: None,
        }
    }
}

/// `telemetry/gelf`: `address` (required) and `enable_tcp`.
fn gelf(extra: &ExtraConfig) -> Result<Option<(String, bool)>, String> {
    let Some(v) = extra.get("telemetry/gelf") else {
        return Ok(None);
    };
    let m = v.as_object().ok_or("telemetry/gelf: expected an object")?;
    let address = match m.get("address") {
        Some(Value::String(a)) if !a.is_empty() => a.clone(),
        _ => return Err("telemetry/gelf.address: the Graylog `host:port` is required".into()),
    };
    let tcp = match m.get("enable_tcp") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("telemetry/gelf.enable_tcp: expected true or false".into()),
    };
    Ok(Some((address, tcp)))
}

/// Syslog facility names as Go's log/syslog numbers them.
fn facility(name: &str) -> Option<u8> {
    Some(match name.to_ascii_lowercase().as_str() {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    })
}

fn get_str<'a>(m: &'a serde_json::Map<String, Value>, k: &str) -> Result<Option<&'a str>, String> {
    match m.get(k) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("telemetry/logging.{k}: expected a string")),
    }
}

fn get_bool(m: &serde_json::Map<String, Value>, k: &str) -> Result<bool, String> {
    match m.get(k) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("telemetry/logging.{k}: expected true or false")),
    }
}

impl LogConfig {
    /// Read the service `extra_config`. Bad values are startup errors.
    pub fn from_extra(extra: &ExtraConfig) -> Result<LogConfig, String> {
        let gelf = gelf(extra)?;
        let Some(v) = extra.get("telemetry/logging") else {
            return Ok(LogConfig {
                gelf,
                ..LogConfig::default()
            });
        };
        let m = v
            .as_object()
            .ok_or("telemetry/logging: expected an object")?;
        let level = match get_str(m, "level")? {
            Some(l) => Level::parse(l)
                .ok_or_else(|| format!("telemetry/logging.level: unknown level `{l}`"))?,
            None => Level::Info,
        };
        // KrakenD: the namespace's presence switches to the logstash logger (`enabled: false`
        // is the only way to say no).
        let logstash = extra
            .get("telemetry/logstash")
            .is_some_and(|v| v.get("enabled").and_then(Value::as_bool) != Some(false));
        let format = match get_str(m, "format")?.unwrap_or("default") {
            _ if logstash => Format::Logstash,
            "default" | "" => Format::Default,
            "logstash" => Format::Logstash,
            "custom" => {
                let p = get_str(m, "custom_format")?
                    .ok_or("telemetry/logging: `format: custom` needs a `custom_format` pattern")?;
                Format::Custom(parse_pattern(p).map_err(|e| format!("telemetry/logging: {e}"))?)
            }
            other => {
                return Err(format!(
                    "telemetry/logging.format: `{other}` is not default, logstash or custom"
                ))
            }
        };
        let syslog = if get_bool(m, "syslog")? {
            let fac = get_str(m, "syslog_facility")?.unwrap_or("local3");
            let fac = facility(fac).ok_or_else(|| {
                format!("telemetry/logging.syslog_facility: unknown facility `{fac}`")
            })?;
            // Beyond CE: `syslog_address` picks the socket (a path: unix datagram; else UDP).
            let target = match get_str(m, "syslog_address")? {
                None => SyslogTarget::Local,
                Some(a) if a.starts_with('/') => SyslogTarget::Unix(a.into()),
                Some(a) => SyslogTarget::Udp(a.to_string()),
            };
            Some((target, fac))
        } else {
            None
        };
        let access_json = match get_str(m, "access_log_format")? {
            None | Some("gin") => false,
            Some("json") => true,
            Some(o) => {
                return Err(format!(
                    "telemetry/logging.access_log_format: `{o}` is not gin or json"
                ))
            }
        };
        Ok(LogConfig {
            level,
            // KrakenD: krakend-logstash takes the prefix as the record's `module`.
            prefix: get_str(m, "prefix")?.unwrap_or("").to_string(),
            stdout: get_bool(m, "stdout")?,
            stderr: false,
            syslog,
            format,
            access_json,
            gelf,
        })
    }
}
