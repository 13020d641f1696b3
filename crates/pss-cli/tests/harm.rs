//! The target comes to no harm whatever happens to its capturers: `pss` killed (SIGKILL,
//! SIGTERM, SIGINT) at many points of a capture, the engine process killed at every step of
//! one, several capturers at once. Each time the target — a TCP server that answers with
//! its pid, so that a copy of it answering on its socket would give itself away — lives,
//! is untraced, keeps its registers, answers only as itself, and keeps no clone or zombie
//! of ours.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pss_testbed::harness::{children_of, Target};

/// One test at a time: an engine that starts reaps what the ledger says dead engines left,
/// so a test's stray clone could be reaped by another test's engine before it looks.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn pss() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss"))
}

fn testbed() -> PathBuf {
    pss().with_file_name("pss-testbed")
}

/// A server target holding `mib` MiB.
fn server(mib: usize) -> (Target, u16) {
    let t = Target::spawn(&testbed(), &["server", &mib.to_string()]);
    let port = t.fact_u64("port", 0) as u16;
    (t, port)
}

/// Connects to the server and returns the pid it answers with.
fn answer(port: u16) -> u32 {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("the server accepts");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut s = String::new();
    conn.read_to_string(&mut s).expect("the server answers");
    s.trim()
        .strip_prefix("pid ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected answer {s:?}"))
}

