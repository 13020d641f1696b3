//! `scripts/install.sh` as a user runs it: installs pss into a temporary prefix (once, for
//! all the tests here), then checks what a C project and a shell user see there — the
//! SONAME and exported symbols of `libpss`, a program built with `pkg-config` and one with
//! CMake's `find_package(pss)` capturing a live process through the installed library and
//! engine, the installed `pss` command, its man pages and bash completion, the Python
//! package installed into a new virtual environment (`--python`) — and that
//! `scripts/uninstall.sh` removes exactly what was installed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("install-test")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `cmd`, which must succeed; its output.
fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout).unwrap()
}

/// The prefix pss is installed in, shared by the tests (installed by the first to ask),
/// with the Python package installed into a virtual environment the script makes
/// (`--venv`, [`venv_python`]).
fn prefix() -> &'static Path {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let prefix = scratch("prefix");
        let venv = scratch("venv");
        std::fs::remove_dir(&venv).unwrap();
        install(&prefix, &["--venv".as_ref(), venv.as_os_str()]);
        prefix
    })
}

/// Runs `scripts/install.sh --prefix PREFIX ARGS…`, which must succeed.
fn install(prefix: &Path, args: &[&std::ffi::OsStr]) {
    run(Command::new("bash")
        .arg(repo().join("scripts/install.sh"))
        .arg("--prefix")
        .arg(prefix)
        .args(args)
        .env_remove("DESTDIR"));
}

/// The interpreter of the virtual environment the install put the Python package in.
fn venv_python() -> PathBuf {
    prefix();
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("install-test/venv/bin/python")
}

/// A command run the way a user of the installed pss runs it: its `PATH` holds the system
/// and `prefix/bin` only, so that the engine found is the installed one, and libpss is
/// found through `LD_LIBRARY_PATH` as the install script's note says.
fn installed(exe: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(exe);
    c.env("PATH", format!("{}/bin:/usr/bin:/bin", prefix().display()))
        .env("LD_LIBRARY_PATH", prefix().join("lib"))
        .env_remove("PSS_ENGINE");
    c
}

/// A process to capture, killed and reaped on drop.
struct Target(std::process::Child);

