//! The saved fuzz corpus (`tests/fuzz/corpus/<target>/`, and every crash
//! found, kept in `tests/fuzz/regressions/<target>/`) replayed through the same entry
//! points the fuzz targets call: none may panic.

use crate::util::root;
use trailwatch::fuzzing::TARGETS;

#[test]
fn every_saved_fuzz_input_is_handled_without_a_panic() {
    let mut failures = Vec::new();
    for (name, target) in TARGETS {
        assert!(
            root()
                .join("tests/fuzz/fuzz_targets")
                .join(format!("{name}.rs"))
                .exists(),
            "tests/fuzz/fuzz_targets/{name}.rs is missing"
        );
        let mut replayed = 0;
        for dir in ["tests/fuzz/corpus", "tests/fuzz/regressions"] {
            let Ok(entries) = std::fs::read_dir(root().join(dir).join(name)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                if std::panic::catch_unwind(|| target(&data)).is_err() {
                    failures.push(path.display().to_string());
                }
                replayed += 1;
            }
        }
        assert!(replayed > 0, "no saved corpus for the {name} target");
    }
    assert!(failures.is_empty(), "panicked on: {failures:#?}");
}
