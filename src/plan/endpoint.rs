//! The compiled form of one endpoint and its backends: filters, URL templates, shaping,
//! sequential/static/concurrent settings, hosts (names resolved at run time, see backend::dns).

use crate::backend::ratelimit::BackendLimit;
use crate::backend::url::UrlTemplate;
use crate::backend::Hosts;
use crate::config;
use crate::config::namespaces::Level;
use crate::config::pending::{Pending, Subject};
use crate::guard::ratelimit::config::{ProxyConfig, RouterConfig};
use crate::guard::ratelimit::router::{ClientIpRule, RouterLimit};
use crate::modifier::lua::{self, LuaScript};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Json,
    JsonCollection,
    String,
    NoOp,
    Xml,
    Yaml,
    /// Chosen per request from `Accept` (json, yaml or xml).
    Negotiate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Json,
    SafeJson,
    String,
    NoOp,
}

/// Which client names (headers or query keys) are forwarded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameFilter {
    All,
    /// Header names are stored lower-case (compared case-insensitively); query keys exactly.
    Only(Vec<String>),
}

impl NameFilter {
    fn compile(list: &[String], lower: bool) -> NameFilter {
        if list.iter().any(|n| n == "*") {
            return NameFilter::All;
        }
        NameFilter::Only(
            list.iter()
                .map(|n| {
                    if lower {
                        n.to_ascii_lowercase()
                    } else {
                        n.clone()
                    }
                })
                .collect(),
        )
    }

    pub fn allows_header(&self, name: &[u8]) -> bool {
        match self {
            NameFilter::All => true,
            NameFilter::Only(list) => list.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(name)),
        }
    }

    pub fn allows_key(&self, key: &str) -> bool {
        match self {
            NameFilter::All => true,
            NameFilter::Only(list) => list.iter().any(|n| n == key),
        }
    }
}

pub struct EndpointPlan {
    /// `telemetry/opentelemetry`: this endpoint's metric labels (set by [`crate::plan::Plan::compile`]).
    pub labels: Option<Arc<crate::telemetry::otel::EndpointLabels>>,
    /// `telemetry/metrics`: the name KrakenD's keys carry (the endpoint as configured).
    pub stats_name: Arc<str>,
    pub path: String,
    pub method: String,
    pub timeout: Duration,
    /// `public, max-age=N` when cache_ttl > 0.
    pub cache_control: Option<Bytes>,
    pub output: Output,
    pub query: NameFilter,
    pub headers: NameFilter,
    pub backends: Vec<BackendPlan>,
    /// Endpoint-level `proxy.flatmap_filter` (KrakenD applies it only with several backends).
    pub flatmap: Option<crate::json::EndpointFlatmap>,
    /// Set when the endpoint (or its service, or one of its backends) uses something not built
    /// that guards access or changes what is sent or returned (`config::pending`): it answers
    /// 501 with this JSON body, before calling any backend, instead of answering without it.
    pub blocked: Option<Bytes>,
    /// `proxy.sequential` on an endpoint with several backends: call them one after the other,
    /// later url_patterns reading `{respN_field}` from earlier results.
    pub sequential: bool,
    /// `proxy.static`: data merged into the response when its strategy matches.
    pub static_response: Option<StaticResponse>,
    /// `concurrent_calls`: each backend request fired this many times, the first success wins
    /// (1 = a single call; never more than 1 for no-op).
    pub concurrent_calls: usize,
    /// `qos/ratelimit/router`: checked after the 501 refusal, before any backend is called.
    pub rate_limit: Option<crate::guard::ratelimit::router::RouterLimit>,
    /// Endpoint-level `security/bot-detector`: checked after the 501 refusal, first of all.
    pub bot_detector: Option<crate::guard::botdetector::BotDetector>,
    /// `auth/validator`: checked after the bot detector, before the router rate limit.
    pub jwt: Option<crate::guard::jwt::Validator>,
    /// `auth/signer`: signs members of the response instead of rendering it as usual.
    pub signer: Option<crate::guard::jwt::signer::Signer>,
    /// `modifier/lua-endpoint`: runs on the request after the bot detector, before the
    /// router rate limit (KrakenD's handler order).
    pub lua_endpoint: Option<Arc<LuaScript>>,
    /// `modifier/lua-proxy`: around the merge of the backends.
    pub lua_proxy: Option<Arc<LuaScript>>,
    /// `sequential_propagated_params`: `(N, path)` of `respN_path` values handed to Lua as
    /// `RespN_path` params (`path` empty: the whole response).
    pub propagated: Vec<(usize, String)>,
    /// Endpoint-level `validation/cel`: request checks after the rate limit, response checks
    /// on the merged data.
    pub cel: Option<crate::guard::cel::CelChecks>,
    /// `validation/json-schema`: the request body, after the CEL request checks.
    pub json_schema: Option<crate::guard::jsonschema::BodySchema>,
}

