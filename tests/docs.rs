//! Docs that cannot go stale: every `console` example of README.md and
//! `docs/` runs, its output checked by trycmd (`...` stands for lines left
//! out, `[..]` for part of a line). Each page runs in a fresh empty folder
//! of its own, so an example makes its own data (`trailwatch simulate`) and
//! leaves nothing in the repository. `sh` blocks are what needs an AWS
//! account or a cluster; `--help` of every command they use is checked by
//! `cli::help_examples_fit_without_wrapping`.

use crate::util::root;

/// The pages with examples: README.md and every page of docs/.
fn pages() -> Vec<std::path::PathBuf> {
    let mut pages = vec![root().join("README.md")];
    let mut docs: Vec<std::path::PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

#[test]
fn every_console_example_in_the_readme_and_docs_runs_as_shown() {
    let dir = tempfile::tempdir().unwrap();
    let mut examples = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        let blocks = text.matches("\n```console\n").count();
        if blocks == 0 {
            continue;
        }
        examples += blocks;
        let stem = page.file_stem().unwrap().to_str().unwrap();
        std::fs::write(dir.path().join(format!("{stem}.md")), &text).unwrap();
        // `NAME.in` is copied to a sandbox the page runs in (`NAME.out`
        // asks for the sandbox; its one file is the copy's).
        for side in ["in", "out"] {
            let folder = dir.path().join(format!("{stem}.{side}"));
            std::fs::create_dir(&folder).unwrap();
            std::fs::write(folder.join(".keep"), "").unwrap();
        }
    }
    assert!(examples >= 3, "{examples} console examples");
    trycmd::TestCases::new()
        .register_bin(
            "trailwatch",
            std::path::PathBuf::from(env!("CARGO_BIN_EXE_trailwatch")),
        )
        .case(dir.path().join("*.md"))
        .run();
}

/// The README's demo is what `make demo` runs: the same simulation and
/// the same detection, so the output the README shows is make demo's.
#[test]
fn the_readme_demo_is_make_demo() {
    let makefile = std::fs::read_to_string(root().join("Makefile")).unwrap();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for (what, step) in [
        ("simulate", "simulate --out"),
        ("detect", "detect $(DEMO_DIR)"),
    ] {
        let line = makefile
            .lines()
            .find(|l| l.contains(step))
            .unwrap_or_else(|| panic!("make demo {what}s"));
        let args = line
            .split_once(what)
            .unwrap()
            .1
            .split(';')
            .next()
            .unwrap()
            .trim()
            .replace("$(DEMO_DIR)", "demo-data");
        let shown = format!("trailwatch {what} {args}");
        assert!(
            readme
                .lines()
                .any(|l| l.starts_with("$ ") && l.ends_with(&shown)),
            "README.md does not show make demo's `{shown}`"
        );
    }
}
