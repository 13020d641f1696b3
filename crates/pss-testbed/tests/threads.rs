//! Threads and register contexts, checked against what each target thread loaded itself.

use std::collections::BTreeSet;
use std::path::Path;

use pss::{CaptureFlags, ContextFlags, QueryClass, QueryInfo, Snapshot, Target as PssTarget};
use pss_testbed::harness::Target;
use pss_testbed::reg_value;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss-testbed"))
}

#[test]
fn exact_thread_set_and_the_registers_each_thread_loaded() {
    let mut t = Target::spawn(exe(), &["threads", "6"]);
    let tids = t.parked_tids();
    let snap = Snapshot::capture(
        PssTarget::Pid(t.pid),
        CaptureFlags::THREADS | CaptureFlags::THREAD_CONTEXT,
        ContextFlags::ALL,
    )
    .expect("capture");
    t.assert_unharmed();

    let threads = snap.threads().expect("threads captured");
    let got: BTreeSet<u32> = threads.iter().map(|e| e.thread_id).collect();
    let mut want: BTreeSet<u32> = tids.iter().map(|&x| x as u32).collect();
    want.insert(t.pid as u32);
    assert_eq!(
        got, want,
        "the thread set is exactly the leader plus the parked threads"
    );
    assert_eq!(snap.capture_info().threads_stopped, 7);
    assert!(snap.capture_info().pause > std::time::Duration::ZERO);

    for (i, &tid) in tids.iter().enumerate() {
        let e = threads.iter().find(|e| e.thread_id == tid as u32).unwrap();
        assert_eq!(e.process_id, t.pid as u32);
        assert_eq!(e.exit_status, pss::STILL_ACTIVE);
        let ctx = e.context.as_ref().expect("context captured");
        let g = &ctx.general;
        #[cfg(target_arch = "x86_64")]
        {
            let regs = [
                (8, g.r8),
                (9, g.r9),
                (10, g.r10),
                (12, g.r12),
                (13, g.r13),
                (14, g.r14),
                (15, g.r15),
            ];
            for (n, v) in regs {
                assert_eq!(v, reg_value(i, n), "r{n} of thread {i} (tid {tid})");
            }
            assert_eq!(g.orig_rax, libc::SYS_read as u64, "parked in read()");
            assert_eq!(g.rdx, 1, "read() count argument");
            assert_eq!(e.teb_base_address, g.fs_base);
            assert_ne!(g.fs_base, 0);
        }
        #[cfg(target_arch = "aarch64")]
        {
            for n in 20..=26 {
                assert_eq!(
                    g.regs[n],
                    reg_value(i, n as u64),
                    "x{n} of thread {i} (tid {tid})"
                );
            }
            assert_eq!(e.teb_base_address, g.tls);
        }
        assert_eq!(e.linux.syscall, Some(libc::SYS_read));
        assert_eq!(e.last_syscall_number, libc::SYS_read as u16);
        assert_eq!(e.last_syscall_first_argument, g.syscall_arg0());
        assert!(ctx.fp.is_some(), "CONTEXT_ALL includes floating point");
        // The debug registers are x86_64's DR0–DR7; arm64's breakpoint and watchpoint
        // registers are not read (docs/aarch64.md).
        #[cfg(target_arch = "x86_64")]
        assert!(ctx.debug.is_some(), "CONTEXT_ALL includes debug registers");
        #[cfg(target_arch = "aarch64")]
        assert!(ctx.debug.is_none(), "arm64 debug registers are not read");
        assert_eq!(
            ctx.xstate, None,
            "no XSTATE without THREAD_CONTEXT_EXTENDED"
        );
    }
    // The leader's start address is the program entry point.
    let leader = threads
        .iter()
        .find(|e| e.thread_id == t.pid as u32)
        .unwrap();
    assert_ne!(leader.win32_start_address, 0);

    match snap.query(QueryClass::ThreadInformation).unwrap() {
        QueryInfo::Threads {
            threads_captured,
            context_length,
        } => {
            assert_eq!(threads_captured, 7);
            assert_eq!(context_length, pss::CONTEXT_RECORD_SIZE);
        }
        other => panic!("unexpected {other:?}"),
    }

    // Woken after the capture, every thread finds its registers intact and read() restarted.
    t.wake_parked_and_check();
}

#[test]
fn threads_only_has_no_context_but_knows_tls_and_syscall() {
    let mut t = Target::spawn(exe(), &["threads", "2"]);
    let snap = Snapshot::capture(
        PssTarget::Pid(t.pid),
        CaptureFlags::THREADS,
        ContextFlags::empty(),
    )
    .unwrap();
    t.assert_unharmed();
    for e in snap.threads().unwrap() {
        assert!(e.context.is_none());
        assert_ne!(e.teb_base_address, 0);
    }
    match snap.query(QueryClass::ThreadInformation).unwrap() {
        QueryInfo::Threads { context_length, .. } => assert_eq!(context_length, 0),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn extended_context_has_the_xsave_area() {
    let mut t = Target::spawn(exe(), &["threads", "1"]);
    let snap = Snapshot::capture(
        PssTarget::Pid(t.pid),
        CaptureFlags::THREADS
            | CaptureFlags::THREAD_CONTEXT
            | CaptureFlags::THREAD_CONTEXT_EXTENDED,
        ContextFlags::CONTROL | ContextFlags::INTEGER,
    )
    .unwrap();
    t.assert_unharmed();
    for e in snap.threads().unwrap() {
        let ctx = e.context.as_ref().unwrap();
        assert_eq!(ctx.fp, None, "FLOATING_POINT was not asked for");
        assert_eq!(ctx.debug, None, "DEBUG_REGISTERS was not asked for");
        #[cfg(target_arch = "x86_64")]
        {
            let x = ctx.xstate.as_ref().expect("XSAVE area");
            assert!(x.len() >= 576, "legacy area + header, got {}", x.len());
        }
    }
    t.wake_parked_and_check();
}

#[test]
fn threads_created_during_captures_are_never_left_stopped() {
    let mut t = Target::spawn(exe(), &["churn"]);
    for _ in 0..30 {
        let snap = Snapshot::capture(
            PssTarget::Pid(t.pid),
            CaptureFlags::THREADS | CaptureFlags::THREAD_CONTEXT,
            ContextFlags::FULL,
        )
        .expect("capture of a churning target");
        assert!(snap
            .threads()
            .unwrap()
            .iter()
            .any(|e| e.thread_id == t.pid as u32));
        for w in snap.warnings() {
            assert!(
                w.tid.is_some() || w.message.contains("threads kept appearing"),
                "{w}"
            );
        }
        t.assert_untraced();
    }
    t.assert_unharmed();
}

#[test]
fn many_captures_in_parallel_from_several_threads() {
    let targets: Vec<Target> = (0..3)
        .map(|_| Target::spawn(exe(), &["threads", "3"]))
        .collect();
    std::thread::scope(|s| {
        for t in &targets {
            let pid = t.pid;
            s.spawn(move || {
                for _ in 0..10 {
                    let snap = Snapshot::capture(
                        PssTarget::Pid(pid),
                        CaptureFlags::THREADS,
                        ContextFlags::empty(),
                    )
                    .unwrap();
                    assert_eq!(snap.threads().unwrap().len(), 4);
                }
            });
        }
    });
    for mut t in targets {
        t.assert_unharmed();
    }
}
