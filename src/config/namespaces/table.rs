//! The namespace registry: every `extra_config` namespace KrakenD CE 2.13 reads, where it may
//! appear, and how this gateway treats it. `proxy check`'s words, the run-time 501 and the
//! README's namespace table all come from here (`tests/readme_namespaces.rs` keeps the README
//! equal to it).
//!
//! How a class is chosen: a namespace that guards access, or changes what is sent to a backend
//! or returned to the client, is [`Class::FailClosed`] until it is built, even when KrakenD
//! users may see it as optional (a circuit breaker, a cache): serving without it gives answers
//! KrakenD would not give, silently. Only what observes (telemetry, documentation) or has
//! nothing left to act on is [`Class::Ignored`], with a warning.

use super::{Class, Level, Namespace};

const S: &[Level] = &[Level::Service];
const E: &[Level] = &[Level::Endpoint];
const B: &[Level] = &[Level::Backend];
const SE: &[Level] = &[Level::Service, Level::Endpoint];
const EB: &[Level] = &[Level::Endpoint, Level::Backend];
const ALL: &[Level] = &[Level::Service, Level::Endpoint, Level::Backend];
const AGENT: &[Level] = &[Level::AsyncAgent];

const fn ns(
    name: &'static str,
    levels: &'static [Level],
    class: Class,
    about: &'static str,
) -> Namespace {
    Namespace {
        name,
        levels,
        class,
        about,
    }
}

use Class::{FailClosed, Ignored, Implemented};

