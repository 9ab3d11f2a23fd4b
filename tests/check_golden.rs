//! Golden output of `proxy check`: the exact lines a person reads for a broken and a good
//! krakend.json (`tests/golden/*.json` -> `*.out`). Regenerate after an intended change with
//! `UPDATE_GOLDEN=1 cargo test --test check_golden` and review the diff.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

fn run_check(name: &str) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(env!("CARGO_BIN_EXE_proxy"))
        .current_dir(root)
        .args(["check", "-c", &format!("tests/golden/{name}.json")])
        .env_remove("KRAKEND_PORT")
        .output()
        .expect("run proxy check");
    format!(
        "exit: {}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn golden(name: &str) {
    let got = run_check(name);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.out"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        got,
        want,
        "golden {} differs (UPDATE_GOLDEN=1 to regenerate)",
        path.display()
    );
}

#[test]
fn check_reports_every_error_of_a_broken_file_with_positions_and_exits_1() {
    golden("broken");
}

#[test]
fn check_accepts_a_good_file_and_lists_namespaces_it_does_not_implement() {
    golden("good");
}
