//! Template functions: Go's builtins, KrakenD's `marshal`/`include`, and the Sprig functions
//! listed in [`NAMES`]. Values are JSON values; numbers keep Go's int/float distinction
//! (settings files decode to floats, as Go's `encoding/json` does into `interface{}`).

pub use super::format::{fmt_v, print_top};
use super::format::{printf, sprint, to_json};
use super::text::{b64dec, b64enc, expand_env, title};
use super::values::{equal, order, to_f64};
pub use super::values::{kind, number, to_i64, to_string, truth};
use super::Env;
use serde_json::{Map, Number, Value};
use std::fmt::Write as _;

/// Every function a template may call.
pub const NAMES: &[&str] = &[
    // Go text/template builtins
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "html",
    "js",
    "urlquery",
    // KrakenD
    "marshal",
    "include",
    // Sprig: defaults and flow
    "default",
    "empty",
    "coalesce",
    "ternary",
    "fail",
    // Sprig: environment and encoding
    "env",
    "expandenv",
    "toJson",
    "toRawJson",
    "toPrettyJson",
    "mustToJson",
    "fromJson",
    "b64enc",
    "b64dec",
    // Sprig: strings
    "upper",
    "lower",
    "title",
    "trim",
    "trimAll",
    "trimPrefix",
    "trimSuffix",
    "replace",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "quote",
    "squote",
    "cat",
    "repeat",
    "indent",
    "nindent",
    "trunc",
    "substr",
    "nospace",
    "join",
    "splitList",
    "toString",
    "toStrings",
    "regexMatch",
    "regexReplaceAll",
    // Sprig: lists
    "list",
    "first",
    "last",
    "rest",
    "initial",
    "append",
    "push",
    "prepend",
    "concat",
    "has",
    "uniq",
    "without",
    "compact",
    "reverse",
    "until",
    "untilStep",
    "seq",
    // Sprig: dicts
    "dict",
    "get",
    "set",
    "unset",
    "hasKey",
    "keys",
    "values",
    "pluck",
    "merge",
    "pick",
    "omit",
    // Sprig: numbers and conversion
    "add",
    "add1",
    "sub",
    "mul",
    "div",
    "mod",
    "max",
    "min",
    "floor",
    "ceil",
    "round",
    "int",
    "int64",
    "float64",
    "atoi",
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
            Err(format!(
                "wrong number of args for {name}: want at least {k} got {n}"
            ))
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
                        x.get(i)
                            .cloned()
                            .ok_or_else(|| format!("index out of range: {i}"))?
                    }
                    (Value::Object(m), Value::String(k)) => {
                        m.get(k).cloned().unwrap_or(Value::Null)
                    }
                    (Value::String(x), k) => {
                        let i = int_index(k)?;
                        Value::from(
                            *x.as_bytes()
                                .get(i)
                                .ok_or_else(|| format!("index out of range: {i}"))?
                                as i64,
                        )
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
                    Value::String(
                        x.get(from..to)
                            .ok_or("slice index out of range")?
                            .to_string(),
                    )
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
            Value::String(if name == "nindent" {
                format!("\n{body}")
            } else {
                body
            })
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
            let to = if to < 0 {
                x.len()
            } else {
                (to as usize).min(x.len())
            };
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
        "splitList" => Value::Array(
            s(1).split(s(0).as_str())
                .map(|x| Value::String(x.into()))
                .collect(),
        ),
        "toString" => Value::String(s(0)),
        "toStrings" => Value::Array(
            list_of(&v(0))
                .iter()
                .map(|x| Value::String(to_string(x)))
                .collect(),
        ),
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
        "has" => Value::Bool(
            list_of(&v(1))
                .iter()
                .any(|x| equal(x, &v(0)).unwrap_or(false)),
        ),
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
            Value::Array(
                list_of(&v(0))
                    .into_iter()
                    .filter(|x| !drop.contains(x))
                    .collect(),
            )
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
            while step != 0
                && ((step > 0 && i < stop) || (step < 0 && i > stop))
                && out.len() < 1_000_000
            {
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
            let step = if n == 3 {
                i64_(1)
            } else if stop >= start {
                1
            } else {
                -1
            };
            let mut out = Vec::new();
            let mut i = start;
            while step != 0
                && ((step > 0 && i <= stop) || (step < 0 && i >= stop))
                && out.len() < 1_000_000
            {
                out.push(i.to_string());
                i += step;
            }
            Value::String(out.join(" "))
        }
        "dict" => {
            let mut m = Map::new();
            for pair in a.chunks(2) {
                let k = pair.first().map(to_string).unwrap_or_default();
                m.insert(
                    k,
                    pair.get(1).cloned().unwrap_or(Value::String(String::new())),
                );
            }
            Value::Object(m)
        }
        "get" => match v(0) {
            Value::Object(m) => m
                .get(&s(1))
                .cloned()
                .unwrap_or(Value::String(String::new())),
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
            let mut ks: Vec<String> = a
                .iter()
                .flat_map(|d| obj_of(d).keys().cloned().collect::<Vec<_>>())
                .collect();
            ks.sort();
            Value::Array(ks.into_iter().map(Value::String).collect())
        }
        "values" => Value::Array(obj_of(&v(0)).values().cloned().collect()),
        "pluck" => {
            let k = s(0);
            Value::Array(
                a.iter()
                    .skip(1)
                    .filter_map(|d| obj_of(d).get(&k).cloned())
                    .collect(),
            )
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
            Value::Object(
                obj_of(&v(0))
                    .into_iter()
                    .filter(|(k, _)| names.contains(k) == keep)
                    .collect(),
            )
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
    Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn int_index(k: &Value) -> Result<usize, String> {
    match k {
        Value::Number(n) => n
            .as_i64()
            .and_then(|i| usize::try_from(i).ok())
            .ok_or_else(|| format!("cannot index with {n}")),
        other => Err(format!(
            "cannot index slice/array with type {}",
            kind(other)
        )),
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
