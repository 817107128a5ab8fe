//! Helpers shared by the workspace-level tests: where the repository and the installed default
//! pack are.

use std::path::{Path, PathBuf};

use iris_models::{Catalog, Store};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn catalog() -> Catalog {
    let path = root().join("models/catalog.toml");
    Catalog::parse(&std::fs::read_to_string(&path).expect("models/catalog.toml"), &path).expect("a valid catalog")
}

/// The verified main file of an installed model; the message says how to install it.
pub fn model(id: &str) -> PathBuf {
    let catalog = catalog();
    let entry = catalog.get(id).unwrap_or_else(|| panic!("{id} is not in the catalog"));
    Store::from_env()
        .and_then(|s| s.main_file(entry))
        .unwrap_or_else(|e| panic!("{e} (the tests need the default pack: `iris models pull default`)"))
}

/// Levenshtein distance: the edits that turn `a` into `b` (for word and character error rates).
pub fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, y) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(x != y)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
