//! Docs that cannot go stale: every `console` example of README.md and
//! `docs/` runs, its output checked by trycmd (`...` stands for lines left
//! out, `[..]` for part of a line). Each page runs in a fresh empty folder
//! of its own, so an example makes its own data (`trailwatch simulate`) and
//! leaves nothing in the repository. `sh` blocks are what needs an AWS
//! account, a cluster or the shell: each of their trailwatch commands is
//! parsed as the command line parses it, and those that need neither
//! account nor cluster run.

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

/// The `trailwatch` command lines of the `sh` blocks of README.md and
/// `docs/`, each as (page, line, arguments): continuation lines joined,
/// comments and what follows a pipe or redirection left out, the block's
/// variables (`OS="…"`, `export CA=…`) put in, and a `$(…)` that asks a
/// deployed stack for its domain put in as such a domain's address.
fn sh_commands() -> Vec<(String, usize, Vec<String>)> {
    const DOMAIN: &str = "https://search-x.us-east-1.es.amazonaws.com";
    let mut commands = Vec::new();
    for page in pages() {
        let name = page.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&page).unwrap();
        let mut in_sh = false;
        let mut vars: Vec<(String, String)> = Vec::new();
        let mut pending = String::new();
        for (n, line) in text.lines().enumerate() {
            if line.starts_with("```") {
                in_sh = line == "```sh";
                vars.clear();
                continue;
            }
            if !in_sh {
                continue;
            }
            if let Some(start) = line.strip_suffix('\\') {
                pending.push_str(start);
                continue;
            }
            let mut line = std::mem::take(&mut pending) + line;
            // `$(trailwatch outputs …)`: checked on its own, read as a domain.
            while let Some(at) = line.find("$(") {
                let end = at + line[at..].find(')').expect("a closed $(") + 1;
                let inner = line[at + 2..end - 1].split('|').next().unwrap().to_owned();
                commands.extend(trailwatch_args(&inner).map(|a| (name.clone(), n + 1, a)));
                line.replace_range(at..end, DOMAIN);
            }
            for (var, value) in &vars {
                line = line
                    .replace(&format!("\"${var}\""), value)
                    .replace(&format!("${var}"), value);
            }
            let assignment = line.trim_start_matches("export ").trim().to_owned();
            if let Some((var, value)) = assignment.split_once('=') {
                let is_var =
                    !var.is_empty() && var.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
                if is_var && (!value.contains(' ') || value.starts_with('"')) {
                    vars.push((var.to_owned(), value.trim_matches(['"', '\'']).to_owned()));
                    continue;
                }
            }
            commands.extend(trailwatch_args(&line).map(|a| (name.clone(), n + 1, a)));
        }
    }
    commands
}

/// The arguments of a shell line that runs trailwatch (after any
/// `NAME=value` settings), up to a pipe, redirection or `&`.
fn trailwatch_args(line: &str) -> Option<Vec<String>> {
    let words = shlex::split(line)?;
    let mut words = words
        .into_iter()
        .skip_while(|w| w.contains('=') && !w.starts_with('-'));
    let program = words.next()?;
    if program != "trailwatch" && !program.ends_with("/trailwatch") {
        return None;
    }
    let stop = ["|", ">", "<", "&", "&&", ";"];
    Some(
        std::iter::once("trailwatch".to_owned())
            .chain(words.take_while(|w| !stop.contains(&w.as_str())))
            .collect(),
    )
}

/// Every `sh` example's trailwatch command is one the command line takes:
/// its subcommand, flags and values parse as they are written, so a
/// renamed flag cannot linger in the docs. Those that need no account or
/// cluster (`plan`, `completions`, `man`) also run, in a folder of their
/// own, and make what the page says they make.
#[test]
fn every_sh_example_is_a_command_trailwatch_takes_and_the_offline_ones_run() {
    use clap::Parser;
    let commands = sh_commands();
    let subcommands: std::collections::BTreeSet<&str> =
        commands.iter().map(|(_, _, a)| a[1].as_str()).collect();
    for expected in [
        "plan",
        "deploy",
        "destroy",
        "users",
        "detect",
        "opensearch",
        "man",
    ] {
        assert!(
            subcommands.contains(expected),
            "no sh example of {expected}: {subcommands:?}"
        );
    }
    let mut ran = 0;
    for (page, line, args) in &commands {
        if let Err(e) = trailwatch::cli::Cli::try_parse_from(args) {
            panic!("{page}:{line}: `{}` does not parse:\n{e}", args.join(" "));
        }
        if !["plan", "completions", "man"].contains(&args[1].as_str()) {
            continue;
        }
        let home = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let words: Vec<String> = (args[1..].iter())
            .map(|a| a.replace('~', &home.path().to_string_lossy()))
            .collect();
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"))
            .args(&words)
            .current_dir(dir.path())
            .env("HOME", home.path())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{page}:{line}: {words:?}: {said}");
        match args[1].as_str() {
            "plan" => assert!(
                dir.path().join("plan/stack.json").is_file(),
                "{page}:{line}"
            ),
            "completions" => assert!(
                String::from_utf8_lossy(&o.stdout).contains("trailwatch"),
                "{page}:{line}"
            ),
            _ => assert!(
                home.path()
                    .join(".local/share/man/man1/trailwatch.1")
                    .is_file(),
                "{page}:{line}: {said}"
            ),
        }
        ran += 1;
    }
    assert!(ran >= 3, "{ran} offline sh examples ran");
}
