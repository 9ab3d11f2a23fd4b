//! Decoding the service level: root keys with KrakenD's defaults, `extra_config` (alias
//! normalisation, support warnings) and the `router` / `telemetry/logging` namespaces.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use super::decode::{child, is_comment, item, Ctx};
use super::json::{Member, Pos, Spanned, Value};
use super::namespaces;
use super::namespaces::Level;
use super::validate::{
    not_built, not_built_warning, sanitize_host, unknown_encoding, OUTPUT_ENCODINGS,
    OUTPUT_NOT_BUILT,
};
use super::{Config, ExtraConfig, RouterConfig, Severity, Span};

/// KrakenD: lura `DefaultTimeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// KrakenD: Go's `http.DefaultMaxHeaderBytes` (1 MiB) applies when the value is 0.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 1 << 20;
/// KrakenD: lura's `DefaultMaxIdleConnsPerHost`.
pub const DEFAULT_MAX_IDLE_PER_HOST: usize = 250;
pub const DEFAULT_PORT: u16 = 8080;
pub const DEFAULT_HEALTH_PATH: &str = "/__health";

/// Every root key KrakenD CE knows (section 1 of the reference), most common first so that
/// typo suggestions prefer them, and our own `max_uri_bytes`.
pub const ROOT_KEYS: &[&str] = &[
    "version",
    "name",
    "port",
    "host",
    "timeout",
    "endpoints",
    "extra_config",
    "cache_ttl",
    "output_encoding",
    "listen_ip",
    "read_timeout",
    "read_header_timeout",
    "write_timeout",
    "idle_timeout",
    "max_header_bytes",
    "max_uri_bytes",
    "use_h2c",
    "tls",
    "disable_rest",
    "debug_endpoint",
    "echo_endpoint",
    "sequential_start",
    "async_agent",
    "plugin",
    "client_tls",
    "allow_insecure_connections",
    "disable_keep_alives",
    "disable_compression",
    "max_idle_connections",
    "max_idle_connections_per_host",
    "idle_connection_timeout",
    "response_header_timeout",
    "expect_continue_timeout",
    "dialer_timeout",
    "dialer_fallback_delay",
    "dialer_keep_alive",
    "dns_cache_ttl",
    "max_shutdown_wait_time",
];

/// Keys of the `router` namespace (lura `engineConfiguration` plus CE and EE additions).
pub const ROUTER_KEYS: &[&str] = &[
    "return_error_msg",
    "disable_health",
    "health_path",
    "disable_access_log",
    "logger_skip_paths",
    "hide_version_header",
    "error_body",
    "auto_options",
    "disable_redirect_trailing_slash",
    "disable_redirect_fixed_path",
    "disable_handle_method_not_allowed",
    "disable_path_decoding",
    "forwarded_by_client_ip",
    "remote_ip_headers",
    "trusted_proxies",
    "remove_extra_slash",
    "max_multipart_memory",
    "app_engine",
    "use_h2c",
    "disable_gzip",
    "max_payload",
    "decompress_gzip",
];

/// A config with every KrakenD default and nothing else.
pub fn default_config(file: &str) -> Config {
    Config {
        file: file.to_string(),
        name: String::new(),
        port: DEFAULT_PORT,
        listen_ip: None,
        host: Vec::new(),
        timeout: DEFAULT_TIMEOUT,
        cache_ttl: Duration::ZERO,
        output_encoding: "json".to_string(),
        read_timeout: None,
        read_header_timeout: None,
        write_timeout: None,
        idle_timeout: None,
        max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
        max_uri_bytes: crate::http::DEFAULT_MAX_TARGET_BYTES,
        debug_endpoint: false,
        echo_endpoint: false,
        disable_rest: false,
        disable_keep_alives: false,
        disable_compression: false,
        max_idle_connections_per_host: DEFAULT_MAX_IDLE_PER_HOST,
        idle_connection_timeout: None,
        response_header_timeout: None,
        dialer_timeout: None,
        dns_cache_ttl: None,
        max_shutdown_wait_time: None,
        router: default_router(),
        log_level: None,
        endpoints: Vec::new(),
        extra_config: ExtraConfig::new(),
        tls: None,
        client_tls: None,
    }
}

/// The router options when the `router` namespace is absent.
pub fn default_router() -> RouterConfig {
    RouterConfig {
        health_path: DEFAULT_HEALTH_PATH.to_string(),
        remote_ip_headers: vec!["X-Forwarded-For".to_string(), "X-Real-IP".to_string()],
        ..RouterConfig::default()
    }
}

