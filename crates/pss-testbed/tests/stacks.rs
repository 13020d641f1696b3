//! Stacks (`pss_stack`) of targets with known call chains — C with and without frame
//! pointers and unwind tables, at -O0 and -O2 with inlining, stripped; C++; Rust; a thread
//! in a signal handler; a recursion deeper than the stack copy — checked function by
//! function against gdb's `thread apply all bt` of the same target right after, and the
//! target unharmed.

use std::path::{Path, PathBuf};
use std::process::Command;

use pss::records::ThreadRead;
use pss::{CaptureFlags, ContextFlags, Snapshot, Target as PssTarget};
use pss_stack::{FrameHow, StackEnd, Stacks};
use pss_testbed::harness::{wait_all_in_read, wait_all_in_read_but, Target, TempDir};
use pss_testbed::tools;

fn source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("c").join(name)
}

/// Compiles `src` with `flags` into the test's temporary directory.
fn build(compiler: &str, src: &str, flags: &[&str], name: &str) -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let st = Command::new(compiler)
        .args(flags)
        .arg(source(src))
        .args(["-pthread", "-o"])
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(st.success(), "{compiler} {flags:?} {src} failed");
    out
}

fn capture(pid: i32, deep: bool) -> Snapshot {
    let mut flags = pss_stack::CAPTURE_FLAGS;
    if deep {
        flags |= CaptureFlags::VA_CLONE;
    }
    Snapshot::capture(
        PssTarget::Pid(pid),
        flags,
        ContextFlags::CONTROL | ContextFlags::INTEGER,
    )
    .expect("capture for stacks")
}

/// A function name without its parameters and return type (`void ns::f<int>(int)` →
/// `ns::f<int>`), as gdb names frames.
fn bare(name: &str) -> String {
    let mut depth = 0;
    let mut end = name.len();
    let mut start = 0;
    for (i, c) in name.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            '(' if depth == 0 && i > 0 => {
                end = i;
                break;
            }
            ' ' if depth == 0 => start = i + 1,
            _ => {}
        }
    }
    name[start..end].trim().to_string()
}

/// Each thread's function names from gdb's `thread apply all bt`, attached to `pid`.
fn gdb_stacks(pid: i32) -> Vec<(i32, Vec<String>)> {
    let out = tools::run(
        "gdb",
        &[
            "-batch",
            "-nx",
            "-ex",
            "set pagination off",
            "-ex",
            "thread apply all bt",
            "-p",
            &pid.to_string(),
        ],
    );
    tools::gdb_threads(&out)
        .into_iter()
        .map(|(tid, text)| {
            let names = text
                .lines()
                .filter(|l| l.starts_with('#'))
                .map(|l| {
                    let rest = l.split_once(' ').map_or("", |(_, r)| r).trim_start();
                    let rest = match rest.split_once(" in ") {
                        Some((addr, f)) if addr.starts_with("0x") => f,
                        _ => rest,
                    };
                    if rest.starts_with("<signal handler called>") {
                        return "<signal handler called>".to_string();
                    }
                    bare(rest.split(" (").next().unwrap_or(rest))
                })
                .collect();
            (tid, names)
        })
        .collect()
}

/// Our names for thread `tid`, bare, and gdb's, both kept to those `keep` accepts.
fn compare(
    stacks: &Stacks,
    gdb: &[(i32, Vec<String>)],
    tid: i32,
    keep: &dyn Fn(&str) -> bool,
) -> (Vec<String>, Vec<String>) {
    let ours = stacks
        .threads
        .iter()
        .find(|t| t.thread_id as i32 == tid)
        .unwrap_or_else(|| panic!("no stack for {tid}"));
    let ours: Vec<String> = ours
        .frames
        .iter()
        .filter_map(|f| f.function.as_deref().map(bare))
        .filter(|n| keep(n))
        .collect();
    let theirs: Vec<String> = gdb
        .iter()
        .find(|(t, _)| *t == tid)
        .unwrap_or_else(|| panic!("gdb shows no thread {tid}"))
        .1
        .iter()
        .filter(|n| keep(n))
        .cloned()
        .collect();
    (ours, theirs)
}

