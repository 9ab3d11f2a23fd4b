//! Template functions: Go's builtins, KrakenD's `marshal`/`include`, and the Sprig functions
//! listed in [`NAMES`]. Values are JSON values; numbers keep Go's int/float distinction
//! (settings files decode to floats, as Go's `encoding/json` does into `interface{}`).

use super::Env;
use serde_json::{Map, Number, Value};
use std::fmt::Write as _;

/// Every function a template may call.
pub const NAMES: &[&str] = &[
    // Go text/template builtins
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt",
    "le", "gt", "ge", "html", "js", "urlquery",
    // KrakenD
    "marshal", "include",
    // Sprig: defaults and flow
    "default", "empty", "coalesce", "ternary", "fail",
    // Sprig: environment and encoding
    "env", "expandenv", "toJson", "toRawJson", "toPrettyJson", "mustToJson", "fromJson",
    "b64enc", "b64dec",
    // Sprig: strings
    "upper", "lower", "title", "trim", "trimAll", "trimPrefix", "trimSuffix", "replace",
    "contains", "hasPrefix", "hasSuffix", "quote", "squote", "cat", "repeat", "indent", "nindent",
    "trunc", "substr", "nospace", "join", "splitList", "toString", "toStrings", "regexMatch",
    "regexReplaceAll",
    // Sprig: lists
    "list", "first", "last", "rest", "initial", "append", "push", "prepend", "concat", "has",
    "uniq", "without", "compact", "reverse", "until", "untilStep", "seq",
    // Sprig: dicts
    "dict", "get", "set", "unset", "hasKey", "keys", "values", "pluck", "merge", "pick", "omit",
    // Sprig: numbers and conversion
    "add", "add1", "sub", "mul", "div", "mod", "max", "min", "floor", "ceil", "round", "int",
    "int64", "float64", "atoi",
];

type R = Result<Value, String>;