/// An optional duration: zero means "not set" for the server/transport timeouts.
fn opt_duration(ctx: &mut Ctx, v: &Spanned, path: &str) -> Option<Duration> {
    ctx.duration(v, path).filter(|d| !d.is_zero())
}

/// A host list, each entry sanitised (errors point at the entry).
pub fn hosts(ctx: &mut Ctx, v: &Spanned, path: &str, sanitize: bool) -> Vec<String> {
    let Some(items) = ctx.array(v, path) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        let p = item(path, i);
        let Some(h) = ctx.string(it, &p) else {
            continue;
        };
        if !sanitize {
            out.push(h);
            continue;
        }
        match sanitize_host(&h) {
            Ok(clean) => out.push(clean),
            Err(e) => ctx.error(it.pos, &p, e),
        }
    }
    out
}

/// Decode the root object. Endpoints are decoded last, since they inherit root values.
pub fn decode_root(ctx: &mut Ctx, root: &Spanned) -> Config {
    let mut cfg = default_config(ctx.file);
    let Some(members) = ctx.object(root, "$") else {
        return cfg;
    };
    let mut version: Option<(i64, &Spanned)> = None;
    let mut endpoints: Option<&Spanned> = None;
    let mut client_tls = None;
    let mut legacy_insecure = false;
    for m in members {
        let p = child("$", &m.key);
        let v = &m.value;
        match m.key.as_str() {
            k if is_comment(k) => {}
            "version" => version = ctx.int(v, &p).map(|n| (n, v)),
            "name" => cfg.name = ctx.string(v, &p).unwrap_or_default(),
            "port" => {
                // KrakenD: port 0 means the default 8080.
                if let Some(n) = ctx.uint::<u16>(v, &p).filter(|n| *n != 0) {
                    cfg.port = n;
                }
            }
            "listen_ip" => cfg.listen_ip = listen_ip(ctx, v, &p),
            "host" => cfg.host = hosts(ctx, v, &p, true),
            "timeout" => {
                if let Some(d) = ctx.duration(v, &p).filter(|d| !d.is_zero()) {
                    cfg.timeout = d;
                }
            }
            "cache_ttl" => cfg.cache_ttl = ctx.duration(v, &p).unwrap_or_default(),
            "output_encoding" => {
                if let Some(s) = ctx.string(v, &p).filter(|s| !s.is_empty()) {
                    if let Some(w) = unknown_encoding(&s, OUTPUT_ENCODINGS) {
                        ctx.warn(v.pos, &p, w);
                    }
                    if let Some(about) = not_built(&s, OUTPUT_NOT_BUILT) {
                        let who = "every endpoint that inherits it";
                        ctx.warn(
                            v.pos,
                            &p,
                            not_built_warning("output_encoding", &s, who, about),
                        );
                    }
                    cfg.output_encoding = s;
                }
            }
            "read_timeout" => cfg.read_timeout = opt_duration(ctx, v, &p),
            "read_header_timeout" => cfg.read_header_timeout = opt_duration(ctx, v, &p),
            "write_timeout" => cfg.write_timeout = opt_duration(ctx, v, &p),
            "idle_timeout" => cfg.idle_timeout = opt_duration(ctx, v, &p),
            "max_header_bytes" => {
                if let Some(n) = ctx.uint::<usize>(v, &p).filter(|n| *n != 0) {
                    cfg.max_header_bytes = n;
                }
            }
            // Not a KrakenD key (KrakenD ignores it): the request-target cap, 0 = the default.
            "max_uri_bytes" => {
                if let Some(n) = ctx.uint::<usize>(v, &p).filter(|n| *n != 0) {
                    cfg.max_uri_bytes = n;
                }
            }
            "debug_endpoint" => cfg.debug_endpoint = ctx.bool(v, &p).unwrap_or_default(),
            "echo_endpoint" => cfg.echo_endpoint = ctx.bool(v, &p).unwrap_or_default(),
            "disable_rest" => cfg.disable_rest = ctx.bool(v, &p).unwrap_or_default(),
            "disable_keep_alives" => {
                cfg.disable_keep_alives = ctx.bool(v, &p).unwrap_or_default();
            }
            "max_idle_connections_per_host" => {
                if let Some(n) = ctx.uint::<usize>(v, &p).filter(|n| *n != 0) {
                    cfg.max_idle_connections_per_host = n;
                }
            }
            "idle_connection_timeout" => cfg.idle_connection_timeout = opt_duration(ctx, v, &p),
            "response_header_timeout" => cfg.response_header_timeout = opt_duration(ctx, v, &p),
            "dialer_timeout" => cfg.dialer_timeout = opt_duration(ctx, v, &p),
            "max_shutdown_wait_time" => cfg.max_shutdown_wait_time = opt_duration(ctx, v, &p),
            "endpoints" => endpoints = Some(v),
            "extra_config" => {
                cfg.extra_config = service_extra(ctx, v, &p, &mut cfg.router, &mut cfg.log_level)
            }
            "tls" => cfg.tls = super::tls::listener(ctx, v, &p),
            "use_h2c" => {
                if ctx.bool(v, &p) == Some(true) {
                    ctx.warn(
                        v.pos,
                        &p,
                        "HTTP/2 cleartext (h2c) is not supported; serving HTTP/1.1 only",
                    );
                }
            }
            "disable_compression" => {
                cfg.disable_compression = ctx.bool(v, &p).unwrap_or_default();
            }
            "sequential_start" => {
                let _ = ctx.bool(v, &p);
            }
            "allow_insecure_connections" => legacy_insecure = ctx.bool(v, &p).unwrap_or_default(),
            "max_idle_connections" => {
                let _ = ctx.uint::<usize>(v, &p);
            }
            "expect_continue_timeout" | "dialer_fallback_delay" | "dialer_keep_alive" => {
                let _ = ctx.duration(v, &p);
            }
            "dns_cache_ttl" => {
                cfg.dns_cache_ttl = opt_duration(ctx, v, &p);
                if cfg
                    .dns_cache_ttl
                    .is_some_and(|d| d < Duration::from_secs(1))
                {
                    ctx.warn(
                        v.pos,
                        &p,
                        "dns_cache_ttl under 1s: names are looked up again every 1s (KrakenD's minimum)",
                    );
                }
            }
            "async_agent" => {
                if ctx.array(v, &p).is_some_and(|a| !a.is_empty()) {
                    ctx.warn(
                        v.pos,
                        &p,
                        "async agents are not supported yet and are ignored",
                    );
                }
            }
            "plugin" => {
                if ctx.object(v, &p).is_some() {
                    ctx.warn(
                        v.pos,
                        &p,
                        "Go plugins cannot be loaded by this gateway and are ignored",
                    );
                }
            }
            "client_tls" => client_tls = Some((v, p)),
            _ => ctx.unknown_key(m, "$", ROOT_KEYS),
        }
    }
    match version {
        Some((3, _)) => {}
        Some((n, v)) => ctx.error(
            v.pos,
            "$.version",
            format!("unsupported version: {n} (want: 3)"),
        ),
        None => {
            // A type error was reported already; absent or null is version 0.
            let given = members
                .iter()
                .find(|m| m.key == "version")
                .is_some_and(|m| m.value.value != Value::Null);
            if !given {
                ctx.error(
                    root.pos,
                    "$.version",
                    "unsupported version: 0 (want: 3); add \"version\": 3",
                );
            }
        }
    }
    if legacy_insecure {
        ctx.warn(
            root.pos,
            "$.allow_insecure_connections",
            "backend TLS certificates are NOT verified (allow_insecure_connections): anyone on \
             the path to a backend can read and change its traffic",
        );
    }
    cfg.client_tls = match client_tls {
        Some((v, p)) => super::tls::client(ctx, v, &p, legacy_insecure),
        // KrakenD: the legacy root key builds a client TLS config too, with its TLS 1.3 default.
        None if legacy_insecure => {
            let mut c = super::tls::client_default(Span::default());
            c.common.min_version = super::tls::TlsVersion::Tls13;
            c.allow_insecure_connections = true;
            Some(c)
        }
        None => None,
    };
    if let Some(c) = cfg
        .client_tls
        .as_ref()
        .filter(|c| c.allow_insecure_connections && !legacy_insecure)
    {
        ctx.warn(
            Pos {
                line: c.common.at.line,
                col: c.common.at.col,
            },
            &c.common.at.path,
            "backend TLS certificates are NOT verified (allow_insecure_connections): anyone on \
             the path to a backend can read and change its traffic",
        );
    }
    if let Some(eps) = endpoints {
        cfg.endpoints = super::endpoint::decode_endpoints(ctx, eps, &cfg);
    }
    cfg
}