/// `proxy.static` compiled: the data (as shaped fields) and when it applies.
#[derive(Clone, Debug)]
pub struct StaticResponse {
    pub data: crate::json::Fields,
    pub strategy: StaticStrategy,
}

/// When `proxy.static` data is merged in (lura `proxy/static.go`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaticStrategy {
    /// Every time, even when the pipe failed.
    Always,
    /// When the pipe returned no error (a partial merge is an error).
    Success,
    /// When the pipe returned no error and a complete response.
    Complete,
    /// When the pipe returned an error (a total failure becomes a 200 with the data).
    Errored,
    /// When there is no response or it is not complete.
    Incomplete,
}

impl StaticStrategy {
    fn parse(name: &str) -> Option<StaticStrategy> {
        Some(match name {
            "always" => StaticStrategy::Always,
            "success" => StaticStrategy::Success,
            "complete" => StaticStrategy::Complete,
            "errored" => StaticStrategy::Errored,
            "incomplete" => StaticStrategy::Incomplete,
            _ => return None,
        })
    }
}

pub struct BackendPlan {
    /// `telemetry/opentelemetry`: this backend's metric labels (set by [`crate::plan::Plan::compile`]).
    pub labels: Option<Arc<crate::telemetry::otel::BackendLabels>>,
    /// `telemetry/metrics`: the name KrakenD's keys carry (lura's `url_pattern` template).
    pub stats_name: Arc<str>,
    /// The hosts to balance over: fixed, or `sd: dns` SRV answers (names resolved at run time).
    pub hosts: Hosts,
    pub url: UrlTemplate,
    pub method: Bytes,
    pub encoding: Encoding,
    pub is_collection: bool,
    /// Backend-level second filters (`None` = no extra filtering).
    pub headers: Option<NameFilter>,
    pub query: Option<NameFilter>,
    pub return_error_code: bool,
    pub return_error_details: Option<String>,
    pub url_pattern: String,
    /// decode -> target -> allow|deny -> mapping -> group (or flatmap), compiled once.
    pub shape: crate::json::BackendShape,
    /// `qos/ratelimit/proxy`: calls over it fail without reaching the backend.
    pub rate_limit: Option<crate::backend::ratelimit::BackendLimit>,
    /// `qos/circuit-breaker`: wraps the rate limit and the call (per process).
    pub circuit_breaker: Option<crate::backend::breaker::CircuitBreaker>,
    /// `qos/http-cache`: GET/HEAD responses reused per RFC 9111 (per-core stores).
    pub http_cache: Option<crate::backend::httpcache::HttpCache>,
    /// `modifier/lua-backend`: inside the rate limit, before the HTTP client.
    pub lua: Option<Arc<LuaScript>>,
    /// `modifier/martian`: around the HTTP client (inside the Lua backend stage).
    pub martian: Option<crate::modifier::martian::Martian>,
    /// Backend-level `validation/cel`: request checks before the call, response checks on
    /// the shaped data.
    pub cel: Option<crate::guard::cel::CelChecks>,
}

