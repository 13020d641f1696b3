//! The outside tools exports are judged by — gdb, gcore, eu-stack, eu-readelf — run in
//! batch mode. They are installed by `scripts/test-deps.sh` (the README's test command);
//! a missing one fails the test with that advice rather than skipping it.

use std::path::Path;
use std::process::Command;

/// Runs `tool args…` and returns its standard output and error together; panics if the
/// tool is missing.
pub fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {tool}: {e}; install the test tools with scripts/test-deps.sh")
    });
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text
}

/// `gdb -batch` on `core` of `exe`, with each command given as `-ex`.
pub fn gdb(exe: &Path, core: &Path, commands: &[&str]) -> String {
    let mut args = vec!["-batch", "-nx"];
    for c in commands {
        args.extend(["-ex", c]);
    }
    let exe = exe.to_str().expect("utf-8 path");
    let core = core.to_str().expect("utf-8 path");
    args.extend([exe, core]);
    run("gdb", &args)
}

/// Splits `thread apply all …` output into (tid, the lines for it).
pub fn gdb_threads(text: &str) -> Vec<(i32, String)> {
    let mut out: Vec<(i32, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with("Thread ") {
            if let Some(tid) = line
                .split("(LWP ")
                .nth(1)
                .and_then(|r| r.split(')').next())
                .and_then(|t| t.parse().ok())
            {
                out.push((tid, String::new()));
                continue;
            }
        }
        if let Some(last) = out.last_mut() {
            last.1.push_str(line);
            last.1.push('\n');
        }
    }
    out
}

/// The value gdb printed for register `reg` (`r12  0x…  …`) in `text`.
pub fn gdb_register(text: &str, reg: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next()? == reg).then_some(())?;
        u64::from_str_radix(w.next()?.strip_prefix("0x")?, 16).ok()
    })
}

/// `eu-stack --core CORE -e EXE`: for each thread, its tid and frames (`#n 0xPC name`).
pub fn eu_stack(exe: &Path, core: &Path) -> Vec<(i32, Vec<(u64, String)>)> {
    let text = run(
        "eu-stack",
        &[
            "--core",
            core.to_str().expect("utf-8 path"),
            "-e",
            exe.to_str().expect("utf-8 path"),
        ],
    );
    let mut out: Vec<(i32, Vec<(u64, String)>)> = Vec::new();
    for line in text.lines() {
        if let Some(tid) = line
            .strip_prefix("TID ")
            .and_then(|r| r.trim_end_matches(':').parse().ok())
        {
            out.push((tid, Vec::new()));
        } else if let (Some(rest), Some(last)) = (line.strip_prefix('#'), out.last_mut()) {
            let mut w = rest.split_whitespace().skip(1);
            let pc = w
                .next()
                .and_then(|p| u64::from_str_radix(p.trim_start_matches("0x"), 16).ok());
            if let Some(pc) = pc {
                last.1.push((pc, w.collect::<Vec<_>>().join(" ")));
            }
        }
    }
    out
}

/// `gcore -o PREFIX PID`: the core gdb writes of a live process (stopping it while it
/// writes). Returns the core's path.
pub fn gcore(pid: i32, dir: &Path) -> std::path::PathBuf {
    let prefix = dir.join("gcore");
    let text = run(
        "gcore",
        &["-o", prefix.to_str().expect("utf-8 path"), &pid.to_string()],
    );
    let path = dir.join(format!("gcore.{pid}"));
    assert!(path.exists(), "gcore wrote nothing: {text}");
    path
}

/// `lldb --batch` on `core` of `exe`, with each command given as `-o`.
pub fn lldb(exe: &Path, core: &Path, commands: &[&str]) -> String {
    let mut args = vec![
        "--batch",
        "--no-lldbinit",
        "-c",
        core.to_str().expect("utf-8 path"),
        exe.to_str().expect("utf-8 path"),
    ];
    for c in commands {
        args.extend(["-o", c]);
    }
    run("lldb", &args)
}

/// py-spy, from the virtual environment `scripts/test-deps.sh` makes (`target/test-venv`),
/// or `$PSS_PY_SPY`.
pub fn py_spy() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("PSS_PY_SPY") {
        return p.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/py-spy")
}