fn listen_ip(ctx: &mut Ctx, v: &Spanned, path: &str) -> Option<IpAddr> {
    let s = ctx.string(v, path)?;
    if s.is_empty() {
        return None;
    }
    match s.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            ctx.error(v.pos, path, format!("invalid ip address {s:?}"));
            None
        }
    }
}

/// Decode any `extra_config` object at `level`: comment keys dropped, aliases normalised (with
/// a warning), a warning for each namespace that is not built (the registry's words). Returns
/// the members by short name.
pub fn extra_members<'v>(
    ctx: &mut Ctx,
    v: &'v Spanned,
    path: &str,
    level: Level,
) -> Vec<(String, &'v Member)> {
    let Some(members) = ctx.object(v, path) else {
        return Vec::new();
    };
    let mut out: Vec<(String, &Member)> = Vec::new();
    for m in members.iter().filter(|m| !is_comment(&m.key)) {
        let p = child(path, &m.key);
        let short = namespaces::normalise(&m.key).to_string();
        if short != m.key {
            ctx.warn(
                m.key_pos,
                &p,
                format!(
                    "namespace {:?} is the old name of {short:?}; use {short:?}",
                    m.key
                ),
            );
        }
        if let Some(warning) = namespaces::warning(&short, level) {
            ctx.warn(m.key_pos, &p, warning);
        }
        if let Some(slot) = out.iter_mut().find(|(ns, _)| *ns == short) {
            ctx.warn(
                m.key_pos,
                &p,
                format!(
                    "namespace {short:?} is configured twice (old and new name); the last one wins"
                ),
            );
            slot.1 = m;
        } else {
            out.push((short, m));
        }
    }
    // Schemas and expressions are compiled here too, so a bad one is reported at its own
    // line and column (the plan compiles them again to use them).
    for (ns, m) in &out {
        if namespaces::judge(ns, level).class != namespaces::Class::Implemented {
            continue;
        }
        let p = child(path, &m.key);
        for e in crate::guard::compile_errors(ns, &m.value.to_json()) {
            ctx.error(m.value.pos, &p, e);
        }
    }
    out
}

