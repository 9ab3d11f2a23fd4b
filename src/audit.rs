//! `proxy audit -c FILE`: security and best-practice recommendations, with the rule ids,
//! severities and messages of `krakend audit` (krakend-audit `audit.go`/`rules.go`), plus a
//! few of our own under `X.*` (KrakenD has no such rule). Printed as KrakenD prints them,
//! `RULE\t[SEVERITY]   \tMESSAGE`, on stderr; exit 1 when anything is found, as KrakenD.

use crate::config::{Config, Endpoint};
use serde_json::Value;

pub const SEVERITIES: &[&str] = &["CRITICAL", "HIGH", "MEDIUM", "LOW"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: &'static str,
    pub message: String,
}

type Check = fn(&Config, &Value) -> Option<String>;

/// (id, severity, message, check). A check returns Some(detail) when the rule applies; a
/// non-empty detail is appended to the message (which endpoints, which URL).
const RULES: &[(&str, &str, &str, Check)] = &[
    ("1.1.1", "HIGH", "Implement more secure alternatives than Basic Auth to protect your data.", basic_auth),
    ("1.1.2", "MEDIUM", "Implement stateless authorization methods such as JWT to secure your endpoints as opposed to using API keys.", api_keys),
    ("1.2.1", "HIGH", "Prioritize using JWT for endpoint authorization to ensure security.", no_jwt),
    ("2.1.1", "HIGH", "Only allow secure connections (avoid insecure_connections).", insecure_connections),
    ("2.1.2", "HIGH", "Enable TLS or use a terminator in front of KrakenD.", no_tls),
    ("2.1.3", "CRITICAL", "TLS is configured but its disable flag prevents from using it.", tls_disabled),
    ("2.1.7", "HIGH", "Enable HTTP security header checks (security/http).", no_http_secure),
    ("2.1.8", "HIGH", "Avoid clear text communication (h2c).", h2c),
    ("2.1.9", "LOW", "Establish secure connections in internal traffic (avoid insecure_connections internally)", backend_insecure),
    ("2.2.1", "MEDIUM", "Hide the version banner in runtime.", version_banner),
    ("2.2.2", "HIGH", "Enable CORS.", no_cors),
    ("2.2.3", "HIGH", "Avoid passing all input headers to the backend.", headers_wildcard),
    ("2.2.4", "HIGH", "Avoid passing all input query strings to the backend.", query_wildcard),
    ("2.3.1", "MEDIUM", "Limit the amount of cacheable content.", unlimited_cache),
    ("3.1.1", "LOW", "Enable a bot detector.", no_bot_detector),
    ("3.1.2", "HIGH", "Implement a rate-limiting strategy and avoid having an All-You-Can-Eat API.", no_rate_limit),
    ("3.1.3", "HIGH", "Protect your backends with a circuit breaker.", no_circuit_breaker),
    ("3.3.1", "LOW", "Set timeouts to below 3 seconds for improved performance.", |c, _| timeout_over(c, 3)),
    ("3.3.2", "MEDIUM", "Set timeouts to below 5 seconds for improved performance.", |c, _| timeout_over(c, 5)),
    ("3.3.3", "HIGH", "Set timeouts to below 30 seconds for improved performance.", |c, _| timeout_over(c, 30)),
    ("3.3.4", "CRITICAL", "Set timeouts to below 1 minute for improved performance.", |c, _| timeout_over(c, 60)),
    ("4.1.1", "MEDIUM", "Implement a telemetry system for collecting metrics for monitoring and troubleshooting.", no_metrics),
    ("4.1.3", "HIGH", "Avoid duplicating telemetry options to prevent system overload.", several_telemetry),
    ("4.2.1", "MEDIUM", "Implement a telemetry system for tracing for monitoring and troubleshooting.", no_tracing),
    ("4.3.1", "MEDIUM", "Use the improved logging component for better log parsing.", no_logging),
    ("5.1.1", "LOW", "Follow a RESTful endpoint structure for improved readability and maintainability.", |c, _| flag(c.disable_rest)),
    ("5.1.2", "LOW", "Disable the /__debug/ endpoint for added security.", |c, _| flag(c.debug_endpoint)),
    ("5.1.3", "LOW", "Disable the /__echo/ endpoint for added security.", |c, _| flag(c.echo_endpoint)),
    ("5.1.4", "LOW", "Declare explicit endpoints instead of using wildcards.", |c, _| endpoints_where(c, |e| e.endpoint.ends_with("/*"))),
    ("5.1.5", "MEDIUM", "Declare explicit endpoints instead of using /__catchall.", |c, _| endpoints_where(c, |e| e.endpoint.contains("/__catchall"))),
    ("5.1.6", "MEDIUM", "Avoid using multiple write methods in endpoint definitions.", |c, _| endpoints_where(c, |e| e.backend.iter().filter(|b| is_write(&b.method)).count() > 1)),
    ("5.1.7", "MEDIUM", "Avoid using sequential proxy.", |c, _| endpoints_where(c, |e| e.extra_config.get("proxy").and_then(|p| p.get("sequential")) == Some(&Value::Bool(true)))),
    ("5.2.1", "CRITICAL", "Ensure all endpoints have at least one backend for proper functionality.", |c, _| endpoints_where(c, |e| e.backend.is_empty())),
    ("5.2.2", "LOW", "Benefit from the backend for frontend pattern capabilities.", |c, _| flag(c.endpoints.iter().all(|e| e.backend.len() <= 1))),
    ("5.2.3", "LOW", "Avoid coupling clients by overusing no-op encoding.", |c, _| flag(!c.endpoints.is_empty() && c.endpoints.iter().all(|e| e.output_encoding == "no-op"))),
    // Ours.
    ("X.1.1", "HIGH", "Fetch JWK keys over HTTPS: a key set read over plain HTTP can be replaced on the way, and with it every token's signature.", jwk_http),
    ("X.1.2", "HIGH", "Do not disable JWK security (disable_jwk_security).", jwk_security_off),
    ("X.3.1", "MEDIUM", "Give every endpoint a rate limit, or set one for the whole service.", endpoints_without_rate_limit),
];

