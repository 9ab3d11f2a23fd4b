//! End-to-end tests of `load_str` / `load_with_env`: defaults, validation rules, suggestions,
//! environment overrides and namespaces, each with an inline fixture.

use std::time::Duration;

use super::*;

pub(super) fn no_env(_: &str) -> Option<String> {
    None
}

pub(super) fn load_ok(text: &str) -> Loaded {
    match load_str("krakend.json", text, &no_env) {
        Ok(l) => l,
        Err(d) => panic!("expected the config to load, got {d:#?}"),
    }
}

pub(super) fn load_err(text: &str) -> Vec<Diagnostic> {
    match load_str("krakend.json", text, &no_env) {
        Ok(l) => panic!("expected errors, loaded {:#?}", l.config),
        Err(d) => d,
    }
}

pub(super) fn errors(text: &str) -> Vec<Diagnostic> {
    load_err(text)
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .collect()
}

/// Asserts exactly one error, whose message contains `needle`, and returns it.
pub(super) fn one_error(text: &str, needle: &str) -> Diagnostic {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    let e = errs.into_iter().next().unwrap_or_else(|| unreachable!());
    assert!(
        e.message.contains(needle),
        "{:?} lacks {needle:?}",
        e.message
    );
    e
}

/// A config with one endpoint whose body is `endpoint` (a JSON object's inside).
pub(super) fn with_endpoint(endpoint: &str) -> String {
    format!(r#"{{"version": 3, "host": ["backend:8000"], "endpoints": [{{{endpoint}}}]}}"#)
}

pub(super) fn first_endpoint(l: &Loaded) -> &Endpoint {
    l.config
        .endpoints
        .first()
        .unwrap_or_else(|| panic!("no endpoint"))
}

pub(super) fn first_backend(l: &Loaded) -> &Backend {
    first_endpoint(l)
        .backend
        .first()
        .unwrap_or_else(|| panic!("no backend"))
}

const MINIMAL: &str = r#"{
  "version": 3,
  "host": ["backend:8000"],
  "endpoints": [
    {"endpoint": "users/{id}", "backend": [{"url_pattern": "u/{id}"}]}
  ]
}"#;

#[test]
fn minimal_config_gets_krakend_defaults() {
    let l = load_ok(MINIMAL);
    assert!(l.warnings.is_empty(), "{:#?}", l.warnings);
    let c = &l.config;
    assert_eq!(c.port, 8080);
    assert_eq!(c.timeout, Duration::from_secs(2));
    assert_eq!(c.cache_ttl, Duration::ZERO);
    assert_eq!(c.output_encoding, "json");
    assert_eq!(c.max_header_bytes, 1_048_576);
    assert_eq!(c.max_idle_connections_per_host, 250);
    assert_eq!(c.router.health_path, "/__health");
    assert_eq!(
        c.router.remote_ip_headers,
        vec!["X-Forwarded-For", "X-Real-IP"]
    );
    assert_eq!(c.host, vec!["http://backend:8000"]);
    let e = first_endpoint(&l);
    assert_eq!(e.endpoint, "/users/{id}");
    assert_eq!(e.method, "GET");
    assert_eq!(e.timeout, Duration::from_secs(2));
    assert_eq!(e.concurrent_calls, 1);
    assert_eq!(e.output_encoding, "json");
    assert_eq!((e.span.line, e.span.col), (5, 5));
    assert_eq!(e.span.path, "$.endpoints[0]");
    let b = first_backend(&l);
    assert_eq!(b.method, "GET");
    assert_eq!(b.encoding, "json");
    assert_eq!(b.url_pattern, "/u/{id}");
    assert_eq!(b.host, vec!["http://backend:8000"]);
    assert_eq!(b.span.path, "$.endpoints[0].backend[0]");
}

