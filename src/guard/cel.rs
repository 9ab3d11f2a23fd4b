//! `validation/cel`: CEL expressions that reject a request before the backends are called
//! (`req_*` variables) or a response after (`resp_*`), at endpoint and backend level
//! (krakend-cel), compiled once at plan time with the `cel-interpreter` crate.
//!
//! KrakenD (krakend-cel): the namespace is a list of `{"check_expr": "..."}`. An expression
//! whose text contains `req` runs before the call, `resp` after it, `JWT` in the JWT
//! validator (krakend-cel's `Rejecter`, endpoint level only, with `JWT` the validated token's
//! claims and `now`: any result but `true` answers a bare 401, before the roles and scopes
//! are checked). Any result but `true`, or an evaluation error, aborts with the error
//! `request aborted by evaluator #N` (N counts within the before or after list), which the
//! endpoint answers as a 500 (a failed backend at backend level).
//!
//! Where we are stricter: KrakenD logs and drops an expression that does not parse (and then
//! the whole namespace) or that fails its type check, and never runs one that names no `req`,
//! `resp` or `JWT`; here each of those is a `check` error, so no configured check is ever
//! silently skipped. Variables are `now` (RFC 3339 text, use `timestamp(now)`), `req_method`,
//! `req_path`, `req_params` (names with their first letter upper-cased, as lura does),
//! `req_headers`, `req_querystring`, `resp_completed`, `resp_metadata_status`,
//! `resp_metadata_headers` and `resp_data`.

use std::collections::HashMap;
use std::sync::Arc;

use cel::objects::{Key, Map};
use cel::{Context, Program, Value};
use serde_json::Value as Json;

pub const NS: &str = "validation/cel";

/// The variables an expression may use.
const VARS: &[&str] = &[
    "now",
    "req_method",
    "req_path",
    "req_params",
    "req_headers",
    "req_querystring",
    "resp_completed",
    "resp_metadata_status",
    "resp_metadata_headers",
    "resp_data",
    "JWT",
];

/// One compiled expression.
struct Check {
    source: String,
    program: Program,
}

/// The compiled checks of one `validation/cel` block.
pub struct CelChecks {
    pre: Vec<Check>,
    post: Vec<Check>,
    /// Expressions naming `JWT`: run by the endpoint's JWT validator.
    jwt: Vec<Check>,
}

