//! Targets that broke the promise to leave a process as it was, each now a test: threads on
//! coroutine stacks inside the heap, a handler on a small `sigaltstack`, a supervisor that
//! reaps with `__WALL`, a seccomp filter installed after the capture, memory registered with
//! a userfaultfd someone else reads. `docs/engine.md` ("Where an injection writes",
//! "Freeing a clone") says what pss does for each.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// What every capture-heavy case does: 50 clone captures, a dump, stacks with and without
/// `--deep`.
fn capture_hard(pid: i32, what: &str) {
    let p = pid.to_string();
    for i in 0..50 {
        let o = pss_run(&["capture", &p, "--flags", "va-clone"], &[]);
        assert!(
            o.status.success(),
            "{what}: capture {i}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    dump_discarded(&p);
    pss_ok(&["stack", &p]);
    pss_ok(&["stack", "--deep", &p]);
}

/// Captures the C target `zoo/NAME.c` hard ([`capture_hard`]), has it check what it
/// guards (`check` → `ok`), then, stopped, compares its memory across a clone capture and
/// a deep stack, and has it check again.
fn keeps_what_it_guards(name: &str) {
    let mut t = Target::spawn_env(&build_c(name, false), &[], TARGET_ENV);
    capture_hard(t.pid, name);
    assert_eq!(t.ask("check", ""), "ok");
    let p = t.pid.to_string();
    assert_memory_untouched(t.pid, name, || {
        pss_ok(&["capture", &p, "--flags", "va-clone,threads,thread-context"]);
        pss_ok(&["stack", "--deep", &p]);
    });
    assert_eq!(t.ask("check", ""), "ok");
    assert_left_alone(t.pid, name);
}

/// Fibers on small adjacent stacks carved out of a malloc block, every thread blocked about
/// 1 KiB above its stack's bottom (one switching fibers as fast as it can): nothing below or
/// between the stacks may change (the target checks its canary and arrays, and its own
/// arithmetic), and, stopped, none of its memory.
#[test]
fn fibers_on_small_adjacent_stacks_keep_their_neighbours() {
    keeps_what_it_guards("fibers");
}

/// A thread inside a signal handler on a small alternate stack (in the heap), blocked 1 KiB
/// above its bottom; the leader has exited, so this thread is the first live one.
#[test]
fn a_handler_on_its_sigaltstack_keeps_what_lies_below() {
    keeps_what_it_guards("altstack");
}

/// A supervisor thread blocked in `wait4(-1, …, __WALL)` never collects one of our clones:
/// the free stops the whole target before the clone's zombie becomes visible to it.
#[test]
fn a_wall_reaper_never_sees_a_clone() {
    let mut t = Target::spawn(&build_c("reaper", false), &[]);
    let own_child = t.fact_u64("child", 0) as i32;
    let p = t.pid.to_string();
    for i in 0..30 {
        let o = pss_run(&["capture", &p, "--flags", "va-clone"], &[]);
        assert!(o.status.success(), "capture {i}: {o:?}");
    }
    dump_discarded(&p);
    pss_ok(&["stack", "--deep", &p]);
    t.send("ping");
    let seen = t.expect("pong");
    assert!(seen.is_empty(), "the reaper saw {seen:?}");
    assert_left_alone(t.pid, "reaper");
    assert_eq!(children_of(t.pid), vec![own_child]);
}

/// A target that installs a seccomp filter while a clone exists, captured by an
/// unprivileged user (who may not suspend the filter): the clone's zombie stays (documented),
/// the engine does not keep stopping the target to retry, and `pss cleanup` as root reaps it.
#[test]
fn a_late_seccomp_filter_costs_no_wakeups_and_cleanup_reaps_later() {
    let exe = build_c("lateseccomp", false);
    let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    let mut t = Target::spawn(
        std::path::Path::new("setpriv"),
        &[nobody[0], nobody[1], nobody[2], exe.to_str().unwrap()],
    );
    let pid = t.fact_u64("pid", 0) as i32;
    // A dump into a pipe holds the clone until the pipe is read: meanwhile the filter goes in.
    let mut dump = Command::new("setpriv")
        .args(nobody)
        .arg(pss())
        .args(["dump", &pid.to_string(), "-o", "-"])
        .env_remove("XDG_RUNTIME_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while clone_children(pid).is_empty() {
        assert!(Instant::now() < deadline, "no clone appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(t.ask("seccomp", ""), "filtered");
    let mut sink = Vec::new();
    std::io::Read::read_to_end(dump.stdout.as_mut().unwrap(), &mut sink).unwrap();
    assert!(dump.wait().unwrap().success());
    // The engine gave up at once: no engine left, and the target is not woken up again.
    let switches = |pid: i32| -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        s.lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum()
    };
    std::thread::sleep(Duration::from_millis(300));
    let before = switches(pid);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        switches(pid),
        before,
        "the target was woken up after pss exited"
    );
    let zombies = clone_children(pid);
    assert_eq!(zombies.len(), 1, "the clone's zombie stays: {zombies:?}");
    // Root may suspend the filter.
    let report = pss_ok(&["cleanup", &pid.to_string()]);
    assert!(report.contains("reaped"), "{report}");
    assert_left_alone(pid, "late seccomp, after cleanup");
    assert_eq!(t.ask("ping", ""), "pong");
}

/// Whether a thread of `pid` sits in uninterruptible sleep.
fn has_thread_in_d(pid: i32) -> bool {
    thread_states(pid).iter().any(|&(_, s)| s == 'D')
}

/// Memory registered with a userfaultfd that another process reads: a clone is refused
/// before any pause, saying why, and the target is untouched.
#[test]
fn memory_registered_with_a_foreign_userfaultfd_is_refused_before_the_pause() {
    let mut t = Target::spawn(&sibling("pss-testbed"), &["uffd-foreign"]);
    let range = t.fact_u64("uffd-range", 0);
    let p = t.pid.to_string();
    for args in [
        vec!["capture", &p, "--flags", "va-clone"],
        vec!["stack", "--deep", &p],
    ] {
        let o = pss_run(&args, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(6), "{args:?}: {err}");
        assert!(
            err.contains(&format!("{range:#x}")) && err.contains("userfaultfd"),
            "{args:?}: {err}"
        );
    }
    let o = pss_run(&["dump", &p, "-o", "-"], &[]);
    assert_eq!(o.status.code(), Some(6));
    assert!(!has_thread_in_d(t.pid));
    assert_eq!(t.ask("ping", ""), "pong");
    assert_left_alone(t.pid, "foreign uffd");
}

/// With that refusal switched off (a test hook), the injected clone blocks in the kernel:
/// pss says so — which thread, that it will come back by itself, how to clean up — rather
/// than "restored"; the ledger keeps the clone to come, and once the userfaultfd's reader
/// answers, the thread is back in its own state and `pss cleanup` reaps the clone and
/// unmaps the trampoline.
#[test]
fn a_clone_stuck_in_the_kernel_is_told_truthfully_and_cleaned_up_once_it_returns() {
    let mut t = Target::spawn(&sibling("pss-testbed"), &["uffd-foreign"]);
    let helper = t.fact_u64("uffd-helper", 0) as i32;
    let p = t.pid.to_string();
    let hooks = [
        ("PSS_ENGINE_TEST_SKIP", "uffd"),
        ("PSS_ENGINE_TEST_CLONE_DEADLINE_MS", "500"),
    ];
    let o = pss_run(&["capture", &p, "--flags", "va-clone"], &hooks);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("is still inside it") && err.contains(&format!("pss cleanup {p}")),
        "{err}"
    );
    assert!(!err.contains("restored"), "{err}");
    assert!(
        has_thread_in_d(t.pid),
        "the thread should still be in the clone"
    );
    let report = pss_ok(&["cleanup", &p]);
    assert!(report.contains("still inside"), "{report}");
    assert_eq!(
        clone_children(t.pid),
        Vec::<i32>::new(),
        "no clone exists yet"
    );
    // The userfaultfd's reader answers: the clone completes.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(helper).unwrap(),
        rustix::process::Signal::USR1,
    )
    .unwrap();
    wait_states(t.pid, |s| s != 'D', "left the clone");
    // Any engine that starts meanwhile sweeps the ledger too (the other tests' run in
    // parallel): the clone is reaped by whichever comes first.
    let report = pss_ok(&["cleanup", &p]);
    assert!(
        report.contains("reaped") || report.contains("nothing to clean up"),
        "{report}"
    );
    assert_left_alone(t.pid, "stuck clone, after cleanup");
    // The main thread (the one the clone was injected into) checks its registers after
    // every read: its answer says they came back.
    assert_eq!(t.ask("ping", ""), "pong");
    let maps = std::fs::read_to_string(format!("/proc/{p}/maps")).unwrap();
    assert!(
        !maps
            .lines()
            .any(|l| l.contains(" r-xp ") && l.split_whitespace().count() == 5),
        "the trampoline is still mapped:\n{maps}"
    );
}
