//! Go's `fmt` (`%v`, `Sprint`, `Sprintf`) and `encoding/json` output of template values.

use super::values::{kind, to_f64, to_i64, to_string};
use serde_json::Value;
use std::fmt::Write as _;
/// What `{{ x }}` prints: Go's `%v`, with a missing value as `<no value>`.
pub fn print_top(v: &Value) -> String {
    match v {
        // KrakenD: Go prints a missing map key or JSON null as "<no value>".
        Value::Null => "<no value>".to_string(),
        other => fmt_v(other),
    }
}

/// Go's `%v` of a decoded JSON value.
pub fn fmt_v(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_i64() {
            Some(i) if !n.is_f64() => i.to_string(),
            _ => n
                .as_u64()
                .filter(|_| !n.is_f64())
                .map(|u| u.to_string())
                .unwrap_or_else(|| go_float(n.as_f64().unwrap_or(0.0))),
        },
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(fmt_v).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut ks: Vec<&String> = m.keys().collect();
            ks.sort();
            let parts: Vec<String> = ks
                .into_iter()
                .map(|k| format!("{k}:{}", m.get(k).map(fmt_v).unwrap_or_default()))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Go's `%v` of a float64 (`strconv 'g', -1`): exponent form from 1e6 up and below 1e-4.
// KrakenD: settings numbers are float64, so `{{ .big }}` with 1000000 prints `1e+06` there
// too; `marshal` (json.Marshal) prints 1000000.
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        format!("{f}")
    }
}

pub(crate) fn sprint(a: &[Value]) -> String {
    // Go's fmt.Sprint: a space between operands when neither is a string.
    let mut out = String::new();
    for (i, v) in a.iter().enumerate() {
        if i > 0 && !v.is_string() && a.get(i - 1).is_some_and(|p| !p.is_string()) {
            out.push(' ');
        }
        out.push_str(&fmt_v(v));
    }
    out
}

/// Go's `fmt.Sprintf` for the verbs templates use: %v %s %d %f %g %e %q %t %x %X %c %%, with
/// flags `-+ 0`, width and precision.
pub(crate) fn printf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = format.chars().peekable();
    let mut argi = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = it.peek() {
            if "-+ 0#".contains(f) {
                flags.push(f);
                it.next();
            } else {
                break;
            }
        }
        let mut width = String::new();
        while let Some(&d) = it.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            it.next();
        }
        let mut prec: Option<usize> = None;
        if it.peek() == Some(&'.') {
            it.next();
            let mut p = String::new();
            while let Some(&d) = it.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                it.next();
            }
            prec = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        argi += 1;
        let body = match verb {
            'v' | 's' => {
                let s = fmt_v(arg);
                match prec {
                    Some(p) => s.chars().take(p).collect(),
                    None => s,
                }
            }
            'd' => {
                let i = match arg {
                    Value::Number(n) if !n.is_f64() => n.as_i64().unwrap_or(0),
                    other => {
                        let _ = write!(out, "%!d({}={})", kind(other), fmt_v(other));
                        continue;
                    }
                };
                if flags.contains('+') && i >= 0 {
                    format!("+{i}")
                } else {
                    i.to_string()
                }
            }
            'f' | 'F' => format!("{:.*}", prec.unwrap_or(6), to_f64(arg)),
            'e' => format!("{:.*e}", prec.unwrap_or(6), to_f64(arg)),
            'g' => go_float(to_f64(arg)),
            'q' => format!("{:?}", to_string(arg)),
            't' => fmt_v(arg),
            'c' => char::from_u32(to_i64(arg) as u32)
                .map(String::from)
                .unwrap_or_default(),
            'x' | 'X' => {
                let s = match arg {
                    Value::Number(n) if !n.is_f64() => format!("{:x}", n.as_i64().unwrap_or(0)),
                    other => to_string(other)
                        .bytes()
                        .map(|b| format!("{b:02x}"))
                        .collect(),
                };
                if verb == 'X' {
                    s.to_uppercase()
                } else {
                    s
                }
            }
            other => {
                let _ = write!(out, "%!{other}({})", fmt_v(arg));
                continue;
            }
        };
        let w: usize = width.parse().unwrap_or(0);
        let len = body.chars().count();
        if len >= w {
            out.push_str(&body);
        } else if flags.contains('-') {
            out.push_str(&body);
            out.push_str(&" ".repeat(w - len));
        } else if flags.contains('0') && matches!(verb, 'd' | 'f' | 'F' | 'x' | 'X') {
            let (sign, digits) = match body.strip_prefix('-') {
                Some(d) => ("-", d),
                None => ("", body.as_str()),
            };
            out.push_str(sign);
            out.push_str(&"0".repeat(w - len));
            out.push_str(digits);
        } else {
            out.push_str(&" ".repeat(w - len));
            out.push_str(&body);
        }
    }
    if argi < args.len() {
        let extra: Vec<String> = args
            .iter()
            .skip(argi)
            .map(|a| format!("{}={}", kind(a), fmt_v(a)))
            .collect();
        let _ = write!(out, "%!(EXTRA {})", extra.join(", "));
    }
    out
}

/// Go's `encoding/json` Marshal of a decoded value: map keys sorted, `<>&` escaped as
/// `\u003c…` when `html`, floats without a needless `.0`.
pub fn to_json(v: &Value, html: bool, indent: Option<&str>) -> String {
    let mut out = String::new();
    write_json(&mut out, v, html, indent, 0);
    out
}

pub(crate) fn write_json(
    out: &mut String,
    v: &Value,
    html: bool,
    indent: Option<&str>,
    depth: usize,
) {
    let nl = |out: &mut String, d: usize| {
        if let Some(ind) = indent {
            out.push('\n');
            for _ in 0..d {
                out.push_str(ind);
            }
        }
    };
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => {
                let a = f.abs();
                if a != 0.0 && !(1e-6..1e21).contains(&a) {
                    let e = format!("{f:e}");
                    // Go: 1e-07 is written 1e-7, 1e21 as 1e+21.
                    if e.contains("e-") {
                        out.push_str(&e);
                    } else {
                        out.push_str(&e.replacen('e', "e+", 1));
                    }
                } else {
                    let _ = write!(out, "{f}");
                }
            }
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => json_str(out, s, html),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, depth + 1);
                write_json(out, x, html, indent, depth + 1);
            }
            if !a.is_empty() {
                nl(out, depth);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            let mut ks: Vec<&String> = m.keys().collect();
            ks.sort();
            for (i, k) in ks.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, depth + 1);
                json_str(out, k, html);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                if let Some(x) = m.get(*k) {
                    write_json(out, x, html, indent, depth + 1);
                }
            }
            if !m.is_empty() {
                nl(out, depth);
            }
            out.push('}');
        }
    }
}

pub(crate) fn json_str(out: &mut String, s: &str, html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' if html => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
