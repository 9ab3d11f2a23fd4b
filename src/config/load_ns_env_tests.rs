//! Tests of `KRAKEND_*` environment overrides and `extra_config` namespaces through `load_str`.

use std::time::Duration;

use super::load_tests::{first_backend, first_endpoint, load_ok, with_endpoint};
use super::*;

#[test]
fn env_overrides_root_scalars_with_their_types() {
    let env = |name: &str| match name {
        "KRAKEND_PORT" => Some("9000".to_string()),
        "KRAKEND_TIMEOUT" => Some("500ms".to_string()),
        "KRAKEND_NAME" => Some("from env".to_string()),
        "KRAKEND_DEBUG_ENDPOINT" => Some("true".to_string()),
        _ => None,
    };
    let l = load_str(
        "k.json",
        r#"{"version": 3, "port": 8000, "timeout": "1s"}"#,
        &env,
    )
    .unwrap_or_else(|d| panic!("{d:#?}"));
    assert_eq!(l.config.port, 9000);
    assert_eq!(l.config.timeout, Duration::from_millis(500));
    assert_eq!(l.config.name, "from env");
    assert!(l.config.debug_endpoint);
}

#[test]
fn bad_env_values_are_errors_naming_the_variable() {
    let env = |name: &str| match name {
        "KRAKEND_PORT" => Some("abc".to_string()),
        "KRAKEND_TIMEOUT" => Some("soon".to_string()),
        "KRAKEND_MAX_HEADER_BYTES" => Some("-1".to_string()),
        _ => None,
    };
    let diags = load_str("k.json", r#"{"version": 3}"#, &env)
        .err()
        .unwrap_or_default();
    let vars: Vec<bool> = [
        "KRAKEND_PORT",
        "KRAKEND_TIMEOUT",
        "KRAKEND_MAX_HEADER_BYTES",
    ]
    .iter()
    .map(|v| diags.iter().any(|d| d.message.contains(v) && d.line == 0))
    .collect();
    assert_eq!(vars, vec![true; 3], "{diags:#?}");
}

#[test]
fn long_namespace_aliases_are_normalised_with_a_warning() {
    let l = load_ok(
        r#"{"version": 3, "extra_config": {
            "github_com/luraproject/lura/router/gin": {"return_error_msg": true},
            "github_com/devopsfaith/krakend-gologging": {"level": "debug"}}}"#,
    );
    assert!(l.config.router.return_error_msg);
    assert_eq!(l.config.log_level.as_deref(), Some("DEBUG"));
    assert!(l.config.extra_config.contains_key("router"));
    assert!(l.config.extra_config.contains_key("telemetry/logging"));
    assert!(l
        .warnings
        .iter()
        .any(|w| w.message.contains("use \"router\"")));
}

#[test]
fn router_namespace_is_decoded_and_type_checked() {
    let l = load_ok(
        r#"{"version": 3, "extra_config": {"router": {
            "health_path": "/hc", "disable_access_log": true, "auto_options": true,
            "remote_ip_headers": ["x-client-ip"], "trusted_proxies": ["10.0.0.0/8"],
            "error_body": {"404": {"msg": "nope"}}}}}"#,
    );
    let r = &l.config.router;
    assert_eq!(r.health_path, "/hc");
    assert!(r.disable_access_log && r.auto_options);
    assert_eq!(r.remote_ip_headers, vec!["X-Client-Ip"]);
    assert_eq!(r.trusted_proxies, vec!["10.0.0.0/8"]);
    assert_eq!(
        r.error_body.get("404"),
        Some(&serde_json::json!({"msg": "nope"}))
    );
}

#[test]
fn a_router_type_error_drops_the_router_options_but_four_as_krakend_does() {
    // KrakenD reads the namespace with encoding/json: "true" is no boolean there.
    let l = load_ok(
        r#"{"version": 3, "extra_config": {"router": {"return_error_msg": "true",
            "auto_options": true, "health_path": "/hc", "disable_access_log": true}}}"#,
    );
    let w = l
        .warnings
        .iter()
        .find(|w| w.path == "$.extra_config.router.return_error_msg");
    assert!(
        w.is_some_and(|w| w.message.contains("boolean") && w.message.contains("ignores")),
        "{:#?}",
        l.warnings
    );
    let r = &l.config.router;
    assert!(!r.return_error_msg && !r.auto_options);
    assert_eq!(r.health_path, "/hc");
    assert!(r.disable_access_log);
}

#[test]
fn namespaces_not_built_warn_and_are_listed_with_what_happens() {
    use super::namespaces::Level;
    use super::pending::{pending, Refuses};
    let l = load_ok(
        r#"{"version": 3, "host": ["h"], "extra_config": {"plugin/http-server": {}, "telemetry/influx": {}},
            "endpoints": [{"endpoint": "/a", "extra_config": {"plugin/req-resp-modifier": {}, "proxy": {}},
              "backend": [{"url_pattern": "/", "extra_config": {"backend/lambda": {}, "backend/http": {}}}]}]}"#,
    );
    assert_eq!(l.warnings.len(), 4, "{:#?}", l.warnings);
    let listed: Vec<(String, String, Level, Refuses)> = pending(&l.config)
        .into_iter()
        .map(|p| (p.at, p.name, p.level, p.refuses))
        .collect();
    assert_eq!(
        listed,
        vec![
            (
                "$.extra_config[\"plugin/http-server\"]".to_string(),
                "plugin/http-server".to_string(),
                Level::Service,
                Refuses::Every
            ),
            (
                "$.extra_config[\"telemetry/influx\"]".to_string(),
                "telemetry/influx".to_string(),
                Level::Service,
                Refuses::No
            ),
            (
                "$.endpoints[0].extra_config[\"plugin/req-resp-modifier\"]".to_string(),
                "plugin/req-resp-modifier".to_string(),
                Level::Endpoint,
                Refuses::Endpoint(0)
            ),
            (
                "$.endpoints[0].backend[0].extra_config[\"backend/lambda\"]".to_string(),
                "backend/lambda".to_string(),
                Level::Backend,
                Refuses::Endpoint(0)
            ),
        ]
    );
}

#[test]
fn extra_config_values_keep_their_json_shape() {
    let l = load_ok(&with_endpoint(
        r#""endpoint": "/a", "extra_config": {"proxy": {"sequential": true, "n": 3, "f": 0.5}},
           "backend": [{"url_pattern": "/", "mapping": {"b": "x", "a": "y"}}]"#,
    ));
    assert_eq!(
        first_endpoint(&l).extra_config.get("proxy"),
        Some(&serde_json::json!({"sequential": true, "n": 3, "f": 0.5}))
    );
    assert_eq!(
        first_backend(&l).mapping,
        vec![
            ("b".to_string(), "x".to_string()),
            ("a".to_string(), "y".to_string())
        ]
    );
}