fn ours_c(name: &str) -> bool {
    matches!(
        name,
        "block_here"
            | "chain_inner"
            | "chain_middle"
            | "chain_outer"
            | "chain_thread"
            | "on_usr1"
            | "signal_victim"
            | "signal_thread"
            | "recurse"
            | "deep_thread"
            | "main"
            | "spin_inner"
            | "spin_outer"
            | "spin_thread"
    )
}

fn tid_of(t: &Target, name: &str) -> i32 {
    t.facts("tid")
        .into_iter()
        .find(|f| f[0] == name)
        .and_then(|f| f[1].parse().ok())
        .unwrap_or_else(|| panic!("no tid {name}: {:?}", t.facts))
}

/// How a test reads the target's stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Every thread stopped together, stacks from the pause's copies.
    Together,
    /// Every thread stopped together, with a VA clone for deep stacks.
    Deep,
    /// One thread at a time (`pss_stack::capture_stacks`'s default).
    OneByOne,
}

/// The snapshot and stacks of `pid`, read as `reading` says.
fn read_stacks(pid: i32, reading: Reading) -> (Snapshot, Stacks) {
    match reading {
        Reading::OneByOne => pss_stack::capture_stacks(
            pid,
            &pss_stack::LiveCapture::default(),
            &mut pss_stack::Walker::new(),
        )
        .expect("stacks one by one"),
        _ => {
            let snap = capture(pid, reading == Reading::Deep);
            let stacks = pss_stack::stacks(&snap).expect("stacks");
            (snap, stacks)
        }
    }
}

/// What [`check_c_build`] returns for more checks.
struct Checked {
    snap: Snapshot,
    stacks: Stacks,
    /// Each named thread's tid.
    tids: Vec<(String, i32)>,
}

impl Checked {
    /// How each named thread was read.
    fn reads(&self, names: &[&str]) -> Vec<(String, ThreadRead)> {
        names
            .iter()
            .map(|&name| {
                let tid = self.tids.iter().find(|(n, _)| n == name).unwrap().1 as u32;
                let s = self.stacks.threads.iter().find(|s| s.thread_id == tid);
                (name.to_string(), s.unwrap().read)
            })
            .collect()
    }
}

/// Runs a build of stacks.c (with `args`), checks every thread's stack against gdb's, and
/// returns the snapshot and stacks for more checks.
fn check_c_build(exe: &Path, reading: Reading, args: &[&str]) -> Checked {
    let mut t = Target::spawn(exe, args);
    let spinning: Vec<i32> = t
        .facts("tid")
        .iter()
        .filter(|f| f[0] == "spin")
        .map(|f| f[1].parse().unwrap())
        .collect();
    wait_all_in_read_but(t.pid, &spinning);
    let (snap, stacks) = read_stacks(t.pid, reading);
    let gdb = gdb_stacks(t.pid);
    let mut names = vec!["chain", "signal", "main"];
    if args.contains(&"spin") {
        names.push("spin");
    }
    for name in names {
        let tid = tid_of(&t, name);
        let (ours, theirs) = compare(&stacks, &gdb, tid, &ours_c);
        assert!(!ours.is_empty(), "{name}: no frame named");
        assert_eq!(ours, theirs, "{} thread {name} ({tid})", exe.display());
    }
    // The deep thread: gdb's whole stack, ours to where the copy ends (or all with a clone).
    let tid = tid_of(&t, "deep");
    let (ours, theirs) = compare(&stacks, &gdb, tid, &ours_c);
    let deep_stack = stacks
        .threads
        .iter()
        .find(|s| s.thread_id as i32 == tid)
        .unwrap();
    if reading == Reading::Deep {
        assert_eq!(ours, theirs, "deep thread with a clone");
        assert_eq!(deep_stack.end, StackEnd::Complete);
    } else {
        assert!(
            ours.len() > 10 && ours.len() < theirs.len(),
            "{} of {}",
            ours.len(),
            theirs.len()
        );
        assert_eq!(
            ours[..],
            theirs[..ours.len()],
            "deep thread: a prefix of gdb's"
        );
        assert!(
            matches!(deep_stack.end, StackEnd::StackCopyEnded { .. }),
            "{:?}",
            deep_stack.end
        );
    }
    // The first frame of every thread is where it was read.
    for th in snap.threads().unwrap() {
        let s = stacks
            .threads
            .iter()
            .find(|s| s.thread_id == th.thread_id)
            .unwrap();
        let ip = th.context.as_ref().unwrap().general.instruction_pointer();
        assert_eq!(s.frames[0].address, ip);
        assert_eq!(s.frames[0].how, FrameHow::Context);
        assert_eq!(s.read, th.linux.read);
    }
    // Unharmed: untraced, and the main thread's read() resumed to take the command.
    t.assert_untraced();
    let tids = ["chain", "signal", "deep", "main", "spin"]
        .iter()
        .filter(|n| t.facts("tid").iter().any(|f| f[0] == **n))
        .map(|n| (n.to_string(), tid_of(&t, n)))
        .collect();
    t.send("exit");
    assert!(t.wait().success());
    Checked { snap, stacks, tids }
}

