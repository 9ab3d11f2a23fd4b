//! Typed configuration with KrakenD's defaults applied. OWNER: config helper.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

/// Where a value sits in the file, for diagnostics raised after loading (plan compilation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub line: u32,
    pub col: u32,
    /// JSON path, `$.endpoints[3]`.
    pub path: String,
}

/// `extra_config`: namespace (long v1 aliases normalised to the short names) -> raw JSON value.
pub type ExtraConfig = BTreeMap<String, serde_json::Value>;

/// Root of krakend.json (service level).
#[derive(Clone, Debug)]
pub struct Config {
    /// Path of the file this came from (for diagnostics).
    pub file: String,
    pub name: String,
    /// Default 8080.
    pub port: u16,
    pub listen_ip: Option<IpAddr>,
    /// Default backend hosts, already sanitised (`http://` added).
    pub host: Vec<String>,
    /// Default 2s.
    pub timeout: Duration,
    /// Zero = no Cache-Control.
    pub cache_ttl: Duration,
    /// Default "json".
    pub output_encoding: String,
    pub read_timeout: Option<Duration>,
    pub read_header_timeout: Option<Duration>,
    pub write_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    /// Default 1 MiB (Go's DefaultMaxHeaderBytes).
    pub max_header_bytes: usize,
    /// Our own key (KrakenD has no cap on the request-target): default 8 KiB, then 414.
    pub max_uri_bytes: usize,
    pub debug_endpoint: bool,
    pub echo_endpoint: bool,
    pub disable_rest: bool,
    pub disable_keep_alives: bool,
    /// Go's client asks backends for gzip (and unzips) unless this is set.
    pub disable_compression: bool,
    /// Default 250.
    pub max_idle_connections_per_host: usize,
    pub idle_connection_timeout: Option<Duration>,
    pub response_header_timeout: Option<Duration>,
    pub dialer_timeout: Option<Duration>,
    /// How often backend host names and `sd: dns` SRV names are looked up again (None: 30 s).
    pub dns_cache_ttl: Option<Duration>,
    /// None = wait forever (KrakenD's 0).
    pub max_shutdown_wait_time: Option<Duration>,
    /// The `router` namespace.
    pub router: RouterConfig,
    /// The `telemetry/logging` namespace's level, if present ("DEBUG", "INFO", ...).
    pub log_level: Option<String>,
    pub endpoints: Vec<Endpoint>,
    pub extra_config: ExtraConfig,
    /// The HTTPS listener (`tls` without `disabled`).
    pub tls: Option<super::tls::ListenerTls>,
    /// `client_tls` (or the legacy root `allow_insecure_connections`); None: Go's defaults.
    pub client_tls: Option<super::tls::ClientTls>,
}

/// The `router` namespace (gin engine options).
#[derive(Clone, Debug, Default)]
pub struct RouterConfig {
    pub return_error_msg: bool,
    pub disable_health: bool,
    /// Default "/__health".
    pub health_path: String,
    pub disable_access_log: bool,
    pub logger_skip_paths: Vec<String>,
    pub hide_version_header: bool,
    /// `error_body`: status ("404"/"405") -> JSON body.
    pub error_body: BTreeMap<String, serde_json::Value>,
    pub auto_options: bool,
    pub disable_redirect_trailing_slash: bool,
    pub disable_redirect_fixed_path: bool,
    pub disable_handle_method_not_allowed: bool,
    pub disable_path_decoding: bool,
    pub forwarded_by_client_ip: bool,
    /// Default ["X-Forwarded-For", "X-Real-IP"].
    pub remote_ip_headers: Vec<String>,
    pub trusted_proxies: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Path with a leading `/` (added if missing), `{param}` syntax.
    pub endpoint: String,
    /// Upper-case; default "GET".
    pub method: String,
    pub backend: Vec<Backend>,
    /// Defaults to the root timeout.
    pub timeout: Duration,
    /// Defaults to the root cache_ttl (an endpoint value of 0 inherits).
    pub cache_ttl: Duration,
    /// Default 1.
    pub concurrent_calls: u32,
    /// Defaults to the root output_encoding.
    pub output_encoding: String,
    /// Where `output_encoding` was set: `$.endpoints[i].output_encoding` or the root's.
    pub output_encoding_path: String,
    pub input_query_strings: Vec<String>,
    pub input_headers: Vec<String>,
    pub extra_config: ExtraConfig,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Backend {
    /// Sanitised (`scheme://host[:port]`), inherited from the root when absent.
    pub host: Vec<String>,
    pub url_pattern: String,
    /// Upper-case; defaults to the endpoint's method.
    pub method: String,
    /// Default "json"; forced to "no-op" when the endpoint's output is no-op.
    pub encoding: String,
    pub is_collection: bool,
    pub target: String,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    /// In file order.
    pub mapping: Vec<(String, String)>,
    pub group: String,
    pub sd: String,
    /// The scheme of the hosts `sd: dns` finds ("" = http).
    pub sd_scheme: String,
    /// Where this backend's own `host` list is written (None: inherited from the root).
    pub host_span: Option<Span>,
    pub disable_host_sanitize: bool,
    pub input_headers: Vec<String>,
    pub input_query_strings: Vec<String>,
    pub extra_config: ExtraConfig,
    pub span: Span,
}
