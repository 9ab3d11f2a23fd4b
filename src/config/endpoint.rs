//! Decoding `endpoints[]` and their `backend[]` with inheritance from the root, plus the
//! endpoint-level startup checks (path syntax, methods, backends, url_pattern parameters,
//! duplicate routes).

use super::decode::{child, is_comment, item, Ctx};
use super::json::{Member, Pos, Spanned, Value};
use super::namespaces::Level;
use super::service::{extra_members, hosts, to_extra};
use super::validate::{
    check_endpoint_path, classify_placeholder, endpoint_params, not_built, not_built_warning,
    placeholders, route_shape, unknown_encoding, Placeholder, BACKEND_ENCODINGS, BACKEND_NOT_BUILT,
    ENDPOINT_METHODS, OUTPUT_ENCODINGS, OUTPUT_NOT_BUILT,
};
use super::{Backend, Config, Endpoint, Span};

/// Every endpoint key KrakenD CE knows, plus the v1 names we reject with a hint.
pub const ENDPOINT_KEYS: &[&str] = &[
    "endpoint",
    "method",
    "backend",
    "timeout",
    "cache_ttl",
    "concurrent_calls",
    "output_encoding",
    "input_query_strings",
    "input_headers",
    "extra_config",
];

/// Every backend key KrakenD CE knows.
pub const BACKEND_KEYS: &[&str] = &[
    "host",
    "url_pattern",
    "method",
    "encoding",
    "is_collection",
    "target",
    "allow",
    "deny",
    "mapping",
    "group",
    "sd",
    "sd_scheme",
    "disable_host_sanitize",
    "input_headers",
    "input_query_strings",
    "extra_config",
];

/// KrakenD: v1 names that v3 silently ignores; we refuse them and name the replacement.
const LEGACY_KEYS: &[(&str, &str)] = &[
    ("headers_to_pass", "input_headers"),
    ("querystring_params", "input_query_strings"),
    ("whitelist", "allow"),
    ("blacklist", "deny"),
];

fn legacy(ctx: &mut Ctx, m: &Member, base: &str) -> bool {
    let Some((_, new)) = LEGACY_KEYS.iter().find(|(old, _)| *old == m.key) else {
        return false;
    };
    ctx.error(
        m.key_pos,
        &child(base, &m.key),
        format!(
            "{:?} is a KrakenD v1 key that config version 3 silently ignores; rename it to {new:?}",
            m.key
        ),
    );
    true
}

pub fn decode_endpoints(ctx: &mut Ctx, v: &Spanned, cfg: &Config) -> Vec<Endpoint> {
    let Some(items) = ctx.array(v, "$.endpoints") else {
        return Vec::new();
    };
    let mut out: Vec<Endpoint> = Vec::with_capacity(items.len());
    // (method, route shape) -> position of the first declaration.
    let mut seen: Vec<(String, String, Pos)> = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let path = item("$.endpoints", i);
        let Some(e) = decode_endpoint(ctx, it, &path, cfg) else {
            continue;
        };
        let shape = route_shape(&e.endpoint);
        if let Some((_, _, first)) = seen.iter().find(|(m, s, _)| *m == e.method && *s == shape) {
            let msg = format!(
                "duplicate endpoint {} {} (first declared at {}:{}, also at {}:{})",
                e.method, e.endpoint, first.line, first.col, it.pos.line, it.pos.col
            );
            ctx.error(it.pos, &path, msg);
        } else {
            seen.push((e.method.clone(), shape, it.pos));
        }
        out.push(e);
    }
    out
}

