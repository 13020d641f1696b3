//! Compiles the C programs against `processsnapshot.h` and `libpss.so`, and runs them:
//! `tests/c/layout.c` (every size and offset, as C11 and as C++17), `tests/c/api.c` (the
//! API used the Windows way, on a child it spawns), `tests/c/duplicate.c` (a snapshot
//! duplicated into a second child, freed there, pulled back), and `examples/pss_threads.c`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where cargo put `libpss.so` for this test: `target/<profile>/deps`, next to this test
/// (cargo builds the library in every crate type before its tests).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    assert!(
        dir.join("libpss.so").exists(),
        "{}/libpss.so is missing: run through `cargo test`, which builds it",
        dir.display()
    );
    dir
}

/// Compiles `src` with `compiler` (warnings are errors) into a temporary executable.
fn build(compiler: &[&str], src: &Path, name: &str) -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let lib = lib_dir();
    let st = Command::new(compiler[0])
        .args(&compiler[1..])
        .args(["-Wall", "-Wextra", "-Wpedantic", "-Werror", "-O1"])
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg(src)
        .arg("-L")
        .arg(&lib)
        .arg("-lpss")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", compiler[0]));
    assert!(
        st.success(),
        "{} failed on {}",
        compiler.join(" "),
        src.display()
    );
    out
}

/// Runs a C program built by [`build`] against the `libpss.so` of this build: cargo's
/// `LD_LIBRARY_PATH` (which wins over the rpath) may name a `target/<profile>` holding a
/// stale one from an earlier `cargo build`.
fn command(exe: &Path) -> Command {
    let mut c = Command::new(exe);
    let mut path = std::ffi::OsString::from(lib_dir());
    if let Some(old) = std::env::var_os("LD_LIBRARY_PATH") {
        path.push(":");
        path.push(old);
    }
    c.env("LD_LIBRARY_PATH", path);
    c
}

fn run(exe: &Path, args: &[String]) -> String {
    let out = command(exe).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{} failed ({}):\n{stdout}\n{}",
        exe.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_header_lays_out_every_structure_as_windows_does_in_c_and_cpp() {
    let src = crate_dir().join("tests/c/layout.c");
    let c = build(&["cc", "-std=c11"], &src, "layout-c");
    assert_eq!(run(&c, &[]), "layout ok\n");
    let cpp = build(&["c++", "-std=c++17", "-x", "c++"], &src, "layout-cpp");
    assert_eq!(run(&cpp, &[]), "layout ok\n");
}

#[test]
fn a_c_program_uses_the_api_as_windows_code_does() {
    let exe = build(
        &["cc", "-std=c11"],
        &crate_dir().join("tests/c/api.c"),
        "api",
    );
    assert_eq!(run(&exe, &[]), "api ok\n");
}

#[test]
fn a_snapshot_is_duplicated_into_another_process_and_freed_there() {
    let exe = build(
        &["cc", "-std=c11"],
        &crate_dir().join("tests/c/duplicate.c"),
        "duplicate",
    );
    assert_eq!(run(&exe, &[]), "duplicate ok\n");
}

#[test]
fn the_example_lists_the_threads_of_a_process() {
    let src = crate_dir().join("../../examples/pss_threads.c");
    let exe = build(&["cc", "-std=c11"], &src, "pss_threads");
    let mut child = Command::new("sleep")
        .arg("30")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let out = run(&exe, &[child.id().to_string()]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(out.starts_with("1 thread(s)\n"), "{out}");
    let ip = if cfg!(target_arch = "x86_64") {
        "rip"
    } else {
        "pc"
    };
    assert!(
        out.contains(&format!("thread {}: {ip} 0x", child.id())),
        "{out}"
    );
    // The process is gone now: OpenProcess fails as on Windows.
    let out = command(&exe).arg(child.id().to_string()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("OpenProcess: error 87: OpenProcess: no process has id"),
        "{err}"
    );
}

#[test]
fn a_program_that_reaps_its_children_captures_itself_and_its_child_unharmed() {
    let exe = build(
        &["cc", "-std=c11", "-pthread"],
        &crate_dir().join("tests/c/reaper.c"),
        "reaper",
    );
    assert_eq!(run(&exe, &[]), "reaper ok\n");
}

#[test]
fn windows_clients_as_written_work() {
    let exe = build(
        &["cc", "-std=c11", "-pthread"],
        &crate_dir().join("tests/c/clients.c"),
        "clients",
    );
    assert_eq!(run(&exe, &[]), "clients ok\n");
}

/// The README's "from a build tree" recipe, as written (`-L target/PROFILE -lpss` with an
/// rpath there, no `LD_LIBRARY_PATH`): the build leaves `libpss.so.0 -> libpss.so` beside
/// the library, so the program finds it, and the engine beside it. (Run in a copy of that
/// directory holding this test build's library and engine: `cargo test` refreshes those,
/// not `target/PROFILE/libpss.so`.)
#[test]
fn the_readme_build_tree_recipe_runs() {
    let profile = lib_dir().parent().unwrap().to_path_buf();
    let link = std::fs::read_link(profile.join("libpss.so.0"))
        .expect("the build leaves libpss.so.0 beside libpss.so");
    assert_eq!(link, Path::new("libpss.so"));
    let tree = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("build-tree");
    let _ = std::fs::remove_dir_all(&tree);
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::copy(lib_dir().join("libpss.so"), tree.join("libpss.so")).unwrap();
    std::os::unix::fs::symlink(&link, tree.join("libpss.so.0")).unwrap();
    std::fs::copy(profile.join("pss-engine"), tree.join("pss-engine")).unwrap();
    let root = crate_dir().join("../..");
    let out = tree.join("pss_threads");
    let st = Command::new("cc")
        .arg("-I")
        .arg(root.join("crates/pss-capi/include"))
        .arg(root.join("examples/pss_threads.c"))
        .arg(format!("-L{}", tree.display()))
        .arg("-lpss")
        .arg(format!("-Wl,-rpath,{}", tree.display()))
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let got = Command::new(&out)
        .arg(sleeper.id().to_string())
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let text = String::from_utf8_lossy(&got.stdout);
    assert!(
        got.status.success() && text.starts_with("1 thread(s)"),
        "{text}{}",
        String::from_utf8_lossy(&got.stderr)
    );
}

#[test]
fn windows_code_gets_and_releases_process_handles_the_windows_way() {
    let exe = build(
        &["cc", "-std=c11", "-pthread"],
        &crate_dir().join("tests/c/win32.c"),
        "win32",
    );
    assert_eq!(run(&exe, &[]), "win32 ok\n");
    // A program with Windows functions of its own leaves the header's out.
    let exe = build(
        &["cc", "-std=c11"],
        &crate_dir().join("tests/c/own_win32.c"),
        "own-win32",
    );
    assert_eq!(run(&exe, &[]), "own win32 ok\n");
}

#[test]
fn cpp_code_combines_the_flag_enumerations_as_with_the_windows_sdk() {
    let exe = build(
        &["c++", "-std=c++17", "-x", "c++"],
        &crate_dir().join("tests/c/flags.cpp"),
        "flags-cpp",
    );
    assert_eq!(run(&exe, &[]), "flags ok\n");
}

#[test]
fn a_c_crash_reporter_writes_cores_and_minidumps_and_gets_each_failure_code() {
    let exe = build(
        &["cc", "-std=c11"],
        &crate_dir().join("tests/c/export.c"),
        "export",
    );
    assert_eq!(run(&exe, &[]), "export ok\n");
}