#[test]
fn zero_values_fall_back_to_defaults() {
    let l = load_ok(
        r#"{"version": 3, "port": 0, "timeout": "0s", "max_header_bytes": 0,
            "max_idle_connections_per_host": 0, "host": ["h"],
            "endpoints": [{"endpoint": "/a", "concurrent_calls": 0, "timeout": "0s",
                           "backend": [{"url_pattern": "/"}]}]}"#,
    );
    assert_eq!(l.config.port, 8080);
    assert_eq!(l.config.timeout, Duration::from_secs(2));
    assert_eq!(l.config.max_header_bytes, 1 << 20);
    assert_eq!(l.config.max_idle_connections_per_host, 250);
    assert_eq!(first_endpoint(&l).concurrent_calls, 1);
    assert_eq!(first_endpoint(&l).timeout, Duration::from_secs(2));
}

#[test]
fn endpoints_inherit_root_timeout_cache_ttl_and_output_encoding() {
    let l = load_ok(
        r#"{"version": 3, "timeout": "3s", "cache_ttl": "1m", "output_encoding": "negotiate",
            "host": ["h"], "endpoints": [
              {"endpoint": "/a", "backend": [{"url_pattern": "/"}]},
              {"endpoint": "/b", "timeout": "500ms", "cache_ttl": "0s", "output_encoding": "string",
               "backend": [{"url_pattern": "/"}]}]}"#,
    );
    let (a, b) = match l.config.endpoints.as_slice() {
        [a, b] => (a, b),
        other => panic!("{other:?}"),
    };
    assert_eq!(a.timeout, Duration::from_secs(3));
    assert_eq!(a.cache_ttl, Duration::from_secs(60));
    assert_eq!(a.output_encoding, "negotiate");
    assert_eq!(b.timeout, Duration::from_millis(500));
    assert_eq!(
        b.cache_ttl,
        Duration::from_secs(60),
        "an endpoint cache_ttl of 0 inherits"
    );
    assert_eq!(b.output_encoding, "string");
}

#[test]
fn methods_are_upper_cased_and_backends_default_to_the_endpoint_method() {
    let l = load_ok(&with_endpoint(
        r#""endpoint": "/a", "method": "post", "backend": [{"url_pattern": "/"}, {"url_pattern": "/", "method": "put"}]"#,
    ));
    let e = first_endpoint(&l);
    assert_eq!(e.method, "POST");
    let methods: Vec<&str> = e.backend.iter().map(|b| b.method.as_str()).collect();
    assert_eq!(methods, vec!["POST", "PUT"]);
}

#[test]
fn no_op_endpoint_forces_backend_encoding() {
    let l = load_ok(&with_endpoint(
        r#""endpoint": "/a", "output_encoding": "no-op", "backend": [{"url_pattern": "/", "encoding": "xml"}]"#,
    ));
    assert_eq!(first_backend(&l).encoding, "no-op");
}

#[test]
fn no_op_with_two_backends_is_rejected() {
    one_error(
        &with_endpoint(
            r#""endpoint": "/a", "output_encoding": "no-op", "backend": [{"url_pattern": "/"}, {"url_pattern": "/b"}]"#,
        ),
        "can not use NoOp encoding with more than one backends",
    );
}

#[test]
fn backend_host_overrides_root_and_is_sanitised() {
    let l = load_ok(&with_endpoint(
        r#""endpoint": "/a", "backend": [{"url_pattern": "/", "host": ["https://api.example.com/", "other:81"]}]"#,
    ));
    assert_eq!(
        first_backend(&l).host,
        vec!["https://api.example.com", "http://other:81"]
    );
}

#[test]
fn host_with_a_path_is_rejected_unless_sanitising_is_disabled() {
    let e = one_error(
        &with_endpoint(
            r#""endpoint": "/a", "backend": [{"url_pattern": "/", "host": ["http://h/api"]}]"#,
        ),
        "invalid host",
    );
    assert_eq!(e.path, "$.endpoints[0].backend[0].host[0]");
    let l = load_ok(&with_endpoint(
        r#""endpoint": "/a", "backend": [{"url_pattern": "/", "host": ["amqp://h/api"], "disable_host_sanitize": true}]"#,
    ));
    assert_eq!(first_backend(&l).host, vec!["amqp://h/api"]);
}

