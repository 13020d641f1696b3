//! `pss stack --samples`: rounds of stacks of a target with known call chains (stacks.c: a
//! thread always running, four parked) aggregated into collapsed stacks that
//! `inferno-flamegraph` draws, a pprof profile that `go tool pprof` reads, text and JSON;
//! Ctrl-C and a target that exits mid-way end sampling with the profile written; the target
//! unharmed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use pss_testbed::harness::{wait_all_in_read_but, Target, TempDir};
use pss_testbed::tools;
use serde_json::Value;

fn pss() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss"))
}

fn run(args: &[&str]) -> Output {
    Command::new(pss()).args(args).output().expect("run pss")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// stacks.c built -O2 with debug information, once per test binary.
fn stacks_exe() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pss-testbed/c/stacks.c");
            let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("profile-stacks");
            let st = Command::new("cc")
                .args(["-O2", "-g", "-pthread", "-o"])
                .arg(&out)
                .arg(&src)
                .status()
                .expect("run cc");
            assert!(st.success(), "cc stacks.c");
            out
        })
        .clone()
}

/// The target, with its threads' tids by name (chain, signal, deep, main, spin) once the
/// parked ones are in read().
fn spawn() -> (Target, HashMap<String, u32>) {
    let t = Target::spawn(&stacks_exe(), &["spin"]);
    let tids: HashMap<String, u32> = t
        .facts("tid")
        .iter()
        .map(|f| (f[0].clone(), f[1].parse().unwrap()))
        .collect();
    wait_all_in_read_but(t.pid, &[tids["spin"] as i32]);
    (t, tids)
}

/// Asserts the target untraced and still answering: its main thread's read(), interrupted
/// by the stops, resumed to take `exit`.
fn unharmed(mut t: Target) {
    t.assert_untraced();
    t.send("exit");
    assert!(t.wait().success());
}

/// Collapsed lines as (thread tid, frames outermost first, count).
fn folded(out: &str) -> Vec<(u32, Vec<String>, u64)> {
    out.lines()
        .map(|l| {
            let (stack, count) = l.rsplit_once(' ').expect("a count");
            let mut parts = stack.split(';');
            let thread = parts.next().unwrap();
            let tid = thread.rsplit_once('-').unwrap().1.parse().unwrap();
            (
                tid,
                parts.map(str::to_owned).collect(),
                count.parse().unwrap(),
            )
        })
        .collect()
}

/// Whether `frames` holds `want` one after the other.
fn has_run(frames: &[String], want: &[&str]) -> bool {
    frames.windows(want.len()).any(|w| w == want)
}