/// Waits (bounded) until the target has no child and no traced task, then checks that it
/// answers as itself, several times.
fn assert_whole(t: &mut Target, port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let kids = children_of(t.pid);
        let traced = tracer_pids(t.pid).into_iter().any(|p| p != 0);
        if kids.is_empty() && !traced {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: target {} keeps children {kids:?} / traced {traced}",
            t.pid
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    for _ in 0..3 {
        assert_eq!(answer(port), t.pid as u32, "{what}: a copy answered");
    }
    // Its `waitpid(-1)` reaper thread got no child of ours.
    t.send("ping");
    let seen = t.expect("pong");
    assert!(
        !seen.iter().any(|l| l.starts_with("reaped")),
        "{what}: the target reaped a child it never made: {seen:?}"
    );
}

fn tracer_pids(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| {
            let s = std::fs::read_to_string(t.path().join("status")).ok()?;
            s.lines()
                .find_map(|l| l.strip_prefix("TracerPid:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .collect()
}

/// Processes other than `pid` that hold its listening socket (a copy of it would).
fn socket_holders(pid: i32) -> Vec<i32> {
    let inode = |p: &Path| {
        std::fs::read_link(p)
            .ok()
            .map(|l| l.to_string_lossy().into_owned())
    };
    let ours: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| inode(&e.path()))
        .filter(|l| l.starts_with("socket:"))
        .collect();
    let mut holders = Vec::new();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(other) = p.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if other == pid {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .filter_map(|e| inode(&e.path()))
            .any(|l| ours.contains(&l))
        {
            holders.push(other);
        }
    }
    holders
}

/// How long a whole `pss capture --all` of the target takes here, median of three.
fn capture_time(pid: i32) -> Duration {
    let mut times: Vec<Duration> = (0..3)
        .map(|_| {
            let started = Instant::now();
            let st = Command::new(pss())
                .args(["capture", &pid.to_string(), "--all", "--json"])
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(st.success());
            started.elapsed()
        })
        .collect();
    times.sort();
    times[1]
}

#[test]
fn a_server_never_answers_from_a_copy_whatever_kills_its_capturer() {
    let _one = serial();
    let (mut t, port) = server(64);
    let pid = t.pid.to_string();
    let whole = capture_time(t.pid);
    let save = std::env::temp_dir().join(format!("pss-harm-{}.snap", std::process::id()));
    // Kill points spread over the whole capture, from before the engine starts to after
    // the clone is freed.
    let points = 12u32;
    for (sig, name) in [
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGINT, "SIGINT"),
    ] {
        for i in 0..points {
            let delay = whole * i / (points - 2);
            let _ = std::fs::remove_file(&save);
            let mut cmd = Command::new(pss());
            cmd.args(["capture", &pid, "--all", "--json", "--save"])
                .arg(&save)
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().unwrap();
            std::thread::sleep(delay);
            // SAFETY: a signal to the pss process this test spawned, by pid.
            unsafe { libc::kill(child.id() as i32, sig) };
            let status = child.wait().unwrap();
            let what = format!("{name} after {delay:?}");
            use std::os::unix::process::ExitStatusExt;
            match (sig, status.code(), status.signal()) {
                (_, Some(0), _) => {}
                // SIGKILL; or a signal before `pss` set up its handling, which it does
                // before it does anything else.
                (s, None, Some(k)) if k == s => {}
                (s, Some(c), _) if c == 128 + s => {
                    let mut err = String::new();
                    child
                        .stderr
                        .take()
                        .unwrap()
                        .read_to_string(&mut err)
                        .unwrap();
                    // Released; or signalled while `pss` was still reading its arguments.
                    assert!(
                        err.contains("target was released")
                            || err.contains("before any capture began"),
                        "{what}: {err}"
                    );
                }
                other => panic!("{what}: pss ended with {other:?}"),
            }
            // `pss save` writes FILE.partial-PID first: a signal that can be handled
            // removes it; after a SIGKILL it is left (nothing else is).
            let mut partial = save.clone().into_os_string();
            partial.push(format!(".partial-{}", child.id()));
            if sig == libc::SIGKILL {
                let _ = std::fs::remove_file(&partial);
            } else {
                assert!(
                    !Path::new(&partial).exists(),
                    "{what}: the partial file was left"
                );
                // A file saved before the signal came is whole.
                if save.exists() {
                    pss::Snapshot::load(&save).unwrap_or_else(|e| panic!("{what}: {e}"));
                }
            }
            assert_whole(&mut t, port, &what);
        }
    }
    let _ = std::fs::remove_file(&save);
    assert_eq!(socket_holders(t.pid), Vec::<i32>::new());
    t.wake_parked_and_check();
}

#[test]
fn the_engine_killed_at_every_step_leaves_the_target_whole() {
    let _one = serial();
    let (mut t, port) = server(16);
    let pid = t.pid.to_string();
    for point in [
        // The trampoline's mmap (before the pause) and munmap (after it), and the wait4
        // that reaps a freed clone: self-restoring injections, from armed to unmasked.
        "map:armed",
        "map:entered",
        "map:exited",
        "map:unmasked",
        "seized",
        "clone:armed",
        "clone:entered",
        "clone:exited",
        "clone:unmasked",
        "unmap:armed",
        "unmap:entered",
        "unmap:exited",
        "unmap:unmasked",
        "adopt",
        "answered",
        "free:killed",
        "reap:armed",
        "reap:entered",
        "reap:exited",
        "reap:unmasked",
    ] {
        let out = Command::new(pss())
            .args(["capture", &pid, "--all", "--json"])
            .env("PSS_ENGINE_FAILPOINT", point)
            .stdout(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        // Killed before the answer: the capture fails saying so; after: it succeeded.
        match point {
            "answered" | "free:killed" => assert!(out.status.success(), "{point}: {err}"),
            p if p.starts_with("reap:") => assert!(out.status.success(), "{point}: {err}"),
            _ => assert!(
                err.contains("exited during the request"),
                "{point}: {:?} {err}",
                out.status
            ),
        }
        assert_eq!(tracer_pids(t.pid), vec![0; tracer_pids(t.pid).len()]);
        // At most the clone's zombie is left (a clone made but never freed). It never runs:
        // the target answers as itself.
        for _ in 0..3 {
            assert_eq!(answer(port), t.pid as u32, "{point}: a copy answered");
        }
        // A clone let go by the dying engine exits at once (the trampoline's code).
        let kids = children_of(t.pid);
        for &k in &kids {
            pss_testbed::harness::wait_for_state(k, 'Z');
        }
        // The ledger names it: cleanup reaps it.
        let out = Command::new(pss())
            .args(["cleanup", &pid])
            .output()
            .unwrap();
        assert!(out.status.success());
        let report = String::from_utf8_lossy(&out.stdout);
        for k in &kids {
            assert!(
                report.contains(&format!("clone {k} of process {pid}"))
                    && report.contains("reaped"),
                "{point}: {report}"
            );
        }
        assert_whole(&mut t, port, point);
    }
    assert_eq!(socket_holders(t.pid), Vec::<i32>::new());
    t.wake_parked_and_check();
}

#[test]
fn a_stray_clone_is_reaped_by_the_next_capture_of_its_target() {
    let _one = serial();
    let (mut t, port) = server(8);
    let pid = t.pid.to_string();
    let out = Command::new(pss())
        .args(["capture", &pid, "--flags", "va-clone"])
        .env("PSS_ENGINE_FAILPOINT", "answered")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while children_of(t.pid).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        children_of(t.pid).len(),
        1,
        "the dead engine's clone is a zombie"
    );
    // No cleanup by hand: the next capture of the target finds it in the ledger.
    let out = Command::new(pss())
        .args(["capture", &pid, "--flags", "threads"])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_whole(&mut t, port, "after the next capture");
}

#[test]
fn two_and_four_capturers_of_one_target_all_succeed() {
    let _one = serial();
    let (mut t, port) = server(16);
    let pid = t.pid.to_string();
    for n in [2, 4] {
        let loops: Vec<_> = (0..n)
            .map(|_| {
                let pid = pid.clone();
                std::thread::spawn(move || {
                    (0..8)
                        .map(|_| {
                            Command::new(pss())
                                .args(["capture", &pid, "--all", "--json"])
                                .stdout(Stdio::null())
                                .output()
                                .unwrap()
                        })
                        .filter(|o| !o.status.success())
                        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let failures: Vec<String> = loops.into_iter().flat_map(|h| h.join().unwrap()).collect();
        assert!(failures.is_empty(), "{n} capturers: {failures:?}");
        assert_whole(&mut t, port, &format!("{n} capturers"));
    }
    t.wake_parked_and_check();
}