/// Turn decoded members into the `ExtraConfig` map.
pub fn to_extra(members: &[(String, &Member)]) -> ExtraConfig {
    members
        .iter()
        .map(|(ns, m)| (ns.clone(), m.value.to_json()))
        .collect()
}

fn service_extra(
    ctx: &mut Ctx,
    v: &Spanned,
    path: &str,
    router: &mut RouterConfig,
    log_level: &mut Option<String>,
) -> ExtraConfig {
    let members = extra_members(ctx, v, path, Level::Service);
    for (ns, m) in &members {
        let p = child(path, &m.key);
        match ns.as_str() {
            "router" => *router = router_ns(ctx, &m.value, &p),
            "telemetry/logging" => *log_level = logging_level(ctx, &m.value, &p),
            crate::telemetry::otel::NS => {
                for w in crate::telemetry::otel::warnings(&m.value.to_json()) {
                    ctx.warn(m.key_pos, &p, w);
                }
            }
            _ => {}
        }
    }
    let extra = to_extra(&members);
    // The logging options `run` would refuse (an unknown format or facility, a pattern verb,
    // a gelf block without address) are `check` errors too.
    if let Err(e) = crate::log::LogConfig::from_extra(&extra) {
        let at = members
            .iter()
            .find(|(ns, _)| e.starts_with(ns.as_str()))
            .map(|(_, m)| (m.value.pos, child(path, &m.key)));
        let (pos, p) = at.unwrap_or((v.pos, path.to_string()));
        ctx.error(pos, &p, e);
    }
    extra
}

fn logging_level(ctx: &mut Ctx, v: &Spanned, path: &str) -> Option<String> {
    let members = ctx.object(v, path)?;
    let m = members.iter().find(|m| m.key == "level")?;
    let level = ctx.string(&m.value, &child(path, "level"))?;
    Some(level.to_ascii_uppercase())
}

