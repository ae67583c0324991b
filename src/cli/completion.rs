//! `qu completion SHELL` and `qu man --out DIR`: shell completion scripts
//! (clap_complete) and man pages, one per command (clap_mangen), both
//! generated from the same clap definition as `--help`, so they cannot
//! drift from it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{Cli, Failure};

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to complete for: bash, zsh, fish, elvish or powershell
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write the pages into (qu.1, qu-check.1, qu-check-add.1, …); created if missing
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Prints the completion script for `args.shell` on stdout.
pub(super) fn completion(args: CompletionArgs) -> Result<ExitCode, Failure> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "qu", &mut out);
    use std::io::Write;
    match std::io::stdout().write_all(&out) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // `qu completion bash | head` is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(Failure::msg(format!(
            "cannot write the completion script: {e}"
        ))),
    }
}

/// Writes one man page per command into `args.out`.
pub(super) fn man(args: ManArgs) -> Result<ExitCode, Failure> {
    let n = write_man_pages(&args.out).map_err(|e| {
        Failure::msg(format!(
            "cannot write man pages into {}: {e}",
            args.out.display()
        ))
    })?;
    println!("wrote {n} man pages into {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// The pages for `qu` and every visible subcommand; how many were written.
fn write_man_pages(dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(Cli::command(), dir)?;
    let mut n = 0;
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("qu") && name.ends_with(".1") {
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_man_page_per_visible_command() {
        fn count(cmd: &clap::Command) -> usize {
            1 + cmd
                .get_subcommands()
                .filter(|s| !s.is_hide_set() && s.get_name() != "help")
                .map(count)
                .sum::<usize>()
        }
        let dir = tempfile::tempdir().unwrap();
        let written = super::write_man_pages(dir.path()).unwrap();
        use clap::CommandFactory;
        let mut cmd = super::Cli::command();
        cmd.build();
        assert_eq!(written, count(&cmd));
        for page in ["qu.1", "qu-check.1", "qu-check-add.1", "qu-serve.1"] {
            let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
            assert!(
                text.starts_with(".ie") || text.contains(".TH"),
                "{page}: {text}"
            );
        }
    }
}