#[test]
fn c_with_frame_pointers_at_o0_agrees_with_gdb() {
    let exe = build(
        "cc",
        "stacks.c",
        &["-g", "-O0", "-fno-omit-frame-pointer"],
        "stacks-o0",
    );
    let stacks = check_c_build(&exe, Reading::Together, &[]).stacks;
    // The signal thread's stack runs through the signal frame.
    assert!(stacks
        .threads
        .iter()
        .any(|t| t.frames.iter().any(|f| f.how == FrameHow::SignalFrame)));
}

#[test]
fn c_at_o2_without_frame_pointers_agrees_with_gdb_inlined_frames_included() {
    let exe = build(
        "cc",
        "stacks.c",
        &["-g", "-O2", "-fomit-frame-pointer"],
        "stacks-o2",
    );
    let stacks = check_c_build(&exe, Reading::Together, &[]).stacks;
    let inlined = stacks
        .threads
        .iter()
        .flat_map(|t| &t.frames)
        .find(|f| f.function.as_deref() == Some("chain_inner"))
        .expect("the inlined chain_inner");
    assert!(inlined.inlined);
    assert!(inlined.line.is_some() && inlined.file.is_some());
}

#[test]
fn c_without_unwind_tables_is_walked_by_frame_pointers() {
    let exe = build(
        "cc",
        "stacks.c",
        // No -g either: gcc would put the CFI in .debug_frame instead.
        &[
            "-g0",
            "-O1",
            "-fno-omit-frame-pointer",
            "-fno-asynchronous-unwind-tables",
            "-fno-unwind-tables",
        ],
        "stacks-nocfi",
    );
    let stacks = check_c_build(&exe, Reading::Together, &[]).stacks;
    let by_fp = stacks
        .threads
        .iter()
        .flat_map(|t| &t.frames)
        .filter(|f| f.how == FrameHow::FramePointer);
    assert!(by_fp.count() > 0, "some frames found by frame pointer");
}

#[test]
fn one_by_one_blocked_threads_are_not_stopped_and_agree_with_gdb() {
    let exe = build(
        "cc",
        "stacks.c",
        &["-g", "-O2", "-fomit-frame-pointer"],
        "stacks-o2-obo",
    );
    // With a thread that is always running: it alone is stopped.
    let c = check_c_build(&exe, Reading::OneByOne, &["spin"]);
    let blocked = ThreadRead::Blocked;
    let expected = [
        ("chain", blocked),
        ("signal", blocked),
        ("deep", blocked),
        ("main", blocked),
        ("spin", ThreadRead::Alone),
    ];
    let expected: Vec<(String, ThreadRead)> =
        expected.iter().map(|(n, r)| (n.to_string(), *r)).collect();
    assert_eq!(
        c.reads(&["chain", "signal", "deep", "main", "spin"]),
        expected
    );
    assert_eq!(c.snap.capture_info().threads_stopped, 1);
    // A blocked thread's registers: the syscall file's, nothing invented.
    let main = c.tids.iter().find(|(n, _)| n == "main").unwrap().1 as u32;
    let entry = c.snap.threads().unwrap().iter();
    let entry = entry.clone().find(|t| t.thread_id == main).unwrap();
    let g = entry.context.as_ref().unwrap().general;
    assert_eq!(entry.linux.syscall, Some(libc::SYS_read));
    let (first_argument, frame_pointer) = if cfg!(target_arch = "x86_64") {
        ("rdi", "rbp")
    } else {
        ("x0", "x29")
    };
    let named = g.named();
    let reg = |name: &str| named.iter().find(|(n, _)| *n == name).unwrap().1;
    assert_eq!(reg(first_argument), 0); // stdin
    assert_eq!(reg(frame_pointer), 0);
}