/// Go's `textproto.CanonicalMIMEHeaderKey` for ASCII header names.
fn canonical_header(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// The `router` namespace as KrakenD applies it.
// KrakenD: lura reads the namespace with encoding/json (strict types). A type error anywhere
// makes `json.Unmarshal` fail, and lura then applies none of the options but the four it reads
// from the partly filled struct outside that check (`engine.go`): disable_access_log,
// disable_path_decoding, disable_health and health_path. It starts all the same, so we do.
fn router_ns(ctx: &mut Ctx, v: &Spanned, path: &str) -> RouterConfig {
    let mut sub = Ctx::new(ctx.file);
    sub.weak = false;
    let r = decode_router(&mut sub, v, path);
    let failed = sub.diags.iter().any(|d| d.severity == Severity::Error);
    for mut d in sub.diags {
        if d.severity == Severity::Error {
            d.severity = Severity::Warning;
            d.message = format!(
                "{}; KrakenD then ignores the router options except disable_access_log, \
                 disable_path_decoding, disable_health and health_path, and so does this gateway",
                d.message
            );
        }
        ctx.diags.push(d);
    }
    if !failed {
        return r;
    }
    RouterConfig {
        disable_access_log: r.disable_access_log,
        disable_path_decoding: r.disable_path_decoding,
        disable_health: r.disable_health,
        health_path: r.health_path,
        ..default_router()
    }
}

fn decode_router(ctx: &mut Ctx, v: &Spanned, path: &str) -> RouterConfig {
    let mut r = default_router();
    // KrakenD: once the router namespace exists, gin takes `remote_ip_headers` from it as is,
    // so leaving it out means no header is trusted for the client IP.
    r.remote_ip_headers = Vec::new();
    let Some(members) = ctx.object(v, path) else {
        return default_router();
    };
    for m in members {
        let p = child(path, &m.key);
        let v = &m.value;
        let flag = |ctx: &mut Ctx| ctx.bool(v, &p).unwrap_or_default();
        match m.key.as_str() {
            k if is_comment(k) => {}
            "return_error_msg" => r.return_error_msg = flag(ctx),
            "disable_health" => r.disable_health = flag(ctx),
            "health_path" => {
                if let Some(s) = ctx.string(v, &p).filter(|s| !s.is_empty()) {
                    r.health_path = s;
                }
            }
            "disable_access_log" => r.disable_access_log = flag(ctx),
            "logger_skip_paths" => r.logger_skip_paths = ctx.strings(v, &p).unwrap_or_default(),
            "hide_version_header" => r.hide_version_header = flag(ctx),
            "error_body" => r.error_body = error_body(ctx, v, &p),
            "auto_options" => r.auto_options = flag(ctx),
            "disable_redirect_trailing_slash" => r.disable_redirect_trailing_slash = flag(ctx),
            "disable_redirect_fixed_path" => r.disable_redirect_fixed_path = flag(ctx),
            "disable_handle_method_not_allowed" => r.disable_handle_method_not_allowed = flag(ctx),
            "disable_path_decoding" => r.disable_path_decoding = flag(ctx),
            "forwarded_by_client_ip" => r.forwarded_by_client_ip = flag(ctx),
            "remote_ip_headers" => {
                r.remote_ip_headers = ctx
                    .strings(v, &p)
                    .unwrap_or_default()
                    .iter()
                    .map(|h| canonical_header(h))
                    .collect();
            }
            "trusted_proxies" => r.trusted_proxies = ctx.strings(v, &p).unwrap_or_default(),
            "remove_extra_slash" | "app_engine" | "use_h2c" | "disable_gzip"
            | "decompress_gzip" => {
                let _ = flag(ctx);
            }
            "max_multipart_memory" | "max_payload" => {
                let _ = ctx.uint::<u64>(v, &p);
            }
            _ => ctx.unknown_key(m, path, ROUTER_KEYS),
        }
    }
    if r.forwarded_by_client_ip && r.remote_ip_headers.is_empty() {
        ctx.warn(
            v.pos,
            path,
            "forwarded_by_client_ip is true but remote_ip_headers is empty, so the client IP \
             always comes from the connection (as in KrakenD)",
        );
    }
    r
}

fn error_body(ctx: &mut Ctx, v: &Spanned, path: &str) -> BTreeMap<String, serde_json::Value> {
    let Some(members) = ctx.object(v, path) else {
        return BTreeMap::new();
    };
    members
        .iter()
        .filter(|m| !is_comment(&m.key))
        .map(|m| (m.key.clone(), m.value.to_json()))
        .collect()
}
