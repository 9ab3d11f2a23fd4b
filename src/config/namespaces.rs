//! `extra_config` namespaces: the v1 long-name aliases KrakenD CE still accepts, and how far
//! this gateway supports each namespace (so `proxy check` can list what is ignored).

use super::Config;

/// How this gateway treats a namespace found in an `extra_config`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NamespaceSupport {
    /// Implemented.
    Supported,
    /// Telemetry: ignored (one warning each); requests are served normally.
    Observational,
    /// Restricts access (auth, validation, rate limits, scripting): not implemented, so the
    /// endpoint fails closed with 501 at run time rather than serving unprotected.
    AccessControl,
    /// Not implemented; ignored with a warning.
    Unsupported,
}

/// KrakenD: CE `cmd/krakend-ce/main.go` `aliases` (v1-era names, removed in CE 3.0).
const ALIASES: &[(&str, &str)] = &[
    (
        "github_com/devopsfaith/krakend/transport/http/server/handler",
        "plugin/http-server",
    ),
    (
        "github.com/devopsfaith/krakend/transport/http/client/executor",
        "plugin/http-client",
    ),
    (
        "github.com/devopsfaith/krakend/proxy/plugin",
        "plugin/req-resp-modifier",
    ),
    ("github.com/devopsfaith/krakend/proxy", "proxy"),
    ("github_com/luraproject/lura/router/gin", "router"),
    ("github.com/devopsfaith/krakend-httpcache", "qos/http-cache"),
    (
        "github.com/devopsfaith/krakend-circuitbreaker/gobreaker",
        "qos/circuit-breaker",
    ),
    (
        "github.com/devopsfaith/krakend-oauth2-clientcredentials",
        "auth/client-credentials",
    ),
    (
        "github.com/devopsfaith/krakend-jose/validator",
        "auth/validator",
    ),
    ("github.com/devopsfaith/krakend-jose/signer", "auth/signer"),
    ("github_com/devopsfaith/bloomfilter", "auth/revoker"),
    (
        "github_com/devopsfaith/krakend-botdetector",
        "security/bot-detector",
    ),
    ("github_com/devopsfaith/krakend-httpsecure", "security/http"),
    ("github_com/devopsfaith/krakend-cors", "security/cors"),
    ("github.com/devopsfaith/krakend-cel", "validation/cel"),
    (
        "github.com/devopsfaith/krakend-jsonschema",
        "validation/json-schema",
    ),
    ("github.com/devopsfaith/krakend-amqp/agent", "async/amqp"),
    (
        "github.com/devopsfaith/krakend-amqp/consume",
        "backend/amqp/consumer",
    ),
    (
        "github.com/devopsfaith/krakend-amqp/produce",
        "backend/amqp/producer",
    ),
    ("github.com/devopsfaith/krakend-lambda", "backend/lambda"),
    (
        "github.com/devopsfaith/krakend-pubsub/publisher",
        "backend/pubsub/publisher",
    ),
    (
        "github.com/devopsfaith/krakend-pubsub/subscriber",
        "backend/pubsub/subscriber",
    ),
    (
        "github.com/devopsfaith/krakend/transport/http/client/graphql",
        "backend/graphql",
    ),
    ("github.com/devopsfaith/krakend/http", "backend/http"),
    ("github_com/devopsfaith/krakend-gelf", "telemetry/gelf"),
    (
        "github_com/devopsfaith/krakend-gologging",
        "telemetry/logging",
    ),
    (
        "github_com/devopsfaith/krakend-logstash",
        "telemetry/logstash",
    ),
    (
        "github_com/devopsfaith/krakend-metrics",
        "telemetry/metrics",
    ),
    ("github_com/letgoapp/krakend-influx", "telemetry/influx"),
    (
        "github_com/devopsfaith/krakend-opencensus",
        "telemetry/opencensus",
    ),
    (
        "github.com/devopsfaith/krakend-lua/router",
        "modifier/lua-endpoint",
    ),
    (
        "github.com/devopsfaith/krakend-lua/proxy",
        "modifier/lua-proxy",
    ),
    (
        "github.com/devopsfaith/krakend-lua/proxy/backend",
        "modifier/lua-backend",
    ),
    ("github.com/devopsfaith/krakend-martian", "modifier/martian"),
];

/// The short name for a v1 long namespace, or None when `ns` is not an alias.
pub fn alias_of(ns: &str) -> Option<&'static str> {
    ALIASES
        .iter()
        .find(|(long, _)| *long == ns)
        .map(|(_, short)| *short)
}

/// The short name of `ns` (itself when it is not an alias).
pub fn normalise(ns: &str) -> &str {
    alias_of(ns).unwrap_or(ns)
}

