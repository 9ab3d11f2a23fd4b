//! Flexible Configuration (FC_ENABLE, FC_SETTINGS, FC_TEMPLATES, FC_PARTIALS, FC_OUT) and
//! YAML/TOML configuration files, through `proxy check` and `proxy run` as child processes.
//! Template sets are written by each test into its own directory.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod common;

use common::gateway::{run_cli_env, temp_config_path};
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A fresh directory holding `files` (relative path -> contents).
fn dir_with(files: &[(&str, &str)]) -> PathBuf {
    let dir = temp_config_path().with_extension("d");
    for (rel, text) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

/// The FC_* variables for a template set laid out as `settings/`, `templates/`, `partials/`
/// (each set only when the directory exists: a missing one is an error, as in KrakenD).
fn fc_env(dir: &Path, out: Option<&str>) -> Vec<(String, String)> {
    let mut env = vec![("FC_ENABLE".to_string(), "1".to_string())];
    for (var, sub) in [
        ("FC_SETTINGS", "settings"),
        ("FC_TEMPLATES", "templates"),
        ("FC_PARTIALS", "partials"),
    ] {
        if dir.join(sub).is_dir() {
            env.push((var.into(), dir.join(sub).display().to_string()));
        }
    }
    if let Some(o) = out {
        env.push(("FC_OUT".into(), dir.join(o).display().to_string()));
    }
    env
}

fn check_with(config: &Path, env: &[(String, String)], extra: &[&str]) -> (i32, String, String) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut args = vec!["check", "-c", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    run_cli_env(&args, &env)
}

// KrakenD's flexible-configuration documentation example, written here by hand: settings
// read as `.service` and `.endpoint`, a `range` with `$idx` commas, `marshal`, a sub-template
// from FC_TEMPLATES, a verbatim partial from FC_PARTIALS and an environment variable.
const DOC_TEMPLATE: &str = r#"{
    "version": 3,
    "port": {{ .service.port }},
    "name": "{{ env "SERVICE_NAME" | default "unnamed" }}",
    "extra_config": {{ marshal .service.extra_config }},
    "host": {{ marshal .service.default_hosts }},
    "endpoints": [
        {{ range $idx, $endpoint := .endpoint.example_group }}
        {{- if $idx }},{{ end }}
        {
            "endpoint": "{{ $endpoint.endpoint }}",
            "backend": [
                {
                    "url_pattern": "{{ $endpoint.backend }}"
                }
            ]
        }
        {{- end }},
        {{ template "sample_template.tmpl" .service }},
        {{ include "static_endpoint.json" }}
    ]
}
"#;

const DOC_SUB_TEMPLATE: &str = r#"{
            "endpoint": "/combination/{id}",
            "backend": [
                {{- range $i, $h := .default_hosts }}
                {{- if $i }},{{ end }}
                { "host": ["{{ $h }}"], "url_pattern": "/posts?userId={id}", "group": "posts{{ $i }}" }
                {{- end }}
            ]
        }"#;

fn doc_set() -> PathBuf {
    dir_with(&[
        ("krakend.tmpl", DOC_TEMPLATE),
        (
            "settings/service.json",
            r#"{"port": 8090, "default_hosts": ["https://catalog-api-01.srv", "https://catalog-api-02.srv"],
               "extra_config": {"security/cors": {"allow_origins": ["*"], "max_age": "12h"}}}"#,
        ),
        (
            "settings/endpoint.json",
            r#"{"example_group": [
                 {"endpoint": "/test/{id}", "backend": "/backend/{id}"},
                 {"endpoint": "/test2", "backend": "/backend2"}]}"#,
        ),
        ("templates/sample_template.tmpl", DOC_SUB_TEMPLATE),
        (
            "partials/static_endpoint.json",
            r#"{ "endpoint": "/static", "backend": [ { "url_pattern": "/__health" } ] }"#,
        ),
    ])
}

