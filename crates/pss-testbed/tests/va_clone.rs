//! `PSS_CAPTURE_VA_CLONE`: the clone holds the target's memory as it was during the pause,
//! and the target is unharmed — its syscalls resume, it gets no SIGCHLD, keeps no child.

use std::path::Path;
use std::time::{Duration, Instant};

use pss::records::ForkedAwayCopy;
use pss::{
    CaptureFlags, CaptureOptions, ContextFlags, ErrorKind, QueryClass, QueryInfo, Snapshot,
    Target as PssTarget,
};
use pss_testbed::harness::{children_of, kb_field, wait_for_state, Target};

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss-testbed"))
}

fn clone_flags() -> CaptureFlags {
    CaptureFlags::VA_CLONE
        | CaptureFlags::THREADS
        | CaptureFlags::HANDLES
        | CaptureFlags::HANDLE_NAME_INFORMATION
        | CaptureFlags::VA_SPACE
}

fn capture(t: &Target) -> Snapshot {
    Snapshot::capture(PssTarget::Pid(t.pid), clone_flags(), ContextFlags::empty())
        .expect("VA clone capture")
}

/// Reads a u64 from the live target (not the clone).
fn read_live_u64(pid: i32, addr: u64) -> u64 {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, addr).unwrap();
    u64::from_ne_bytes(b)
}

fn read_u64(snap: &Snapshot, addr: u64) -> u64 {
    let mut b = [0u8; 8];
    snap.va_clone().unwrap().read_exact(addr, &mut b).unwrap();
    u64::from_ne_bytes(b)
}

/// What every VA clone test checks once the snapshot is gone: no child left in the target
/// (neither the clone nor its zombie), nothing traced, the target answering.
fn assert_clean_after_free(t: &mut Target) {
    assert_eq!(
        children_of(t.pid),
        Vec::<i32>::new(),
        "children left in {}",
        t.pid
    );
    t.assert_unharmed();
    assert_eq!(t.ask("sigchld", "sigchld"), "0", "the target got a SIGCHLD");
}

#[test]
fn the_clone_holds_memory_as_it_was_during_the_pause() {
    let mut t = Target::spawn(exe(), &["va", "16"]);
    let (mem, mem_len) = (t.fact_u64("mem", 0), t.fact_u64("mem", 1));
    let pattern = t.fact_u64("pattern", 0);
    let counter = t.fact_u64("counter", 0);
    let (dontfork, dontfork_len) = (t.fact_u64("dontfork", 0), t.fact_u64("dontfork", 1));
    let wipe = t.fact_u64("wipeonfork", 0);
    let shared = t.fact_u64("shared", 0);

    let snap = capture(&t);
    t.assert_unharmed();
    let clone = snap.va_clone().expect("a clone");
    assert!(clone.pid() > 0 && clone.pid() != t.pid);
    assert_eq!(
        children_of(t.pid),
        vec![clone.pid()],
        "the clone is the target's child"
    );
    match snap.query(QueryClass::VaCloneInformation).unwrap() {
        QueryInfo::VaClone(c) => assert_eq!(c.pid(), clone.pid()),
        other => panic!("{other:?}"),
    }

    // Exact bytes the target wrote.
    let mut page = vec![0u8; 4096];
    clone.read_exact(pattern, &mut page).unwrap();
    assert!(page
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i * 7 + 3) as u8));
    for p in [0, 1, 1000, mem_len / 4096 - 1] {
        assert_eq!(read_u64(&snap, mem + p * 4096), p);
    }

    // Frozen: the target's counter moves on, the clone's does not.
    let frozen = read_u64(&snap, counter);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(read_u64(&snap, counter), frozen);
    assert!(read_live_u64(t.pid, counter) > frozen);

    // MADV_DONTFORK (absent from a fork) and MADV_WIPEONFORK (zeros in a fork) ranges were
    // copied during the pause.
    let mut df = vec![0u8; dontfork_len as usize];
    clone.read_exact(dontfork, &mut df).unwrap();
    assert!(df.iter().enumerate().all(|(i, &b)| b == 0xD0 ^ (i as u8)));
    let mut wf = vec![0u8; 4096];
    clone.read_exact(wipe, &mut wf).unwrap();
    assert!(wf.iter().all(|&b| b == 0xEE));
    assert_eq!(clone.copies().len(), 2);
    assert!(clone.holes().is_empty());
    // The DONTFORK mapping is in the VA space although the clone lacks it.
    assert!(snap
        .va_space()
        .unwrap()
        .iter()
        .any(|r| r.base_address == dontfork && r.region_size == dontfork_len));

    // Shared mappings stay live in a clone (documented): a write after the capture shows.
    t.send("write-shared");
    t.expect("written");
    let mut sh = vec![0u8; 4096];
    clone.read_exact(shared, &mut sh).unwrap();
    assert!(sh.iter().all(|&b| b == 0x77));

    // Nothing is mapped at 0: a clear error naming the address.
    let err = clone.read(0x1000, &mut [0u8; 16]).unwrap_err();
    assert!(err.to_string().contains("0x1000"), "{err}");

    // Handles were read from the clone before its fds were closed.
    assert!(snap.handles().unwrap().iter().any(|h| h.handle == 0));
    assert_eq!(
        std::fs::read_dir(format!("/proc/{}/fd", clone.pid()))
            .unwrap()
            .count(),
        0,
        "the clone's fds are closed"
    );

    // The target's syscalls resumed: read(), futex; epoll_wait saw the documented EINTR once.
    t.wake_parked_and_check();
    t.send("futex");
    t.expect("futex woke 0 1");
    assert_eq!(t.ask("epoll", "epoll eintr"), "1");

    let clone_pid = clone.pid();
    drop(snap);
    assert!(
        !Path::new(&format!("/proc/{clone_pid}")).exists(),
        "clone reaped"
    );
    assert_clean_after_free(&mut t);
}

