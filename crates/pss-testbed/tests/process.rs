//! Process information against an independent oracle (`procfs-core`), and capture with
//! `PSS_CAPTURE_NONE`.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use procfs_core::FromRead;
use pss::records::PriorityClass;
use pss::{
    CaptureFlags, ContextFlags, Error, ProcessFlags, QueryClass, QueryInfo, Snapshot,
    Target as PssTarget, WalkClass, WalkMarker,
};
use pss_testbed::harness::Target;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss-testbed"))
}

fn boot_time_secs() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn process_fields_match_procfs() {
    let mut t = Target::spawn(exe(), &["threads", "2"]);
    let stat_path = format!("/proc/{}/stat", t.pid);
    // CPU times move while the target runs (a slow machine, emulation): bracketed.
    let before = procfs_core::process::Stat::from_file(&stat_path).unwrap();
    let snap = Snapshot::capture(
        PssTarget::Pid(t.pid),
        CaptureFlags::empty(),
        ContextFlags::empty(),
    )
    .unwrap();
    let stat = procfs_core::process::Stat::from_file(&stat_path).unwrap();
    t.assert_unharmed();
    let p = snap.process();
    let status =
        procfs_core::process::Status::from_file(format!("/proc/{}/status", t.pid)).unwrap();

    assert_eq!(p.process_id, t.pid as u32);
    assert_eq!(p.parent_process_id, std::process::id());
    assert_eq!(p.parent_process_id as i32, stat.ppid);
    assert_eq!(p.exit_status, pss::STILL_ACTIVE);
    assert_eq!(p.exit_time, None);
    assert_eq!(p.flags, ProcessFlags::empty());
    assert_eq!(p.priority_class, PriorityClass::Normal);
    assert_eq!(p.base_priority, 8);
    assert_eq!(p.image_file_name, exe().canonicalize().unwrap());
    assert_eq!(p.peb_base_address, stat.arg_start.unwrap());
    assert_eq!(p.linux.num_threads, 3);
    assert_eq!(p.linux.comm.to_string_lossy(), stat.comm);

    // Times: start time from ticks after boot; CPU times from ticks.
    let tck = 100; // CONFIG_HZ-independent USER_HZ on Linux
    let start = UNIX_EPOCH
        + Duration::from_secs(boot_time_secs())
        + Duration::from_millis(stat.starttime * 1000 / tck);
    let diff = p
        .create_time
        .duration_since(start)
        .unwrap_or_else(|e| e.duration());
    assert!(diff < Duration::from_secs(2), "create_time off by {diff:?}");
    let ticks = |t: u64| Duration::from_millis(t * 1000 / tck);
    assert!((ticks(before.utime)..=ticks(stat.utime)).contains(&p.user_time));
    assert!((ticks(before.stime)..=ticks(stat.stime)).contains(&p.kernel_time),);

    // Memory counters (an idle target: they do not move between the two reads).
    assert_eq!(p.virtual_size, status.vmsize.unwrap() * 1024);
    assert_eq!(p.virtual_size, stat.vsize);
    assert_eq!(p.peak_virtual_size, status.vmpeak.unwrap() * 1024);
    assert_eq!(p.peak_working_set_size, status.vmhwm.unwrap() * 1024);
    assert_eq!(
        p.private_usage,
        (status.vmdata.unwrap() + status.vmstk.unwrap()) * 1024
    );
    assert_eq!(p.pagefile_usage, p.private_usage);
    assert!(p.working_set_size > 0);

    // Affinity from Cpus_allowed.
    let allowed = status.cpus_allowed.unwrap();
    assert_eq!(p.affinity_mask as u32, *allowed.last().unwrap());
}

#[test]
fn capture_none_answers_process_information_only() {
    let mut t = Target::spawn(exe(), &["idle"]);
    let snap = Snapshot::capture(
        PssTarget::Pid(t.pid),
        CaptureFlags::empty(),
        ContextFlags::empty(),
    )
    .unwrap();
    t.assert_unharmed();
    match snap.query(QueryClass::ProcessInformation).unwrap() {
        QueryInfo::Process(p) => assert_eq!(p.process_id, t.pid as u32),
        other => panic!("{other:?}"),
    }
    for class in QueryClass::ALL
        .iter()
        .filter(|c| **c != QueryClass::ProcessInformation)
    {
        assert!(
            matches!(snap.query(*class), Err(Error::NotFound { .. })),
            "{class:?}"
        );
    }
    let mut m = WalkMarker::new();
    for class in WalkClass::ALL {
        assert!(
            matches!(snap.walk(&mut m, *class), Err(Error::NotFound { .. })),
            "{class:?}"
        );
    }
}

#[test]
fn a_stopped_target_is_reported_frozen_and_stays_stopped() {
    let mut t = Target::spawn(exe(), &["threads", "2"]);
    // SAFETY: a signal to our own child, by pid.
    unsafe { libc::kill(t.pid, libc::SIGSTOP) };
    pss_testbed::harness::wait_for_state(t.pid, 'T');
    let snap = Snapshot::capture(
        PssTarget::Pid(t.pid),
        CaptureFlags::THREADS
            | CaptureFlags::THREAD_CONTEXT
            | CaptureFlags::HANDLES
            | CaptureFlags::VA_SPACE,
        ContextFlags::ALL,
    )
    .unwrap();
    assert_eq!(t.state(), 'T', "still stopped after the capture");
    t.assert_untraced();
    assert!(snap.process().flags.contains(ProcessFlags::FROZEN));
    for e in snap.threads().unwrap() {
        assert_eq!(e.suspend_count, 1, "thread {}", e.thread_id);
    }
    // SAFETY: as above.
    unsafe { libc::kill(t.pid, libc::SIGCONT) };
    t.assert_unharmed();
    t.wake_parked_and_check();
}

#[test]
fn priority_follows_nice() {
    let mut t = Target::spawn(exe(), &["idle"]);
    // SAFETY: setpriority on our own child.
    assert_eq!(
        unsafe { libc::setpriority(libc::PRIO_PROCESS, t.pid as u32, 10) },
        0
    );
    let snap = Snapshot::capture(
        PssTarget::Pid(t.pid),
        CaptureFlags::THREADS,
        ContextFlags::empty(),
    )
    .unwrap();
    t.assert_unharmed();
    assert_eq!(snap.process().priority_class, PriorityClass::BelowNormal);
    assert_eq!(snap.process().base_priority, 6);
    let leader = &snap.threads().unwrap()[0];
    assert_eq!((leader.priority, leader.base_priority), (6, 6));
}
