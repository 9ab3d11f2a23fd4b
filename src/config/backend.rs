//! Decoding one `backend[]` entry with what it inherits from its endpoint and the root, and its
//! startup checks (hosts, `sd`, url_pattern placeholders).

use super::decode::{child, is_comment, item, Ctx};
use super::endpoint::legacy;
use super::json::{Member, Pos, Spanned, Value};
use super::namespaces::Level;
use super::service::{extra_members, hosts, to_extra};
use super::validate::{
    classify_placeholder, host_use, not_built, not_built_warning, placeholders, unknown_encoding,
    HostUse, Placeholder, BACKEND_ENCODINGS, BACKEND_NOT_BUILT,
};
use super::{Backend, Span};

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

/// What a backend takes from its endpoint and the root.
pub(super) struct Inherit<'a> {
    pub method: &'a str,
    pub no_op: bool,
    pub params: &'a [&'a str],
    pub jwt: bool,
    pub hosts: &'a [String],
}

pub(super) fn decode_backend(
    ctx: &mut Ctx,
    v: &Spanned,
    path: &str,
    inherit: &Inherit,
) -> Option<Backend> {
    let members = ctx.object(v, path)?;
    let mut b = Backend {
        host: Vec::new(),
        // KrakenD: a missing url_pattern is "", which lura's CleanPath makes "/".
        url_pattern: "/".to_string(),
        method: inherit.method.to_string(),
        encoding: "json".to_string(),
        is_collection: false,
        target: String::new(),
        allow: Vec::new(),
        deny: Vec::new(),
        mapping: Vec::new(),
        group: String::new(),
        sd: String::new(),
        sd_scheme: String::new(),
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
    let mut sd_scheme: Option<&Spanned> = None;
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
            "sd_scheme" => {
                b.sd_scheme = ctx.string(val, &p).unwrap_or_default();
                sd_scheme = Some(val);
            }
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
                if let Some((_, m)) = members.iter().find(|(ns, _)| ns == "proxy") {
                    super::proxy_ns::check_flatmap(ctx, &m.value, &child(&p, &m.key));
                }
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
        // KrakenD: it starts, then fails every request to this backend ("no hosts available").
        ctx.warn(
            v.pos,
            path,
            "no host for this backend (set \"host\" here or at the root): KrakenD starts and \
             fails every call to it with \"no hosts available\" (500, or a partial response), \
             and so does this gateway",
        );
    } else if b.sd != "dns" {
        check_hosts(ctx, &b, path, host_value);
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
    let up = child(path, "url_pattern");
    if url_value.is_none() {
        ctx.warn(
            v.pos,
            &up,
            "no \"url_pattern\": KrakenD calls \"/\" on the backend's host, and so does this \
             gateway",
        );
    }
    let upos = url_value.map_or(v.pos, |uv| uv.pos);
    check_url_params(ctx, upos, &up, &b.url_pattern, inherit);
    Some(b)
}

/// Each host of a static backend: one this gateway cannot call yet makes the endpoint answer
/// 501; one KrakenD fails every request to is left out (a warning says so).
fn check_hosts(ctx: &mut Ctx, b: &Backend, path: &str, written: Option<&Spanned>) {
    // Inherited root hosts are judged where the backend is; its own where they are written.
    let items = written.and_then(|v| match &v.value {
        Value::Array(items) => Some(items.as_slice()),
        _ => None,
    });
    for (i, h) in b.host.iter().enumerate() {
        let (pos, at) = match items.and_then(|it| it.get(i)) {
            Some(it) => (it.pos, item(&child(path, "host"), i)),
            None => (
                Pos {
                    line: b.span.line,
                    col: b.span.col,
                },
                path.to_string(),
            ),
        };
        match host_use(h) {
            HostUse::Ok => {}
            HostUse::NotBuilt(what, about) => ctx.warn(
                pos,
                &at,
                format!(
                    "host {h:?}: {what} is not built yet, so the endpoint calling this backend \
                     answers 501 Not Implemented until it is (KrakenD {about})"
                ),
            ),
            HostUse::Fails(why) => ctx.warn(
                pos,
                &at,
                format!(
                    "{why}: KrakenD starts and fails every call sent to this host, so this \
                     gateway leaves it out (a backend left without hosts answers 500)"
                ),
            ),
        }
    }
}

/// `sd` and `sd_scheme`. KrakenD: an unknown `sd` falls back to the static host list; with
/// `dns`, only `host[0]` is looked up (SRV), and `sd_scheme` is the scheme of the hosts found.
fn check_sd(
    ctx: &mut Ctx,
    b: &Backend,
    path: &str,
    sd: Option<&Spanned>,
    scheme: Option<&Spanned>,
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
            match (b.sd_scheme.as_str(), scheme) {
                ("" | "http" | "https", _) | (_, None) => {}
                (other, Some(v)) => ctx.warn(
                    v.pos,
                    &child(path, "sd_scheme"),
                    format!(
                        "sd_scheme {other:?} is not HTTP: KrakenD fails every call to the hosts \
                         found, and so does this gateway (500, or a partial response)"
                    ),
                ),
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

fn check_url_params(ctx: &mut Ctx, pos: Pos, path: &str, pattern: &str, inherit: &Inherit) {
    for name in placeholders(pattern) {
        match classify_placeholder(name) {
            Placeholder::Sequential => {}
            Placeholder::Jwt if inherit.jwt => {}
            // KrakenD: lura's Init accepts it (it looks like a sequential/JWT placeholder);
            // without the validator no claim ever fills it.
            Placeholder::Jwt => ctx.warn(
                pos,
                path,
                format!(
                    "{{{name}}} is only filled by \"auth/validator\" in the endpoint's \
                     extra_config, which is missing: KrakenD starts and never fills it; neither \
                     does this gateway (it sends the placeholder unfilled, as KrakenD does)"
                ),
            ),
            Placeholder::Param(p) if inherit.params.contains(&p) => {}
            Placeholder::Param(p) => ctx.error(
                pos,
                path,
                format!(
                    "undefined output param {{{p}}}: the endpoint declares [{}] (KrakenD \
                     refuses it too)",
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