#[test]
fn krakend_docs_flexible_configuration_example_renders_to_the_expected_json() {
    let dir = doc_set();
    let mut env = fc_env(&dir, Some("out.json"));
    env.push(("SERVICE_NAME".into(), "catalog".into()));
    let (code, stdout, stderr) = check_with(&dir.join("krakend.tmpl"), &env, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("Syntax OK!"));
    let rendered: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out.json")).unwrap()).unwrap();
    let want = json!({
        "version": 3,
        "port": 8090,
        "name": "catalog",
        "extra_config": {"security/cors": {"allow_origins": ["*"], "max_age": "12h"}},
        "host": ["https://catalog-api-01.srv", "https://catalog-api-02.srv"],
        "endpoints": [
            {"endpoint": "/test/{id}", "backend": [{"url_pattern": "/backend/{id}"}]},
            {"endpoint": "/test2", "backend": [{"url_pattern": "/backend2"}]},
            {"endpoint": "/combination/{id}", "backend": [
                {"host": ["https://catalog-api-01.srv"], "url_pattern": "/posts?userId={id}", "group": "posts0"},
                {"host": ["https://catalog-api-02.srv"], "url_pattern": "/posts?userId={id}", "group": "posts1"}
            ]},
            {"endpoint": "/static", "backend": [{"url_pattern": "/__health"}]}
        ]
    });
    assert_eq!(rendered, want);
    // Without the variable, Sprig's `default` fills in.
    let env = fc_env(&dir, Some("out2.json"));
    assert_eq!(check_with(&dir.join("krakend.tmpl"), &env, &[]).0, 0);
    let rendered: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out2.json")).unwrap()).unwrap();
    assert_eq!(rendered["name"], "unnamed");
}

#[test]
fn any_non_empty_fc_enable_turns_it_on_as_in_krakend_and_an_empty_one_does_not() {
    let dir = doc_set();
    let config = dir.join("krakend.tmpl");
    let mut env = fc_env(&dir, None);
    env[0].1 = "0".into();
    let (code, _, stderr) = check_with(&config, &env, &[]);
    assert_eq!(code, 0, "FC_ENABLE=0 enables FC in KrakenD: {stderr}");
    env[0].1 = String::new();
    let (code, _, stderr) = check_with(&config, &env, &[]);
    assert_eq!(code, 1);
    // Read as plain JSON, the template fails inside its first action.
    assert!(
        stderr.contains("krakend.tmpl:3:14: $.port: expected a string object key"),
        "{stderr}"
    );
}

