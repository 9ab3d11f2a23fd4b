//! Values as Go's templates and Sprig see them: number literals, truth, comparison and the
//! conversions Sprig's functions use.

use super::format::fmt_v;
use serde_json::{Number, Value};
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

pub(crate) fn equal(a: &Value, b: &Value) -> Result<bool, String> {
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
        _ => {
            return Err(format!(
                "incompatible types for comparison: {} and {}",
                kind(a),
                kind(b)
            ))
        }
    })
}

pub(crate) fn order(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
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
        _ => Err(format!(
            "incompatible types for comparison: {} and {}",
            kind(a),
            kind(b)
        )),
    }
}

/// Sprig's `toInt64` (cast.ToInt64): floats truncate, strings parse, anything else is 0.
pub fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n
            .as_i64()
            .unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64),
        Value::String(s) => match number(s.trim()) {
            Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
            _ => 0,
        },
        Value::Bool(b) => i64::from(*b),
        _ => 0,
    }
}

pub(crate) fn to_f64(v: &Value) -> f64 {
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