/// The version text in `X-Krakend` and `User-Agent`: ours, not KrakenD's (intended difference).
pub(super) fn compile_endpoint(
    e: &config::Endpoint,
    refusal: Option<&Pending>,
    ip: &ClientIpRule,
    trusted_error: Option<&str>,
    pools: &crate::redis::Pools,
) -> Result<EndpointPlan, Vec<String>> {
    let mut errors = Vec::new();
    let output = match e.output_encoding.as_str() {
        "json" => Output::Json,
        "json-collection" => Output::JsonCollection,
        "string" => Output::String,
        "no-op" => Output::NoOp,
        "xml" => Output::Xml,
        "negotiate" => Output::Negotiate,
        // KrakenD CE registers no `yaml` render (lura falls back to JSON); we render the YAML
        // that was asked for (README: where we differ).
        "yaml" => Output::Yaml,
        // KrakenD (lura `getRender`): an unknown name falls back to the render named after the
        // single backend's encoding, else JSON.
        _ => match e.backend.as_slice() {
            [b] if b.encoding == "xml" => Output::Xml,
            [b] if b.encoding == "string" => Output::String,
            _ => Output::Json,
        },
    };
    let mut backends = Vec::with_capacity(e.backend.len());
    for (i, b) in e.backend.iter().enumerate() {
        let place = format!("{} {} backend[{i}] {}", e.method, e.endpoint, b.url_pattern);
        match compile_backend(b, refusal.is_some(), &place, pools) {
            Ok(bp) => backends.push(bp),
            Err(m) => errors.push(format!("backend[{i}]: {m}")),
        }
    }
    let blocked = refusal.map(refusal_body);
    let flatmap = if e.backend.len() > 1 {
        match crate::json::EndpointFlatmap::compile(e.extra_config.get("proxy")) {
            Ok(f) if f.is_active() => Some(f),
            Ok(_) => None,
            Err(m) => {
                errors.push(format!("proxy.flatmap_filter: {m}"));
                None
            }
        }
    } else {
        None
    };
    let proxy_ns = e.extra_config.get("proxy");
    let sequential = compile_sequential(proxy_ns, &mut errors);
    let static_response = compile_static(proxy_ns);
    let rate_limit = match e.extra_config.get(RouterConfig::NS) {
        Some(v) => {
            let params = placeholders(&e.endpoint);
            RouterLimit::compile(v, &e.method, &e.endpoint, &params, ip, trusted_error, pools)
                .unwrap_or_else(|m| {
                    errors.push(m);
                    None
                })
        }
        None => None,
    };
    let bot_detector = match e.extra_config.get(crate::guard::botdetector::NS) {
        Some(v) => crate::guard::botdetector::BotDetector::compile(v)
            .map_err(|m| errors.push(format!("{}: {m}", crate::guard::botdetector::NS)))
            .ok(),
        None => None,
    };
    let jwt = match e.extra_config.get(crate::guard::jwt::NS) {
        Some(v) => {
            let mut claims: Vec<String> = Vec::new();
            for b in &backends {
                for c in b.url.jwt_claims() {
                    if !claims.iter().any(|x| x == c) {
                        claims.push(c.to_string());
                    }
                }
            }
            // The endpoint's CEL expressions on `JWT` run in the validator (compile errors
            // are reported with the endpoint's own CEL block below).
            let rejecter = e
                .extra_config
                .get(crate::guard::cel::NS)
                .and_then(|c| crate::guard::cel::CelChecks::compile(c).ok());
            crate::guard::jwt::Validator::compile(v, claims, rejecter)
                .map_err(|m| errors.push(m))
                .ok()
        }
        None => {
            // KrakenD: only krakend-jose runs the JWT rejecter; without a validator the
            // expressions are never evaluated. Skipping a configured check silently is not
            // an option here.
            if e.extra_config
                .get(crate::guard::cel::NS)
                .is_some_and(crate::guard::cel::uses_jwt)
            {
                errors.push(format!(
                    "{}: an expression uses JWT but the endpoint has no auth/validator: KrakenD \
                     never evaluates it (add the validator or remove the expression)",
                    crate::guard::cel::NS
                ));
            }
            None
        }
    };
    let signer = match e.extra_config.get(crate::guard::jwt::signer::NS) {
        // The signer works on shaped data; a no-op endpoint streams its backend's body.
        Some(_) if output == Output::NoOp => {
            errors.push(format!(
                "{}: not supported on a no-op endpoint (there is no data to sign)",
                crate::guard::jwt::signer::NS
            ));
            None
        }
        Some(v) => crate::guard::jwt::signer::Signer::compile(v)
            .map_err(|m| errors.push(m))
            .ok(),
        None => None,
    };
    let mut lua_block = |ns: &str| {
        lua::from_extra(&e.extra_config, ns).unwrap_or_else(|m| {
            errors.push(m);
            None
        })
    };
    let lua_endpoint = lua_block(lua::ENDPOINT_NS);
    let lua_proxy = lua_block(lua::PROXY_NS);
    let propagated = compile_propagated(proxy_ns);
    let cel = compile_cel(&e.extra_config)
        .map_err(|m| errors.extend(m))
        .ok()
        .flatten();
    let json_schema = match e.extra_config.get(crate::guard::jsonschema::NS) {
        Some(v) => crate::guard::jsonschema::BodySchema::compile(v)
            .map_err(|m| errors.push(format!("{}: {m}", crate::guard::jsonschema::NS)))
            .ok(),
        None => None,
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let ttl = e.cache_ttl.as_secs();
    Ok(EndpointPlan {
        labels: None,
        stats_name: Arc::from(e.endpoint.as_str()),
        path: e.endpoint.clone(),
        method: e.method.clone(),
        timeout: e.timeout,
        cache_control: (ttl > 0).then(|| Bytes::from(format!("public, max-age={ttl}"))),
        output,
        query: NameFilter::compile(&e.input_query_strings, false),
        headers: if e.input_headers.is_empty() {
            // KrakenD: with no input_headers, only Content-Type reaches the backend.
            NameFilter::Only(vec!["content-type".into()])
        } else {
            NameFilter::compile(&e.input_headers, true)
        },
        backends,
        flatmap,
        blocked,
        sequential,
        static_response,
        // KrakenD: concurrent calls are for shaped responses; a no-op endpoint streams one call.
        concurrent_calls: if output == Output::NoOp {
            1
        } else {
            e.concurrent_calls.max(1) as usize
        },
        rate_limit,
        bot_detector,
        jwt,
        signer,
        lua_endpoint,
        lua_proxy,
        propagated,
        cel,
        json_schema,
    })
}

/// `sequential_propagated_params` entries `respN_a.b` (or `respN` for the whole response), for
/// Lua. Malformed entries were reported by [`compile_sequential`] or never match.
fn compile_propagated(proxy_ns: Option<&serde_json::Value>) -> Vec<(usize, String)> {
    let Some(list) = proxy_ns
        .and_then(|p| p.get("sequential_propagated_params"))
        .and_then(serde_json::Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .filter_map(serde_json::Value::as_str)
        .filter_map(|s| {
            let rest = s.strip_prefix("resp")?;
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            let n: usize = rest.get(..digits)?.parse().ok()?;
            let path = rest.get(digits..)?;
            let path = match path.strip_prefix('_') {
                Some(p) => p.to_string(),
                None if path.is_empty() => String::new(),
                None => return None,
            };
            Some((n, path))
        })
        .collect()
}

/// `validation/cel` at any level: `None` when absent or when no expression runs here.
fn compile_cel(
    extra: &crate::config::ExtraConfig,
) -> Result<Option<crate::guard::cel::CelChecks>, Vec<String>> {
    let ns = crate::guard::cel::NS;
    let Some(v) = extra.get(ns) else {
        return Ok(None);
    };
    let c = crate::guard::cel::CelChecks::compile(v).map_err(|m| {
        m.into_iter()
            .map(|m| format!("{ns}{m}"))
            .collect::<Vec<_>>()
    })?;
    Ok((c.has_pre() || c.has_post()).then_some(c))
}

/// The `{name}` placeholders of an endpoint path.
fn placeholders(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(str::to_string)
        .collect()
}

/// `proxy.sequential` and `proxy.sequential_propagated_params`. Sequential only means something
/// with several backends (lura skips the merger for one).
fn compile_sequential(proxy_ns: Option<&serde_json::Value>, errors: &mut Vec<String>) -> bool {
    // KrakenD: anything but `true` is false (lura `v.(bool)`); the decoder warned.
    let sequential = proxy_ns
        .and_then(|p| p.get("sequential"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    // KrakenD: `sequential_propagated_params` exposes earlier results as `RespN_x` request params
    // to Lua and CEL only; we have neither, so it is accepted and checked but changes nothing.
    // (lura panics on a non-string entry; we refuse it at load time.)
    if let Some(p) = proxy_ns.and_then(|p| p.get("sequential_propagated_params")) {
        let ok = p
            .as_array()
            .is_some_and(|a| a.iter().all(serde_json::Value::is_string));
        if !ok {
            errors.push(
                "proxy.sequential_propagated_params: expected an array of strings such as \
                 \"resp0_id\" (KrakenD panics on anything else)"
                    .into(),
            );
        }
    }
    // KrakenD: `{respN_x}` naming a backend not called yet is never filled (lura skips it);
    // the decoder warned, and the URL renders it empty.
    sequential
}

/// `proxy.static`: `{"data": {...}, "strategy": "..."}`.
// KrakenD (lura `getStaticMiddlewareCfg`): without a `data` object the block is ignored; a
// missing, non-string or unknown strategy means "always". The decoder warned about both.
fn compile_static(proxy_ns: Option<&serde_json::Value>) -> Option<StaticResponse> {
    let s = proxy_ns.and_then(|p| p.get("static"))?;
    let data = s.get("data").filter(|d| d.is_object())?;
    let strategy = s
        .get("strategy")
        .and_then(serde_json::Value::as_str)
        .and_then(StaticStrategy::parse)
        .unwrap_or(StaticStrategy::Always);
    Some(StaticResponse {
        data: crate::json::from_value(data),
        strategy,
    })
}

/// `blocked`: the endpoint answers 501 without calling any backend, so hosts that cannot be
/// called (`sd_scheme: https`, say) are no reason to refuse the config.
fn compile_backend(
    b: &config::Backend,
    blocked: bool,
    place: &str,
    pools: &crate::redis::Pools,
) -> Result<BackendPlan, String> {
    let hosts = match Hosts::compile(b) {
        Ok(h) => h,
        Err(_) if blocked => Hosts::Static(Vec::new()),
        Err(e) => return Err(e),
    };
    let rate_limit = match b.extra_config.get(ProxyConfig::NS) {
        Some(v) => BackendLimit::compile(v, place, pools)?,
        None => None,
    };
    let circuit_breaker = match b.extra_config.get(crate::backend::breaker::NS) {
        Some(v) => Some(
            crate::backend::breaker::CircuitBreaker::compile(v, place)
                .map_err(|m| format!("{}: {m}", crate::backend::breaker::NS))?,
        ),
        None => None,
    };
    let http_cache = match b.extra_config.get(crate::backend::httpcache::NS) {
        Some(v) => Some(crate::backend::httpcache::HttpCache::compile(v)?),
        None => None,
    };
    let encoding = match b.encoding.as_str() {
        "safejson" => Encoding::SafeJson,
        "string" => Encoding::String,
        "no-op" => Encoding::NoOp,
        _ => Encoding::Json,
    };
    let http_ns = b.extra_config.get("backend/http");
    let return_error_code = http_ns
        .and_then(|v| v.get("return_error_code"))
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let return_error_details = http_ns
        .and_then(|v| v.get("return_error_details"))
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let shape = crate::json::BackendShape::compile(b)?;
    let lua = lua::from_extra(&b.extra_config, lua::BACKEND_NS)?;
    let martian = crate::modifier::martian::from_extra(&b.extra_config)?;
    let cel = compile_cel(&b.extra_config).map_err(|m| m.join("; "))?;
    // KrakenD: the JWT rejecter reads the endpoint's block only; a backend's expression on
    // `JWT` is never evaluated (or, also naming req/resp, always fails unbound).
    if b.extra_config
        .get(crate::guard::cel::NS)
        .is_some_and(crate::guard::cel::uses_jwt)
    {
        return Err(format!(
            "{}: JWT is only available to endpoint-level expressions (KrakenD never evaluates \
             it at backend level)",
            crate::guard::cel::NS
        ));
    }
    let second =
        |list: &[String], lower: bool| (!list.is_empty()).then(|| NameFilter::compile(list, lower));
    Ok(BackendPlan {
        labels: None,
        stats_name: Arc::from(crate::telemetry::stats::lura_template(&b.url_pattern).as_str()),
        hosts,
        url: UrlTemplate::compile(&b.url_pattern),
        method: Bytes::from(b.method.clone()),
        encoding,
        is_collection: b.is_collection,
        headers: second(&b.input_headers, true),
        query: second(&b.input_query_strings, false),
        return_error_code,
        return_error_details,
        url_pattern: b.url_pattern.clone(),
        shape,
        rate_limit,
        circuit_breaker,
        http_cache,
        lua,
        martian,
        cel,
    })
}

/// The 501 body of an endpoint that fails closed: what is not built and where it is.
fn refusal_body(p: &Pending) -> Bytes {
    let who = match p.level {
        Level::Service | Level::AsyncAgent => "the service",
        Level::Endpoint => "this endpoint",
        Level::Backend => "a backend of this endpoint",
    };
    let what = match p.subject {
        Subject::Namespace => "namespace",
        Subject::OutputEncoding => "output_encoding",
        Subject::Encoding => "encoding",
        Subject::Setting => "setting",
    };
    let mut body = serde_json::Map::new();
    body.insert(
        "error".into(),
        format!(
            "{who} uses {what} {:?}, which this gateway does not implement yet; the endpoint \
             answers 501 rather than serve without it",
            p.name
        )
        .into(),
    );
    body.insert(p.subject.key().into(), p.name.clone().into());
    body.insert("at".into(), p.at.clone().into());
    Bytes::from(serde_json::Value::Object(body).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Addrs, Target};

    fn target(host: &str) -> Result<Target, String> {
        Target::compile(host)
    }

    #[test]
    fn backend_hosts_resolve_with_default_port_80() {
        let t = target("http://127.0.0.1").unwrap();
        assert_eq!(t.authority, "127.0.0.1");
        assert_eq!(t.addrs, Addrs::Fixed("127.0.0.1:80".parse().unwrap()));
        let t = target("http://localhost:8081/").unwrap();
        assert_eq!(t.authority, "localhost:8081");
        assert_eq!(t.addrs, Addrs::Fixed("127.0.0.1:8081".parse().unwrap()));
    }

    #[test]
    fn host_names_are_not_looked_up_while_compiling() {
        // `.invalid` never resolves (RFC 6761): compiling still succeeds.
        let t = target("http://backend.invalid:8080").unwrap();
        assert_eq!(t.authority, "backend.invalid:8080");
        assert!(matches!(t.addrs, Addrs::Name(ref e, 8080) if e.name() == "backend.invalid"));
    }

    #[test]
    fn https_backends_get_port_443_and_their_name_for_tls() {
        let t = target("https://127.0.0.1").unwrap();
        assert_eq!(t.addrs, Addrs::Fixed("127.0.0.1:443".parse().unwrap()));
        assert_eq!(t.tls.as_deref(), Some("127.0.0.1"));
        let t = target("https://[::1]:8443").unwrap();
        assert_eq!(t.tls.as_deref(), Some("::1"));
        assert!(target("http://127.0.0.1").unwrap().tls.is_none());
        assert!(target("ftp://example.com")
            .unwrap_err()
            .contains("scheme ftp"));
        assert!(target("http://h:notaport")
            .unwrap_err()
            .contains("invalid port"));
    }

    #[test]
    fn header_filters_compare_case_insensitively_and_star_means_all() {
        let f = NameFilter::compile(&["X-Api-Key".into()], true);
        assert!(f.allows_header(b"x-api-key"));
        assert!(!f.allows_header(b"cookie"));
        assert_eq!(NameFilter::compile(&["*".into()], true), NameFilter::All);
        let q = NameFilter::compile(&["page".into()], false);
        assert!(q.allows_key("page"));
        assert!(!q.allows_key("Page"));
    }
}