#[test]
fn shared_mappings_are_frozen_when_asked() {
    let mut t = Target::spawn(exe(), &["va", "0"]);
    let shared = t.fact_u64("shared", 0);
    let mut opts = CaptureOptions::new(CaptureFlags::VA_CLONE, ContextFlags::empty());
    opts.shared_copy_limit = 1 << 20;
    let snap = Snapshot::capture_with(PssTarget::Pid(t.pid), &opts).unwrap();
    t.send("write-shared");
    t.expect("written");
    let mut sh = vec![0u8; 4096];
    snap.va_clone()
        .unwrap()
        .read_exact(shared, &mut sh)
        .unwrap();
    assert!(
        sh.iter().all(|&b| b == 0x5E),
        "the copy taken during the pause"
    );
    drop(snap);
    assert_clean_after_free(&mut t);
}

#[test]
fn a_five_second_sleep_still_wakes_at_five_seconds() {
    let started = Instant::now();
    let mut t = Target::spawn(exe(), &["va", "0", "sleep"]);
    std::thread::sleep(Duration::from_millis(1000));
    let snap = capture(&t);
    drop(snap);
    let slept = t.ask("", "slept");
    let mut it = slept.split(' ');
    let ms: u64 = it.next().unwrap().parse().unwrap();
    assert_eq!(it.next(), Some("0"), "clock_nanosleep returned 0");
    assert!((4950..5300).contains(&ms), "slept {ms} ms");
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert_clean_after_free(&mut t);
}

#[test]
fn a_seccomp_filter_that_kills_on_clone_does_not_kill_the_target() {
    let mut t = Target::spawn(exe(), &["va", "0", "seccomp"]);
    assert!(t.facts.iter().any(|l| l == "seccomp on"));
    let pattern = t.fact_u64("pattern", 0);
    let snap = capture(&t);
    t.assert_unharmed();
    let mut page = vec![0u8; 4096];
    snap.va_clone()
        .unwrap()
        .read_exact(pattern, &mut page)
        .unwrap();
    assert_eq!(page[1], 10);
    drop(snap);
    assert_clean_after_free(&mut t);
    t.wake_parked_and_check();
}