pub fn call(name: &str, a: Vec<Value>, env: &Env) -> R {
    let n = a.len();
    let want = |k: usize| -> Result<(), String> {
        if n == k {
            Ok(())
        } else {
            Err(format!("wrong number of args for {name}: want {k} got {n}"))
        }
    };
    let at_least = |k: usize| -> Result<(), String> {
        if n >= k {
            Ok(())
        } else {
            Err(format!("wrong number of args for {name}: want at least {k} got {n}"))
        }
    };
    let s = |i: usize| -> String { a.get(i).map(to_string).unwrap_or_default() };
    let v = |i: usize| -> Value { a.get(i).cloned().unwrap_or(Value::Null) };
    let i64_ = |i: usize| -> i64 { a.get(i).map(to_i64).unwrap_or(0) };
    Ok(match name {
        "not" => {
            want(1)?;
            Value::Bool(!truth(&v(0)))
        }
        "len" => {
            want(1)?;
            Value::from(match &v(0) {
                Value::String(x) => x.len(),
                Value::Array(x) => x.len(),
                Value::Object(x) => x.len(),
                other => return Err(format!("len of {}", kind(other))),
            } as i64)
        }
        "index" => {
            at_least(1)?;
            let mut cur = v(0);
            for k in a.iter().skip(1) {
                cur = match (&cur, k) {
                    (Value::Array(x), k) => {
                        let i = int_index(k)?;
                        x.get(i).cloned().ok_or_else(|| format!("index out of range: {i}"))?
                    }
                    (Value::Object(m), Value::String(k)) => m.get(k).cloned().unwrap_or(Value::Null),
                    (Value::String(x), k) => {
                        let i = int_index(k)?;
                        Value::from(*x.as_bytes().get(i).ok_or_else(|| format!("index out of range: {i}"))? as i64)
                    }
                    (Value::Null, _) => return Err("index of untyped nil".into()),
                    (c, _) => return Err(format!("can't index item of type {}", kind(c))),
                };
            }
            cur
        }
        "slice" => {
            at_least(1)?;
            let from = a.get(1).map(int_index).transpose()?.unwrap_or(0);
            match v(0) {
                Value::Array(x) => {
                    let to = a.get(2).map(int_index).transpose()?.unwrap_or(x.len());
                    Value::Array(x.get(from..to).ok_or("slice index out of range")?.to_vec())
                }
                Value::String(x) => {
                    let to = a.get(2).map(int_index).transpose()?.unwrap_or(x.len());
                    Value::String(x.get(from..to).ok_or("slice index out of range")?.to_string())
                }
                other => return Err(format!("can't slice item of type {}", kind(&other))),
            }
        }
        "print" => Value::String(sprint(&a)),
        "println" => {
            let mut out: Vec<String> = a.iter().map(fmt_v).collect::<Vec<_>>();
            let mut s = out.join(" ");
            out.clear();
            s.push('\n');
            Value::String(s)
        }
        "printf" => {
            at_least(1)?;
            Value::String(printf(&s(0), a.get(1..).unwrap_or(&[])))
        }
        "eq" => {
            at_least(2)?;
            let first = v(0);
            let mut any = false;
            for b in a.iter().skip(1) {
                if equal(&first, b)? {
                    any = true;
                }
            }
            Value::Bool(any)
        }
        "ne" => {
            want(2)?;
            Value::Bool(!equal(&v(0), &v(1))?)
        }
        "lt" | "le" | "gt" | "ge" => {
            want(2)?;
            let o = order(&v(0), &v(1))?;
            Value::Bool(match name {
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        "html" => Value::String(
            sprint(&a)
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&#34;")
                .replace('\'', "&#39;"),
        ),
        "js" => {
            let mut out = String::new();
            for c in sprint(&a).chars() {
                match c {
                    '\\' | '\'' | '"' => {
                        out.push('\\');
                        out.push(c);
                    }
                    '<' | '>' | '&' | '=' | '\n' | '\r' | '\t' => {
                        let _ = write!(out, "\\u{:04X}", c as u32);
                    }
                    c => out.push(c),
                }
            }
            Value::String(out)
        }
        "urlquery" => {
            let mut out = String::new();
            for b in sprint(&a).bytes() {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                    out.push(b as char);
                } else if b == b' ' {
                    out.push('+');
                } else {
                    let _ = write!(out, "%{b:02X}");
                }
            }
            Value::String(out)
        }
        "call" => return Err("call: functions cannot be values here".into()),
        // KrakenD: `marshal` is json.Marshal, errors ignored.
        "marshal" | "toJson" | "mustToJson" => {
            want(1)?;
            Value::String(to_json(&v(0), true, None))
        }
        "toRawJson" => {
            want(1)?;
            Value::String(to_json(&v(0), false, None))
        }
        "toPrettyJson" => {
            want(1)?;
            Value::String(to_json(&v(0), true, Some("  ")))
        }
        "fromJson" => {
            want(1)?;
            serde_json::from_str(&s(0)).unwrap_or(Value::Null)
        }
        "include" => {
            want(1)?;
            Value::String((env.include)(&s(0))?)
        }
        "env" => {
            want(1)?;
            Value::String((env.var)(&s(0)).unwrap_or_default())
        }
        "expandenv" => {
            want(1)?;
            Value::String(expand_env(&s(0), env))
        }
        "default" => {
            at_least(1)?;
            // Sprig: `default DEFAULT VALUE`; a missing VALUE counts as empty.
            let given = a.get(1).cloned().unwrap_or(Value::Null);
            if truth(&given) {
                given
            } else {
                v(0)
            }
        }
        "empty" => {
            want(1)?;
            Value::Bool(!truth(&v(0)))
        }
        "coalesce" => a.iter().find(|x| truth(x)).cloned().unwrap_or(Value::Null),
        "ternary" => {
            want(3)?;
            if truth(&v(2)) {
                v(0)
            } else {
                v(1)
            }
        }
        "fail" => return Err(s(0)),
        "b64enc" => Value::String(b64enc(s(0).as_bytes())),
        "b64dec" => Value::String(b64dec(&s(0)).map_err(|e| format!("b64dec: {e}"))?),
        "upper" => Value::String(s(0).to_uppercase()),
        "lower" => Value::String(s(0).to_lowercase()),
        "title" => Value::String(title(&s(0))),
        "trim" => Value::String(s(0).trim().to_string()),
        "trimAll" => {
            let set = s(0);
            Value::String(s(1).trim_matches(|c| set.contains(c)).to_string())
        }
        "trimPrefix" => {
            let (p, x) = (s(0), s(1));
            Value::String(x.strip_prefix(p.as_str()).unwrap_or(&x).to_string())
        }
        "trimSuffix" => {
            let (p, x) = (s(0), s(1));
            Value::String(x.strip_suffix(p.as_str()).unwrap_or(&x).to_string())
        }
        "replace" => {
            want(3)?;
            Value::String(s(2).replace(&s(0), &s(1)))
        }
        "contains" => Value::Bool(s(1).contains(&s(0))),
        "hasPrefix" => Value::Bool(s(1).starts_with(&s(0))),
        "hasSuffix" => Value::Bool(s(1).ends_with(&s(0))),
        "quote" => Value::String(
            a.iter()
                .filter(|x| !x.is_null())
                .map(|x| format!("{:?}", to_string(x)))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "squote" => Value::String(
            a.iter()
                .filter(|x| !x.is_null())
                .map(|x| format!("'{}'", to_string(x)))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "cat" => Value::String(
            a.iter()
                .filter(|x| !x.is_null())
                .map(fmt_v)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "repeat" => {
            let k = i64_(0).clamp(0, 1 << 20) as usize;
            let x = s(1);
            if x.len().saturating_mul(k) > super::MAX_OUTPUT {
                return Err("repeat: result too large".into());
            }
            Value::String(x.repeat(k))
        }
        "indent" | "nindent" => {
            let pad = " ".repeat(i64_(0).clamp(0, 1024) as usize);
            let body = s(1)
                .split('\n')
                .map(|l| format!("{pad}{l}"))
                .collect::<Vec<_>>()
                .join("\n");
            Value::String(if name == "nindent" { format!("\n{body}") } else { body })
        }
        "trunc" => {
            let (k, x) = (i64_(0), s(1));
            let chars: Vec<char> = x.chars().collect();
            let len = chars.len() as i64;
            let out: String = if k >= 0 {
                chars.iter().take(k as usize).collect()
            } else {
                chars.iter().skip((len + k).max(0) as usize).collect()
            };
            Value::String(out)
        }
        "substr" => {
            let (from, to, x) = (i64_(0), i64_(1), s(2));
            let from = from.max(0) as usize;
            let to = if to < 0 { x.len() } else { (to as usize).min(x.len()) };
            Value::String(x.get(from.min(to)..to).unwrap_or("").to_string())
        }
        "nospace" => Value::String(s(0).chars().filter(|c| !c.is_whitespace()).collect()),
        "join" => {
            let sep = s(0);
            let items: Vec<String> = match v(1) {
                Value::Array(x) => x.iter().map(to_string).collect(),
                Value::Null => Vec::new(),
                other => vec![to_string(&other)],
            };
            Value::String(items.join(&sep))
        }
        "splitList" => Value::Array(s(1).split(s(0).as_str()).map(|x| Value::String(x.into())).collect()),
        "toString" => Value::String(s(0)),
        "toStrings" => Value::Array(list_of(&v(0)).iter().map(|x| Value::String(to_string(x))).collect()),
        "regexMatch" => {
            let re = regex::Regex::new(&s(0)).map_err(|e| format!("regexMatch: {e}"))?;
            Value::Bool(re.is_match(&s(1)))
        }
        "regexReplaceAll" => {
            let re = regex::Regex::new(&s(0)).map_err(|e| format!("regexReplaceAll: {e}"))?;
            Value::String(re.replace_all(&s(1), s(2).as_str()).into_owned())
        }
        "list" => Value::Array(a),
        "first" => list_of(&v(0)).first().cloned().unwrap_or(Value::Null),
        "last" => list_of(&v(0)).last().cloned().unwrap_or(Value::Null),
        "rest" => Value::Array(list_of(&v(0)).into_iter().skip(1).collect()),
        "initial" => {
            let mut l = list_of(&v(0));
            l.pop();
            Value::Array(l)
        }
        "append" | "push" => {
            let mut l = list_of(&v(0));
            l.push(v(1));
            Value::Array(l)
        }
        "prepend" => {
            let mut l = list_of(&v(0));
            l.insert(0, v(1));
            Value::Array(l)
        }
        "concat" => Value::Array(a.iter().flat_map(list_of).collect()),
        "has" => Value::Bool(list_of(&v(1)).iter().any(|x| equal(x, &v(0)).unwrap_or(false))),
        "uniq" => {
            let mut out: Vec<Value> = Vec::new();
            for x in list_of(&v(0)) {
                if !out.contains(&x) {
                    out.push(x);
                }
            }
            Value::Array(out)
        }
        "without" => {
            let drop = a.get(1..).unwrap_or(&[]);
            Value::Array(list_of(&v(0)).into_iter().filter(|x| !drop.contains(x)).collect())
        }
        "compact" => Value::Array(list_of(&v(0)).into_iter().filter(truth).collect()),
        "reverse" => {
            let mut l = list_of(&v(0));
            l.reverse();
            Value::Array(l)
        }
        "until" => Value::Array((0..i64_(0).clamp(0, 1_000_000)).map(Value::from).collect()),
        "untilStep" => {
            let (start, stop, step) = (i64_(0), i64_(1), i64_(2));
            let mut out = Vec::new();
            let mut i = start;
            while step != 0 && ((step > 0 && i < stop) || (step < 0 && i > stop)) && out.len() < 1_000_000 {
                out.push(Value::from(i));
                i += step;
            }
            Value::Array(out)
        }
        "seq" => {
            let (start, stop) = match n {
                1 => (1, i64_(0)),
                _ => (i64_(0), i64_(n.saturating_sub(1))),
            };
            let step = if n == 3 { i64_(1) } else if stop >= start { 1 } else { -1 };
            let mut out = Vec::new();
            let mut i = start;
            while step != 0 && ((step > 0 && i <= stop) || (step < 0 && i >= stop)) && out.len() < 1_000_000 {
                out.push(i.to_string());
                i += step;
            }
            Value::String(out.join(" "))
        }
        "dict" => {
            let mut m = Map::new();
            for pair in a.chunks(2) {
                let k = pair.first().map(to_string).unwrap_or_default();
                m.insert(k, pair.get(1).cloned().unwrap_or(Value::String(String::new())));
            }
            Value::Object(m)
        }
        "get" => match v(0) {
            Value::Object(m) => m.get(&s(1)).cloned().unwrap_or(Value::String(String::new())),
            _ => Value::String(String::new()),
        },
        "set" => {
            let mut m = obj_of(&v(0));
            m.insert(s(1), v(2));
            Value::Object(m)
        }
        "unset" => {
            let mut m = obj_of(&v(0));
            m.shift_remove(&s(1));
            Value::Object(m)
        }
        "hasKey" => Value::Bool(obj_of(&v(0)).contains_key(&s(1))),
        "keys" => {
            let mut ks: Vec<String> = a.iter().flat_map(|d| obj_of(d).keys().cloned().collect::<Vec<_>>()).collect();
            ks.sort();
            Value::Array(ks.into_iter().map(Value::String).collect())
        }
        "values" => Value::Array(obj_of(&v(0)).values().cloned().collect()),
        "pluck" => {
            let k = s(0);
            Value::Array(a.iter().skip(1).filter_map(|d| obj_of(d).get(&k).cloned()).collect())
        }
        "merge" => {
            // Sprig: the first dict wins; later ones only fill in missing keys.
            let mut m = obj_of(&v(0));
            for d in a.iter().skip(1) {
                for (k, x) in obj_of(d) {
                    m.entry(k).or_insert(x);
                }
            }
            Value::Object(m)
        }
        "pick" | "omit" => {
            let names: Vec<String> = a.iter().skip(1).map(to_string).collect();
            let keep = name == "pick";
            Value::Object(obj_of(&v(0)).into_iter().filter(|(k, _)| names.contains(k) == keep).collect())
        }
        // Sprig: integer arithmetic on int64 (floats are truncated first).
        "add" => Value::from(a.iter().map(to_i64).fold(0i64, i64::wrapping_add)),
        "add1" => Value::from(i64_(0).wrapping_add(1)),
        "sub" => Value::from(i64_(0).wrapping_sub(i64_(1))),
        "mul" => Value::from(a.iter().map(to_i64).fold(1i64, i64::wrapping_mul)),
        "div" => {
            let d = i64_(1);
            if d == 0 {
                return Err("div: division by zero".into());
            }
            Value::from(i64_(0).wrapping_div(d))
        }
        "mod" => {
            let d = i64_(1);
            if d == 0 {
                return Err("mod: division by zero".into());
            }
            Value::from(i64_(0).wrapping_rem(d))
        }
        "max" => Value::from(a.iter().map(to_i64).max().unwrap_or(0)),
        "min" => Value::from(a.iter().map(to_i64).min().unwrap_or(0)),
        "floor" => float(to_f64(&v(0)).floor()),
        "ceil" => float(to_f64(&v(0)).ceil()),
        "round" => {
            let p = 10f64.powi(i64_(1).clamp(0, 15) as i32);
            float((to_f64(&v(0)) * p).round() / p)
        }
        "int" | "int64" | "atoi" => Value::from(i64_(0)),
        "float64" => float(to_f64(&v(0))),
        other => return Err(format!("function {other:?} not defined")),
    })
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)
}

fn int_index(k: &Value) -> Result<usize, String> {
    match k {
        Value::Number(n) => n
            .as_i64()
            .and_then(|i| usize::try_from(i).ok())
            .ok_or_else(|| format!("cannot index with {n}")),
        other => Err(format!("cannot index slice/array with type {}", kind(other))),
    }
}

fn list_of(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

fn obj_of(v: &Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    }
}

/// A number literal as Go's template parser types it: with `.`/`e`/`p` a float, else an int.
pub fn number(text: &str) -> Option<Value> {
    let t = text.replace('_', "");
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, t.strip_prefix('+').unwrap_or(&t).to_string()),
    };
    let lower = body.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()
    } else if lower.contains(['.', 'e', 'p']) {
        None
    } else if lower.len() > 1 && lower.starts_with('0') {
        i64::from_str_radix(&lower, 8).ok()
    } else {
        lower.parse::<i64>().ok()
    };
    if let Some(i) = int {
        return Some(Value::from(if neg { -i } else { i }));
    }
    let f: f64 = lower.parse().ok()?;
    Number::from_f64(if neg { -f } else { f }).map(Value::Number)
}

/// Go's `truth`: false, 0, nil and empty strings, lists and maps are false.
pub fn truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn equal(a: &Value, b: &Value) -> Result<bool, String> {
    Ok(match (a, b) {
        // Go would refuse int vs float; comparing the numbers is what the author meant.
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Null, Value::Null) => true,
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
            return Err(format!("non-comparable type {}", kind(a)))
        }
        _ => return Err(format!("incompatible types for comparison: {} and {}", kind(a), kind(b))),
    })
}

