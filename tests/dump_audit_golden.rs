//! Golden output of `proxy check -d/-dd/-ddd` (how a config was understood) and of
//! `proxy audit` (krakend audit's rule ids and severities). Regenerate after an intended
//! change with `UPDATE_GOLDEN=1 cargo test --test dump_audit_golden` and review the diff.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::golden::{golden, run};
use std::process::Command;

#[test]
fn check_d_shows_the_service_endpoints_backends_and_the_safe_defaults() {
    golden("example_d", &["check", "-c", "examples/krakend.json", "-d"]);
}

#[test]
fn check_dd_adds_every_endpoint_and_backend_setting_and_the_namespaces_contents() {
    golden("good_dd", &["check", "-c", "tests/golden/good.json", "-dd"]);
}

#[test]
fn check_ddd_adds_the_service_connection_settings() {
    golden(
        "example_ddd",
        &["check", "-c", "examples/krakend.json", "-ddd"],
    );
}

#[test]
fn audit_lists_findings_with_rule_ids_and_severities_and_exits_1() {
    golden("audit_good", &["audit", "-c", "tests/golden/good.json"]);
}

#[test]
fn audit_of_a_hardened_config_finds_only_the_missing_tls_and_ignoring_it_exits_0() {
    golden(
        "audit_hardened",
        &["audit", "-c", "tests/golden/hardened.json"],
    );
    let out = Command::new(env!("CARGO_BIN_EXE_proxy"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["audit", "-c", "tests/golden/hardened.json", "-i", "2.1.2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty() && out.stdout.is_empty());
}

#[test]
fn audit_severity_filter_ignore_list_and_format_template() {
    golden(
        "audit_filtered",
        &[
            "audit", "-c", "tests/golden/good.json", "-s", "CRITICAL,HIGH", "-i", "2.1.2,3.1.3",
            "-f", "{{ range $i, $r := .Recommendations }}{{ if $i }};{{ end }}{{ $r.Rule }}={{ $r.Severity }}{{ end }}\n",
        ],
    );
}

#[test]
fn audit_of_a_broken_config_prints_its_errors_and_exits_1() {
    let out = run(&["audit", "-c", "tests/golden/broken.json"]);
    assert!(out.starts_with("exit: 1\n"), "{out}");
    assert!(out.contains("tests/golden/broken.json:"), "{out}");
}
