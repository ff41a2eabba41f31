//! `nat64 generate`: the man pages (clap_mangen) and shell completions
//! (clap_complete) produced from the CLI definition itself, so they cannot
//! drift from it. The committed copies live in contrib/man/ and
//! contrib/completions/; `tests/packaging.rs` checks they are current, and
//! `nat64 generate all contrib` refreshes them.

use anyhow::Context as _;
use clap_complete::Shell;
use std::path::Path;

/// Shells completions are generated for, with their conventional file names.
pub const SHELLS: &[(Shell, &str)] = &[
    (Shell::Bash, "nat64.bash"),
    (Shell::Zsh, "_nat64"),
    (Shell::Fish, "nat64.fish"),
];

/// Man pages: `nat64.1` and one `nat64-SUB.1` per visible subcommand, as
/// (file name, roff text).
pub fn man_pages(cmd: &clap::Command) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = cmd.clone();
    cmd.build();
    let mut pages = Vec::new();
    let mut top = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut top)
        .context("rendering the man page")?;
    pages.push(("nat64.1".to_string(), top));
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("nat64-{}", sub.get_name());
        let sub = sub
            .clone()
            .display_name(name.clone())
            .bin_name(name.clone());
        let mut page = Vec::new();
        clap_mangen::Man::new(sub)
            .render(&mut page)
            .with_context(|| format!("rendering the man page of {name}"))?;
        pages.push((format!("{name}.1"), page));
    }
    Ok(pages)
}

/// The completion script for `shell`.
pub fn completion(cmd: &clap::Command, shell: Shell) -> Vec<u8> {
    let mut cmd = cmd.clone();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "nat64", &mut out);
    out
}

/// Every generated file, as (path relative to contrib/, content).
pub fn all_files(cmd: &clap::Command) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut files: Vec<(String, Vec<u8>)> = man_pages(cmd)?
        .into_iter()
        .map(|(n, t)| (format!("man/{n}"), t))
        .collect();
    for (shell, name) in SHELLS {
        files.push((format!("completions/{name}"), completion(cmd, *shell)));
    }
    Ok(files)
}

/// Writes [`all_files`] under `dir` (normally `contrib`).
pub fn write_all(cmd: &clap::Command, dir: &Path) -> anyhow::Result<()> {
    for (rel, text) in all_files(cmd)? {
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("nat64: wrote {}", path.display());
    }
    Ok(())
}

/// `nat64 generate man | completions SHELL | all DIR`.
pub fn cli(cmd: &clap::Command, what: &str, arg: Option<&str>) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match (what, arg) {
        ("man", None) => {
            let pages = man_pages(cmd)?;
            if let Some((_, top)) = pages.first() {
                stdout.write_all(top)?;
            }
        }
        ("man", Some(sub)) => {
            let want = format!("nat64-{sub}.1");
            let pages = man_pages(cmd)?;
            let Some((_, page)) = pages.iter().find(|(n, _)| *n == want) else {
                anyhow::bail!("no subcommand `{sub}`; see `nat64 --help` for the list");
            };
            stdout.write_all(page)?;
        }
        ("completions", Some(sh)) => {
            let Some((shell, _)) = SHELLS.iter().find(|(s, _)| s.to_string() == sh) else {
                anyhow::bail!("no completions for shell `{sh}`; use bash, zsh or fish");
            };
            stdout.write_all(&completion(cmd, *shell))?;
        }
        ("all", Some(dir)) => write_all(cmd, Path::new(dir))?,
        _ => anyhow::bail!(
            "usage: nat64 generate man [SUBCOMMAND] | completions bash|zsh|fish | all DIR \
             (`nat64 generate all contrib` refreshes the committed files)"
        ),
    }
    Ok(())
}