fn order(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => Ok(i.cmp(&j)),
            _ => x
                .as_f64()
                .zip(y.as_f64())
                .and_then(|(x, y)| x.partial_cmp(&y))
                .ok_or_else(|| "invalid number comparison".to_string()),
        },
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        _ => Err(format!("incompatible types for comparison: {} and {}", kind(a), kind(b))),
    }
}

/// Sprig's `toInt64` (cast.ToInt64): floats truncate, strings parse, anything else is 0.
pub fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64),
        Value::String(s) => match number(s.trim()) {
            Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
            _ => 0,
        },
        Value::Bool(b) => i64::from(*b),
        _ => 0,
    }
}

fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => s.trim().parse().unwrap_or(0.0),
        Value::Bool(b) => f64::from(u8::from(*b)),
        _ => 0.0,
    }
}

/// Sprig's `toString`: strings as they are, nil as empty, anything else as `%v`.
pub fn to_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => fmt_v(other),
    }
}

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
            _ => n.as_u64().filter(|_| !n.is_f64()).map(|u| u.to_string()).unwrap_or_else(|| go_float(n.as_f64().unwrap_or(0.0))),
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
    if exp < -4 || exp >= 6 {
        format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        format!("{f}")
    }
}

fn sprint(a: &[Value]) -> String {
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
fn printf(format: &str, args: &[Value]) -> String {
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
                let s = if verb == 's' { fmt_v(arg) } else { fmt_v(arg) };
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
            'c' => char::from_u32(to_i64(arg) as u32).map(String::from).unwrap_or_default(),
            'x' | 'X' => {
                let s = match arg {
                    Value::Number(n) if !n.is_f64() => format!("{:x}", n.as_i64().unwrap_or(0)),
                    other => to_string(other).bytes().map(|b| format!("{b:02x}")).collect(),
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
        let extra: Vec<String> = args.iter().skip(argi).map(|a| format!("{}={}", kind(a), fmt_v(a))).collect();
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

fn write_json(out: &mut String, v: &Value, html: bool, indent: Option<&str>, depth: usize) {
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
                    out.push_str(&e.replace("e-", "e-").replace('e', "e+").replace("e+-", "e-"));
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

fn json_str(out: &mut String, s: &str, html: bool) {
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

fn expand_env(s: &str, env: &Env) -> String {
    // os.ExpandEnv: $NAME and ${NAME}; an unset variable expands to nothing.
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b.get(i) == Some(&b'$') {
            if b.get(i + 1) == Some(&b'{') {
                if let Some(end) = s.get(i + 2..).and_then(|r| r.find('}')) {
                    let name = s.get(i + 2..i + 2 + end).unwrap_or("");
                    out.push_str(&(env.var)(name).unwrap_or_default());
                    i += end + 3;
                    continue;
                }
            } else {
                let mut j = i + 1;
                while b.get(j).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
                    j += 1;
                }
                if j > i + 1 {
                    out.push_str(&(env.var)(s.get(i + 1..j).unwrap_or("")).unwrap_or_default());
                    i = j;
                    continue;
                }
            }
        }
        let ch = s.get(i..).and_then(|r| r.chars().next()).unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    out
}

fn title(s: &str) -> String {
    let mut out = String::new();
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c.is_whitespace();
    }
    out
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn b64enc(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b0 = chunk.first().copied().unwrap_or(0) as u32;
        let b1 = chunk.get(1).copied().unwrap_or(0) as u32;
        let b2 = chunk.get(2).copied().unwrap_or(0) as u32;
        let n = (b0 << 16) | (b1 << 8) | b2;
        for (k, shift) in [18u32, 12, 6, 0].iter().enumerate() {
            if k <= chunk.len() {
                out.push(B64.get(((n >> shift) & 63) as usize).map(|c| *c as char).unwrap_or('='));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64dec(s: &str) -> Result<String, String> {
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in s.trim_end_matches('=').bytes() {
        let v = B64.iter().position(|x| *x == c).ok_or("illegal base64 data")? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    // Sprig returns the decoded bytes as a string.
    Ok(String::from_utf8_lossy(&out).into_owned())
}
