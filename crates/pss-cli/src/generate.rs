//! `pss --generate-docs DIR`: the man pages and shell completions, generated from the
//! command's own definitions — what `scripts/install.sh` installs. Not an option of the
//! command (it would show in the pages and completions it writes): recognised as the whole
//! command line before parsing.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

/// The directory of `pss --generate-docs DIR`, when that is the command line.
pub fn requested() -> Option<PathBuf> {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    match args.as_slice() {
        [flag, dir] if flag == "--generate-docs" => Some(PathBuf::from(dir)),
        _ => None,
    }
}

/// Writes `DIR/man1/*.1` and `DIR/completions/{pss.bash,_pss,pss.fish}`.
pub fn generate(dir: &Path) -> Result<()> {
    let man = dir.join("man1");
    let completions = dir.join("completions");
    for d in [&man, &completions] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    // `pss help SUB` is for the terminal; its page would be `pss --help` again.
    let cmd = crate::Cli::command().disable_help_subcommand(true);
    let subs: Vec<_> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let see_also: Vec<String> = subs
        .iter()
        .map(|s| format!("pss-{}(1)", s.get_name()))
        .collect();
    write_man(&cmd, "pss", &man, "EXIT STATUS", &see_also.join(", "))?;
    for sub in subs {
        // The page's name is `pss-SUB`; clap keeps command names for the program's life.
        let name: &'static str = Box::leak(format!("pss-{}", sub.get_name()).into_boxed_str());
        write_man(
            &sub.name(name),
            name,
            &man,
            "NOTES",
            "pss(1), for the exit status",
        )?;
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = crate::Cli::command();
        clap_complete::generate_to(shell, &mut cmd, "pss", &completions)
            .with_context(|| format!("writing the {shell} completion"))?;
    }
    Ok(())
}

/// Writes `DIR/NAME.1`: clap's page, its `after_help` under `extra` (clap calls it
/// EXTRA), and a SEE ALSO section naming `see_also`.
fn write_man(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    extra: &str,
    see_also: &str,
) -> Result<()> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    let page = String::from_utf8(out)?.replace(".SH EXTRA\n", &format!(".SH \"{extra}\"\n"))
        + &format!(".SH \"SEE ALSO\"\n{see_also}\n");
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))
}
