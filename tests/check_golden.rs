//! Golden output of `proxy check`: the exact lines a person reads for a broken and a good
//! krakend.json (`tests/golden/*.json` -> `*.out`). Regenerate after an intended change with
//! `UPDATE_GOLDEN=1 cargo test --test check_golden` and review the diff.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::golden::golden;

#[test]
fn check_reports_every_error_of_a_broken_file_with_positions_and_exits_1() {
    golden("broken", &["check", "-c", "tests/golden/broken.json"]);
}

#[test]
fn check_accepts_a_good_file_and_lists_namespaces_it_does_not_implement() {
    golden("good", &["check", "-c", "tests/golden/good.json"]);
}
