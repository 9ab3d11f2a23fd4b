//! compile(config) -> Plan: the immutable runtime form of a krakend.json, shared read-only by
//! every worker through [`PlanHandle`] (arc-swap). Everything that depends only on config is
//! computed here, once: routes, URL templates, header/query sets, canned bodies, backend hosts
//! (IP literals resolved here; names registered with the run-time resolver).

use crate::config::{Config, Diagnostic, Severity, Span};
use crate::http::Limits;
use crate::router::{Router, RouterOptions};
use arc_swap::ArcSwap;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

mod endpoint;
mod timeouts;

pub use endpoint::*;
pub use timeouts::{Origin, Timeout, Timeouts};

pub type PlanHandle = Arc<ArcSwap<Plan>>;

/// What a route leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteTarget {
    Endpoint(usize),
    Health,
    /// `router.auto_options`: answer OPTIONS with this `Allow` list (index into `Plan::allow`).
    Options(usize),
}

pub struct Plan {
    pub router: Router<RouteTarget>,
    /// `Allow` header values for `router.auto_options`.
    pub allow: Vec<Bytes>,
    /// `/__echo/` and `/__debug/` prefixes are served (gin catch-all routes in KrakenD).
    pub echo: bool,
    pub debug: bool,
    pub endpoints: Vec<EndpointPlan>,
    pub server: ServerPlan,
    pub file: String,
    /// Service-level `security/bot-detector`: checked before routing, on every request but
    /// `GET` of the health path (KrakenD registers `/__health` before the middleware).
    pub bot_detector: Option<crate::guard::botdetector::BotDetector>,
    /// The health path when it is served (`router.health_path`).
    pub health_path: Option<String>,
    /// `security/cors`: answered and applied before routing.
    pub cors: Option<crate::guard::cors::Cors>,
    /// `security/http`: checked and applied before routing.
    pub secure: Option<crate::guard::secure::Secure>,
    /// Service-level `modifier/lua-endpoint`: a gin middleware in KrakenD, run after
    /// `security/http` and before the bot detector on every route.
    pub lua_endpoint: Option<Arc<crate::modifier::lua::LuaScript>>,
    /// `telemetry/opentelemetry` with a Prometheus exporter: what the request path records.
    pub otel: Option<crate::telemetry::otel::Otel>,
    /// `telemetry/metrics` (served unless `endpoint_disabled`): what the request path records.
    pub stats: Option<crate::telemetry::stats::Stats>,
}

/// Service-wide settings the connection loop and the gateway need.
#[derive(Clone, Debug)]
pub struct ServerPlan {
    pub port: u16,
    pub listen_ip: Option<std::net::IpAddr>,
    pub limits: Limits,
    pub timeouts: Timeouts,
    /// The service's `timeout`: how long a service-level script's HTTP calls may take.
    pub timeout: Duration,
    pub max_shutdown_wait: Option<Duration>,
    pub return_error_msg: bool,
    /// `X-Krakend` header value.
    pub version_header: Bytes,
    /// `User-Agent` sent to backends (KrakenD: `KrakenD Version x.y.z`).
    pub user_agent: Bytes,
    pub not_found: Canned,
    pub method_not_allowed: Canned,
    pub disable_path_decoding: bool,
    pub auto_options: bool,
    /// `router.forwarded_by_client_ip`: the headers the client IP is taken from.
    pub client_ip_headers: Option<Vec<String>>,
    pub access_log: bool,
    pub logger_skip_paths: Vec<String>,
    /// The HTTPS listener, when `tls` is configured.
    pub tls: Option<crate::tls::server::TlsListener>,
    pub backend: BackendSettings,
}

/// A fixed response (404 / 405 bodies).
#[derive(Clone, Debug)]
pub struct Canned {
    pub content_type: &'static str,
    pub body: Bytes,
}