fn decode_endpoint(ctx: &mut Ctx, v: &Spanned, path: &str, cfg: &Config) -> Option<Endpoint> {
    let members = ctx.object(v, path)?;
    let mut e = Endpoint {
        endpoint: String::new(),
        method: "GET".to_string(),
        backend: Vec::new(),
        timeout: cfg.timeout,
        cache_ttl: cfg.cache_ttl,
        concurrent_calls: 1,
        output_encoding: cfg.output_encoding.clone(),
        output_encoding_path: "$.output_encoding".to_string(),
        input_query_strings: Vec::new(),
        input_headers: Vec::new(),
        extra_config: Default::default(),
        span: Span {
            line: v.pos.line,
            col: v.pos.col,
            path: path.to_string(),
        },
    };
    let mut endpoint_value: Option<&Spanned> = None;
    let mut method_value: Option<&Spanned> = None;
    let mut backends: Option<&Spanned> = None;
    let mut has_jwt_validator = false;
    for m in members {
        let p = child(path, &m.key);
        let val = &m.value;
        match m.key.as_str() {
            k if is_comment(k) => {}
            "endpoint" => {
                endpoint_value = Some(val);
                // KrakenD: a missing leading '/' is added (lura `CleanPath`).
                if let Some(s) = ctx.string(val, &p) {
                    e.endpoint = format!("/{}", s.trim_start_matches('/'));
                }
            }
            "method" => {
                method_value = Some(val);
                if let Some(s) = ctx.string(val, &p).filter(|s| !s.is_empty()) {
                    e.method = s.to_ascii_uppercase();
                }
            }
            "backend" => backends = Some(val),
            "timeout" => {
                // KrakenD: an endpoint value of 0 inherits the root one.
                if let Some(d) = ctx.duration(val, &p).filter(|d| !d.is_zero()) {
                    e.timeout = d;
                }
            }
            "cache_ttl" => {
                if let Some(d) = ctx.duration(val, &p).filter(|d| !d.is_zero()) {
                    e.cache_ttl = d;
                }
            }
            "concurrent_calls" => {
                if let Some(n) = ctx.uint::<u32>(val, &p).filter(|n| *n != 0) {
                    e.concurrent_calls = n;
                }
            }
            "output_encoding" => {
                if let Some(s) = ctx.string(val, &p).filter(|s| !s.is_empty()) {
                    if let Some(w) = unknown_encoding(&s, OUTPUT_ENCODINGS) {
                        ctx.warn(val.pos, &p, w);
                    }
                    if let Some(about) = not_built(&s, OUTPUT_NOT_BUILT) {
                        let w = not_built_warning("output_encoding", &s, "this endpoint", about);
                        ctx.warn(val.pos, &p, w);
                    }
                    e.output_encoding = s;
                    e.output_encoding_path = p.clone();
                }
            }
            "input_query_strings" => {
                e.input_query_strings = ctx.strings(val, &p).unwrap_or_default();
            }
            "input_headers" => e.input_headers = ctx.strings(val, &p).unwrap_or_default(),
            "extra_config" => {
                let members = extra_members(ctx, val, &p, Level::Endpoint);
                has_jwt_validator = members.iter().any(|(ns, _)| ns == "auth/validator");
                e.extra_config = to_extra(&members);
            }
            _ => {
                if !legacy(ctx, m, path) {
                    ctx.unknown_key(m, path, ENDPOINT_KEYS);
                }
            }
        }
    }

    match endpoint_value {
        None => ctx.error(v.pos, path, "missing required key \"endpoint\""),
        Some(ev) if !e.endpoint.is_empty() => {
            let p = child(path, "endpoint");
            if let Err(msg) = check_endpoint_path(&e.endpoint, cfg.disable_rest) {
                ctx.error(ev.pos, &p, msg);
            } else if !cfg.router.disable_health && e.endpoint == cfg.router.health_path {
                ctx.error(
                    ev.pos,
                    &p,
                    format!(
                        "endpoint {} collides with the health endpoint (router.health_path)",
                        e.endpoint
                    ),
                );
            }
        }
        Some(_) => {}
    }
    if !ENDPOINT_METHODS.contains(&e.method.as_str()) {
        let pos = method_value.map_or(v.pos, |m| m.pos);
        ctx.error(
            pos,
            &child(path, "method"),
            format!(
                "unsupported method {:?} (allowed: {})",
                e.method,
                ENDPOINT_METHODS.join(", ")
            ),
        );
    }

    let params = endpoint_params(&e.endpoint);
    let inherit = Inherit {
        method: &e.method,
        no_op: e.output_encoding == "no-op",
        params: &params,
        jwt: has_jwt_validator,
        hosts: &cfg.host,
    };
    let bpath = child(path, "backend");
    match backends {
        None => ctx.error(
            v.pos,
            path,
            format!(
                "endpoint {} {} has no backend (at least one is required)",
                e.method, e.endpoint
            ),
        ),
        Some(bv) => {
            if let Some(items) = ctx.array(bv, &bpath) {
                if items.is_empty() {
                    ctx.error(
                        bv.pos,
                        &bpath,
                        format!(
                            "endpoint {} {} has 0 backends (at least one is required)",
                            e.method, e.endpoint
                        ),
                    );
                }
                e.backend = items
                    .iter()
                    .enumerate()
                    .filter_map(|(j, b)| decode_backend(ctx, b, &item(&bpath, j), &inherit))
                    .collect();
                if inherit.no_op && items.len() > 1 {
                    ctx.error(
                        bv.pos,
                        &bpath,
                        "can not use NoOp encoding with more than one backends connected to the same endpoint",
                    );
                }
            }
        }
    }
    Some(e)
}

