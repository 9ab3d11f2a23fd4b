//! Decoding `endpoints[]` with inheritance from the root, plus the endpoint-level startup checks
//! (path syntax, methods, backends, duplicate routes). Backends: `backend.rs`.

use super::backend::{decode_backend, Inherit};
use super::decode::{child, is_comment, item, Ctx};
use super::json::{Member, Pos, Spanned};
use super::namespaces::Level;
use super::service::{extra_members, to_extra};
use super::validate::{
    check_endpoint_path, endpoint_params, not_built, not_built_warning, route_shape,
    unknown_encoding, ENDPOINT_METHODS, OUTPUT_ENCODINGS, OUTPUT_NOT_BUILT,
};
use super::{Config, Endpoint, Span};

/// Every endpoint key KrakenD CE knows.
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

/// KrakenD: v1 names that v3 silently ignores. So do we (KrakenD starts with them), but loudly,
/// naming the replacement.
const LEGACY_KEYS: &[(&str, &str)] = &[
    ("headers_to_pass", "input_headers"),
    ("querystring_params", "input_query_strings"),
    ("whitelist", "allow"),
    ("blacklist", "deny"),
];

pub(super) fn legacy(ctx: &mut Ctx, m: &Member, base: &str) -> bool {
    let Some((_, new)) = LEGACY_KEYS.iter().find(|(old, _)| *old == m.key) else {
        return false;
    };
    ctx.warn(
        m.key_pos,
        &child(base, &m.key),
        format!(
            "{:?} is a KrakenD v1 key: KrakenD (config version 3) silently ignores it, and so \
             does this gateway; rename it to {new:?} for it to take effect",
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
        if !ENDPOINT_METHODS.contains(&e.method.as_str()) {
            // KrakenD: the router skips it ("Unsupported method"); decode_endpoint warned.
            continue;
        }
        let shape = route_shape(&e.endpoint);
        if let Some((_, _, first)) = seen.iter().find(|(m, s, _)| *m == e.method && *s == shape) {
            let msg = format!(
                "duplicate endpoint {} {} (first declared at {}:{}, also at {}:{}); KrakenD \
                 refuses it too: its router (gin) panics at startup",
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
        // KrakenD: a missing `endpoint` is "", which lura's CleanPath makes "/".
        endpoint: "/".to_string(),
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
    let mut proxy_ns: Option<(&Spanned, String)> = None;
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
                proxy_ns = members
                    .iter()
                    .find(|(ns, _)| ns == "proxy")
                    .map(|(_, m)| (&m.value, child(&p, &m.key)));
                e.extra_config = to_extra(&members);
            }
            _ => {
                if !legacy(ctx, m, path) {
                    ctx.unknown_key(m, path, ENDPOINT_KEYS);
                }
            }
        }
    }

    let served = ENDPOINT_METHODS.contains(&e.method.as_str());
    if !served {
        // KrakenD: its router logs "Unsupported method" and skips the endpoint: it starts, and
        // the path answers 404 (or 405 when another method is served there).
        let pos = method_value.map_or(v.pos, |m| m.pos);
        ctx.warn(
            pos,
            &child(path, "method"),
            format!(
                "unsupported method {:?}: KrakenD skips this endpoint (its router logs \
                 \"Unsupported method\"), and so does this gateway, so {} is not served \
                 (methods served: {})",
                e.method,
                e.endpoint,
                ENDPOINT_METHODS.join(", ")
            ),
        );
    }
    let p = child(path, "endpoint");
    let epos = endpoint_value.map_or(v.pos, |ev| ev.pos);
    if endpoint_value.is_none() {
        ctx.warn(
            v.pos,
            &p,
            "no \"endpoint\": KrakenD serves this endpoint at \"/\", and so does this gateway",
        );
    }
    if let Err(msg) = check_endpoint_path(&e.endpoint, cfg.disable_rest) {
        ctx.error(epos, &p, msg);
    } else if served
        && e.method == "GET"
        && !cfg.router.disable_health
        && e.endpoint == cfg.router.health_path
    {
        ctx.error(
            epos,
            &p,
            format!(
                "endpoint GET {} collides with the health endpoint (router.health_path); KrakenD \
                 refuses it too: its router (gin) panics at startup",
                e.endpoint
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
                "endpoint {} {} has no backend (at least one is required; KrakenD refuses it \
                 too)",
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
                            "endpoint {} {} has 0 backends (at least one is required; KrakenD \
                             refuses it too)",
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
    if let Some((pv, pp)) = proxy_ns {
        super::proxy_ns::check(ctx, pv, &pp, &e.backend);
    }
    Some(e)
}