/// How this gateway treats the (normalised) namespace `ns`.
pub fn classify(ns: &str) -> NamespaceSupport {
    let ns = normalise(ns);
    match ns {
        "router" | "telemetry/logging" | "proxy" | "backend/http" => NamespaceSupport::Supported,
        // Service-level CORS only adds response headers; it does not restrict who gets in.
        "security/cors" => NamespaceSupport::Unsupported,
        "security/bot-detector" => NamespaceSupport::AccessControl,
        _ if ns.starts_with("telemetry/") => NamespaceSupport::Observational,
        _ if ns.starts_with("auth/")
            || ns.starts_with("validation/")
            || ns.starts_with("security/")
            || ns.starts_with("qos/ratelimit/")
            || ns.starts_with("modifier/lua-") =>
        {
            NamespaceSupport::AccessControl
        }
        _ => NamespaceSupport::Unsupported,
    }
}

/// Every namespace in `cfg` that is not fully supported, as (JSON path of the extra_config
/// entry, namespace, support), in file order (service, then each endpoint and its backends).
pub fn unsupported_namespaces(cfg: &Config) -> Vec<(String, String, NamespaceSupport)> {
    let mut out = Vec::new();
    let mut push = |base: &str, extra: &super::ExtraConfig| {
        for ns in extra.keys() {
            let support = classify(ns);
            if support != NamespaceSupport::Supported {
                let path = format!("{base}.extra_config{}", super::json::key_segment(ns));
                out.push((path, ns.clone(), support));
            }
        }
    };
    push("$", &cfg.extra_config);
    for (i, e) in cfg.endpoints.iter().enumerate() {
        let base = format!("$.endpoints[{i}]");
        push(&base, &e.extra_config);
        for (j, b) in e.backend.iter().enumerate() {
            push(&format!("{base}.backend[{j}]"), &b.extra_config);
        }
    }
    out
}

/// The warning text for a namespace that is not fully supported (None when it is).
pub fn support_warning(ns: &str) -> Option<String> {
    match classify(ns) {
        NamespaceSupport::Supported => None,
        NamespaceSupport::Observational => Some(format!(
            "namespace {ns:?} (telemetry) is not supported yet and is ignored"
        )),
        NamespaceSupport::AccessControl => Some(format!(
            "namespace {ns:?} restricts access and is not supported yet: what it guards \
             answers 501 Not Implemented instead of being served unprotected"
        )),
        NamespaceSupport::Unsupported => Some(format!(
            "namespace {ns:?} is not supported yet and is ignored"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_map_to_short_names() {
        assert_eq!(
            alias_of("github.com/devopsfaith/krakend-jose/validator"),
            Some("auth/validator")
        );
        assert_eq!(
            alias_of("github_com/luraproject/lura/router/gin"),
            Some("router")
        );
        assert_eq!(
            alias_of("github.com/devopsfaith/krakend/http"),
            Some("backend/http")
        );
        assert_eq!(alias_of("router"), None);
        assert_eq!(normalise("qos/http-cache"), "qos/http-cache");
    }

    #[test]
    fn namespaces_are_classified_by_what_they_do() {
        assert_eq!(classify("router"), NamespaceSupport::Supported);
        assert_eq!(classify("proxy"), NamespaceSupport::Supported);
        assert_eq!(classify("backend/http"), NamespaceSupport::Supported);
        assert_eq!(classify("telemetry/logging"), NamespaceSupport::Supported);
        assert_eq!(
            classify("telemetry/opentelemetry"),
            NamespaceSupport::Observational
        );
        assert_eq!(classify("auth/validator"), NamespaceSupport::AccessControl);
        assert_eq!(
            classify("validation/json-schema"),
            NamespaceSupport::AccessControl
        );
        assert_eq!(
            classify("qos/ratelimit/router"),
            NamespaceSupport::AccessControl
        );
        assert_eq!(
            classify("modifier/lua-endpoint"),
            NamespaceSupport::AccessControl
        );
        assert_eq!(
            classify("security/bot-detector"),
            NamespaceSupport::AccessControl
        );
        assert_eq!(classify("security/cors"), NamespaceSupport::Unsupported);
        assert_eq!(
            classify("qos/circuit-breaker"),
            NamespaceSupport::Unsupported
        );
        assert_eq!(classify("modifier/martian"), NamespaceSupport::Unsupported);
    }

    #[test]
    fn long_names_are_classified_like_their_short_names() {
        assert_eq!(
            classify("github.com/devopsfaith/krakend-jose/validator"),
            NamespaceSupport::AccessControl
        );
        assert_eq!(
            classify("github_com/devopsfaith/krakend-gologging"),
            NamespaceSupport::Supported
        );
    }
}