#[test]
fn backend_without_any_host_loads_with_a_warning_as_krakend_starts() {
    let l = load_ok(
        r#"{"version": 3, "endpoints": [{"endpoint": "/a", "backend": [{"url_pattern": "/"}]}]}"#,
    );
    let w = l.warnings.iter().find(|w| w.message.contains("no host"));
    assert_eq!(
        w.map(|w| w.path.as_str()),
        Some("$.endpoints[0].backend[0]")
    );
    assert!(first_backend(&l).host.is_empty());
}

#[test]
fn version_must_be_three() {
    let e = one_error(r#"{"version": 2}"#, "unsupported version: 2 (want: 3)");
    assert_eq!((e.line, e.col, e.path.as_str()), (1, 13, "$.version"));
    one_error(r#"{"name": "x"}"#, "unsupported version: 0 (want: 3)");
}

#[test]
fn invalid_endpoint_paths_are_rejected_at_the_endpoint_value() {
    let e = one_error(
        &with_endpoint(r#""endpoint": "/a/:id", "backend": [{"url_pattern": "/"}]"#),
        "':'",
    );
    assert_eq!(e.path, "$.endpoints[0].endpoint");
    one_error(
        &with_endpoint(r#""endpoint": "/__debug/x", "backend": [{"url_pattern": "/"}]"#),
        "reserved",
    );
    one_error(
        &with_endpoint(r#""endpoint": "/file.{ext}", "backend": [{"url_pattern": "/"}]"#),
        "disable_rest",
    );
    one_error(
        &with_endpoint(r#""endpoint": "/__health", "backend": [{"url_pattern": "/"}]"#),
        "reserved",
    );
}

#[test]
fn disable_rest_allows_a_final_inner_placeholder() {
    let l = load_ok(
        r#"{"version": 3, "disable_rest": true, "host": ["h"], "endpoints": [
            {"endpoint": "/file.{ext}", "backend": [{"url_pattern": "/f.{ext}"}]}]}"#,
    );
    assert_eq!(first_endpoint(&l).endpoint, "/file.{ext}");
}

#[test]
fn endpoint_colliding_with_a_custom_health_path_is_rejected() {
    one_error(
        r#"{"version": 3, "host": ["h"],
            "endpoints": [{"endpoint": "/health", "backend": [{"url_pattern": "/"}]}],
            "extra_config": {"router": {"health_path": "/health"}}}"#,
        "health",
    );
}

#[test]
fn unsupported_methods_are_skipped_with_a_warning_but_head_and_options_are_allowed() {
    let l = load_ok(&with_endpoint(
        r#""endpoint": "/a", "method": "TRACE", "backend": [{"url_pattern": "/"}]"#,
    ));
    assert!(l.config.endpoints.is_empty());
    let w = l
        .warnings
        .iter()
        .find(|w| w.message.contains("unsupported method \"TRACE\""));
    assert_eq!(w.map(|w| w.path.as_str()), Some("$.endpoints[0].method"));
    load_ok(&with_endpoint(
        r#""endpoint": "/a", "method": "HEAD", "backend": [{"url_pattern": "/"}]"#,
    ));
    load_ok(&with_endpoint(
        r#""endpoint": "/a", "method": "options", "backend": [{"url_pattern": "/"}]"#,
    ));
}

#[test]
fn endpoints_need_at_least_one_backend() {
    one_error(&with_endpoint(r#""endpoint": "/a""#), "no backend");
    one_error(
        &with_endpoint(r#""endpoint": "/a", "backend": []"#),
        "0 backends",
    );
}

#[test]
fn url_pattern_params_must_be_endpoint_params() {
    let e = one_error(
        &with_endpoint(r#""endpoint": "/a/{id}", "backend": [{"url_pattern": "/b/{id}/{other}"}]"#),
        "undefined output param {other}",
    );
    assert_eq!(e.path, "$.endpoints[0].backend[0].url_pattern");
}

#[test]
fn sequential_placeholders_need_no_endpoint_param() {
    load_ok(&with_endpoint(
        r#""endpoint": "/a", "backend": [{"url_pattern": "/x"}, {"url_pattern": "/y/{resp0_id}"}]"#,
    ));
}

#[test]
fn jwt_placeholders_without_the_jwt_validator_warn() {
    let l = load_ok(&with_endpoint(
        r#""endpoint": "/a", "backend": [{"url_pattern": "/u/{JWT.sub}"}]"#,
    ));
    assert!(l
        .warnings
        .iter()
        .any(|w| w.message.contains("auth/validator") && w.message.contains("never fills")));
    let l = load_ok(&with_endpoint(
        r#""endpoint": "/a", "extra_config": {"auth/validator": {"alg": "RS256"}},
           "backend": [{"url_pattern": "/u/{JWT.sub}"}]"#,
    ));
    assert!(!l.warnings.iter().any(|w| w.message.contains("never fills")));
}

#[test]
fn listen_ip_must_parse() {
    one_error(
        r#"{"version": 3, "listen_ip": "localhost"}"#,
        "invalid ip address",
    );
    let l = load_ok(r#"{"version": 3, "listen_ip": "::1"}"#);
    assert_eq!(l.config.listen_ip, "::1".parse().ok());
}

#[test]
fn tls_listener_needs_keys_unless_disabled() {
    one_error(
        r#"{"version": 3, "tls": {"min_version": "TLS12"}}"#,
        "public key not defined",
    );
    load_ok(r#"{"version": 3, "tls": {"public_key": "a.pem", "private_key": "a.key"}}"#);
    load_ok(r#"{"version": 3, "tls": {"disabled": true, "public_key": "a.pem"}}"#);
}

#[test]
fn legacy_v1_keys_are_ignored_as_krakend_does_with_a_warning_naming_their_replacement() {
    let l = load_ok(&with_endpoint(
        r#""endpoint": "/a", "headers_to_pass": ["X"], "querystring_params": ["q"],
           "backend": [{"url_pattern": "/", "whitelist": ["a"], "blacklist": ["b"]}]"#,
    ));
    let hints: Vec<bool> = [
        "input_headers",
        "input_query_strings",
        "\"allow\"",
        "\"deny\"",
    ]
    .iter()
    .map(|new| {
        l.warnings
            .iter()
            .any(|w| w.message.contains(new) && w.message.contains("ignores"))
    })
    .collect();
    assert_eq!(hints, vec![true; 4], "{:#?}", l.warnings);
    let (e, b) = (first_endpoint(&l), first_backend(&l));
    assert!(e.input_headers.is_empty() && e.input_query_strings.is_empty());
    assert!(b.allow.is_empty() && b.deny.is_empty());
}

#[test]
fn duplicate_routes_name_both_positions() {
    let e = one_error(
        r#"{"version": 3, "host": ["h"], "endpoints": [
  {"endpoint": "/u/{id}", "backend": [{"url_pattern": "/"}]},
  {"endpoint": "/u/{name}", "method": "POST", "backend": [{"url_pattern": "/"}]},
  {"endpoint": "u/{name}", "backend": [{"url_pattern": "/"}]}]}"#,
        "duplicate endpoint GET /u/{name}",
    );
    assert!(
        e.message.contains("2:3") && e.message.contains("4:3"),
        "{}",
        e.message
    );
    assert_eq!(e.path, "$.endpoints[2]");
}

#[test]
fn unknown_keys_warn_with_the_nearest_known_key() {
    let l = load_ok(
        r#"{"version": 3, "timout": "1s", "host": ["h"], "endpoints": [
            {"endpoint": "/a", "concurrent_call": 2,
             "backend": [{"url_pattern": "/", "is_colection": true, "zzz": 1}]}],
            "extra_config": {"router": {"return_error_mgs": true}}}"#,
    );
    let msgs: Vec<&str> = l.warnings.iter().map(|w| w.message.as_str()).collect();
    for want in [
        r#"unknown key "timout"; did you mean "timeout"?"#,
        r#"unknown key "concurrent_call"; did you mean "concurrent_calls"?"#,
        r#"unknown key "is_colection"; did you mean "is_collection"?"#,
        r#"unknown key "return_error_mgs"; did you mean "return_error_msg"?"#,
        r#"unknown key "zzz" is ignored"#,
    ] {
        assert!(msgs.contains(&want), "missing {want:?} in {msgs:#?}");
    }
}

#[test]
fn comment_keys_are_ignored_everywhere() {
    let l = load_ok(
        r##"{"$schema": "x", "@comment": 1, "version": 3, "_x": 2, "#y": 3, "host": ["h"],
            "endpoints": [{"@c": "", "endpoint": "/a", "backend": [{"_c": 1, "url_pattern": "/"}]}],
            "extra_config": {"@comment": "x", "router": {"@c": 1}}}"##,
    );
    assert!(l.warnings.is_empty(), "{:#?}", l.warnings);
    assert!(!l.config.extra_config.contains_key("@comment"));
}

#[test]
fn type_errors_are_reported_with_path_and_decoding_continues() {
    let errs = errors(
        r#"{"version": 3, "port": "eighty", "host": ["h"], "endpoints": [
            {"endpoint": "/a", "timeout": "2 seconds", "backend": [{"url_pattern": {}}]}]}"#,
    );
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "$.port",
            "$.endpoints[0].timeout",
            "$.endpoints[0].backend[0].url_pattern"
        ]
    );
}

#[test]
fn bare_number_durations_load_as_nanoseconds_with_a_warning() {
    let l = load_ok(r#"{"version": 3, "timeout": 3000000000}"#);
    assert_eq!(l.config.timeout, Duration::from_secs(3));
    assert!(l.warnings.iter().any(|w| w.message.contains("nanoseconds")));
}

#[test]
fn three_distinct_errors_are_reported_at_once_in_file_order() {
    let diags = load_err(
        r#"{
  "version": 3,
  "host": ["h"],
  "listen_ip": "nope",
  "endpoints": [
    {"endpoint": "/a", "port": 1, "backend": [{"url_pattern": "/", "allow": [{}]}]},
    {"endpoint": "/b/{id}", "backend": [{"url_pattern": "/{x}"}]}
  ]
}"#,
    );
    let errs: Vec<(u32, &str)> = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| (d.line, d.path.as_str()))
        .collect();
    assert_eq!(
        errs,
        vec![
            (4, "$.listen_ip"),
            (6, "$.endpoints[0].backend[0].allow[0]"),
            (7, "$.endpoints[1].backend[0].url_pattern"),
        ]
    );
}