#[test]
fn one_by_one_frame_pointers_are_inferred_and_what_cannot_be_is_read_stopped() {
    let exe = build(
        "cc",
        "stacks.c",
        &["-g", "-O0", "-fno-omit-frame-pointer"],
        "stacks-o0-obo",
    );
    // glibc's read() keeps no frame pointer, and -O0 frames need their caller's: the walk
    // finds it in the stack (the slot below a return address from which the walk reaches
    // the thread's start). The deep recursion goes past its stack copy, so no slot is
    // proven: that thread is read again, stopped alone. (On arm64, GCC's call frame
    // information keeps even -O0 frames relative to the stack pointer, and glibc's read()
    // has a frame record: no frame pointer is needed, and the deep thread is read blocked.)
    let c = check_c_build(&exe, Reading::OneByOne, &[]);
    let (blocked, alone) = (ThreadRead::Blocked, ThreadRead::Alone);
    let deep = if cfg!(target_arch = "x86_64") {
        alone
    } else {
        blocked
    };
    let expected: Vec<(String, ThreadRead)> = [
        ("chain", blocked),
        ("signal", blocked),
        ("deep", deep),
        ("main", blocked),
    ]
    .iter()
    .map(|(n, r)| (n.to_string(), *r))
    .collect();
    assert_eq!(c.reads(&["chain", "signal", "deep", "main"]), expected);
    let stopped = usize::from(deep == alone);
    assert_eq!(c.snap.capture_info().threads_stopped, stopped);
}

#[test]
fn a_deep_recursion_is_walked_whole_with_a_clone() {
    let exe = build(
        "cc",
        "stacks.c",
        &["-g", "-O0", "-fno-omit-frame-pointer"],
        "stacks-deep",
    );
    check_c_build(&exe, Reading::Deep, &[]);
}

#[test]
fn a_stripped_binary_gets_its_dynamic_symbols() {
    let exe = build(
        "cc",
        "stacks.c",
        &["-O0", "-g0", "-rdynamic", "-s", "-fno-omit-frame-pointer"],
        "stacks-stripped",
    );
    let mut t = Target::spawn(&exe, &[]);
    wait_all_in_read(t.pid);
    let snap = capture(t.pid, false);
    let stacks = pss_stack::stacks(&snap).unwrap();
    let gdb = gdb_stacks(t.pid);
    let tid = tid_of(&t, "chain");
    let exported = |n: &str| matches!(n, "chain_middle" | "chain_outer");
    let (ours, theirs) = compare(&stacks, &gdb, tid, &exported);
    assert_eq!(ours, vec!["chain_middle", "chain_outer"]);
    assert_eq!(ours, theirs);
    drop(snap);
    t.send("exit");
    assert!(t.wait().success());
}

/// A module replaced on disk after it was mapped: while the process lives, the file it
/// mapped is read through `/proc/PID/map_files` (root here), so its frames keep their names;
/// once it is gone, the file at the path is another inode, and nothing is taken from it.
#[test]
fn a_module_replaced_on_disk_is_read_as_mapped_or_not_at_all() {
    let dir = TempDir::new("replaced");
    let built = build("cc", "stacks.c", &["-g", "-O0"], "stacks-replaced");
    let exe = dir.join("stacks");
    std::fs::copy(&built, &exe).unwrap();
    let mut t = Target::spawn(&exe, &[]);
    wait_all_in_read(t.pid);
    let snap = capture(t.pid, false);
    // Another build (another build-id) put in its place.
    let other = build(
        "cc",
        "stacks.c",
        &["-g", "-O1", "-DDEPTH=100"],
        "stacks-other",
    );
    let tmp = dir.join("new");
    std::fs::copy(&other, &tmp).unwrap();
    std::fs::rename(&tmp, &exe).unwrap();
    let named_in_exe = |stacks: &pss_stack::Stacks| -> Vec<String> {
        stacks
            .threads
            .iter()
            .flat_map(|t| &t.frames)
            .filter(|f| f.module.as_deref() == Some(exe.as_path()))
            .filter_map(|f| f.function.clone())
            .collect()
    };
    let live = pss_stack::stacks(&snap).unwrap();
    let names = named_in_exe(&live);
    assert!(
        names.iter().any(|n| n == "chain_outer"),
        "{names:?} {:?}",
        live.warnings
    );
    t.send("exit");
    assert!(t.wait().success());
    let gone = pss_stack::stacks(&snap).unwrap();
    assert!(
        gone.warnings
            .iter()
            .any(|w| w.contains("not the file that was mapped")),
        "{:?}",
        gone.warnings
    );
    assert_eq!(
        named_in_exe(&gone),
        Vec::<String>::new(),
        "no name taken from the wrong file"
    );
}