impl std::fmt::Debug for CelChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CelChecks")
            .field(
                "pre",
                &self.pre.iter().map(|c| &c.source).collect::<Vec<_>>(),
            )
            .field(
                "post",
                &self.post.iter().map(|c| &c.source).collect::<Vec<_>>(),
            )
            .field(
                "jwt",
                &self.jwt.iter().map(|c| &c.source).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The `check_expr` texts of a block, in order; `Err` when the block is not KrakenD's list.
fn expressions(v: &Json) -> Result<Vec<String>, String> {
    let list = v
        .as_array()
        .ok_or("expected a list of {\"check_expr\": \"...\"} objects")?;
    let mut out = Vec::with_capacity(list.len());
    for (i, d) in list.iter().enumerate() {
        let expr = d
            .get("check_expr")
            .and_then(Json::as_str)
            .ok_or_else(|| format!("[{i}]: expected a \"check_expr\" string"))?;
        if expr.trim().is_empty() {
            return Err(format!("[{i}].check_expr: empty expression"));
        }
        out.push(expr.to_string());
    }
    Ok(out)
}

/// Does any expression of the block use the JWT?
pub fn uses_jwt(v: &Json) -> bool {
    expressions(v).is_ok_and(|e| e.iter().any(|x| x.contains("JWT")))
}

impl CelChecks {
    /// Compile a block. Every problem is reported, one line each.
    pub fn compile(v: &Json) -> Result<CelChecks, Vec<String>> {
        let exprs = expressions(v).map_err(|e| vec![e])?;
        let mut errors = Vec::new();
        let mut checks = CelChecks {
            pre: Vec::new(),
            post: Vec::new(),
            jwt: Vec::new(),
        };
        for (i, source) in exprs.into_iter().enumerate() {
            let program = match Program::compile(&source) {
                Ok(p) => p,
                Err(e) => {
                    errors.push(format!("[{i}].check_expr: does not parse: {e}"));
                    continue;
                }
            };
            let refs = program.references();
            let bound = bound_names(&source);
            let unknown: Vec<&str> = refs
                .variables()
                .into_iter()
                .filter(|v| !VARS.contains(v) && !bound.iter().any(|b| b == v))
                .collect();
            if !unknown.is_empty() {
                errors.push(format!(
                    "[{i}].check_expr: unknown variable(s) {unknown:?}; KrakenD offers {VARS:?}"
                ));
                continue;
            }
            let (pre, post, jwt) = (
                source.contains("req"),
                source.contains("resp"),
                source.contains("JWT"),
            );
            if !(pre || post || jwt) {
                errors.push(format!(
                    "[{i}].check_expr: uses no req_, resp_ or JWT variable, so KrakenD never \
                     evaluates it"
                ));
                continue;
            }
            if jwt {
                checks.jwt.push(Check {
                    source: source.clone(),
                    program: compile_again(&source)?,
                });
            }
            if pre {
                checks.pre.push(Check {
                    source: source.clone(),
                    program: compile_again(&source)?,
                });
            }
            if post {
                checks.post.push(Check { source, program });
            }
        }
        if errors.is_empty() {
            Ok(checks)
        } else {
            Err(errors)
        }
    }

    pub fn has_pre(&self) -> bool {
        !self.pre.is_empty()
    }

    pub fn has_post(&self) -> bool {
        !self.post.is_empty()
    }

    pub fn has_jwt(&self) -> bool {
        !self.jwt.is_empty()
    }

    /// The checks on a validated token's claims (the JWT validator's rejecter). `Err` names
    /// the expression that refused, for the log.
    pub fn check_jwt(
        &self,
        claims: &serde_json::Map<String, Json>,
        now: &str,
    ) -> Result<(), String> {
        if self.jwt.is_empty() {
            return Ok(());
        }
        with_scope(|ctx| {
            ctx.add_variable_from_value("now", now.to_string());
            let map: HashMap<Key, Value> = claims
                .iter()
                .map(|(k, v)| (Key::from(k.clone()), from_json(v)))
                .collect();
            ctx.add_variable_from_value("JWT", Value::Map(Map::from(map)));
            for (i, c) in self.jwt.iter().enumerate() {
                match c.program.execute(ctx) {
                    Ok(Value::Bool(true)) => {}
                    // KrakenD: false, a non-boolean result or an evaluation error reject.
                    other => return Err(format!("rejecter #{i} ({}) result: {other:?}", c.source)),
                }
            }
            Ok(())
        })
    }

    /// The checks before the call. `Err` is KrakenD's error text.
    pub fn check_pre(&self, req: &Request<'_>, now: &str) -> Result<(), String> {
        if self.pre.is_empty() {
            return Ok(());
        }
        with_scope(|ctx| {
            ctx.add_variable_from_value("now", now.to_string());
            ctx.add_variable_from_value("req_method", req.method.to_string());
            ctx.add_variable_from_value("req_path", req.path.to_string());
            let params: HashMap<Key, Value> = req
                .params
                .iter()
                .map(|(k, v)| (Key::from(lura_param_name(k)), Value::from(v.clone())))
                .collect();
            ctx.add_variable_from_value("req_params", Value::Map(Map::from(params)));
            ctx.add_variable_from_value("req_headers", multi_map(&req.headers));
            ctx.add_variable_from_value("req_querystring", multi_map(&req.query));
            run(&self.pre, ctx)
        })
    }

    /// The checks after the call, on its data.
    pub fn check_post(&self, resp: &Response<'_>, now: &str) -> Result<(), String> {
        if self.post.is_empty() {
            return Ok(());
        }
        with_scope(|ctx| {
            ctx.add_variable_from_value("now", now.to_string());
            ctx.add_variable_from_value("resp_completed", resp.completed);
            ctx.add_variable_from_value("resp_metadata_status", i64::from(resp.status));
            ctx.add_variable_from_value("resp_metadata_headers", multi_map(&resp.headers));
            ctx.add_variable_from_value("resp_data", from_json(resp.data));
            run(&self.post, ctx)
        })
    }
}

/// The names a macro binds (`list.exists(x, ...)`): the parser reports them among the
/// referenced variables, but they are not free.
fn bound_names(source: &str) -> Vec<String> {
    static MACRO: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let Some(re) = MACRO
        .get_or_init(|| {
            regex::Regex::new(
                r"\.(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,",
            )
            .ok()
        })
        .as_ref()
    else {
        return Vec::new();
    };
    re.captures_iter(source)
        .filter_map(|c| c.get(1).map(|m| m.as_str().to_string()))
        .collect()
}

thread_local! {
    /// The standard functions, registered once per thread (per core): building them is most of
    /// the cost of a fresh context. Each check runs in a child scope holding its variables.
    static ROOT: Context<'static, 'static> = Context::default();
}

fn with_scope<R>(f: impl FnOnce(&mut Context<'_, '_>) -> R) -> R {
    ROOT.with(|root| f(&mut root.new_inner_scope()))
}

/// `Program` is not `Clone`; the parse already succeeded once.
fn compile_again(source: &str) -> Result<Program, Vec<String>> {
    Program::compile(source).map_err(|e| vec![format!("does not parse: {e}")])
}

fn run(checks: &[Check], ctx: &Context<'_, '_>) -> Result<(), String> {
    for (i, c) in checks.iter().enumerate() {
        match c.program.execute(ctx) {
            Ok(Value::Bool(true)) => {}
            // KrakenD: false, a non-boolean result or an evaluation error all abort.
            _ => return Err(format!("request aborted by evaluator #{i}")),
        }
    }
    Ok(())
}

/// What a `req_*` check sees.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub params: &'a [(&'a str, String)],
    /// Canonical header names, each value in order.
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
}

