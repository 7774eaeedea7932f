//! ARCHITECTURE.md stays true: every path it names exists (STYLE practice 12).

use std::path::Path;

#[test]
fn every_path_named_in_architecture_md_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let named: Vec<&str> = text
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|token| ["crates/", "docs/", "web/", "tests/"].iter().any(|prefix| token.starts_with(prefix)))
        .collect();
    assert!(named.len() > 5, "ARCHITECTURE.md names the crates it describes");
    let missing: Vec<&&str> = named.iter().filter(|path| !root.join(path).exists()).collect();
    assert!(missing.is_empty(), "ARCHITECTURE.md names paths that do not exist: {missing:?}");
}