#[test]
fn syntax_error_is_a_single_positioned_diagnostic() {
    let diags = load_err("{\n  \"version\": 3,\n  \"port\": 80 80\n}");
    assert_eq!(diags.len(), 1);
    let d = diags.first().cloned().unwrap_or_else(|| unreachable!());
    assert_eq!((d.line, d.col), (3, 14));
    assert_eq!(d.path, "$");
    assert_eq!(
        d.to_string(),
        format!("krakend.json:3:14: $: {}", d.message)
    );
}

#[test]
fn duplicate_keys_warn_and_the_last_wins() {
    let l = load_ok("{\"version\": 3, \"port\": 1, \"port\": 2}");
    assert_eq!(l.config.port, 2);
    assert!(l
        .warnings
        .iter()
        .any(|w| w.message.contains("duplicate key")));
}

#[test]
fn warnings_display_with_a_prefix() {
    let l = load_ok("{\"version\": 3,\n \"timout\": \"1s\"}");
    let w = l.warnings.first().map(ToString::to_string);
    assert_eq!(
        w.as_deref(),
        Some("krakend.json:2:2: $.timout: warning: unknown key \"timout\"; did you mean \"timeout\"?")
    );
}

#[test]
fn unreadable_file_is_one_error_without_position() {
    let path = std::path::Path::new("/nonexistent/dir/krakend.json");
    let diags = load_with_env(path, &no_env).err().unwrap_or_default();
    assert_eq!(diags.len(), 1);
    assert_eq!(diags.first().map(|d| (d.line, d.col)), Some((0, 0)));
}

