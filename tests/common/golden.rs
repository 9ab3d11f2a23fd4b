//! Golden files: run the `proxy` binary from the repository root and compare what it printed
//! (exit code, stdout, stderr) with `tests/golden/NAME.out`. `UPDATE_GOLDEN=1` rewrites the
//! files after an intended change; review the diff.

use std::path::Path;
use std::process::Command;

/// Exit code, stdout and stderr of `proxy ARGS`, in the golden files' layout.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_proxy"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .env_remove("KRAKEND_PORT")
        .env_remove("FC_ENABLE")
        .output()
        .expect("run proxy");
    format!(
        "exit: {}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Assert that `proxy ARGS` prints what `tests/golden/NAME.out` holds.
pub fn golden(name: &str, args: &[&str]) {
    let got = run(args);
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