/// Every finding for `cfg`, minus the `ignore`d rules, keeping only `severities`.
pub fn audit(cfg: &Config, raw: &Value, ignore: &[String], severities: &[String]) -> Vec<Finding> {
    RULES
        .iter()
        .filter(|(id, sev, _, _)| {
            !ignore.iter().any(|i| i == id) && severities.iter().any(|s| s == sev)
        })
        .filter_map(|(id, sev, msg, check)| {
            check(cfg, raw).map(|detail| Finding {
                rule: id,
                severity: sev,
                message: if detail.is_empty() {
                    (*msg).to_string()
                } else {
                    format!("{msg} ({detail})")
                },
            })
        })
        .collect()
}

fn flag(b: bool) -> Option<String> {
    b.then(String::new)
}

fn is_write(method: &str) -> bool {
    matches!(method, "POST" | "PUT" | "PATCH" | "DELETE")
}

fn endpoints_where(c: &Config, pred: impl Fn(&Endpoint) -> bool) -> Option<String> {
    let hits: Vec<String> = c
        .endpoints
        .iter()
        .filter(|e| pred(e))
        .map(|e| format!("{} {}", e.method, e.endpoint))
        .collect();
    (!hits.is_empty()).then(|| hits.join(", "))
}

fn any_ns(c: &Config, ns: &str) -> bool {
    c.extra_config.contains_key(ns)
        || c.endpoints.iter().any(|e| {
            e.extra_config.contains_key(ns)
                || e.backend.iter().any(|b| b.extra_config.contains_key(ns))
        })
}

fn basic_auth(c: &Config, _: &Value) -> Option<String> {
    flag(any_ns(c, "auth/basic"))
}

fn api_keys(c: &Config, _: &Value) -> Option<String> {
    flag(c.extra_config.contains_key("auth/api-keys"))
}

fn no_jwt(c: &Config, _: &Value) -> Option<String> {
    flag(
        !c.endpoints
            .iter()
            .any(|e| e.extra_config.contains_key("auth/validator")),
    )
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => crate::config::decode_bool(s) == Some(true),
        _ => false,
    }
}

fn insecure_connections(_: &Config, raw: &Value) -> Option<String> {
    flag(
        truthy(raw.get("allow_insecure_connections"))
            || truthy(
                raw.get("client_tls")
                    .and_then(|t| t.get("allow_insecure_connections")),
            ),
    )
}

fn no_tls(_: &Config, raw: &Value) -> Option<String> {
    flag(raw.get("tls").is_none())
}

fn tls_disabled(_: &Config, raw: &Value) -> Option<String> {
    flag(raw.get("tls").is_some_and(|t| truthy(t.get("disabled"))))
}

fn no_http_secure(c: &Config, _: &Value) -> Option<String> {
    flag(!c.extra_config.contains_key("security/http"))
}

fn h2c(_: &Config, raw: &Value) -> Option<String> {
    let router = raw.get("extra_config").and_then(|e| {
        e.get("router")
            .or_else(|| e.get("github_com/luraproject/lura/router/gin"))
    });
    flag(truthy(raw.get("use_h2c")) || truthy(router.and_then(|r| r.get("use_h2c"))))
}

fn backend_insecure(c: &Config, _: &Value) -> Option<String> {
    flag(c.endpoints.iter().any(|e| {
        e.backend.iter().any(|b| {
            truthy(
                b.extra_config
                    .get("backend/http/client")
                    .and_then(|h| h.get("allow_insecure_connections")),
            )
        })
    }))
}

fn version_banner(c: &Config, _: &Value) -> Option<String> {
    flag(!c.router.hide_version_header)
}

fn no_cors(c: &Config, _: &Value) -> Option<String> {
    flag(!c.extra_config.contains_key("security/cors"))
}