/// What a backend takes from its endpoint and the root.
struct Inherit<'a> {
    method: &'a str,
    no_op: bool,
    params: &'a [&'a str],
    jwt: bool,
    hosts: &'a [String],
}

fn decode_backend(ctx: &mut Ctx, v: &Spanned, path: &str, inherit: &Inherit) -> Option<Backend> {
    let members = ctx.object(v, path)?;
    let mut b = Backend {
        host: Vec::new(),
        url_pattern: String::new(),
        method: inherit.method.to_string(),
        encoding: "json".to_string(),
        is_collection: false,
        target: String::new(),
        allow: Vec::new(),
        deny: Vec::new(),
        mapping: Vec::new(),
        group: String::new(),
        sd: String::new(),
        host_span: None,
        disable_host_sanitize: false,
        input_headers: Vec::new(),
        input_query_strings: Vec::new(),
        extra_config: Default::default(),
        span: Span {
            line: v.pos.line,
            col: v.pos.col,
            path: path.to_string(),
        },
    };
    // Hosts are sanitised after the loop, once disable_host_sanitize is known.
    let mut host_value: Option<&Spanned> = None;
    let mut url_value: Option<&Spanned> = None;
    let mut encoding_value: Option<&Spanned> = None;
    let mut sd_value: Option<&Spanned> = None;
    let mut sd_scheme: Option<(String, &Spanned)> = None;
    for m in members {
        let p = child(path, &m.key);
        let val = &m.value;
        match m.key.as_str() {
            k if is_comment(k) => {}
            "host" => host_value = Some(val),
            "url_pattern" => {
                url_value = Some(val);
                // KrakenD: lura applies `CleanPath` to url_pattern too.
                if let Some(s) = ctx.string(val, &p) {
                    b.url_pattern = format!("/{}", s.trim_start_matches('/'));
                }
            }
            "method" => {
                if let Some(s) = ctx.string(val, &p).filter(|s| !s.is_empty()) {
                    b.method = s.to_ascii_uppercase();
                }
            }
            "encoding" => {
                if let Some(s) = ctx.string(val, &p).filter(|s| !s.is_empty()) {
                    if let Some(w) = unknown_encoding(&s, BACKEND_ENCODINGS) {
                        ctx.warn(val.pos, &p, w);
                    }
                    encoding_value = Some(val);
                    b.encoding = s;
                }
            }
            "is_collection" => b.is_collection = ctx.bool(val, &p).unwrap_or_default(),
            "target" => b.target = ctx.string(val, &p).unwrap_or_default(),
            "allow" => b.allow = ctx.strings(val, &p).unwrap_or_default(),
            "deny" => b.deny = ctx.strings(val, &p).unwrap_or_default(),
            "mapping" => b.mapping = mapping(ctx, val, &p),
            "group" => b.group = ctx.string(val, &p).unwrap_or_default(),
            "sd" => {
                b.sd = ctx.string(val, &p).unwrap_or_default();
                sd_value = Some(val);
            }
            "sd_scheme" => sd_scheme = ctx.string(val, &p).map(|s| (s, val)),
            "disable_host_sanitize" => {
                b.disable_host_sanitize = ctx.bool(val, &p).unwrap_or_default();
            }
            "input_headers" => b.input_headers = ctx.strings(val, &p).unwrap_or_default(),
            "input_query_strings" => {
                b.input_query_strings = ctx.strings(val, &p).unwrap_or_default();
            }
            "extra_config" => {
                let members = extra_members(ctx, val, &p, Level::Backend);
                shadow_warning(ctx, &members, &p);
                b.extra_config = to_extra(&members);
            }
            "timeout" => {
                // KrakenD: mapstructure reads it (untagged field), then lura overwrites it with
                // the endpoint timeout. CE's own test fixture sets it.
                if ctx.duration(val, &p).is_some() {
                    ctx.warn(
                        m.key_pos,
                        &p,
                        "a backend \"timeout\" is ignored; the endpoint's timeout applies",
                    );
                }
            }
            _ => {
                if !legacy(ctx, m, path) {
                    ctx.unknown_key(m, path, BACKEND_KEYS);
                }
            }
        }
    }
    if let Some(hv) = host_value {
        b.host = hosts(ctx, hv, &child(path, "host"), !b.disable_host_sanitize);
        b.host_span = Some(Span {
            line: hv.pos.line,
            col: hv.pos.col,
            path: child(path, "host"),
        });
    }
    check_sd(ctx, &b, path, sd_value, sd_scheme);
    if host_value.is_none() || b.host.is_empty() {
        // KrakenD: a backend without hosts inherits the root list (already sanitised).
        b.host = inherit.hosts.to_vec();
    }
    if b.host.is_empty() {
        // KrakenD only fails per request ("no hosts available" -> 500); we fail at load.
        ctx.error(
            v.pos,
            path,
            "no host for this backend: set \"host\" here or at the root",
        );
    }
    if inherit.no_op {
        // KrakenD: a no-op endpoint forces its backend to no-op too.
        b.encoding = "no-op".to_string();
    }
    if let (Some(ev), Some(about)) = (encoding_value, not_built(&b.encoding, BACKEND_NOT_BUILT)) {
        let w = not_built_warning(
            "encoding",
            &b.encoding,
            "the endpoint calling this backend",
            about,
        );
        ctx.warn(ev.pos, &child(path, "encoding"), w);
    }
    match url_value {
        None => ctx.error(v.pos, path, "missing required key \"url_pattern\""),
        Some(uv) => check_url_params(
            ctx,
            uv,
            &child(path, "url_pattern"),
            &b.url_pattern,
            inherit,
        ),
    }
    Some(b)
}