/// Backend client settings (root level in krakend.json).
#[derive(Clone, Debug)]
pub struct BackendSettings {
    /// How `https://` backends are called (`client_tls`, or Go's defaults).
    pub tls: Option<crate::tls::client::TlsClient>,
    pub dial_timeout: Option<Duration>,
    pub response_header_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub keep_alive: bool,
    /// `!disable_compression`: ask backends for gzip and unzip (Go's transport default).
    pub compression: bool,
    pub max_idle: usize,
    /// Largest backend body the gateway buffers.
    pub max_body: usize,
    pub limits: Limits,
}

impl Plan {
    /// The limits of this plan whose `max_rate` is cluster-wide (`connection_name`): what
    /// `proxy run` starts feeders for.
    pub fn cluster_limits(
        &self,
    ) -> impl Iterator<Item = &Arc<crate::guard::ratelimit::cluster::ClusterLimit>> {
        self.endpoints.iter().flat_map(|e| {
            let router = e.rate_limit.as_ref().and_then(|r| r.cluster());
            let backends = e
                .backends
                .iter()
                .filter_map(|b| b.rate_limit.as_ref().and_then(|l| l.cluster()));
            router.into_iter().chain(backends)
        })
    }
}

impl Plan {
    /// The JWK sets this plan fetches, and its signers (started by `proxy run`).
    pub fn jwt_parts(
        &self,
    ) -> (
        Vec<Arc<crate::guard::jwt::remote::Remote>>,
        Vec<&crate::guard::jwt::signer::Signer>,
    ) {
        let remotes = self
            .endpoints
            .iter()
            .filter_map(|e| e.jwt.as_ref().and_then(|v| v.remote()).cloned())
            .collect();
        let signers = self
            .endpoints
            .iter()
            .filter_map(|e| e.signer.as_ref())
            .collect();
        (remotes, signers)
    }
}

pub fn version_text() -> String {
    format!("proxy-{}", crate::VERSION)
}