fn headers_wildcard(c: &Config, _: &Value) -> Option<String> {
    endpoints_where(c, |e| e.input_headers.iter().any(|h| h == "*"))
}

fn query_wildcard(c: &Config, _: &Value) -> Option<String> {
    endpoints_where(c, |e| e.input_query_strings.iter().any(|h| h == "*"))
}

fn unlimited_cache(c: &Config, _: &Value) -> Option<String> {
    endpoints_where(c, |e| {
        e.backend.iter().any(|b| {
            b.extra_config
                .get("qos/http-cache")
                .is_some_and(|h| h.get("max_items").is_none() || h.get("max_size").is_none())
        })
    })
}

fn no_bot_detector(c: &Config, _: &Value) -> Option<String> {
    flag(!c.extra_config.contains_key("security/bot-detector"))
}

fn has_rate_limit(e: &Endpoint) -> bool {
    e.extra_config.contains_key("qos/ratelimit/router")
        || e.extra_config.contains_key("qos/ratelimit/proxy")
        || e.backend
            .iter()
            .any(|b| b.extra_config.contains_key("qos/ratelimit/proxy"))
}

fn service_rate_limit(c: &Config) -> bool {
    c.extra_config.contains_key("qos/ratelimit/router")
        || c.extra_config.contains_key("qos/ratelimit/service")
}

fn no_rate_limit(c: &Config, _: &Value) -> Option<String> {
    flag(!service_rate_limit(c) && !c.endpoints.iter().any(has_rate_limit))
}

fn endpoints_without_rate_limit(c: &Config, _: &Value) -> Option<String> {
    // Only when some endpoints have one: with none at all, 3.1.2 says it already.
    if service_rate_limit(c) || !c.endpoints.iter().any(has_rate_limit) {
        return None;
    }
    endpoints_where(c, |e| !has_rate_limit(e))
}

fn no_circuit_breaker(c: &Config, _: &Value) -> Option<String> {
    flag(!any_ns(c, "qos/circuit-breaker") && !any_ns(c, "qos/circuit-breaker/http"))
}

fn timeout_over(c: &Config, secs: u64) -> Option<String> {
    endpoints_where(c, |e| e.timeout.as_millis() > u128::from(secs) * 1000)
}

const METRICS: &[&str] = &[
    "telemetry/metrics",
    "telemetry/newrelic",
    "telemetry/ganalytics",
    "telemetry/instana",
];

fn no_metrics(c: &Config, _: &Value) -> Option<String> {
    // An OpenTelemetry exporter counts too (krakend-audit's 4.1.1 only lists the old ones).
    let otel = c
        .extra_config
        .get("telemetry/opentelemetry")
        .and_then(|o| o.get("exporters"))
        .is_some_and(|e| e.as_object().is_some_and(|m| !m.is_empty()));
    flag(!otel && !METRICS.iter().any(|k| c.extra_config.contains_key(*k)))
}

fn several_telemetry(c: &Config, _: &Value) -> Option<String> {
    let mut n = METRICS
        .iter()
        .filter(|k| c.extra_config.contains_key(**k))
        .count();
    if let Some(otel) = c.extra_config.get("telemetry/opentelemetry") {
        let exporters = otel.get("exporters");
        n += exporters.and_then(|e| e.get("prometheus")).map_or(0, |_| 1);
        n += exporters.and_then(|e| e.get("otlp")).map_or(0, |_| 1);
    }
    flag(n > 1)
}

fn no_tracing(c: &Config, _: &Value) -> Option<String> {
    let otel = c
        .extra_config
        .get("telemetry/opentelemetry")
        .and_then(|o| o.get("exporters"))
        .is_some_and(|e| e.as_object().is_some_and(|m| !m.is_empty()));
    flag(
        !otel
            && !c.extra_config.contains_key("telemetry/newrelic")
            && !c.extra_config.contains_key("telemetry/instana"),
    )
}

fn no_logging(c: &Config, _: &Value) -> Option<String> {
    flag(
        !["telemetry/logging", "telemetry/gelf", "telemetry/logstash"]
            .iter()
            .any(|k| c.extra_config.contains_key(*k)),
    )
}

fn jwk_http(c: &Config, _: &Value) -> Option<String> {
    let urls: Vec<String> = c
        .endpoints
        .iter()
        .filter_map(|e| {
            e.extra_config
                .get("auth/validator")
                .and_then(|v| v.get("jwk_url"))
                .and_then(Value::as_str)
        })
        .filter(|u| u.to_ascii_lowercase().starts_with("http://"))
        .map(str::to_string)
        .collect();
    (!urls.is_empty()).then(|| urls.join(", "))
}

fn jwk_security_off(c: &Config, _: &Value) -> Option<String> {
    endpoints_where(c, |e| {
        truthy(
            e.extra_config
                .get("auth/validator")
                .and_then(|v| v.get("disable_jwk_security")),
        )
    })
}