#[test]
fn folded_samples_count_every_thread_each_round_and_inferno_draws_them() {
    let (t, tids) = spawn();
    let dir = TempDir::new("profile-folded");
    let path = dir.join("stacks.folded");
    let o = run(&[
        "stack",
        &t.pid.to_string(),
        "--samples",
        "20",
        "--interval",
        "5",
        "--format",
        "folded",
        "-o",
        path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let lines = folded(&std::fs::read_to_string(&path).unwrap());
    for (name, tid) in &tids {
        let n: u64 = lines.iter().filter(|l| l.0 == *tid).map(|l| l.2).sum();
        assert_eq!(n, 20, "thread {name} ({tid}): {lines:?}");
    }
    let of = |name: &str| {
        let tid = tids[name];
        lines.iter().filter(move |l| l.0 == tid)
    };
    assert!(
        of("chain").all(|l| has_run(&l.1, &["chain_outer", "chain_middle", "chain_inner_[i]"])),
        "{lines:?}"
    );
    assert!(of("signal").all(|l| has_run(&l.1, &["signal_victim", "__GI_raise"])));
    assert!(of("signal").all(|l| l.1.contains(&"__restore_rt".to_owned())));
    assert!(of("spin").all(|l| has_run(&l.1, &["spin_thread", "spin_outer"])));
    assert!(of("spin").any(|l| l.1.last().unwrap() == "spin_inner"));

    let svg = Command::new("inferno-flamegraph")
        .arg(&path)
        .stderr(Stdio::inherit())
        .output()
        .expect("inferno-flamegraph (scripts/test-deps.sh installs it)");
    assert!(svg.status.success());
    let svg = text(&svg.stdout);
    for f in [
        "chain_outer",
        "chain_middle",
        "spin_inner",
        "signal_victim",
        "recurse",
    ] {
        assert!(
            svg.contains(&format!(">{f} (")),
            "{f} not in the flame graph"
        );
    }
    unharmed(t);
}

#[test]
fn a_pprof_profile_is_read_by_go_tool_pprof() {
    let (t, tids) = spawn();
    let dir = TempDir::new("profile-pprof");
    let path = dir.join("stacks.pb.gz");
    let o = run(&[
        "stack",
        &t.pid.to_string(),
        "--samples",
        "10",
        "--interval",
        "5",
        "--format",
        "pprof",
        "-o",
        path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let p = path.to_str().unwrap();
    let top = tools::run("go", &["tool", "pprof", "-top", "-nodecount=200", p]);
    assert!(top.contains("Type: samples"), "{top}");
    assert!(top.contains("Total samples = 50"), "{top}");
    for f in [
        "chain_outer",
        "chain_inner (inline)",
        "spin_outer",
        "__restore_rt",
        "recurse",
        "main",
    ] {
        assert!(top.contains(f), "{f} not in go tool pprof -top:\n{top}");
    }
    // Every parked thread is in read() in each of the 10 rounds: 10 flat samples each.
    let read = top
        .lines()
        .find(|l| l.trim_end().ends_with(" read") || l.contains("__libc_read"))
        .unwrap_or_else(|| panic!("no read in\n{top}"));
    assert!(read.trim_start().starts_with("40 "), "{read}");
    let tags = tools::run("go", &["tool", "pprof", "-tags", p]);
    for tid in tids.values() {
        assert!(
            tags.contains(&format!(": {tid}")),
            "tid {tid} not in\n{tags}"
        );
    }
    assert!(tags.contains("thread_name"), "{tags}");
    unharmed(t);
}

#[test]
fn sampled_json_and_text_count_each_chain() {
    let (t, tids) = spawn();
    let pid = t.pid.to_string();
    let o = run(&["stack", &pid, "--samples", "8", "--interval", "5", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rounds"], 8);
    assert_eq!(v["pid"], t.pid);
    let threads = v["threads"].as_array().unwrap();
    assert_eq!(threads.len(), tids.len());
    for th in threads {
        assert_eq!(th["samples"], 8, "{th}");
        let sum: u64 = th["stacks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["count"].as_u64().unwrap())
            .sum();
        assert_eq!(sum, 8);
    }
    let chain = threads
        .iter()
        .find(|th| th["tid"] == tids["chain"])
        .unwrap();
    // A parked thread is in one chain every round.
    assert_eq!(chain["stacks"].as_array().unwrap().len(), 1, "{chain}");

    let o = run(&[
        "stack",
        &pid,
        "--samples",
        "3",
        "--interval",
        "5",
        "--tid",
        &tids["chain"].to_string(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.starts_with(&format!("PID {pid} ")), "{out}");
    assert!(out.contains(": 3 rounds in "), "{out}");
    assert!(
        out.contains(&format!(
            "TID {} \"profile-stacks\": 3 samples",
            tids["chain"]
        )),
        "{out}"
    );
    assert!(out.contains("  3 (100%):"), "{out}");
    assert!(out.contains("chain_outer"), "{out}");
    assert!(!out.contains("spin_outer"), "{out}");
    unharmed(t);
}

#[test]
fn ctrl_c_ends_sampling_and_writes_what_was_taken() {
    let (t, _) = spawn();
    let dir = TempDir::new("profile-sigint");
    let path = dir.join("stacks.folded");
    let child = Command::new(pss())
        .args([
            "stack",
            &t.pid.to_string(),
            "--samples",
            "1000000",
            "--interval",
            "20",
        ])
        .args(["--format", "folded", "-o", path.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{:?} {}", o.status, text(&o.stderr));
    assert!(
        text(&o.stderr).contains("sampling ends"),
        "{}",
        text(&o.stderr)
    );
    let lines = folded(&std::fs::read_to_string(&path).unwrap());
    let rounds: u64 = lines
        .iter()
        .filter(|l| l.0 == t.pid as u32)
        .map(|l| l.2)
        .sum();
    assert!(
        (5..=80).contains(&rounds),
        "{rounds} rounds in 1.5 s at 20 ms"
    );
    assert!(!pss::Snapshot::partial_path(&path).exists());
    unharmed(t);
}

#[test]
fn a_target_that_exits_ends_sampling_with_a_warning() {
    let testbed = pss().with_file_name("pss-testbed");
    let mut t = Target::spawn(&testbed, &["exit-after", "2500", "2"]);
    let o = run(&[
        "stack",
        &t.pid.to_string(),
        "--symbols-only",
        "--samples",
        "100000",
        "--interval",
        "10",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("the process exited after"),
        "{}",
        text(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["rounds"].as_u64().unwrap() >= 3, "{v}");
    assert!(t.wait().success());
}

#[test]
fn profile_usage_errors_are_clear() {
    let o = run(&["stack", "1", "--format", "pprof"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("-o FILE"), "{}", text(&o.stderr));
    let o = run(&["stack", "1", "--samples", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let dir = TempDir::new("profile-exists");
    let path = dir.join("there");
    std::fs::write(&path, "keep").unwrap();
    let (t, _) = spawn();
    let o = run(&[
        "stack",
        &t.pid.to_string(),
        "--format",
        "folded",
        "-o",
        path.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("exists"), "{}", text(&o.stderr));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep");
    unharmed(t);
}

/// node with `--perf-basic-prof`, running a hot JavaScript loop on its main thread.
const HOT_JS: &str = "
function hotLeaf(n) { let s = 0; for (let i = 0; i < n; i++) { s = (s + i * 31) % 1000003; } return s; }
function hotLoop() { let t = 0; for (;;) { t += hotLeaf(100000); if (t < 0) break; } }
process.stdout.write('ready\\n');
hotLoop();
";

#[test]
fn jit_frames_of_node_are_named_from_its_perf_map() {
    let dir = TempDir::new("profile-node");
    let script = dir.join("hot.js");
    std::fs::write(&script, HOT_JS).unwrap();
    // In the test's own directory: node may leave a log of its own beside the perf map.
    let mut node = Command::new("node")
        .current_dir(dir.join(""))
        .arg("--perf-basic-prof")
        .arg(&script)
        .stdout(Stdio::piped())
        .spawn()
        .expect("node (scripts/test-deps.sh installs it)");
    let pid = node.id();
    let map = PathBuf::from(format!("/tmp/perf-{pid}.map"));
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(node.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "ready\n");
    // Let the loop be compiled (and its name appended to the map).
    std::thread::sleep(Duration::from_millis(800));
    let o = run(&[
        "stack",
        &pid.to_string(),
        "--tid",
        &pid.to_string(),
        "--samples",
        "10",
        "--interval",
        "5",
        "--json",
    ]);
    let status = node.try_wait().unwrap();
    let _ = node.kill();
    let _ = node.wait();
    let _ = std::fs::remove_file(&map);
    assert!(status.is_none(), "node died: {status:?}");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let frames: Vec<&Value> = v["threads"][0]["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["frames"].as_array().unwrap())
        .collect();
    let jit: Vec<&str> = frames
        .iter()
        .filter(|f| f["jit"] == true)
        .map(|f| f["function"].as_str().unwrap())
        .collect();
    assert!(
        jit.iter()
            .any(|n| n.contains("hotLoop") || n.contains("hotLeaf")),
        "no JIT frame named from the perf map: {jit:?}"
    );
    // Beneath the JIT code, node's own frames, walked through V8's frame pointers.
    assert!(
        frames.iter().any(|f| f["function"]
            .as_str()
            .is_some_and(|n| n.contains("node::Start"))),
        "{frames:?}"
    );
}

#[test]
fn a_perf_map_that_is_a_fifo_a_link_or_another_users_is_not_read() {
    let testbed = pss().with_file_name("pss-testbed");
    let mut t = Target::spawn(&testbed, &["threads", "1"]);
    let map = PathBuf::from(format!("/tmp/perf-{}.map", t.pid));
    for (kind, make) in [
        (
            "fifo",
            &(|p: &Path| {
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    p,
                    rustix::fs::FileType::Fifo,
                    rustix::fs::Mode::from_raw_mode(0o644),
                    0,
                )
                .unwrap()
            }) as &dyn Fn(&Path),
        ),
        ("link", &|p: &Path| {
            std::os::unix::fs::symlink("/etc/passwd", p).unwrap()
        }),
        // Not the target's user's (the target runs as root here) nor root's.
        ("foreign", &|p: &Path| {
            std::fs::write(p, "1000 10 planted\n").unwrap();
            std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
        }),
    ] {
        make(&map);
        let o = Command::new(pss())
            .args(["stack", &t.pid.to_string(), "--symbols-only"])
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&map);
        assert!(o.status.success(), "{kind}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains(&format!("/tmp/perf-{}.map", t.pid)),
            "{kind}: {}",
            text(&o.stderr)
        );
    }
    t.assert_unharmed();
    t.wake_parked_and_check();
}
