//! Shell completions and man pages, generated from the same clap
//! definitions as `--help` (`clap_complete`, `clap_mangen`), so they cannot
//! drift from the flags.

use anyhow::Context;
use clap::{Args, CommandFactory};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  trailwatch completions bash > ~/.local/share/bash-completion/completions/trailwatch\n  trailwatch completions zsh > ~/.zfunc/_trailwatch\n  trailwatch completions fish > ~/.config/fish/completions/trailwatch.fish"
)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  trailwatch man | man -l -\n  trailwatch man --out /usr/local/share/man/man1"
)]
pub struct ManArgs {
    /// Write trailwatch.1 and a page per command (trailwatch-detect.1, …)
    /// into DIR instead of trailwatch.1 to standard output.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Prints the completion script for a shell.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<i32> {
    let mut cmd = super::Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "trailwatch", &mut out);
    out.flush().context("cannot write the completions")?;
    Ok(super::EXIT_OK)
}

/// Prints the man page, or writes every page into a folder.
pub fn man(args: ManArgs) -> anyhow::Result<i32> {
    let cmd = super::Cli::command();
    match args.out {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot make {}", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
            eprintln!("wrote the man pages into {}", dir.display());
        }
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .and_then(|()| out.flush())
                .context("cannot write the man page")?;
        }
    }
    Ok(super::EXIT_OK)
}