#[test]
fn load_reads_a_file_from_disk() {
    let dir = std::env::temp_dir().join(format!("proxy-config-test-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("krakend.json");
    std::fs::write(&path, MINIMAL).unwrap_or_else(|e| panic!("{e}"));
    let l = load_with_env(&path, &no_env).unwrap_or_else(|d| panic!("{d:#?}"));
    assert_eq!(l.config.file, path.display().to_string());
    assert_eq!(l.config.endpoints.len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_endpoint_and_url_pattern_are_slash_with_warnings_as_krakend_cleans_them() {
    let l = load_ok(&with_endpoint(
        r#""method": "GET", "backend": [{"host": ["h"]}]"#,
    ));
    assert_eq!(first_endpoint(&l).endpoint, "/");
    assert_eq!(first_backend(&l).url_pattern, "/");
    let paths: Vec<&str> = l.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "$.endpoints[0].endpoint",
            "$.endpoints[0].backend[0].url_pattern"
        ]
    );
}

#[test]
fn unknown_encodings_warn_that_they_fall_back_to_json() {
    let l = load_ok(&with_endpoint(
        r#""endpoint": "/a", "output_encoding": "fast-json", "backend": [{"url_pattern": "/", "encoding": "yaml"}]"#,
    ));
    let n = l
        .warnings
        .iter()
        .filter(|w| w.message.contains("falls back to \"json\""))
        .count();
    assert_eq!(n, 2, "{:#?}", l.warnings);
}

#[test]
fn shapes_from_krakend_ce_fixture_load() {
    // Excerpts of krakend-ce tests/fixtures/krakend.json that exercise unusual corners.
    let l = load_ok(
        r#"{"version": 3, "cache_ttl": "3600s", "timeout": "3s", "read_header_timeout": "200ms",
  "endpoints": [
    {"endpoint": "/timeout2/{param}", "timeout": "150us", "extra_config": {"proxy": {"sequential": true}},
     "backend": [
       {"url_pattern": "/__debug/{param}", "host": ["http://127.0.0.1:8080"], "timeout": "30us"},
       {"url_pattern": "/__debug/{param}/{resp0_message}", "host": ["http://127.0.0.1:8080"]}]},
    {"endpoint": "/cel/jwt/{id}",
     "extra_config": {"auth/validator": {"alg": "HS256"}},
     "backend": [{"host": ["http://127.0.0.1:8081"],
       "url_pattern": "/param_forwarding/{id}/{JWT.sub}/{JWT.http://example.com/custom}"}]},
    {"endpoint": "/show/{id}", "backend": [{"host": ["http://showrss.info/"],
       "url_pattern": "/user/{id}.rss", "encoding": "rss"}]},
    {"endpoint": "/redirect/{code}", "backend": [{"host": ["http://127.0.0.1:8081"],
       "url_pattern": "/redirect/?status={code}"}]}
  ]}"#,
    );
    assert_eq!(
        l.config.read_header_timeout,
        Some(Duration::from_millis(200))
    );
    let e = first_endpoint(&l);
    assert_eq!(e.timeout, Duration::from_micros(150));
    assert_eq!(e.cache_ttl, Duration::from_secs(3600));
    assert!(l
        .warnings
        .iter()
        .any(|w| w.path == "$.endpoints[0].backend[0].timeout"));
    let show = l.config.endpoints.get(2).and_then(|e| e.backend.first());
    assert_eq!(
        show.map(|b| b.host.clone()),
        Some(vec!["http://showrss.info".to_string()])
    );
}