/// In README order: built, then ignored, then fail-closed. A name may appear twice when its
/// class depends on the level (the entry listing the level wins; elsewhere the strictest).
/// Names ending in `/*` match every namespace under that prefix not listed on its own.
pub static REGISTRY: &[Namespace] = &[
    // Built.
    ns(
        "router",
        S,
        Implemented,
        "gin router options: redirects, health path, error bodies, client IP headers, access log",
    ),
    ns(
        "proxy",
        EB,
        Implemented,
        "`sequential`, `static`, `flatmap_filter`, `sequential_propagated_params`; a backend with \
         `shadow: true` fails its endpoint closed (its answer would be merged, not dropped)",
    ),
    ns(
        "validation/json-schema",
        E,
        Implemented,
        "the request body checked against the schema (compiled at start; a schema that does not \
         compile is a `check` error) before any backend is called: 400",
    ),
    ns(
        "validation/cel",
        EB,
        Implemented,
        "`check_expr` on the request (`req_*`) before the call and on the response (`resp_*`) \
         after it, endpoint and backend level: 500 or a failed backend; expressions that do not \
         compile are `check` errors; `JWT` (endpoint level) is the validated token's claims, \
         checked by `auth/validator` before the roles: a bare 401",
    ),
    ns(
        "backend/http",
        B,
        Implemented,
        "`return_error_code`, `return_error_details`",
    ),
    ns(
        "qos/ratelimit/router",
        E,
        Implemented,
        "endpoint (503) and per-client (429) token buckets, exact per process; `ip` trusts \
         forwarded addresses only from `router.trusted_proxies`",
    ),
    ns(
        "qos/ratelimit/proxy",
        B,
        Implemented,
        "backend token bucket, exact per process: calls over it fail (500 or partial response)",
    ),
    ns(
        "qos/circuit-breaker",
        B,
        Implemented,
        "gobreaker's states per backend, per process: opens when consecutive failures exceed \
         `max_errors`, fails calls at once for `timeout` s, then lets one trial call through; \
         `interval`, `name`, `log_status_change`",
    ),
    ns(
        "qos/http-cache",
        B,
        Implemented,
        "RFC 9111 cache of GET/HEAD backend answers, per core, LRU-bounded (not on no-op endpoints: 501)",
    ),
    ns(
        "redis",
        S,
        Implemented,
        "Enterprise: named Redis `connection_pools`; a `qos/ratelimit/router` or \
         `qos/ratelimit/proxy` block naming one (`connection_name`) shares its `max_rate` across \
         processes; `clusters` and `tls` are refused",
    ),
    ns(
        "security/bot-detector",
        SE,
        Implemented,
        "exact `allow` / `deny`, `patterns` (one RegexSet), `empty_user_agent_is_bot`, a \
         per-core `cache_size` verdict cache; bots get a bare 403 (service level: every path \
         but `GET` of the health path)",
    ),
    ns(
        "telemetry/logging",
        S,
        Implemented,
        "`level`, `prefix`, `stdout`, `syslog` + `syslog_facility` (local socket as Go's \
         log/syslog; our `syslog_address` picks a unix or UDP one), `format` (`default`, \
         `logstash`, `custom` + `custom_format`); our `access_log_format: json` for JSON access \
         lines; written by a thread of its own, lines dropped and counted if the output stalls",
    ),
    ns(
        "telemetry/gelf",
        S,
        Implemented,
        "application lines to Graylog as GELF 1.1: UDP (gzip, chunked) or TCP with \
         `enable_tcp` (NUL-terminated); the level is the line's (KrakenD always sends 6)",
    ),
    ns(
        "telemetry/logstash",
        S,
        Implemented,
        "application lines as logstash JSON (`@timestamp`, `@version`, `host`, `level`, \
         `message`, `module`); `enabled: false` turns it off",
    ),
    ns(
        "security/cors",
        S,
        Implemented,
        "CORS headers and preflights for the whole server, before routing (rs/cors rules; \
         preflights answer 200 as KrakenD CE's gin wrapper does)",
    ),
    ns(
        "security/http",
        S,
        Implemented,
        "allowed hosts (a bad Host is 400, KrakenD 500), HTTPS redirect, HSTS over HTTPS or \
         forced, frame/nosniff/XSS/CSP/referrer headers",
    ),
    ns(
        "auth/validator",
        E,
        Implemented,
        "JWT validation on ring (alg pinned by config; HS, RS, PS, ES256/384, EdDSA; ES512 \
         refused by `check`): 401/403, issuer, audience, roles, scopes, leeway, \
         `propagate_claims`, `{JWT.claim}`; keys from `jwk_local_path` or a `jwk_url` \
         (https verified against the system roots and `jwk_local_ca`, `jwk_fingerprints` \
         pins); verified tokens cached per core until `exp`",
    ),
    ns(
        "auth/validator",
        S,
        Implemented,
        "`shared_cache_duration`: not read; endpoint validators already fetch each JWK URL \
         once per process",
    ),
    ns(
        "auth/signer",
        E,
        Implemented,
        "signs `keys_to_sign` objects of the response as JWS (compact or `full`), keys from a \
         JWK set (HMAC, RSA, EC P-256/384, Ed25519); errors answer 400",
    ),
    ns(
        "modifier/lua-endpoint",
        SE,
        Implemented,
        "Lua 5.1 on the request before the endpoint (`ctx.load()`): service level on every \
         route, endpoint level before the rate limit; `sources`, `md5`, `pre`, `live`, \
         `allow_open_libs`; per-call instruction budget and memory limit",
    ),
    ns(
        "modifier/lua-proxy",
        E,
        Implemented,
        "Lua 5.1 around the merge (`request.load()`, `response.load()`, `luaTable`, \
         `luaList`, `custom_error`): `pre`, `post`, `skip_next`, `sources`, `md5`, `live`, \
         `allow_open_libs`; per-call instruction budget and memory limit",
    ),
    ns(
        "modifier/lua-backend",
        B,
        Implemented,
        "Lua 5.1 around one backend call (the URL, method, headers and body it sends; the data \
         it returns): `pre`, `post`, `skip_next`, `sources`, `md5`, `live`, `allow_open_libs`",
    ),
    ns(
        "modifier/martian",
        B,
        Implemented,
        "martian rules on the backend request and its raw response: `header.Modifier`, \
         `header.Append`, `header.Blacklist`, `header.Copy`, `header.Filter`, \
         `header.RegexFilter`, `querystring.Modifier`, `querystring.Filter`, `body.Modifier`, \
         `cookie.Modifier`, `cookie.Filter`, `url.Modifier`, `url.Filter`, `url.RegexFilter`, \
         `port.Modifier`, `port.Filter`, `stash.Modifier`, `fifo.Group`, `priority.Group`, \
         with `scope`; any other modifier refuses the config",
    ),
    ns(
        "telemetry/opentelemetry",
        S,
        Implemented,
        "the `prometheus` exporter: `GET /metrics` on its own `port` (9090) with KrakenD's \
         metric and label names, per-core series merged when scraped; `layers` metric and trace \
         toggles, `skip_paths`, `histograms`, `process_metrics`; `otlp` exporters over gRPC \
         (the default) or OTLP/HTTP (`use_http`): spans (server, proxy, backend, round trip) \
         and the same metrics, `trace_sample_rate`, W3C `traceparent` in and to backends",
    ),
    ns(
        "telemetry/metrics",
        S,
        Implemented,
        "`GET /__stats` on its own `listen_address` (`:8090`): krakend-metrics' JSON keys \
         (`krakend.router.*`, `krakend.proxy.*` for the `pipe` and `backend` layers), \
         `collection_time`, `router_disabled`, `proxy_disabled`, `backend_disabled`, \
         `endpoint_disabled`; per-core counters merged when read; no Go runtime keys",
    ),
    // Ignored with a warning: they observe, or have nothing to act on.
    ns(
        "telemetry/*",
        ALL,
        Ignored,
        "every other telemetry namespace: metrics, traces and log shipping (`metrics`, \
         `influx`, `opencensus`...); they observe and never change an answer",
    ),
    ns(
        "documentation/*",
        ALL,
        Ignored,
        "OpenAPI and other documentation: describes endpoints, never acts on a request",
    ),
    ns(
        "async/amqp",
        AGENT,
        Ignored,
        "AMQP consumer of an `async_agent`; async agents are not run yet (`check` warns), and no \
         endpoint depends on them",
    ),
    // Fail closed: each guards access or changes what is sent or returned.
    ns(
        "auth/revoker",
        S,
        FailClosed,
        "token revocation list read by the endpoint validators: without it revoked tokens \
         would pass, so every endpoint fails closed",
    ),
    ns(
        "auth/client-credentials",
        B,
        FailClosed,
        "OAuth2 client-credentials token on backend calls: changes what is sent",
    ),
    ns(
        "backend/graphql",
        B,
        FailClosed,
        "sends a GraphQL query instead of the client's request: without it the backend gets the \
         wrong request",
    ),
    ns(
        "backend/lambda",
        B,
        FailClosed,
        "calls an AWS Lambda function instead of the HTTP backend",
    ),
    ns(
        "backend/amqp/consumer",
        B,
        FailClosed,
        "reads the answer from an AMQP queue instead of the HTTP backend",
    ),
    ns(
        "backend/amqp/producer",
        B,
        FailClosed,
        "publishes the request to an AMQP exchange instead of the HTTP backend",
    ),
    ns(
        "backend/pubsub/publisher",
        B,
        FailClosed,
        "publishes the request to a pub/sub topic instead of the HTTP backend",
    ),
    ns(
        "backend/pubsub/subscriber",
        B,
        FailClosed,
        "reads the answer from a pub/sub subscription instead of the HTTP backend",
    ),
    ns(
        "plugin/http-server",
        S,
        FailClosed,
        "Go plugin wrapping the whole server: can change or reject any request",
    ),
    ns(
        "plugin/req-resp-modifier",
        EB,
        FailClosed,
        "Go plugin changing requests and responses",
    ),
    ns(
        "plugin/http-client",
        B,
        FailClosed,
        "Go plugin replacing the HTTP client of a backend",
    ),
    ns(
        "plugin/*",
        ALL,
        FailClosed,
        "every other Go plugin: plugins cannot be loaded here, and they may change anything",
    ),
];