#[test]
fn an_already_stopped_target_stays_stopped() {
    let mut t = Target::spawn(exe(), &["va", "0"]);
    let _ = std::process::Command::new("kill")
        .args(["-STOP", &t.pid.to_string()])
        .status();
    wait_for_state(t.pid, 'T');
    let snap = capture(&t);
    assert_eq!(t.state(), 'T');
    t.assert_untraced();
    drop(snap);
    assert_eq!(t.state(), 'T');
    assert_eq!(children_of(t.pid), Vec::<i32>::new());
    let _ = std::process::Command::new("kill")
        .args(["-CONT", &t.pid.to_string()])
        .status();
    assert_clean_after_free(&mut t);
}

#[test]
fn a_pipe_reaches_eof_while_the_clone_is_alive() {
    let mut t = Target::spawn(exe(), &["va", "0"]);
    let snap = capture(&t);
    t.send("close-stdout");
    assert!(
        t.stdout_closed(Duration::from_secs(5)),
        "the clone kept the pipe's write end open"
    );
    assert!(snap.va_clone().is_some());
    drop(snap);
    assert_eq!(children_of(t.pid), Vec::<i32>::new());
    t.assert_untraced();
}

#[test]
fn memory_counters_describe_the_target_at_the_pause() {
    let mut t = Target::spawn(exe(), &["va", "16"]);
    let status = || std::fs::read_to_string(format!("/proc/{}/status", t.pid)).unwrap();
    let before = status();
    let snap = capture(&t);
    let after = status();
    let clone = snap.va_clone().unwrap();
    let clone_status = std::fs::read_to_string(format!("/proc/{}/status", clone.pid())).unwrap();
    let kb = |text: &str, key: &str| kb_field(text, key).unwrap() * 1024;
    let p = snap.process();
    // The target's own counters (it maps nothing meanwhile: sizes are equal before and
    // after; its resident set moves by a few pages at most).
    assert_eq!(p.virtual_size, kb(&before, "VmSize:"));
    assert_eq!(p.virtual_size, kb(&after, "VmSize:"));
    // Anonymous memory too moves by a page or so (a thread's stack, the allocator): seen
    // under emulation, where the capture is slow enough for a timer thread to fault one in.
    let anon = kb(&before, "RssAnon:");
    assert!(
        p.linux.rss_anon.abs_diff(anon) <= 64 << 10,
        "{} vs the target's {anon}",
        p.linux.rss_anon
    );
    let rss = kb(&after, "VmRSS:");
    assert!(
        p.working_set_size.abs_diff(rss) <= 64 << 10,
        "{} vs the target's {rss}",
        p.working_set_size
    );
    // Not the clone's: a fork maps no file page until it is touched.
    assert!(
        p.working_set_size > kb(&clone_status, "VmRSS:"),
        "{} vs the clone's {}",
        p.working_set_size,
        kb(&clone_status, "VmRSS:")
    );
    assert_eq!(p.process_id, t.pid as u32);
    drop(snap);
    assert_clean_after_free(&mut t);
}

#[test]
fn pages_stay_shared_after_a_full_read() {
    let mut t = Target::spawn(exe(), &["va", "64"]);
    let (mem, len) = (t.fact_u64("mem", 0), t.fact_u64("mem", 1));
    let snap = capture(&t);
    let clone = snap.va_clone().unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0;
    while off < len {
        clone.read_exact(mem + off, &mut buf).unwrap();
        assert_eq!(u64::from_ne_bytes(buf[..8].try_into().unwrap()), off / 4096);
        off += buf.len() as u64;
    }
    let rollup = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", clone.pid())).unwrap();
    let kb = |key: &str| kb_field(&rollup, key).unwrap();
    assert!(
        kb("Shared_Dirty:") >= 64 * 1024,
        "the read unshared pages: {rollup}"
    );
    assert!(kb("Private_Dirty:") < 8 * 1024, "{rollup}");
    drop(snap);
    assert_clean_after_free(&mut t);
}