/// What a `resp_*` check sees.
pub struct Response<'a> {
    pub completed: bool,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub data: &'a Json,
}

/// `now` as KrakenD gives it: the current UTC time as RFC 3339 text (Go's
/// `time.Now().Format(time.RFC3339)` on a UTC host).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// KrakenD (lura): path parameters reach the pipe with their first letter upper-cased.
fn lura_param_name(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `map(string, list(string))` from repeated pairs.
fn multi_map(pairs: &[(String, String)]) -> Value {
    let mut m: HashMap<Key, Vec<Value>> = HashMap::new();
    for (k, v) in pairs {
        m.entry(Key::from(k.clone()))
            .or_default()
            .push(Value::from(v.clone()));
    }
    let m: HashMap<Key, Value> = m
        .into_iter()
        .map(|(k, v)| (k, Value::List(Arc::new(v))))
        .collect();
    Value::Map(Map::from(m))
}

/// JSON data as CEL values (integers as `int` when they fit, like cel-go's JSON numbers turned
/// into Go numbers; others as `double`).
pub fn from_json(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::from(s.clone()),
        Json::Array(a) => Value::List(Arc::new(a.iter().map(from_json).collect())),
        Json::Object(o) => {
            let m: HashMap<Key, Value> = o
                .iter()
                .map(|(k, v)| (Key::from(k.clone()), from_json(v)))
                .collect();
            Value::Map(Map::from(m))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req<'a>(params: &'a [(&'a str, String)], headers: &[(&str, &str)]) -> Request<'a> {
        Request {
            method: "GET",
            path: "/cel/1",
            params,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            query: vec![],
        }
    }

    #[test]
    fn krakends_fixture_expressions_pass_and_fail_as_in_the_specs() {
        let c = CelChecks::compile(&json!([
            {"check_expr": "'something' in req_headers['X-Header']"},
            {"check_expr": "int(req_params.Id) % 2 == 0"}
        ]))
        .unwrap();
        let now = "2026-12-07T00:00:00Z";
        let ten = [("id", "10".to_string())];
        assert!(c
            .check_pre(&req(&ten, &[("X-Header", "something")]), now)
            .is_ok());
        let one = [("id", "1".to_string())];
        assert_eq!(
            c.check_pre(&req(&one, &[("X-Header", "something")]), now),
            Err("request aborted by evaluator #1".into())
        );
        // A missing header is an evaluation error: rejected too.
        assert!(c.check_pre(&req(&ten, &[]), now).is_err());
    }

    #[test]
    fn response_checks_see_data_and_timestamps_work() {
        let c = CelChecks::compile(&json!([
            {"check_expr": "resp_data.a.b > 1 && resp_completed"},
            {"check_expr": "timestamp(now) > timestamp('2020-01-01T00:00:00Z') && has(resp_data.a)"}
        ]))
        .unwrap();
        assert!(!c.has_pre());
        let data = json!({"a": {"b": 2}});
        let r = |completed| Response {
            completed,
            status: 200,
            headers: vec![],
            data: &data,
        };
        assert!(c.check_post(&r(true), "2026-12-07T00:00:00Z").is_ok());
        assert!(c.check_post(&r(false), "2026-12-07T00:00:00Z").is_err());
    }

    #[test]
    fn now_is_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_601_600), "2026-12-07T00:00:00Z");
        assert_eq!(rfc3339(951_782_400 + 3661), "2000-02-29T01:01:01Z");
    }

    #[test]
    fn expressions_that_do_not_compile_or_never_run_are_refused() {
        assert!(CelChecks::compile(&json!([{"check_expr": "req_path =="}])).is_err());
        assert!(CelChecks::compile(&json!([{"check_expr": "foo == 1"}])).is_err());
        assert!(CelChecks::compile(&json!([
            {"check_expr": "req_headers['X'].exists(h, h == 'a') && [1].all(x, x > 0)"}
        ]))
        .is_ok());
        assert!(CelChecks::compile(&json!([{"check_expr": "1 == 1"}])).is_err());
        assert!(CelChecks::compile(&json!({"check_expr": "req_path"})).is_err());
        assert!(uses_jwt(&json!([{"check_expr": "size(JWT.roles) > 1"}])));
    }
}
