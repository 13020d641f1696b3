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
    let cmd = crate::Cli::command();
    write_man(&cmd, "pss", &man)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        // The page's name is `pss-SUB`; clap keeps command names for the program's life.
        let name: &'static str = Box::leak(format!("pss-{}", sub.get_name()).into_boxed_str());
        write_man(&sub.clone().name(name), name, &man)?;
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = crate::Cli::command();
        clap_complete::generate_to(shell, &mut cmd, "pss", &completions)
            .with_context(|| format!("writing the {shell} completion"))?;
    }
    Ok(())
}

fn write_man(cmd: &clap::Command, name: &str, dir: &Path) -> Result<()> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))
}
