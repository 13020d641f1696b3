//! `pss dump` end to end: the file it writes and where, what it says, refusing to
//! overwrite, standard output, the JSON summary, the progress bar on a terminal only, and
//! its failures — a file size limit reached, an interrupt mid-write — each leaving no file,
//! no clone and an unharmed target.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pss_testbed::corefile::CoreFile;
use pss_testbed::harness::{children_of, Target, TempDir};
use serde_json::Value;

fn pss() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss"))
}

fn testbed() -> PathBuf {
    pss().with_file_name("pss-testbed")
}

fn dump_in(dir: &TempDir, args: &[&str]) -> Output {
    Command::new(pss())
        .arg("dump")
        .args(args)
        .current_dir(&dir.0)
        .output()
        .expect("run pss dump")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_no_children(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !children_of(pid).is_empty() {
        assert!(Instant::now() < deadline, "children left in {pid}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn writes_core_pid_and_refuses_to_overwrite_it() {
    let mut t = Target::spawn(&testbed(), &["va", "2"]);
    let pid = t.pid.to_string();
    let dir = TempDir::new("name");
    let o = dump_in(&dir, &[&pid]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let name = format!("core.{pid}");
    assert_eq!(dir.names(), vec![name.clone()]);
    let out = text(&o.stdout);
    assert!(out.contains(&format!("wrote {name}")), "{out}");
    assert!(out.contains("was paused for"), "{out}");
    assert!(
        text(&o.stderr).is_empty() || !text(&o.stderr).contains('\r'),
        "no progress bar off a terminal"
    );
    let core = CoreFile::read(&dir.0.join(&name));
    assert_eq!(core.prstatus_tids()[0], t.pid);

    let before = std::fs::read(dir.0.join(&name)).unwrap();
    let o = dump_in(&dir, &[&pid]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("--force"), "{}", text(&o.stderr));
    assert_eq!(
        std::fs::read(dir.0.join(&name)).unwrap(),
        before,
        "left alone"
    );
    let o = dump_in(&dir, &[&pid, "--force", "-o", &name]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(dir.names(), vec![name]);
    assert_no_children(t.pid);
    t.assert_unharmed();
    t.wake_parked_and_check();
}

#[test]
fn standard_output_carries_the_core_and_stderr_the_report() {
    let t = Target::spawn(&testbed(), &["va", "2"]);
    let pattern = t.fact_u64("pattern", 0);
    let dir = TempDir::new("stdout");
    let o = dump_in(&dir, &[&t.pid.to_string(), "-o", "-"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(dir.names().is_empty(), "nothing written to disk");
    assert!(
        text(&o.stderr).contains("wrote standard output"),
        "{}",
        text(&o.stderr)
    );
    let core = CoreFile::parse(o.stdout).expect("a core on standard output");
    let page = core.bytes_at(pattern, 4096).unwrap();
    assert!(page
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i * 7 + 3) as u8));
    let o = dump_in(&dir, &[&t.pid.to_string(), "-o", "-", "--json"]);
    assert_eq!(o.status.code(), Some(2), "--json and -o - both want stdout");
}

#[test]
fn json_summary_names_the_file_the_pause_and_the_sizes() {
    let t = Target::spawn(&testbed(), &["va", "4"]);
    let dir = TempDir::new("json");
    let o = dump_in(
        &dir,
        &[
            &t.pid.to_string(),
            "-o",
            "c",
            "--json",
            "--filter",
            "anon",
            "--sync",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    assert_eq!(v["pid"], t.pid);
    assert_eq!(v["output"], "c");
    assert_eq!(v["format"], "core");
    assert_eq!(v["filter"], "0x3");
    let len = std::fs::metadata(dir.0.join("c")).unwrap().len();
    assert_eq!(v["bytes"].as_u64(), Some(len));
    assert!(v["memory_bytes"].as_u64().unwrap() >= 4 << 20);
    assert!(v["pause_us"].as_u64().unwrap() > 0);
    assert!(v["threads"].as_u64().unwrap() >= 6);
    assert!(v["warnings"].as_array().unwrap().is_empty(), "{v}");
}

#[test]
fn bad_arguments_are_usage_errors() {
    let dir = TempDir::new("usage");
    let o = dump_in(&dir, &["1", "--filter", "everything"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("anon-private"),
        "{}",
        text(&o.stderr)
    );
    let o = dump_in(&dir, &["0"]);
    assert_eq!(o.status.code(), Some(2));
    let o = dump_in(&dir, &["999999999"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(dir.names().is_empty());
}

#[test]
fn a_terminal_gets_a_progress_bar() {
    let t = Target::spawn(&testbed(), &["va", "16"]);
    let dir = TempDir::new("tty");
    let cmd = format!("{} dump {} -o c", pss().display(), t.pid);
    // `script` runs the command on a pseudo-terminal and copies what it draws.
    let o = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(&dir.0)
        .output()
        .expect("script (util-linux) runs the command on a terminal");
    assert!(o.status.success(), "{}", text(&o.stdout));
    let drawn = text(&o.stdout);
    assert!(drawn.contains("MiB/s") && drawn.contains('\r'), "{drawn:?}");
    assert!(drawn.contains("wrote c"), "{drawn}");
}

#[test]
fn a_file_size_limit_fails_cleanly() {
    let mut t = Target::spawn(&testbed(), &["va", "16"]);
    let dir = TempDir::new("fsize");
    let mut cmd = Command::new(pss());
    cmd.args(["dump", &t.pid.to_string(), "-o", "c"])
        .current_dir(&dir.0);
    // SAFETY: setrlimit only, in the child before exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 1 << 20,
                rlim_max: 1 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(1), "not killed by SIGXFSZ: {o:?}");
    assert!(
        text(&o.stderr).contains("file size limit"),
        "{}",
        text(&o.stderr)
    );
    assert!(dir.names().is_empty(), "{:?}", dir.names());
    assert_no_children(t.pid);
    t.assert_unharmed();
    t.wake_parked_and_check();
}

#[test]
fn an_interrupt_mid_write_leaves_no_file() {
    let mut t = Target::spawn(&testbed(), &["va", "768"]);
    let dir = TempDir::new("sigint");
    let child = Command::new(pss())
        .args(["dump", &t.pid.to_string(), "-o", "c"])
        .current_dir(&dir.0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the partial file to grow: the write is under way.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let growing = std::fs::read_dir(&dir.0).unwrap().any(|e| {
            let e = e.unwrap();
            e.file_name().to_string_lossy().contains(".partial-")
                && e.metadata().is_ok_and(|m| m.len() > 8 << 20)
        });
        if growing {
            break;
        }
        assert!(Instant::now() < deadline, "the dump never started writing");
        std::thread::sleep(Duration::from_millis(2));
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o.stderr));
    assert!(dir.names().is_empty(), "{:?}", dir.names());
    assert_no_children(t.pid);
    t.assert_unharmed();
    t.wake_parked_and_check();
}

#[test]
fn a_minidump_by_default_name_and_full_memory_on_request() {
    let t = Target::spawn(&testbed(), &["va", "2"]);
    let pid = t.pid.to_string();
    let dir = TempDir::new("minidump");
    let o = dump_in(&dir, &[&pid, "--format", "minidump"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let name = format!("minidump.{pid}.dmp");
    assert_eq!(dir.names(), vec![name.clone()]);
    let small = std::fs::read(dir.0.join(&name)).unwrap();
    assert_eq!(&small[..4], b"MDMP");
    let o = dump_in(
        &dir,
        &[
            &pid,
            "--format",
            "minidump",
            "--full-memory",
            "-o",
            "full.dmp",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let full = std::fs::metadata(dir.0.join("full.dmp")).unwrap().len();
    assert!(
        full > small.len() as u64 + (2 << 20),
        "{full} vs {}",
        small.len()
    );
    let o = dump_in(&dir, &[&pid, "--full-memory"]);
    assert_eq!(o.status.code(), Some(2), "--full-memory is for minidumps");
}

#[test]
fn a_minidump_without_full_memory_takes_no_clone() {
    let mut t = Target::spawn(&testbed(), &["va", "2"]);
    let pid = t.pid.to_string();
    let dir = TempDir::new("minidump-noclone");
    let summary = |args: &[&str]| -> serde_json::Value {
        let o = dump_in(&dir, args);
        assert!(o.status.success(), "{}", text(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let small = summary(&[&pid, "--format", "minidump", "--json", "-o", "s.dmp"]);
    assert_eq!(small["va_clone"], false, "{small}");
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count();
    assert_eq!(small["threads"], threads, "{small}");
    assert!(
        small["memory_bytes"].as_u64().unwrap() > 0,
        "the stacks: {small}"
    );
    let full = summary(&[
        &pid,
        "--format",
        "minidump",
        "--full-memory",
        "--json",
        "-o",
        "f.dmp",
    ]);
    assert_eq!(full["va_clone"], true, "{full}");
    let core = summary(&[&pid, "--json", "-o", "core"]);
    assert_eq!(core["va_clone"], true, "{core}");
    assert_no_children(t.pid);
    t.assert_unharmed();
}