#[test]
fn a_target_holding_a_userfaultfd_is_refused_and_left_alone() {
    let mut t = Target::spawn(exe(), &["va", "0", "uffd"]);
    let fd = t.fact_u64("uffd", 0);
    let err = capture_err(&t);
    assert_eq!(err.kind(), ErrorKind::NotSupported);
    assert!(
        err.to_string().contains(&format!("userfaultfd (fd {fd})")),
        "{err}"
    );
    assert_clean_after_free(&mut t);
}

fn capture_err(t: &Target) -> pss::Error {
    Snapshot::capture(PssTarget::Pid(t.pid), clone_flags(), ContextFlags::empty()).unwrap_err()
}

#[test]
fn a_target_exiting_during_clone_captures_keeps_its_exit_status() {
    for _ in 0..3 {
        let mut t = Target::spawn(exe(), &["exit-after", "60", "20"]);
        let mut made = 0;
        loop {
            match Snapshot::capture(
                PssTarget::Pid(t.pid),
                CaptureFlags::VA_CLONE,
                ContextFlags::empty(),
            ) {
                Ok(s) => {
                    made += 1;
                    drop(s);
                }
                Err(e) => {
                    assert!(
                        matches!(
                            e.kind(),
                            ErrorKind::ProcessExited | ErrorKind::NoSuchProcess
                        ),
                        "unexpected error {e}"
                    );
                    break;
                }
            }
        }
        let status = t.wait();
        assert_eq!(status.code(), Some(0), "{status:?} after {made} clones");
    }
}

#[test]
fn auxiliary_pages_hold_each_threads_stack_and_tls_page() {
    use pss::records::AuxiliaryPageKind;
    use pss::{WalkClass, WalkEntry, WalkMarker};
    let mut t = Target::spawn(exe(), &["threads", "2"]);
    let snap = Snapshot::capture(
        PssTarget::Pid(t.pid),
        CaptureFlags::AUXILIARY_PAGES | CaptureFlags::THREADS | CaptureFlags::THREAD_CONTEXT,
        ContextFlags::ALL,
    )
    .unwrap();
    t.assert_unharmed();
    let pages = snap.auxiliary_pages().expect("auxiliary pages");
    match snap.query(QueryClass::AuxiliaryPagesInformation).unwrap() {
        QueryInfo::AuxiliaryPages { aux_pages_captured } => {
            assert_eq!(aux_pages_captured as usize, pages.len())
        }
        other => panic!("{other:?}"),
    }
    let mem = std::fs::File::open(format!("/proc/{}/mem", t.pid)).unwrap();
    for tid in t.parked_tids() {
        let th = snap
            .threads()
            .unwrap()
            .iter()
            .find(|e| e.thread_id == tid as u32)
            .unwrap();
        let g = &th.context.as_ref().unwrap().general;
        let sp = g.stack_pointer();
        let stack = pages
            .iter()
            .find(|p| p.thread_id == tid as u32 && p.kind == AuxiliaryPageKind::Stack)
            .expect("a stack copy");
        assert!(stack.address <= sp && sp < stack.address + stack.contents.len() as u64);
        // It stops where the thread's stack mapping ends (these stacks are 64 KiB).
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", t.pid)).unwrap();
        let end = maps
            .lines()
            .filter_map(|l| {
                let (s, e) = l.split(' ').next()?.split_once('-')?;
                Some((
                    u64::from_str_radix(s, 16).ok()?,
                    u64::from_str_radix(e, 16).ok()?,
                ))
            })
            .find(|&(s, e)| s <= sp && sp < e)
            .unwrap()
            .1;
        assert_eq!(stack.address + stack.contents.len() as u64, end);
        // The parked thread's frames have not changed since: the copy equals the live bytes
        // (the top of the mapping holds its TLS block, which the kernel updates: rseq).
        use std::os::unix::fs::FileExt;
        let mut live = vec![0u8; (sp - stack.address) as usize + 1024];
        mem.read_exact_at(&mut live, stack.address).unwrap();
        let from = (sp - stack.address) as usize;
        let diff = (from..live.len()).find(|&i| stack.contents[i] != live[i]);
        assert_eq!(
            diff,
            None,
            "stack copy of {tid} at {:#x}+{from:#x} ({} bytes) differs from the live bytes at {:#x}",
            stack.address,
            live.len(),
            stack.address + diff.unwrap_or(0) as u64
        );

        let tls = pages
            .iter()
            .find(|p| p.thread_id == tid as u32 && p.kind == AuxiliaryPageKind::Tls)
            .expect("a TLS copy");
        assert_eq!(tls.contents.len(), 4096);
        #[cfg(target_arch = "x86_64")]
        {
            // glibc's thread control block starts with a pointer to itself at fs_base.
            let fs = g.tls_base();
            let off = (fs - tls.address) as usize;
            let word = u64::from_ne_bytes(tls.contents[off..off + 8].try_into().unwrap());
            assert_eq!(word, fs);
        }
    }
    let mut marker = WalkMarker::new();
    let mut walked = 0;
    while let Ok(e) = snap.walk(&mut marker, WalkClass::AuxiliaryPages) {
        assert!(matches!(e, WalkEntry::AuxiliaryPage(_)));
        walked += 1;
    }
    assert_eq!(walked, pages.len());
    t.wake_parked_and_check();
}