#[test]
fn a_template_error_names_the_template_line_and_column_and_the_raw_file_is_never_parsed() {
    let dir = dir_with(&[
        (
            "krakend.tmpl",
            "{\n  \"version\": 3,\n  \"port\": {{ .service.nope.port }}\n}\n",
        ),
        ("settings/service.json", r#"{"port": 8080}"#),
    ]);
    let (code, _, stderr) = check_with(&dir.join("krakend.tmpl"), &fc_env(&dir, None), &[]);
    assert_eq!(code, 1);
    let want = format!(
        "{}:3:14: $: template: nil pointer evaluating .service.nope.port: .service.nope is missing or null",
        dir.join("krakend.tmpl").display()
    );
    assert_eq!(stderr.trim(), want);
}

#[test]
fn an_unclosed_block_in_a_sub_template_is_reported_in_that_file_at_its_start() {
    let dir = dir_with(&[
        (
            "krakend.tmpl",
            "{ \"version\": 3, \"endpoints\": [ {{ template \"ep.tmpl\" }} ] }",
        ),
        (
            "templates/ep.tmpl",
            "{\n  {{ if .x }}\n  \"endpoint\": \"/a\"\n}",
        ),
    ]);
    let (code, _, stderr) = check_with(&dir.join("krakend.tmpl"), &fc_env(&dir, None), &[]);
    assert_eq!(code, 1);
    let want = format!(
        "{}:2:3: $: template: this {{{{if}}}} has no {{{{end}}}}",
        dir.join("templates/ep.tmpl").display()
    );
    assert_eq!(stderr.trim(), want);
}

#[test]
fn a_missing_partial_or_template_is_an_error_not_an_empty_string() {
    let dir = dir_with(&[(
        "krakend.tmpl",
        "{ \"version\": 3,\n \"x\": {{ include \"nope.json\" }} }",
    )]);
    let (code, _, stderr) = check_with(&dir.join("krakend.tmpl"), &fc_env(&dir, None), &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("krakend.tmpl:2:10: $: template: include \"nope.json\": cannot read"),
        "{stderr}"
    );
    let dir = dir_with(&[("krakend.tmpl", "{ {{ template \"gone.tmpl\" . }} }")]);
    let (_, _, stderr) = check_with(&dir.join("krakend.tmpl"), &fc_env(&dir, None), &[]);
    assert!(
        stderr.contains("krakend.tmpl:1:3: $: template: no such template \"gone.tmpl\""),
        "{stderr}"
    );
}

#[test]
fn a_settings_file_with_a_syntax_error_is_reported_at_its_line_and_column() {
    let dir = dir_with(&[
        ("krakend.tmpl", "{ \"version\": 3 }"),
        (
            "settings/service.json",
            "{\n  \"port\": 8080,\n  \"host\": [\"a\",]\n}",
        ),
    ]);
    let (code, _, stderr) = check_with(&dir.join("krakend.tmpl"), &fc_env(&dir, None), &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with(&format!(
            "{}:3:16: ",
            dir.join("settings/service.json").display()
        )),
        "{stderr}"
    );
}

#[test]
fn an_error_in_the_rendered_config_points_at_the_template_text_that_produced_it() {
    let dir = dir_with(&[
        (
            "krakend.tmpl",
            "{\n  \"version\": 3,\n  \"endpoints\": [{{ template \"ep.tmpl\" .service }}]\n}\n",
        ),
        ("templates/ep.tmpl", "{\n    \"endpoint\": \"/a\",\n    \"timeout\": \"{{ .timeout }}\",\n    \"backend\": [{\"host\": [\"http://127.0.0.1:1\"], \"url_pattern\": \"/\"}]\n  }"),
        ("settings/service.json", r#"{"timeout": "2 seconds"}"#),
    ]);
    let (code, _, stderr) = check_with(
        &dir.join("krakend.tmpl"),
        &fc_env(&dir, Some("out.json")),
        &[],
    );
    assert_eq!(code, 1);
    // The value starts at the template's opening quote: line 3, column 16 of ep.tmpl; the
    // rendered position is given too.
    let line = stderr
        .lines()
        .find(|l| l.contains("timeout"))
        .unwrap_or_default();
    assert!(
        line.starts_with(&format!(
            "{}:3:16: $.endpoints[0].timeout: ",
            dir.join("templates/ep.tmpl").display()
        )),
        "{stderr}"
    );
    assert!(
        line.ends_with(&format!("(FC_OUT {}:5:16)", dir.join("out.json").display())),
        "{line}"
    );
}

#[test]
fn a_problem_found_when_compiling_the_plan_points_at_the_template_too() {
    let dir = dir_with(&[(
        "krakend.tmpl",
        "{\n  \"version\": 3,\n  \"endpoints\": [\n    {{- range $i, $p := list \"/a\" \"/a\" }}{{ if $i }},{{ end }}\n    { \"endpoint\": \"{{ $p }}\", \"backend\": [ { \"host\": [\"http://127.0.0.1:1\"], \"url_pattern\": \"/\" } ] }\n    {{- end }}\n  ]\n}\n",
    )]);
    let (code, _, stderr) = check_with(&dir.join("krakend.tmpl"), &fc_env(&dir, None), &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with(&format!(
            "{}:5:5: $.endpoints[1]: duplicate endpoint GET /a",
            dir.join("krakend.tmpl").display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.trim_end().ends_with("(rendered line 5, column 5)"),
        "{stderr}"
    );
}

#[test]
fn fc_out_with_a_yaml_extension_has_the_rendered_text_read_as_yaml() {
    let dir = dir_with(&[
        ("krakend.tmpl", "version: 3\nport: {{ .service.port }}\nendpoints:\n  - endpoint: /a\n    backend:\n      - host: [\"http://127.0.0.1:1\"]\n        url_pattern: /\n"),
        ("settings/service.json", r#"{"port": 9123}"#),
    ]);
    let (code, stdout, stderr) = check_with(
        &dir.join("krakend.tmpl"),
        &fc_env(&dir, Some("out.yaml")),
        &["-d"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Port: 9123"), "{stdout}");
    assert!(stdout.contains("- GET /a"), "{stdout}");
}

#[test]
fn sighup_renders_the_templates_and_settings_again() {
    let b = Backend::json(r#"{"ok":true}"#);
    let settings = |path: &str| format!(r#"{{"path": "{path}", "backend": "{}"}}"#, b.url());
    let dir = dir_with(&[
        (
            "krakend.tmpl",
            "{ \"version\": 3, \"endpoints\": [ { \"endpoint\": \"{{ .ep.path }}\", \"backend\": [ { \"host\": [\"{{ .ep.backend }}\"], \"url_pattern\": \"/\" } ] } ] }",
        ),
        ("settings/ep.json", &settings("/first")),
    ]);
    let config = dir.join("krakend.tmpl");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_proxy"));
    cmd.arg("run")
        .arg("-c")
        .arg(&config)
        .args(["--cores", "1", "-p", "0"]);
    for (k, v) in fc_env(&dir, None) {
        cmd.env(k, v);
    }
    let g = Gateway::spawn(cmd, config).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(get(&g.url("/first")).status, 200);
    assert_eq!(get(&g.url("/second")).status, 404);
    std::fs::write(dir.join("settings/ep.json"), settings("/second")).unwrap();
    g.signal(libc::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(5), || get(&g.url("/second")).status
            == 200),
        "{}",
        g.output()
    );
    assert_eq!(get(&g.url("/first")).status, 404);
    // A broken template on reload is refused with its position; the last good config serves.
    std::fs::write(dir.join("krakend.tmpl"), "{ {{ .ep.path ").unwrap();
    g.signal(libc::SIGHUP);
    assert!(wait_until(Duration::from_secs(5), || g
        .output()
        .contains("reload rejected")));
    assert!(
        g.output()
            .contains("krakend.tmpl:1:3: $: template: unclosed action"),
        "{}",
        g.output()
    );
    assert_eq!(get(&g.url("/second")).status, 200);
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

#[test]
fn the_bundled_example_is_understood_the_same_from_json_yaml_toml_and_its_template_set() {
    let (code, want, stderr) = check_with(&example("krakend.json"), &[], &["-dd"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(want.contains("3 API endpoint(s):"), "{want}");
    for f in ["krakend.yaml", "krakend.toml"] {
        let (code, got, stderr) = check_with(&example(f), &[], &["-dd"]);
        assert_eq!(code, 0, "{f}: {stderr}");
        assert_eq!(got, want, "{f}");
    }
    let fc = example("fc");
    let (code, got, stderr) = check_with(&fc.join("krakend.tmpl"), &fc_env(&fc, None), &["-dd"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(got, want, "the FC template set");
}

#[test]
fn a_missing_fc_directory_is_an_error_naming_it() {
    let dir = dir_with(&[("krakend.tmpl", "{ \"version\": 3 }")]);
    let env = vec![
        ("FC_ENABLE".to_string(), "1".to_string()),
        (
            "FC_SETTINGS".to_string(),
            dir.join("nope").display().to_string(),
        ),
    ];
    let (code, _, stderr) = check_with(&dir.join("krakend.tmpl"), &env, &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with(&format!(
            "{}:0:0: $: cannot read the directory",
            dir.join("nope").display()
        )),
        "{stderr}"
    );
}

#[test]
fn yaml_and_toml_errors_carry_the_line_and_column_of_the_value() {
    let yaml = temp_config_path().with_extension("yaml");
    std::fs::write(
        &yaml,
        "version: 3\nendpoints:\n  - endpoint: /a\n    timeout: 2 seconds\n    backend:\n      - host: [\"http://127.0.0.1:1\"]\n        url_pattern: /\n",
    )
    .unwrap();
    let (code, _, stderr) = check_with(&yaml, &[], &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with(&format!(
            "{}:4:14: $.endpoints[0].timeout: ",
            yaml.display()
        )),
        "{stderr}"
    );
    let toml = temp_config_path().with_extension("toml");
    std::fs::write(
        &toml,
        "version = 3\n[[endpoints]]\nendpoint = \"/a\"\ntimeout = \"2 seconds\"\n  [[endpoints.backend]]\n  host = [\"http://127.0.0.1:1\"]\n  url_pattern = \"/\"\n",
    )
    .unwrap();
    let (code, _, stderr) = check_with(&toml, &[], &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with(&format!(
            "{}:4:11: $.endpoints[0].timeout: ",
            toml.display()
        )),
        "{stderr}"
    );
    // A syntax error too.
    std::fs::write(&yaml, "version: 3\nendpoints: [\n").unwrap();
    let (code, _, stderr) = check_with(&yaml, &[], &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("YAML:"), "{stderr}");
}