/// `sd` and `sd_scheme`. KrakenD: an unknown `sd` falls back to the static host list; with
/// `dns`, only `host[0]` is looked up (SRV), and `sd_scheme` is the scheme of the hosts found.
fn check_sd(
    ctx: &mut Ctx,
    b: &Backend,
    path: &str,
    sd: Option<&Spanned>,
    scheme: Option<(String, &Spanned)>,
) {
    let Some(sd) = sd else { return };
    let p = child(path, "sd");
    match b.sd.as_str() {
        "" | "static" => {}
        "dns" => {
            if b.host.len() > 1 {
                ctx.warn(
                    sd.pos,
                    &p,
                    "with \"sd\": \"dns\" only the first host is looked up (as KrakenD does)",
                );
            }
            if let Some((s, v)) = scheme.filter(|(s, _)| !s.is_empty() && s != "http") {
                ctx.error(
                    v.pos,
                    &child(path, "sd_scheme"),
                    format!("sd_scheme {s:?} is not supported yet (only http)"),
                );
            }
        }
        other => ctx.warn(
            sd.pos,
            &p,
            format!(
                "unknown sd {other:?}: the host list is used as written, as with \"static\" \
                 (KrakenD CE knows \"static\" and \"dns\")"
            ),
        ),
    }
}

fn check_url_params(ctx: &mut Ctx, v: &Spanned, path: &str, pattern: &str, inherit: &Inherit) {
    for name in placeholders(pattern) {
        match classify_placeholder(name) {
            Placeholder::Sequential => {}
            Placeholder::Jwt if inherit.jwt => {}
            Placeholder::Jwt => ctx.error(
                v.pos,
                path,
                format!("{{{name}}} needs \"auth/validator\" in the endpoint's extra_config"),
            ),
            Placeholder::Param(p) if inherit.params.contains(&p) => {}
            Placeholder::Param(p) => ctx.error(
                v.pos,
                path,
                format!(
                    "undefined output param {{{p}}}: the endpoint declares [{}]",
                    inherit.params.join(", ")
                ),
            ),
        }
    }
}

fn mapping(ctx: &mut Ctx, v: &Spanned, path: &str) -> Vec<(String, String)> {
    let Some(members) = ctx.object(v, path) else {
        return Vec::new();
    };
    members
        .iter()
        .filter_map(|m| {
            let to = ctx.string(&m.value, &child(path, &m.key))?;
            Some((m.key.clone(), to))
        })
        .collect()
}

/// A backend's `proxy.shadow: true` is not built: say so where it is written.
fn shadow_warning(ctx: &mut Ctx, members: &[(String, &Member)], path: &str) {
    let Some((_, proxy)) = members.iter().find(|(ns, _)| ns == "proxy") else {
        return;
    };
    let Value::Object(keys) = &proxy.value.value else {
        return;
    };
    if let Some(m) = keys
        .iter()
        .find(|m| m.key == "shadow" && m.value.value == Value::Bool(true))
    {
        let p = child(&child(path, &proxy.key), "shadow");
        ctx.warn(
            m.key_pos,
            &p,
            format!(
                "\"shadow\" is not built yet, so the endpoint calling this backend answers 501 \
                 Not Implemented until it is: {}",
                super::pending::SHADOW
            ),
        );
    }
}
