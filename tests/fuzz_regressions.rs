//! Every fuzz target (fuzz/src/lib.rs) over every input kept for it: its seed
//! corpus (fuzz/corpus/<target>/) and the crashes `make fuzz` found
//! (fuzz/regressions/<target>/), so a fixed panic stays fixed. Pure: no cluster.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

#[path = "../fuzz/src/lib.rs"]
mod targets;

/// Runs `body` on every input of `target`; fails naming each input that panicked.
fn each_input(target: &str, body: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let corpus = inputs(&fuzz.join("corpus").join(target));
    assert!(!corpus.is_empty(), "fuzz/corpus/{target}/ has no seeds");
    let regressions = inputs(&fuzz.join("regressions").join(target));
    let panicked: Vec<String> = corpus
        .iter()
        .chain(&regressions)
        .filter(|path| {
            let data = std::fs::read(path).unwrap();
            catch_unwind(AssertUnwindSafe(|| body(&data))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(panicked.is_empty(), "{target} panicked on {panicked:#?}");
}

/// The files of `dir`, sorted; none when it does not exist (not every target
/// has regressions).
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    paths.sort();
    paths
}

#[test]
fn set_parser() {
    each_input("set_parser", targets::set_parser);
}

#[test]
fn values() {
    each_input("values", targets::values);
}

#[test]
fn raycluster() {
    each_input("raycluster", targets::raycluster);
}

#[test]
fn raycluster_edits() {
    each_input("raycluster_edits", targets::raycluster_edits);
}