impl Plan {
    /// Compile a loaded config. Errors carry the file position of the offending endpoint.
    pub fn compile(cfg: &Config) -> Result<Plan, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        // Process-wide: the names of this plan (and those still in use) refresh on it.
        crate::backend::dns::set_refresh(cfg.dns_cache_ttl);
        let rc = &cfg.router;
        let mut router = Router::new(RouterOptions {
            redirect_trailing_slash: !rc.disable_redirect_trailing_slash,
            redirect_fixed_path: !rc.disable_redirect_fixed_path,
            handle_method_not_allowed: !rc.disable_handle_method_not_allowed,
            disable_rest: cfg.disable_rest,
            disable_path_decoding: rc.disable_path_decoding,
            remove_extra_slash: false,
        });
        let err = |span: &Span, message: String| Diagnostic {
            severity: Severity::Error,
            file: cfg.file.clone(),
            line: span.line,
            col: span.col,
            path: span.path.clone(),
            message,
        };
        let root = Span {
            line: 1,
            col: 1,
            path: "$".into(),
        };
        if !rc.disable_health {
            if let Err(e) = router.insert("GET", &rc.health_path, RouteTarget::Health) {
                errors.push(err(&root, format!("health_path: {e}")));
            }
        }
        // Whatever is not built and guards access or changes answers fails its endpoints closed
        // (at service level, all of them).
        let pending = crate::config::pending::pending(cfg);
        // The client IP rule of `strategy: ip` rate limits: headers only from trusted proxies.
        let mut trusted = Vec::new();
        let mut trusted_error = None;
        for t in &rc.trusted_proxies {
            match crate::guard::ratelimit::router::Cidr::parse(t) {
                Ok(c) => trusted.push(c),
                Err(e) => trusted_error = Some(e),
            }
        }
        let ip_rule = crate::guard::ratelimit::router::ClientIpRule {
            headers: rc
                .forwarded_by_client_ip
                .then(|| rc.remote_ip_headers.clone())
                .filter(|h| !h.is_empty()),
            trusted,
        };
        // The service-level `redis` namespace (KrakenD EE): connections rate limits may name.
        let pools = match cfg.extra_config.get("redis") {
            Some(v) => crate::redis::config::compile_pools(v).unwrap_or_else(|m| {
                let at = Span {
                    path: "$.extra_config.redis".into(),
                    ..root.clone()
                };
                errors.push(err(&at, m));
                crate::redis::Pools::default()
            }),
            None => crate::redis::Pools::default(),
        };
        let bot_detector = match cfg.extra_config.get(crate::guard::botdetector::NS) {
            Some(v) => crate::guard::botdetector::BotDetector::compile(v)
                .map_err(|m| {
                    let at = Span {
                        path: "$.extra_config[\"security/bot-detector\"]".into(),
                        ..root.clone()
                    };
                    errors.push(err(&at, m));
                })
                .ok(),
            None => None,
        };
        // Service-level edge namespaces, compiled once.
        let ns_at = |ns: &str| Span {
            path: format!("$.extra_config[{ns:?}]"),
            ..root.clone()
        };
        let cors = match cfg.extra_config.get(crate::guard::cors::NS) {
            Some(v) => crate::guard::cors::Cors::compile(v)
                .map_err(|m| errors.push(err(&ns_at(crate::guard::cors::NS), m)))
                .ok(),
            None => None,
        };
        let secure = match cfg.extra_config.get(crate::guard::secure::NS) {
            Some(v) => crate::guard::secure::Secure::compile(v)
                .map_err(|m| errors.push(err(&ns_at(crate::guard::secure::NS), m)))
                .ok(),
            None => None,
        };
        let lua_endpoint =
            crate::modifier::lua::from_extra(&cfg.extra_config, crate::modifier::lua::ENDPOINT_NS)
                .unwrap_or_else(|m| {
                    errors.push(err(&ns_at(crate::modifier::lua::ENDPOINT_NS), m));
                    None
                });
        let otel = match cfg.extra_config.get(crate::telemetry::otel::NS) {
            Some(v) => crate::telemetry::otel::Otel::compile(v, &cfg.name).unwrap_or_else(|m| {
                errors.push(err(&ns_at(crate::telemetry::otel::NS), m));
                None
            }),
            None => None,
        };
        let stats = match cfg.extra_config.get(crate::telemetry::stats::NS) {
            Some(v) => crate::telemetry::stats::Stats::compile(v).unwrap_or_else(|m| {
                errors.push(err(&ns_at(crate::telemetry::stats::NS), m));
                None
            }),
            None => None,
        };
        let mut endpoints = Vec::with_capacity(cfg.endpoints.len());
        for (i, e) in cfg.endpoints.iter().enumerate() {
            let refusal = crate::config::pending::refusal(&pending, i);
            match endpoint::compile_endpoint(e, refusal, &ip_rule, trusted_error.as_deref(), &pools)
            {
                Ok(ep) => {
                    if let Err(re) = router.insert(
                        &e.method,
                        &e.endpoint,
                        RouteTarget::Endpoint(endpoints.len()),
                    ) {
                        // KrakenD: gin panics at startup on conflicting or malformed routes.
                        errors.push(err(
                            &e.span,
                            format!(
                                "{re}; KrakenD refuses it too: its router (gin) panics at startup"
                            ),
                        ));
                    }
                    endpoints.push(ep);
                }
                Err(msgs) => errors.extend(msgs.into_iter().map(|m| err(&e.span, m))),
            }
        }
        let mut allow = Vec::new();
        if rc.auto_options {
            // KrakenD registers OPTIONS for every path after the endpoints.
            let mut paths: Vec<&str> = cfg.endpoints.iter().map(|e| e.endpoint.as_str()).collect();
            paths.dedup();
            for p in paths {
                let methods = router.allowed_methods(p).join(", ");
                if router
                    .insert("OPTIONS", p, RouteTarget::Options(allow.len()))
                    .is_ok()
                {
                    allow.push(Bytes::from(methods));
                }
            }
        }
        // TLS files are read here (and on every reload): a bad one is an error like any other.
        let tls_err = |e: crate::tls::certs::TlsConfigError| err(&e.at, e.message);
        let listener_tls = match &cfg.tls {
            Some(t) => crate::tls::server::compile(t)
                .map_err(|e| errors.push(tls_err(e)))
                .ok(),
            None => None,
        };
        let client_tls = match &cfg.client_tls {
            Some(c) => crate::tls::client::compile(c)
                .map_err(|e| errors.push(tls_err(e)))
                .ok(),
            None => crate::tls::client::default_client()
                .map_err(|e| errors.push(tls_err(e)))
                .ok(),
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        label_endpoints(&mut endpoints, cfg, otel.as_ref());
        let version = version_text();
        let limits = Limits {
            max_header_bytes: cfg.max_header_bytes,
            max_target_bytes: cfg.max_uri_bytes,
            ..Limits::default()
        };
        let canned = |status: &str, default: &'static str| match rc.error_body.get(status) {
            Some(v) => Canned {
                content_type: "application/json; charset=utf-8",
                body: Bytes::from(v.to_string()),
            },
            None => Canned {
                content_type: "text/plain",
                body: Bytes::from_static(default.as_bytes()),
            },
        };
        let server = ServerPlan {
            port: cfg.port,
            listen_ip: cfg.listen_ip,
            limits,
            timeouts: Timeouts::compile(cfg),
            timeout: cfg.timeout,
            max_shutdown_wait: cfg.max_shutdown_wait_time,
            return_error_msg: rc.return_error_msg,
            version_header: Bytes::from(if rc.hide_version_header {
                "Version undefined".to_string()
            } else {
                format!("Version {version}")
            }),
            user_agent: Bytes::from(format!("KrakenD Version {version}")),
            not_found: canned("404", "404 page not found"),
            method_not_allowed: canned("405", "405 method not allowed"),
            disable_path_decoding: rc.disable_path_decoding,
            auto_options: rc.auto_options,
            client_ip_headers: rc
                .forwarded_by_client_ip
                .then(|| rc.remote_ip_headers.clone()),
            access_log: !rc.disable_access_log,
            logger_skip_paths: rc.logger_skip_paths.clone(),
            tls: listener_tls,
            backend: BackendSettings {
                tls: client_tls,
                dial_timeout: cfg.dialer_timeout,
                response_header_timeout: cfg.response_header_timeout,
                idle_timeout: cfg.idle_connection_timeout,
                keep_alive: !cfg.disable_keep_alives,
                compression: !cfg.disable_compression,
                max_idle: cfg.max_idle_connections_per_host,
                max_body: 64 << 20,
                limits: Limits {
                    max_header_bytes: 1 << 20,
                    max_headers: 256,
                    max_body_bytes: 64 << 20,
                    ..Limits::default()
                },
            },
        };
        Ok(Plan {
            router,
            allow,
            echo: cfg.echo_endpoint,
            debug: cfg.debug_endpoint,
            endpoints,
            server,
            file: cfg.file.clone(),
            bot_detector,
            health_path: (!rc.disable_health).then(|| rc.health_path.clone()),
            cors,
            secure,
            lua_endpoint,
            otel,
            stats,
        })
    }
}

/// Every endpoint and backend gets its metric labels (compiled endpoints are in config order).
fn label_endpoints(
    endpoints: &mut [EndpointPlan],
    cfg: &Config,
    otel: Option<&crate::telemetry::otel::Otel>,
) {
    use crate::telemetry::otel::{BackendLabels, EndpointLabels};
    for (ep, e) in endpoints.iter_mut().zip(&cfg.endpoints) {
        let l = Arc::new(EndpointLabels::new(&e.endpoint, &e.method, otel));
        for (b, bc) in ep.backends.iter_mut().zip(&e.backend) {
            let bl = BackendLabels::new(&l, &bc.url_pattern, &bc.method, &bc.host);
            b.labels = Some(Arc::new(bl));
        }
        ep.labels = Some(l);
    }
}
