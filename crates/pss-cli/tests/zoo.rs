//! The runtime zoo: real runtimes, each serving the zoo protocol (`zoo/zoo.h`) under load
//! while `pss` captures it with a VA clone 50 times, dumps it (core and minidump) and
//! stacks it (with and without `--deep`), as a user would. Each client must see every
//! answer right, the target must live on untraced with no clone of ours, and — stopped —
//! not one byte of its private writable memory may differ across a capture, a deep stack
//! and a dump. Go (static and cgo), a JVM, node, CPython, BEAM, tokio, and C built
//! dynamically and statically; `scripts/test-deps.sh` installs the toolchains.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

/// VA-clone captures per runtime under load.
const CAPTURES: usize = 50;

/// A zoo target: how to start it.
struct Zoo {
    name: &'static str,
    exe: PathBuf,
    args: Vec<String>,
}

impl Zoo {
    fn new(name: &'static str, exe: PathBuf, args: &[&str]) -> Zoo {
        Zoo {
            name,
            exe,
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }
}

/// Everything a user would do to a live server, under load, and the checks after.
fn exercise(zoo: Zoo) {
    let args: Vec<&str> = zoo.args.iter().map(String::as_str).collect();
    let t = Target::spawn_env(&zoo.exe, &args, TARGET_ENV);
    let pid = t.fact_u64("pid", 0) as i32;
    let port = t.fact_u64("port", 0) as u16;
    let p = pid.to_string();
    let out = work_dir(zoo.name);
    let load = Load::start(port, pid, 4);
    load.wait_answers(20, zoo.name);
    // Fewer on a slow machine (`PSS_TEST_TIME_SCALE`: 12 under the arm64 suite's emulation,
    // where each takes seconds).
    let captures = CAPTURES / pss_testbed::harness::time_scale() as usize;
    for i in 0..captures {
        // A generous stop timeout: two zoo servers and their clients share two CPUs.
        let o = pss_run(
            &[
                "capture",
                &p,
                "--flags",
                "va-clone",
                "--timeout-ms",
                "10000",
            ],
            &[],
        );
        assert!(
            o.status.success(),
            "{}: capture {i} failed: {}",
            zoo.name,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let core = out.join("core");
    let minidump = out.join("minidump.dmp");
    pss_ok(&[
        "dump",
        &p,
        "--force",
        "--timeout-ms",
        "10000",
        "-o",
        core.to_str().unwrap(),
    ]);
    pss_ok(&[
        "dump",
        &p,
        "--force",
        "--format",
        "minidump",
        "-o",
        minidump.to_str().unwrap(),
    ]);
    let stacks = pss_ok(&["stack", &p]);
    assert!(stacks.contains("TID "), "{}: {stacks}", zoo.name);
    pss_ok(&["stack", "--deep", &p]);
    let answered = load.finish(zoo.name);
    assert_eq!(&std::fs::read(&core).unwrap()[..4], b"\x7fELF");
    assert_eq!(&std::fs::read(&minidump).unwrap()[..4], b"MDMP");
    let _ = std::fs::remove_file(&core);
    let _ = std::fs::remove_file(&minidump);
    assert_left_alone(pid, zoo.name);

    assert_memory_untouched(pid, zoo.name, || {
        pss_ok(&["capture", &p, "--flags", "va-clone,threads,thread-context"]);
        pss_ok(&["stack", "--deep", &p]);
        dump_discarded(&p);
    });
    assert_left_alone(pid, zoo.name);
    // It still serves, as itself.
    let after = Load::start(port, pid, 1);
    after.wait_answers(10, zoo.name);
    after.finish(zoo.name);
    eprintln!(
        "{}: {captures} clone captures, 2 dumps, 2 stacks under load ({answered} answers), memory unchanged",
        zoo.name
    );
}

/// Builds the Go server, statically (`CGO_ENABLED=0`) or with cgo.
fn build_go(cgo: bool) -> PathBuf {
    let name = if cgo { "go-cgo" } else { "go-static" };
    build_go_program(name, "server.go", cgo)
}

/// Builds the Go program `zoo/SOURCE` (with cgo if asked) in a directory `name` of its own;
/// or takes `$PSS_ZOO_PREBUILT/NAME`, built from the same sources beforehand where there is
/// no Go toolchain (the arm64 suite cross-builds them on its host: scripts/test-aarch64.sh).
fn build_go_program(name: &str, source: &str, cgo: bool) -> PathBuf {
    if let Some(dir) = std::env::var_os("PSS_ZOO_PREBUILT") {
        let exe = PathBuf::from(dir).join(name);
        assert!(exe.exists(), "{} was not built beforehand", exe.display());
        return exe;
    }
    let dir = work_dir(name);
    let target = source.trim_end_matches(".txt");
    std::fs::copy(zoo_src().join(source), dir.join(target)).unwrap();
    if cgo {
        std::fs::copy(zoo_src().join("cgo.go.txt"), dir.join("cgo.go")).unwrap();
    }
    std::fs::write(dir.join("go.mod"), "module zoo\n\ngo 1.19\n").unwrap();
    let exe = dir.join("server");
    let cache = work_dir("gocache");
    run_ok(
        Command::new("go")
            .args(["build", "-o"])
            .arg(&exe)
            .arg(".")
            .current_dir(&dir)
            .env("CGO_ENABLED", if cgo { "1" } else { "0" })
            .env("GOCACHE", &cache)
            .env("GOPATH", cache.join("gopath"))
            .env("GOFLAGS", "-mod=mod")
            .env("GOTOOLCHAIN", "local"),
        &format!("go build ({name})"),
    );
    exe
}

#[test]
fn go_static_server() {
    exercise(Zoo::new("go-static", build_go(false), &[]));
}

#[test]
fn go_cgo_server() {
    exercise(Zoo::new("go-cgo", build_go(true), &[]));
}

#[test]
fn jvm_server() {
    let dir = work_dir("jvm");
    run_ok(
        Command::new("javac")
            .arg("-d")
            .arg(&dir)
            .arg(zoo_src().join("Server.java")),
        "javac",
    );
    let cp = dir.to_str().unwrap().to_string();
    exercise(Zoo::new(
        "jvm",
        PathBuf::from("java"),
        &["-Xmx128m", "-cp", &cp, "Server"],
    ));
}

#[test]
fn node_server() {
    let script = zoo_src().join("server.js");
    exercise(Zoo::new(
        "node",
        PathBuf::from("node"),
        &[script.to_str().unwrap()],
    ));
}

#[test]
fn python_server() {
    let script = zoo_src().join("server.py");
    exercise(Zoo::new(
        "python",
        PathBuf::from("python3"),
        &[script.to_str().unwrap()],
    ));
}

#[test]
fn beam_server() {
    let script = zoo_src().join("server.erl");
    exercise(Zoo::new(
        "beam",
        PathBuf::from("escript"),
        &[script.to_str().unwrap()],
    ));
}

#[test]
fn tokio_server() {
    exercise(Zoo::new("tokio", sibling("zoo-tokio"), &[]));
}

#[test]
fn c_server() {
    exercise(Zoo::new("c", build_c("server", false), &[]));
}

#[test]
fn static_c_server() {
    exercise(Zoo::new("c-static", build_c("server", true), &[]));
}

/// Go's threads read as Go: idle threads end at `runtime.mcall` (their `g0`'s base), a
/// goroutine blocked in `read()` reaches its own function and ends at `runtime.goexit`, and
/// no chain is "cut short" (`runtime.systemstack` switches are followed). Static and cgo.
#[test]
fn go_stacks_read_as_go() {
    for cgo in [false, true] {
        let name = if cgo { "go-stacks-cgo" } else { "go-stacks" };
        let exe = build_go_program(name, "stacks.go.txt", cgo);
        let t = Target::spawn(&exe, &[]);
        let p = t.pid.to_string();
        // Until the goroutines are parked and the reader sits in read().
        std::thread::sleep(std::time::Duration::from_millis(300));
        let text = pss_ok(&["stack", "--deep", &p]);
        assert!(!text.contains("cut short"), "{name}:\n{text}");
        let reader = text
            .split("TID ")
            .find(|t| t.contains("main.readForever"))
            .unwrap_or_else(|| panic!("{name}: no thread in main.readForever:\n{text}"));
        let last = reader.lines().rfind(|l| l.starts_with('#')).unwrap();
        assert!(last.contains("runtime.goexit"), "{name}:\n{reader}");
        assert!(
            text.split("TID ").any(|t| t
                .lines()
                .rfind(|l| l.starts_with('#'))
                .is_some_and(|l| l.contains("runtime.mcall"))),
            "{name}: no idle thread ends at runtime.mcall:\n{text}"
        );
    }
}
