//! `l1 docs cli` (hidden): the CLI reference generated from the clap definition — the book's
//! `src/reference/cli.md` and one man page per command under `man/` (`l1.1`, `l1-runs-list.1`,
//! …) — so the reference cannot drift from `--help` (`harness/tests/cli_reference.rs` fails
//! when a committed file differs from what this writes).
//!
//! The output depends on the clap definition alone: no terminal width (help is not wrapped), no
//! date, no environment value (man pages name a variable, never its value), no path.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{CommandFactory as _, Subcommand};

/// Where the book page goes, under the book's directory.
pub const BOOK_PAGE: &str = "src/reference/cli.md";
/// Where the man pages go, under the book's directory.
pub const MAN_DIR: &str = "man";

#[derive(Subcommand)]
pub enum DocsAction {
    /// Write the CLI reference generated from the clap definition: `<DIR>/src/reference/cli.md`
    /// and the man pages `<DIR>/man/l1*.1` (man pages of commands that no longer exist are
    /// removed).
    Cli {
        /// The book's directory (default: `<root>/docs`).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// The hand-written top of the book page; the generated reference follows it.
const INTRO: &str = "\
# The l1 command

<!-- Generated from the clap definition by `cargo run --release --bin l1 -- docs cli`; edit the
help texts in harness/src/bin/l1.rs (and harness/src/bin/l1/*.rs), or this introduction in
harness/src/bin/l1/docs.rs, then regenerate. harness/tests/cli_reference.rs fails when this page
is stale. -->

`l1` validates and previews specs, manages catalog snapshots, reports runs, and reads and
manages the results store. Run it from anywhere inside the repository (it finds the root the way
cargo finds a manifest; `--root` or `L1_ROOT` points it elsewhere), or as `cargo run --release --bin l1 -- <command>`.

- `--json` (accepted by every command) prints machine-readable JSON instead of text.
- Exit codes: 0 success; 1 the command's check found a problem (an invalid spec, a failed run,
  catalogs that differ, …); 2 an error (usage, I/O, an unknown run), or a run that is unfinished
  or could not be read. Each command's are in [Exit codes and accounting](accounting.md).
- The environment variables `l1` reads are listed in
  [Environment variables](environment.md).
- The same reference as man pages: `docs/man/l1.1` and one page per command
  (`man docs/man/l1-runs-list.1`).

";

/// A file of the reference: its path under the book's directory and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub path: PathBuf,
    pub text: String,
}

/// The full command-line definition of `l1`, built (global flags propagated, display names
/// such as `l1-runs-list` set) and without the `help` subcommand.
fn command() -> clap::Command {
    let mut cmd = crate::Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Every visible command and argument without a help line, as `l1 runs list --limit`.
pub fn missing_help(cmd: &clap::Command) -> Vec<String> {
    fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        if cmd.is_hide_set() {
            return;
        }
        if cmd.get_about().is_none() && cmd.get_long_about().is_none() {
            out.push(format!("{path} (the command)"));
        }
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                let name = match arg.get_long() {
                    Some(long) => format!("--{long}"),
                    None => format!("<{}>", arg.get_id()),
                };
                out.push(format!("{path} {name}"));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }
    let mut out = Vec::new();
    walk(cmd, cmd.get_name(), &mut out);
    out
}

/// The book page: [`INTRO`], then clap-markdown's reference from its command overview on (its
/// own title and first sentence are replaced by the introduction).
fn book_page() -> Result<String> {
    // clap-markdown walks the unbuilt definition: built subcommands carry bin names
    // (`l1 runs list`) that it would prefix with the parent path a second time.
    let unbuilt = crate::Cli::command();
    let options = clap_markdown::MarkdownOptions::new()
        .show_footer(false)
        .show_table_of_contents(true);
    let generated = clap_markdown::help_markdown_command_custom(&unbuilt, &options);
    const START: &str = "**Command Overview:**";
    let start = generated.find(START).with_context(|| {
        format!("clap-markdown's output has no `{START}` (has its format changed?)")
    })?;
    let mut page = String::from(INTRO);
    // `###### **Options:**` and the like are labels, not headings: as headings they would fill
    // the book's table of contents with one "Options:" per command.
    page.push_str(&generated[start..].replace("\n###### **", "\n**"));
    // One newline at the end, whatever clap-markdown leaves.
    let trimmed = page.trim_end().len();
    page.truncate(trimmed);
    page.push('\n');
    Ok(page)
}

/// One man page per visible command, parents before children, in definition order.
fn man_pages(cmd: &clap::Command) -> Result<Vec<Generated>> {
    fn walk(cmd: &clap::Command, source: &str, out: &mut Vec<Generated>) -> Result<()> {
        if cmd.is_hide_set() {
            return Ok(());
        }
        // Every page names the program and its version (subcommands have no version of their own).
        let man = clap_mangen::Man::new(cmd.clone())
            .source(source)
            .manual("l1 Manual");
        let mut text = Vec::new();
        man.render(&mut text)
            .with_context(|| format!("failed to render the man page of `{}`", cmd.get_name()))?;
        out.push(Generated {
            path: Path::new(MAN_DIR).join(man.get_filename()),
            text: String::from_utf8(text).context("a man page is not UTF-8")?,
        });
        for sub in cmd.get_subcommands() {
            walk(sub, source, out)?;
        }
        Ok(())
    }
    let source = format!(
        "{} {}",
        cmd.get_name(),
        cmd.get_version().unwrap_or_default()
    );
    let mut out = Vec::new();
    walk(cmd, source.trim_end(), &mut out)?;
    Ok(out)
}

/// The whole reference: the book page first, then the man pages. Fails, naming them, when a
/// visible command or argument has no help line (the reference is only as good as its help).
pub fn reference() -> Result<Vec<Generated>> {
    let cmd = command();
    let missing = missing_help(&cmd);
    if !missing.is_empty() {
        anyhow::bail!(
            "these commands and arguments have no help line; add a `///` doc comment to each:\n  {}",
            missing.join("\n  ")
        );
    }
    let mut files = vec![Generated {
        path: PathBuf::from(BOOK_PAGE),
        text: book_page()?,
    }];
    files.extend(man_pages(&cmd)?);
    Ok(files)
}

pub fn run(json: bool, root: &Path, action: &DocsAction) -> Result<ExitCode> {
    match action {
        DocsAction::Cli { out } => {
            let dir = out.clone().unwrap_or_else(|| root.join("docs"));
            let files = reference()?;
            let written = write(&dir, &files)?;
            if json {
                let paths: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
                out!("{}", serde_json::json!({ "written": paths }));
            } else {
                let mut text = String::new();
                for p in &written {
                    let _ = writeln!(text, "wrote {}", p.display());
                }
                out!("{}", text.trim_end());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Write `files` under `dir`, and remove man pages of `l1` under `dir/man` that are not among
/// them (a command that was removed or renamed). Returns the paths written.
fn write(dir: &Path, files: &[Generated]) -> Result<Vec<PathBuf>> {
    let man = dir.join(MAN_DIR);
    let mut written = Vec::new();
    for f in files {
        let path = dir.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("failed to create {}", parent.display()))?;
        }
        std::fs::write(&path, &f.text)
            .with_context(|| format!("failed to write {}", path.display()))?;
        written.push(path);
    }
    for entry in
        std::fs::read_dir(&man).with_context(|| format!("failed to read {}", man.display()))?
    {
        let path = entry
            .with_context(|| format!("failed to read {}", man.display()))?
            .path();
        if is_l1_man_page(&path) && !written.contains(&path) {
            std::fs::remove_file(&path)
                .with_context(|| format!("failed to remove the stale {}", path.display()))?;
        }
    }
    Ok(written)
}

/// `l1.1` or `l1-<command>.1`: a man page this generator owns.
pub fn is_l1_man_page(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == "l1.1" || (name.starts_with("l1-") && name.ends_with(".1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_help_names_commands_and_arguments() {
        let cmd = clap::Command::new("x")
            .about("has help")
            .arg(clap::Arg::new("quiet").long("quiet").help("has help"))
            .arg(clap::Arg::new("loud").long("loud"))
            .arg(clap::Arg::new("secret").long("secret").hide(true))
            .subcommand(clap::Command::new("bare").arg(clap::Arg::new("file")))
            .subcommand(clap::Command::new("hidden").hide(true));
        assert_eq!(
            missing_help(&cmd),
            ["x --loud", "x bare (the command)", "x bare <file>"]
        );
    }

    #[test]
    fn every_command_and_argument_of_l1_has_help() {
        assert_eq!(missing_help(&command()), Vec::<String>::new());
    }

    #[test]
    fn the_reference_is_deterministic_and_hides_docs() {
        let a = reference().unwrap();
        assert_eq!(a, reference().unwrap());
        assert_eq!(a[0].path, Path::new(BOOK_PAGE));
        assert!(a[0].text.starts_with(INTRO));
        assert!(a[0].text.contains("## `l1 runs list`"));
        assert!(
            !a[0].text.contains("## `l1 docs"),
            "the hidden command is not documented"
        );
        let names: Vec<_> = a[1..].iter().map(|g| g.path.clone()).collect();
        assert!(
            names.contains(&Path::new(MAN_DIR).join("l1.1")),
            "{names:?}"
        );
        assert!(
            names.contains(&Path::new(MAN_DIR).join("l1-runs-list.1")),
            "{names:?}"
        );
        assert!(
            !names.iter().any(|n| n.to_string_lossy().contains("docs")),
            "{names:?}"
        );
        assert!(
            !names.iter().any(|n| n.to_string_lossy().contains("help")),
            "{names:?}"
        );
    }
}