/// Syscall user dispatch exists on x86_64 only (the kernel's generic entry code; arm64's
/// prctl answers EINVAL): no arm64 process can be in it.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_target_with_syscall_user_dispatch_is_refused_and_left_alone() {
    let mut t = Target::spawn(exe(), &["sud"]);
    let err = capture_err(&t);
    assert_eq!(err.kind(), ErrorKind::NotSupported, "{err}");
    assert!(err.to_string().contains("syscall user dispatch"), "{err}");
    assert_eq!(children_of(t.pid), Vec::<i32>::new());
    t.assert_unharmed();
}

#[test]
fn forked_away_ranges_can_be_copied_after_the_pause_or_left_out() {
    let mut t = Target::spawn(exe(), &["va", "4", "jit=3x64"]);
    let (dontfork, len) = (t.fact_u64("dontfork", 0), t.fact_u64("dontfork", 1));
    let expected: Vec<u8> = (0..len as usize).map(|i| 0xD0 ^ (i as u8)).collect();
    let with = |policy| {
        let mut o = CaptureOptions::new(CaptureFlags::VA_CLONE, ContextFlags::empty());
        o.forked_away = policy;
        Snapshot::capture_with(PssTarget::Pid(t.pid), &o).expect("capture")
    };
    // During the pause (the default): the bytes of the capture instant, marked so.
    let snap = with(ForkedAwayCopy::DuringPause);
    let clone = snap.va_clone().unwrap();
    // The target's own two pages, and the three JIT-like ranges.
    assert_eq!(clone.copies().len(), 4 + 1, "{:?}", clone.copies());
    assert!(clone.copies().iter().all(|c| c.at_pause));
    let mut got = vec![0u8; len as usize];
    clone.read_exact(dontfork, &mut got).unwrap();
    assert_eq!(got, expected);
    drop(snap);
    // After the pause: the same bytes here (the target leaves them alone), marked as not
    // from the pause, with a warning saying so.
    let snap = with(ForkedAwayCopy::AfterPause);
    let clone = snap.va_clone().unwrap();
    assert_eq!(clone.copies().len(), 5);
    assert!(clone.copies().iter().all(|c| !c.at_pause));
    clone.read_exact(dontfork, &mut got).unwrap();
    assert_eq!(got, expected);
    assert!(snap
        .warnings()
        .iter()
        .any(|w| w.message.contains("copied after the pause")));
    drop(snap);
    // Never: holes, which reads name.
    let snap = with(ForkedAwayCopy::Never);
    let clone = snap.va_clone().unwrap();
    assert!(clone.copies().is_empty(), "{:?}", clone.copies());
    assert_eq!(clone.holes().len(), 5);
    let err = clone.read_exact(dontfork, &mut got).unwrap_err();
    assert!(err.to_string().contains("dontfork"), "{err}");
    drop(snap);
    assert_clean_after_free(&mut t);
}
