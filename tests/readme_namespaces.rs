//! The README's namespace table is the registry's (`src/config/namespaces/table.rs`): every
//! entry's name, levels, status and description, rendered by `readme_table()`. Regenerate after
//! changing the registry with `UPDATE_README=1 cargo test --test readme_namespaces`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proxy::config::namespaces::{readme_table, Class, REGISTRY};
use std::path::Path;

const BEGIN: &str = "<!-- namespaces:begin -->\n";
const END: &str = "<!-- namespaces:end -->";

#[test]
fn readme_namespace_table_matches_the_registry() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text
        .find(BEGIN)
        .expect("README has the namespaces:begin marker")
        + BEGIN.len();
    let end = text[start..]
        .find(END)
        .expect("README has the namespaces:end marker")
        + start;
    let want = readme_table();
    if std::env::var_os("UPDATE_README").is_some() {
        let updated = format!("{}{want}{}", &text[..start], &text[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert_eq!(
        &text[start..end],
        want,
        "README.md's namespace table differs from the registry \
         (UPDATE_README=1 cargo test --test readme_namespaces)"
    );
}

#[test]
fn every_registry_entry_has_one_readme_row_with_its_status() {
    let table = readme_table();
    for n in REGISTRY {
        let shown = n.name.trim_end_matches('*');
        let rows: Vec<&str> = table
            .lines()
            .filter(|l| l.starts_with(&format!("| `{shown}")))
            .filter(|l| l.contains(n.about))
            .collect();
        assert_eq!(rows.len(), 1, "{}: {rows:?}", n.name);
        assert!(rows[0].contains(n.class.status()), "{}", rows[0]);
    }
    // The statuses the README's other tables use for fail-closed and ignored namespaces.
    assert_eq!(Class::FailClosed.status(), "not yet: fail closed (501)");
    assert_eq!(Class::Ignored.status(), "ignored with a warning");
}
