//! Golden files: a rendering compared with the file kept in `tests/data/`,
//! with a readable diff of the first lines that differ. `TRAILWATCH_BLESS=1`
//! rewrites the files instead; update them on purpose only, and read the
//! diff before committing.

use std::path::Path;

/// Whether this run rewrites the golden files.
pub fn blessing() -> bool {
    std::env::var("TRAILWATCH_BLESS").is_ok()
}

/// Compares `got` with the golden file at `path` (named `name` in
/// messages); the problem, if any. When blessing, writes `got` there.
pub fn check(path: &Path, name: &str, got: &str) -> Option<String> {
    if blessing() {
        std::fs::create_dir_all(path.parent()?).ok()?;
        std::fs::write(path, got).ok()?;
        return None;
    }
    let want = match std::fs::read_to_string(path) {
        Err(_) => {
            return Some(format!(
                "{name}: no golden file (run with TRAILWATCH_BLESS=1)"
            ))
        }
        Ok(want) => want,
    };
    if want == got {
        return None;
    }
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let mut diff: Vec<String> = (0..w.len().max(g.len()))
        .filter(|&i| w.get(i) != g.get(i))
        .take(5)
        .map(|i| {
            format!(
                "  line {}:\n    - {}\n    + {}",
                i + 1,
                w.get(i).unwrap_or(&"(none)"),
                g.get(i).unwrap_or(&"(none)")
            )
        })
        .collect();
    if w.len() != g.len() {
        diff.push(format!("  {} lines, golden {}", g.len(), w.len()));
    }
    Some(format!("{name} differs:\n{}", diff.join("\n")))
}