#[test]
fn cpp_names_are_demangled_as_gdb_shows_them() {
    let exe = build("c++", "stacks.cpp", &["-g", "-O1"], "stacks-cpp");
    let t = Target::spawn(&exe, &[]);
    wait_all_in_read(t.pid);
    let snap = capture(t.pid, false);
    let stacks = pss_stack::stacks(&snap).unwrap();
    let gdb = gdb_stacks(t.pid);
    let keep = |n: &str| n.starts_with("pss_test::") || n == "main";
    let (ours, theirs) = compare(&stacks, &gdb, t.pid, &keep);
    assert_eq!(
        ours,
        vec![
            "pss_test::block_in_read",
            "pss_test::templated<long>",
            "pss_test::Widget::method",
            "main"
        ]
    );
    assert_eq!(ours, theirs);
    drop(snap);
    t.finish();
}

#[test]
fn rust_chains_agree_with_gdb() {
    let exe = Path::new(env!("CARGO_BIN_EXE_pss-testbed"));
    let mut t = Target::spawn(exe, &["threads", "2"]);
    let snap = capture(t.pid, false);
    let stacks = pss_stack::stacks(&snap).unwrap();
    let gdb = gdb_stacks(t.pid);
    // Closures are named differently by rustc's symbols and gdb's DWARF reading.
    let keep = |n: &str| n.starts_with("pss_testbed::") && !n.contains('{');
    for tid in t.parked_tids().into_iter().chain([t.pid]) {
        let (ours, theirs) = compare(&stacks, &gdb, tid, &keep);
        assert!(
            ours.contains(&"pss_testbed::park::raw_read".to_string()),
            "{ours:?}"
        );
        assert_eq!(ours, theirs, "thread {tid}");
    }
    t.assert_unharmed();
    t.wake_parked_and_check();
}

/// Memory a caller serves itself: a clone's bytes, with the reads counted.
struct Served<'a> {
    clone: &'a pss::VaClone,
    reads: std::cell::Cell<usize>,
}

impl pss::Memory for Served<'_> {
    fn read(&self, address: u64, buf: &mut [u8]) -> usize {
        self.reads.set(self.reads.get() + 1);
        self.clone.read(address, buf).unwrap_or(0)
    }
}

#[test]
fn a_walk_needs_records_and_any_memory_not_a_snapshot() {
    let exe = build(
        "cc",
        "stacks.c",
        &["-g", "-O0", "-fno-omit-frame-pointer"],
        "stacks-memory",
    );
    let mut t = Target::spawn(&exe, &[]);
    wait_all_in_read(t.pid);
    let snap = capture(t.pid, true);
    let whole = pss_stack::stacks(&snap).expect("stacks");
    // The clone's memory alone, served by the caller: the same stacks.
    let served = Served {
        clone: snap.va_clone().unwrap(),
        reads: Default::default(),
    };
    let own = pss_stack::Walker::new()
        .walk(snap.records(), &served)
        .expect("walk");
    assert_eq!(own.threads, whole.threads);
    assert!(served.reads.get() > 0);
    // The copies of the pause alone (what a saved snapshot holds): the same chains, but
    // the deep recursion ends where its copy ends.
    let copies = pss_stack::Walker::new()
        .walk(snap.records(), snap.auxiliary_pages().unwrap())
        .expect("walk");
    let by_tid = |s: &Stacks, name: &str| {
        let tid = tid_of(&t, name) as u32;
        s.threads
            .iter()
            .find(|x| x.thread_id == tid)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_tid(&copies, "chain"), by_tid(&whole, "chain"));
    assert_eq!(by_tid(&whole, "deep").end, StackEnd::Complete);
    assert!(matches!(
        by_tid(&copies, "deep").end,
        StackEnd::StackCopyEnded { .. }
    ));
    t.assert_untraced();
    drop(snap);
    t.send("exit");
    assert!(t.wait().success());
}