impl Target {
    fn spawn() -> Target {
        Target(
            Command::new("sleep")
                .arg("60")
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    fn pid(&self) -> String {
        self.0.id().to_string()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the `pss_threads` example built at `exe` on a live process and checks its report.
fn check_pss_threads(mut cmd: Command) {
    let target = Target::spawn();
    let out = stdout(cmd.arg(target.pid()));
    assert!(out.starts_with("1 thread(s)\n"), "{out}");
    assert!(
        out.contains(&format!("thread {}: rip 0x", target.pid())),
        "{out}"
    );
}

fn pkg_config(args: &[&str]) -> Vec<String> {
    let out = stdout(
        Command::new("pkg-config")
            .args(args)
            .arg("pss")
            .env("PKG_CONFIG_PATH", prefix().join("lib/pkgconfig")),
    );
    out.split_whitespace().map(str::to_string).collect()
}

#[test]
fn the_library_has_its_soname_and_symlinks() {
    let lib = prefix().join("lib");
    let version = env!("CARGO_PKG_VERSION");
    let major = env!("CARGO_PKG_VERSION_MAJOR");
    let dynamic = stdout(
        Command::new("readelf")
            .arg("-d")
            .arg(lib.join(format!("libpss.so.{version}"))),
    );
    assert!(
        dynamic.contains(&format!("Library soname: [libpss.so.{major}]")),
        "{dynamic}"
    );
    let link = |name: &str| std::fs::read_link(lib.join(name)).unwrap();
    assert_eq!(
        link(&format!("libpss.so.{major}")),
        Path::new(&format!("libpss.so.{version}"))
    );
    assert_eq!(link("libpss.so"), Path::new(&format!("libpss.so.{major}")));
}

/// The functions `processsnapshot.h` declares: every `Pss…(` outside a comment.
fn header_functions() -> BTreeSet<String> {
    let header = std::fs::read_to_string(prefix().join("include/processsnapshot.h")).unwrap();
    let mut names = BTreeSet::new();
    for line in header.lines() {
        let code = line.split("//").next().unwrap_or_default();
        if code.trim_start().starts_with(['*', '/', '#']) {
            continue;
        }
        for (at, _) in code.match_indices("Pss") {
            let name: String = code[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if code[at + name.len()..].starts_with('(') {
                names.insert(name);
            }
        }
    }
    names
}

#[test]
fn only_the_documented_functions_are_exported() {
    let lib = prefix().join(format!("lib/libpss.so.{}", env!("CARGO_PKG_VERSION")));
    let symbols = stdout(Command::new("nm").args(["-D", "--defined-only"]).arg(&lib));
    let exported: BTreeSet<String> = symbols
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .map(str::to_string)
        .collect();
    let declared = header_functions();
    assert!(declared.contains("PssCaptureSnapshot"), "{declared:?}");
    assert!(declared.contains("PssLinuxWriteCoreDump"), "{declared:?}");
    assert_eq!(exported, declared, "nm -D {}:\n{symbols}", lib.display());
}

#[test]
fn a_program_built_with_pkg_config_captures_a_live_process() {
    let dir = scratch("pkg-config");
    let exe = dir.join("pss_threads");
    run(Command::new("cc")
        .args(["-std=c11", "-Wall", "-Werror"])
        .arg(repo().join("examples/pss_threads.c"))
        .args(pkg_config(&["--cflags", "--libs"]))
        .arg("-o")
        .arg(&exe));
    let needed = stdout(Command::new("readelf").arg("-d").arg(&exe));
    assert!(needed.contains("Shared library: [libpss.so.0]"), "{needed}");
    check_pss_threads(installed(&exe));
}

#[test]
fn a_program_linked_statically_with_pkg_config_captures_a_live_process() {
    let dir = scratch("pkg-config-static");
    let exe = dir.join("pss_threads");
    let flags = pkg_config(&["--cflags", "--libs", "--static"]);
    // libpss.a by name, so that the shared library beside it is not taken instead.
    let flags = flags.iter().map(|f| match f.as_str() {
        "-lpss" => "-l:libpss.a".to_string(),
        _ => f.clone(),
    });
    run(Command::new("cc")
        .arg("-std=c11")
        .arg(repo().join("examples/pss_threads.c"))
        .args(flags)
        .arg("-o")
        .arg(&exe));
    let needed = stdout(Command::new("readelf").arg("-d").arg(&exe));
    assert!(!needed.contains("libpss"), "{needed}");
    // A statically linked program finds the engine beside it, in ../libexec, in $PATH, or
    // where $PSS_ENGINE says; it lives in none of the first three here.
    let mut cmd = installed(&exe);
    cmd.env("PSS_ENGINE", prefix().join("libexec/pss-engine"));
    check_pss_threads(cmd);
}

#[test]
fn a_cmake_project_finds_pss_and_captures_a_live_process() {
    let build = scratch("cmake");
    run(Command::new("cmake")
        .arg("-S")
        .arg(repo().join("examples/cmake"))
        .arg("-B")
        .arg(&build)
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix().display()))
        .stdout(Stdio::null()));
    run(Command::new("cmake")
        .arg("--build")
        .arg(&build)
        .stdout(Stdio::null()));
    check_pss_threads(installed(build.join("pss_threads")));
}

#[test]
fn a_cmake_project_asking_for_another_major_version_is_refused() {
    let src = scratch("cmake-v1-src");
    std::fs::write(
        src.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.16)\nproject(p C)\nfind_package(pss 1 REQUIRED)\n",
    )
    .unwrap();
    let out = Command::new("cmake")
        .arg("-S")
        .arg(&src)
        .arg("-B")
        .arg(scratch("cmake-v1-build"))
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix().display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    let considered = format!("pssConfig.cmake, version: {}", env!("CARGO_PKG_VERSION"));
    assert!(err.contains(&considered), "{err}");
}

#[test]
fn the_installed_command_captures_a_live_process() {
    let target = Target::spawn();
    let out = stdout(installed("pss").args(["capture", &target.pid(), "--json"]));
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["process"]["process_id"], target.0.id(), "{out}");
    let version = stdout(installed("pss").arg("--version"));
    assert_eq!(version, format!("pss {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn the_shell_example_runs_with_the_installed_command() {
    let target = Target::spawn();
    let out = stdout(
        installed("sh")
            .arg(repo().join("examples/pss_threads.sh"))
            .arg(target.pid()),
    );
    let row = out
        .lines()
        .skip_while(|l| !l.starts_with("Threads (1)"))
        .nth(2)
        .unwrap_or_else(|| panic!("no thread table:\n{out}"));
    assert!(row.trim_start().starts_with(&target.pid()), "{out}");
    assert!(
        out.contains(&format!("TID {} \"sleep\"", target.pid())),
        "{out}"
    );
    assert!(out.contains("nanosleep"), "{out}");
}

#[test]
fn the_python_package_is_installed_too() {
    let target = Target::spawn();
    let out = stdout(
        Command::new(venv_python())
            .arg(repo().join("examples/pss_threads.py"))
            .arg(target.pid())
            .env_remove("PSS_ENGINE"),
    );
    assert!(out.starts_with("1 thread(s), paused "), "{out}");
    assert!(
        out.contains(&format!("thread {} sleep: pc 0x", target.pid())),
        "{out}"
    );
}

/// `man -l page`, formatted as text, each run of spaces (justification) made one.
fn man(page: &Path) -> String {
    let text = stdout(
        Command::new("man")
            .arg("-l")
            .arg(page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100"),
    );
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_man_pages_render() {
    let dir = prefix().join("share/man/man1");
    let main = man(&dir.join("pss.1"));
    assert!(main.contains("pss - "), "{main}");
    assert!(
        main.contains("EXIT STATUS\nExit codes: 0 success, 1 other error"),
        "{main}"
    );
    assert!(
        main.contains("SEE ALSO\npss-capture(1), pss-dump(1)"),
        "{main}"
    );
    assert!(
        !main.contains("pss-help"),
        "a page that does not exist: {main}"
    );
    for sub in ["capture", "show", "dump", "stack", "flags", "cleanup"] {
        assert!(main.contains(&format!("pss-{sub}(1)")), "{main}");
        let page = man(&dir.join(format!("pss-{sub}.1")));
        assert!(page.contains(&format!("pss-{sub} - ")), "{page}");
        assert!(page.contains("SYNOPSIS"), "{page}");
        assert!(page.contains("SEE ALSO\npss(1)"), "{page}");
    }
    let dump = man(&dir.join("pss-dump.1"));
    assert!(dump.contains("--format"), "{dump}");
}

/// What the installed bash completion offers for the words typed so far (the last one
/// being completed).
fn complete(words: &[&str]) -> BTreeSet<String> {
    let script = prefix().join("share/bash-completion/completions/pss");
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE='{}'\nCOMP_POINT=${{#COMP_LINE}}\n_pss pss '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        quoted.join(" "),
        words.len() - 1,
        words.join(" "),
        words[words.len() - 1],
        words[words.len() - 2],
    );
    stdout(Command::new("bash").arg("-c").arg(program))
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completion_offers_the_subcommands_and_their_flags() {
    let subcommands = complete(&["pss", ""]);
    for sub in [
        "capture", "show", "dump", "stack", "flags", "cleanup", "help",
    ] {
        assert!(subcommands.contains(sub), "{subcommands:?}");
    }
    let dump_flags = complete(&["pss", "dump", "--"]);
    for flag in ["--format", "--output", "--force", "--json", "--help"] {
        assert!(dump_flags.contains(flag), "{dump_flags:?}");
    }
    let formats = complete(&["pss", "dump", "--format", ""]);
    assert!(formats.contains("minidump"), "{formats:?}");
    let stack = complete(&["pss", "stack", "--sy"]);
    assert_eq!(stack, BTreeSet::from(["--symbols-only".to_string()]));
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> BTreeSet<String> {
    let out = stdout(
        Command::new("find")
            .arg(".")
            .args(["-not", "-type", "d"])
            .current_dir(dir),
    );
    out.lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .collect()
}

#[test]
fn the_manifest_lists_every_installed_file() {
    let manifest =
        std::fs::read_to_string(prefix().join("share/pss/install-manifest.txt")).unwrap();
    let listed: BTreeSet<String> = manifest.lines().map(str::to_string).collect();
    assert_eq!(listed, files_under(prefix()));
    let lib_debug = format!("lib/.debug/libpss.so.{}.debug", env!("CARGO_PKG_VERSION"));
    for f in [
        &lib_debug,
        "bin/pss",
        "libexec/pss-engine",
        "lib/libpss.a",
        "include/processsnapshot.h",
        "lib/pkgconfig/pss.pc",
        "lib/cmake/pss/pssConfig.cmake",
        "lib/cmake/pss/pssConfigVersion.cmake",
        "share/man/man1/pss.1",
        "share/zsh/site-functions/_pss",
        "share/fish/vendor_completions.d/pss.fish",
        "bin/.debug/pss.debug",
    ] {
        assert!(listed.contains(f), "{f} not installed: {listed:?}");
    }
}

#[test]
fn debug_info_is_split_off_and_found_by_gdb() {
    let bin = prefix().join("bin/pss");
    let sections = stdout(Command::new("readelf").arg("-S").arg(&bin));
    assert!(!sections.contains(".debug_info"), "{sections}");
    assert!(sections.contains(".gnu_debuglink"), "{sections}");
    let debug = prefix().join("bin/.debug/pss.debug");
    let debug_sections = stdout(Command::new("readelf").arg("-S").arg(&debug));
    assert!(debug_sections.contains(".debug_info"), "{debug_sections}");
    // gdb follows the debuglink to the split file and knows the source of main.
    let info = stdout(
        Command::new("gdb")
            .args(["-nx", "-batch", "-ex", "info functions ^pss::main$"])
            .arg(&bin),
    );
    assert!(info.contains("crates/pss-cli/src/main.rs:"), "{info}");
}

#[test]
fn a_staged_stripped_install_is_relocated_and_uninstalled_to_the_last_file() {
    let destdir = scratch("destdir");
    let root = destdir.join("opt/pss");
    std::fs::create_dir_all(root.join("share/man/man1")).unwrap();
    std::fs::write(root.join("share/man/man1/other.1"), ".TH OTHER 1\n").unwrap();
    let script = |name: &str, args: &[&str]| {
        run(Command::new("bash")
            .arg(repo().join("scripts").join(name))
            .args(["--prefix", "/opt/pss"])
            .args(args)
            .env("DESTDIR", &destdir));
    };
    script("install.sh", &["--strip"]);
    let pc = std::fs::read_to_string(root.join("lib/pkgconfig/pss.pc")).unwrap();
    assert!(pc.starts_with("prefix=/opt/pss\n"), "{pc}");
    assert!(root.join("bin/pss").exists());
    // --strip: no debug files, and no debug sections left in any installed ELF file.
    assert!(!files_under(&root).iter().any(|f| f.contains(".debug/")));
    for f in [
        "bin/pss",
        "libexec/pss-engine",
        "lib/libpss.so.0",
        "lib/libpss.a",
    ] {
        let sections = stdout(Command::new("readelf").args(["-S", "-W"]).arg(root.join(f)));
        assert!(
            !sections.contains(".debug_info"),
            "{f} keeps its debug info"
        );
    }
    script("uninstall.sh", &[]);
    assert_eq!(
        files_under(&destdir),
        BTreeSet::from(["opt/pss/share/man/man1/other.1".to_string()])
    );
    let left: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["share"], "empty directories are removed");
    // A staged install is packaged: it cannot reach into a Python environment.
    let out = Command::new("bash")
        .arg(repo().join("scripts/install.sh"))
        .args(["--prefix", "/opt/pss", "--venv", "/nonexistent/venv"])
        .env("DESTDIR", &destdir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not under DESTDIR"));
}

#[test]
fn uninstall_removes_the_virtual_environment_install_made() {
    let root = scratch("made-venv");
    let venv = root.join("venv");
    let record = std::fs::read_to_string(prefix().join("share/pss/python-install.txt")).unwrap();
    assert!(record.contains("venv "), "{record}");
    // The shared prefix stays for the other tests: uninstall a copy of its record instead.
    let prefix = root.join("prefix");
    std::fs::create_dir_all(prefix.join("share/pss")).unwrap();
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    std::fs::write(
        prefix.join("share/pss/python-install.txt"),
        format!(
            "python {}\nvenv {}\n",
            venv.join("bin/python").display(),
            venv.display()
        ),
    )
    .unwrap();
    std::fs::write(
        prefix.join("share/pss/install-manifest.txt"),
        "share/pss/python-install.txt\nshare/pss/install-manifest.txt\n",
    )
    .unwrap();
    run(Command::new("bash")
        .arg(repo().join("scripts/uninstall.sh"))
        .arg("--prefix")
        .arg(&prefix));
    assert!(!venv.exists(), "the environment install.sh made is left");
    assert_eq!(files_under(&prefix), BTreeSet::new());
}

/// Whether `python` can import the package `pss`.
fn imports_pss(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import pss"])
        .current_dir("/")
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[test]
fn uninstall_takes_the_python_package_out_of_the_environment_it_went_into() {
    // Into an environment of the user's: the package goes, the environment stays.
    let prefix = scratch("python-prefix");
    let venv = scratch("python-venv");
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    let python = venv.join("bin/python");
    install(&prefix, &["--python".as_ref(), python.as_os_str()]);
    assert!(imports_pss(&python));
    run(Command::new("bash")
        .arg(repo().join("scripts/uninstall.sh"))
        .arg("--prefix")
        .arg(&prefix));
    assert!(!imports_pss(&python), "pss is still importable");
    assert!(python.exists(), "the user's environment was removed");
    assert_eq!(files_under(&prefix), BTreeSet::new());
}
