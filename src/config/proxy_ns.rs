//! Startup checks of an endpoint's `proxy` namespace (static, sequential). KrakenD reads it with
//! type assertions and falls back quietly on anything unexpected; we fall back the same way,
//! with a warning saying what KrakenD (and so this gateway) does instead.

use super::decode::{child, Ctx};
use super::json::{Spanned, Value};
use super::validate::{classify_placeholder, placeholders, Placeholder};
use super::Backend;

/// lura `proxy/static.go` strategies.
pub const STATIC_STRATEGIES: &[&str] = &["always", "success", "complete", "errored", "incomplete"];

fn member<'v>(v: &'v Spanned, key: &str) -> Option<&'v Spanned> {
    match &v.value {
        Value::Object(members) => members.iter().find(|m| m.key == key).map(|m| &m.value),
        _ => None,
    }
}

/// `flatmap_filter` ops KrakenD runs otherwise than written (endpoint or backend level).
pub fn check_flatmap(ctx: &mut Ctx, proxy: &Spanned, path: &str) {
    let Some(Spanned {
        value: Value::Array(ops),
        ..
    }) = member(proxy, "flatmap_filter")
    else {
        return;
    };
    let base = child(path, "flatmap_filter");
    for (i, op) in ops.iter().enumerate() {
        let kind = match member(op, "type") {
            Some(Spanned {
                value: Value::String(k),
                ..
            }) => k.as_str(),
            _ => continue,
        };
        let n = match member(op, "args") {
            Some(Spanned {
                value: Value::Array(a),
                ..
            }) => a.len(),
            None => 0,
            Some(_) => continue,
        };
        let at = super::decode::item(&base, i);
        match kind {
            "move" | "append" if n > 2 => ctx.warn(
                op.pos,
                &at,
                format!(
                    "{kind} takes two args [source, destination]: KrakenD uses the first two \
                     and ignores the other {}, and so does this gateway",
                    n - 2
                ),
            ),
            "del" if n == 0 => ctx.warn(
                op.pos,
                &at,
                "del without args deletes nothing (as in KrakenD), but still turns the flatmap \
                 on, so allow, deny and mapping are ignored",
            ),
            _ => {}
        }
    }
}

/// Warn about what KrakenD silently reads otherwise than written.
pub fn check(ctx: &mut Ctx, proxy: &Spanned, path: &str, backends: &[Backend]) {
    check_flatmap(ctx, proxy, path);
    if let Some(st) = member(proxy, "static") {
        check_static(ctx, st, &child(path, "static"));
    }
    let sequential = match member(proxy, "sequential") {
        None => false,
        Some(Spanned {
            value: Value::Bool(b),
            ..
        }) => *b,
        Some(v) => {
            // KrakenD: `v.(bool)` fails, so the merge is the parallel one.
            ctx.warn(
                v.pos,
                &child(path, "sequential"),
                format!(
                    "sequential is {} and not true or false: KrakenD reads it as false (the \
                     backends are called in parallel), and so does this gateway",
                    v.value.kind()
                ),
            );
            false
        }
    };
    if sequential && backends.len() > 1 {
        check_sequence(ctx, backends);
    }
}

fn check_static(ctx: &mut Ctx, st: &Spanned, path: &str) {
    let ignored = "KrakenD ignores the whole static block, and so does this gateway";
    if !matches!(st.value, Value::Object(_)) {
        ctx.warn(
            st.pos,
            path,
            format!("static is {}, not an object: {ignored}", st.value.kind()),
        );
        return;
    }
    match member(st, "data") {
        Some(Spanned {
            value: Value::Object(_),
            ..
        }) => {}
        Some(d) => {
            ctx.warn(
                d.pos,
                &child(path, "data"),
                format!(
                    "static data is {}, not an object: {ignored}",
                    d.value.kind()
                ),
            );
            return;
        }
        None => {
            ctx.warn(
                st.pos,
                path,
                format!("static has no \"data\" object: {ignored}"),
            );
            return;
        }
    }
    let Some(s) = member(st, "strategy") else {
        return;
    };
    let known =
        matches!(&s.value, Value::String(name) if STATIC_STRATEGIES.contains(&name.as_str()));
    if !known {
        let what = match &s.value {
            Value::String(name) => format!("unknown strategy {name:?}"),
            other => format!("strategy is {}", other.kind()),
        };
        // KrakenD: lura `getStaticMiddlewareCfg` keeps its default matcher, "always".
        ctx.warn(
            s.pos,
            &child(path, "strategy"),
            format!(
                "{what}: KrakenD applies the static data always, and so does this gateway \
                 (strategies: {})",
                STATIC_STRATEGIES.join(", ")
            ),
        );
    }
}

/// `{respN_x}` in backend `i` can only read backends before it.
fn check_sequence(ctx: &mut Ctx, backends: &[Backend]) {
    for (i, b) in backends.iter().enumerate() {
        for name in placeholders(&b.url_pattern) {
            if classify_placeholder(name) != Placeholder::Sequential {
                continue;
            }
            let n: usize = name
                .strip_prefix("resp")
                .map(|r| {
                    r.chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                })
                .and_then(|d| d.parse().ok())
                .unwrap_or(usize::MAX);
            if n < i {
                continue;
            }
            let at = child(&b.span.path, "url_pattern");
            // KrakenD: lura's sequential merge skips references to backends not called yet.
            ctx.warn(
                super::json::Pos {
                    line: b.span.line,
                    col: b.span.col,
                },
                &at,
                format!(
                    "{{{name}}} refers to backend {n}, which is not called before backend {i}: \
                     KrakenD never fills it (it sends the placeholder unfilled); this gateway \
                     leaves it empty"
                ),
            );
        }
    }
}
