//! ELF cores written from the VA clone (`pss_export`), judged by the tools users open
//! them with — gdb, lldb, eu-stack, eu-readelf — by gdb's own `gcore` of the same stopped target,
//! and by an independent ELF reader (the `object` crate): every thread with the registers
//! it had when stopped, the call chains it was parked in, memory as it was in the pause
//! (not as the running target changed it since), forked-away ranges, file mappings.

use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use object::elf;
use pss::{ContextFlags, ErrorKind, Snapshot, Target as PssTarget};
use pss_export::{self as export, DumpFilter, ExportOptions, Format};
use pss_testbed::corefile::CoreFile;
use pss_testbed::harness::{Target, TempDir};
use pss_testbed::{reg_value, tools};

mod common;
use common::{assert_no_children, capture, exe};

fn write_core(snap: &Snapshot, path: &Path, filter: Option<DumpFilter>) -> export::ExportSummary {
    let mut opts = ExportOptions {
        filter,
        ..Default::default()
    };
    export::write_file(snap, Format::Core, path, false, &mut opts).expect("write the core")
}

/// The index `reg_value` uses for thread `tid` of a `va` target: its parked index, or the
/// main thread's.
fn park_index(t: &Target, tid: i32) -> Option<usize> {
    if tid == t.pid {
        return Some(MAIN_INDEX);
    }
    t.parked_tids().iter().position(|&p| p == tid)
}

/// The index whose values the main thread keeps (`park::MAIN_INDEX` in the target).
const MAIN_INDEX: usize = 0xff;

/// Registers a parked thread keeps, by the debuggers' names, with the number `reg_value`
/// gives each (`park.rs` loads them).
#[cfg(target_arch = "x86_64")]
const PARKED: [(&str, u64); 4] = [("r12", 12), ("r13", 13), ("r14", 14), ("r15", 15)];
#[cfg(target_arch = "aarch64")]
const PARKED: [(&str, u64); 4] = [("x23", 23), ("x24", 24), ("x25", 25), ("x26", 26)];

/// The words of `NT_PRSTATUS`'s `pr_reg`: x86_64's `user_regs_struct` is all of them
/// (`fs_base` and `orig_rax` among them); arm64's `user_pt_regs` ends at `pstate`, its TLS
/// register being `NT_ARM_TLS`.
fn pr_reg(g: &pss::records::GeneralRegisters) -> Vec<u64> {
    let words = g.to_words();
    let n = if cfg!(target_arch = "aarch64") {
        34
    } else {
        words.len()
    };
    words[..n].to_vec()
}

/// The debuggers' names of the instruction and stack pointers.
#[cfg(target_arch = "x86_64")]
const IP_SP: (&str, &str) = ("rip", "rsp");
#[cfg(target_arch = "aarch64")]
const IP_SP: (&str, &str) = ("pc", "sp");

#[test]
fn a_core_holds_every_thread_and_the_memory_of_the_pause() {
    let mut t = Target::spawn(exe(), &["va", "8"]);
    let pattern = t.fact_u64("pattern", 0);
    let (dontfork, dontfork_len) = (t.fact_u64("dontfork", 0), t.fact_u64("dontfork", 1));
    let wipe = t.fact_u64("wipeonfork", 0);
    let tls = t.fact_u64("tls", 0);
    let filemap = &t.facts("filemap")[0].clone();
    let snap = capture(&t);
    // The target runs on and changes the pattern after the pause.
    t.ask("scribble", "scribbled");

    let dir = TempDir::new("holds");
    let path = dir.join("core");
    let summary = write_core(&snap, &path, None);
    assert_eq!(
        dir.names(),
        vec!["core".to_string()],
        "no partial file left"
    );
    let core = CoreFile::read(&path);
    assert_eq!(summary.bytes, std::fs::metadata(&path).unwrap().len());
    assert_eq!(
        summary.filter,
        DumpFilter::KERNEL_DEFAULT,
        "the target's own filter"
    );

    // Threads: the main thread first, then every other, each with its registers at the stop.
    let threads = snap.threads().unwrap();
    let tids = core.prstatus_tids();
    assert_eq!(tids[0], t.pid, "the main thread comes first");
    let mut want: Vec<i32> = threads.iter().map(|x| x.thread_id as i32).collect();
    let mut got = tids.clone();
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, want);
    for th in threads {
        let ctx = th.context.as_ref().unwrap();
        assert_eq!(
            core.registers(th.thread_id as i32).unwrap(),
            pr_reg(&ctx.general),
            "registers of thread {}",
            th.thread_id
        );
    }
    // Per-thread register sets, and the process notes once.
    assert_eq!(core.notes_of(elf::NT_PRFPREG).len(), threads.len());
    #[cfg(target_arch = "aarch64")]
    {
        // Each thread's TLS register, in thread order.
        let tls: Vec<Vec<u8>> = core
            .notes_of(elf::NT_ARM_TLS)
            .iter()
            .map(|n| n.desc.clone())
            .collect();
        assert_eq!(tls.len(), threads.len());
        let main = threads
            .iter()
            .find(|x| x.thread_id as i32 == t.pid)
            .unwrap();
        let want = main.context.as_ref().unwrap().general.tls.to_le_bytes();
        assert_eq!(tls[0], want, "the main thread's tpidr_el0");
    }
    #[cfg(target_arch = "x86_64")]
    {
        let xs = core.notes_of(elf::NT_X86_XSTATE);
        assert_eq!(xs.len(), threads.len());
        assert_eq!(xs[0].name, b"LINUX");
        let main = threads
            .iter()
            .find(|x| x.thread_id as i32 == t.pid)
            .unwrap();
        assert_eq!(
            &xs[0].desc,
            main.context.as_ref().unwrap().xstate.as_ref().unwrap(),
            "verbatim"
        );
    }
    for kind in [elf::NT_PRPSINFO, elf::NT_AUXV, elf::NT_FILE] {
        assert_eq!(core.notes_of(kind).len(), 1, "note {kind:#x}");
    }
    let auxv = std::fs::read(format!("/proc/{}/auxv", t.pid)).unwrap();
    assert_eq!(core.notes_of(elf::NT_AUXV)[0].desc, auxv);

    // Memory as it was in the pause: the pattern before the scribble, the forked-away copies.
    let page = core
        .bytes_at(pattern, 4096)
        .expect("the pattern page is in the core");
    assert!(page
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i * 7 + 3) as u8));
    let df = core
        .bytes_at(dontfork, dontfork_len)
        .expect("the DONTFORK range");
    assert!(df.iter().enumerate().all(|(i, &b)| b == 0xD0 ^ (i as u8)));
    assert!(core
        .bytes_at(wipe, 4096)
        .unwrap()
        .iter()
        .all(|&b| b == 0xEE));
    let word = core.bytes_at(tls, 8).expect("the thread-local word");
    assert_eq!(
        u64::from_le_bytes(word.try_into().unwrap()),
        0x7115_cafe_f00d_0001
    );

    // The file mapping is in NT_FILE with its offset.
    let start = u64::from_str_radix(filemap[0].trim_start_matches("0x"), 16).unwrap();
    let len: u64 = filemap[1].parse().unwrap();
    let entry = core
        .files()
        .into_iter()
        .find(|f| f.0 == start)
        .expect("filemap in NT_FILE");
    assert_eq!(
        (entry.1, entry.2, entry.3.as_str()),
        (start + len, 4096, filemap[3].as_str())
    );

    check_with_gdb(&t, &snap, &path, pattern, tls);
    check_with_eu_stack(&t, &snap, &path);
    check_with_eu_readelf(&path, threads.len());

    t.assert_unharmed();
    t.wake_parked_and_check();
    drop(snap);
    assert_no_children(t.pid);
}

fn check_with_gdb(t: &Target, snap: &Snapshot, core: &Path, pattern: u64, tls: u64) {
    let (ip, sp) = IP_SP;
    let names: Vec<&str> = PARKED.iter().map(|(n, _)| *n).collect();
    let regs = format!("info registers {} {ip} {sp}", names.join(" "));
    let x_pattern = format!("x/8xb {pattern:#x}");
    let x_tls = format!("x/gx {tls:#x}");
    let out = tools::gdb(
        exe(),
        core,
        &[
            "set pagination off",
            &format!("thread apply all {regs}"),
            "thread apply all bt",
            &x_pattern,
            &x_tls,
        ],
    );
    let per_thread = tools::gdb_threads(&out);
    let threads = snap.threads().unwrap();
    for th in threads {
        let tid = th.thread_id as i32;
        let text = per_thread
            .iter()
            .filter(|(t, _)| *t == tid)
            .map(|(_, s)| s.as_str())
            .collect::<String>();
        assert!(!text.is_empty(), "gdb does not show thread {tid}:\n{out}");
        let g = th.context.as_ref().unwrap().general;
        let want_ip = Some(g.instruction_pointer());
        assert_eq!(tools::gdb_register(&text, ip), want_ip, "{tid}:\n{text}");
        let want_sp = Some(g.stack_pointer());
        assert_eq!(tools::gdb_register(&text, sp), want_sp, "{tid}:\n{text}");
        let Some(i) = park_index(t, tid) else {
            continue;
        };
        for (name, r) in PARKED {
            let got = tools::gdb_register(&text, name);
            assert_eq!(
                got,
                Some(reg_value(i, r)),
                "{name} of {tid}, in gdb's output:\n{out}"
            );
        }
        let caller = if tid == t.pid {
            "pss_testbed::main"
        } else {
            "pss_testbed::park::park"
        };
        for f in [
            "pss_testbed::park::raw_read",
            "pss_testbed::park::read_byte_checked",
            caller,
        ] {
            assert!(text.contains(f), "thread {tid} lacks {f}:\n{text}");
        }
    }
    let want: Vec<String> = (0..8)
        .map(|i| format!("0x{:02x}", (i * 7 + 3) as u8))
        .collect();
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{pattern:#x}")))
        .unwrap_or_else(|| panic!("no x/8xb line:\n{out}"));
    let bytes: Vec<&str> = line.split(':').nth(1).unwrap().split_whitespace().collect();
    assert_eq!(bytes, want, "gdb's view of the pattern");
    assert!(
        out.contains("0x7115cafef00d0001"),
        "gdb's view of the TLS word:\n{out}"
    );
}

/// lldb's test of its own (the arm64 suite has no lldb in its guest: docs/aarch64.md).
#[test]
fn lldb_reads_every_thread_of_a_core_with_its_registers() {
    let mut t = Target::spawn(exe(), &["va", "8"]);
    let snap = capture(&t);
    let dir = TempDir::new("lldb");
    let path = dir.join("core");
    write_core(&snap, &path, None);
    check_with_lldb(&t, &snap, &path);
    t.assert_unharmed();
    t.wake_parked_and_check();
    drop(snap);
    assert_no_children(t.pid);
}

/// lldb lists every thread by tid, with the registers it had (parked threads: the values
/// they loaded) and the function it is parked in.
fn check_with_lldb(t: &Target, snap: &Snapshot, core: &Path) {
    let threads = snap.threads().unwrap();
    let mut cmds = vec!["thread list".to_string()];
    for i in 1..=threads.len() {
        cmds.push(format!("thread select {i}"));
        cmds.push(format!(
            "register read {} {} {}",
            PARKED[0].0, PARKED[1].0, IP_SP.0
        ));
    }
    let cmds: Vec<&str> = cmds.iter().map(String::as_str).collect();
    let out = tools::lldb(exe(), core, &cmds);
    // `thread list` names each thread by index and tid; each `register read` follows its
    // `thread select`.
    let mut by_index = std::collections::HashMap::new();
    for line in out.lines() {
        let line = line.trim_start_matches(['*', ' ']);
        if let Some(rest) = line.strip_prefix("thread #") {
            let index: usize = rest.split(':').next().unwrap().parse().unwrap_or(0);
            if let Some(tid) = rest
                .split("tid = ")
                .nth(1)
                .and_then(|r| r.split(',').next())
                .and_then(|t| t.parse::<i32>().ok())
            {
                by_index.insert(index, tid);
            }
        }
    }
    assert_eq!(by_index.len(), threads.len(), "lldb's threads:\n{out}");
    let sections: Vec<&str> = out.split("(lldb) thread select ").skip(1).collect();
    for section in sections {
        let index: usize = section.split_whitespace().next().unwrap().parse().unwrap();
        let tid = by_index[&index];
        let reg = |name: &str| {
            section.lines().find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == name).then(|| {
                    let v = v.split_whitespace().next()?;
                    u64::from_str_radix(v.trim_start_matches("0x"), 16).ok()
                })?
            })
        };
        let th = threads.iter().find(|x| x.thread_id as i32 == tid).unwrap();
        let g = th.context.as_ref().unwrap().general;
        assert_eq!(
            reg(IP_SP.0),
            Some(g.instruction_pointer()),
            "lldb's instruction pointer of {tid}:\n{section}"
        );
        if let Some(i) = park_index(t, tid) {
            for (name, r) in &PARKED[..2] {
                let want = Some(reg_value(i, *r));
                assert_eq!(reg(name), want, "lldb's {name} of {tid}:\n{section}");
            }
            // The frame it is parked in (raw_read, inlined into its caller in release builds).
            assert!(
                section.contains("pss_testbed::park::raw_read")
                    || section.contains("pss_testbed::park::read_byte_checked"),
                "{section}"
            );
        }
    }
}

fn check_with_eu_stack(t: &Target, snap: &Snapshot, core: &Path) {
    let stacks = tools::eu_stack(exe(), core);
    for th in snap.threads().unwrap() {
        let tid = th.thread_id as i32;
        let (_, frames) = stacks
            .iter()
            .find(|(x, _)| *x == tid)
            .unwrap_or_else(|| panic!("eu-stack lacks thread {tid}: {stacks:?}"));
        let ip = th.context.as_ref().unwrap().general.instruction_pointer();
        assert_eq!(frames[0].0, ip, "eu-stack's frame #0 of {tid}");
        if park_index(t, tid).is_some() {
            assert!(
                frames
                    .iter()
                    .any(|(_, f)| f.contains("pss_testbed4park8raw_read")
                        || f.contains("pss_testbed::park::raw_read")),
                "eu-stack on {tid}: {frames:?}"
            );
        }
    }
}

fn check_with_eu_readelf(core: &Path, threads: usize) {
    let out = tools::run("eu-readelf", &["-n", core.to_str().unwrap()]);
    let count = |what: &str| {
        out.lines()
            .filter(|l| l.split_whitespace().nth(2) == Some(what))
            .count()
    };
    assert_eq!(count("PRSTATUS"), threads, "{out}");
    for (what, n) in [
        ("PRPSINFO", 1),
        ("AUXV", 1),
        ("FILE", 1),
        ("FPREGSET", threads),
    ] {
        assert_eq!(count(what), n, "{what}:\n{out}");
    }
    #[cfg(target_arch = "x86_64")]
    assert_eq!(count("X86_XSTATE"), threads, "{out}");
}

#[test]
fn every_segment_matches_gcore_of_the_same_stopped_target() {
    // Quiet (no thread runs by itself), without rseq (whose fields the kernel updates when a
    // thread returns to user space), and large enough for the engine to read ahead.
    let mut t = Target::spawn_env(
        exe(),
        &["va", "16", "quiet"],
        &[("GLIBC_TUNABLES", "glibc.pthread.rseq=0")],
    );
    let snap = capture(&t);
    let dir = TempDir::new("gcore");
    let ours_path = dir.join("core");
    let summary = write_core(&snap, &ours_path, Some(DumpFilter::all()));
    assert!(summary.read_ahead, "the engine read ahead");
    drop(snap);
    assert_no_children(t.pid);
    // gdb's gcore of the same target, which has not run a line of its code since.
    let theirs_path = tools::gcore(t.pid, &dir.0);
    t.assert_unharmed();
    let ours = CoreFile::read(&ours_path);
    let theirs = CoreFile::read(&theirs_path);

    let mut compared = 0u64;
    for l in ours.loads.iter().filter(|l| l.filesz > 0) {
        for g in theirs.loads.iter().filter(|g| g.filesz > 0) {
            let lo = l.vaddr.max(g.vaddr);
            let hi = l
                .vaddr
                .saturating_add(l.filesz)
                .min(g.vaddr.saturating_add(g.filesz));
            if lo < hi {
                let (a, b) = (
                    ours.bytes_at(lo, hi - lo).unwrap(),
                    theirs.bytes_at(lo, hi - lo).unwrap(),
                );
                if let Some(i) = a.iter().zip(b).position(|(x, y)| x != y) {
                    panic!(
                        "bytes differ from gcore's at {:#x} (in {lo:#x}-{hi:#x}): ours {:02x?}, gcore's {:02x?}",
                        lo + i as u64,
                        &a[i..(i + 16).min(a.len())],
                        &b[i..(i + 16).min(b.len())]
                    );
                }
                compared += hi - lo;
            }
        }
    }
    assert!(
        compared > 1 << 20,
        "only {compared} bytes in common with gcore"
    );
    // Whatever gcore holds that is not zero, ours holds too (with every mapping asked for).
    for g in theirs.loads.iter().filter(|g| g.filesz > 0) {
        for (i, page) in theirs.segment_bytes(g).chunks(4096).enumerate() {
            let addr = g.vaddr + i as u64 * 4096;
            if page.iter().any(|&b| b != 0) {
                assert_eq!(
                    ours.bytes_at(addr, page.len() as u64),
                    Some(page),
                    "gcore holds data at {addr:#x} that our core lacks"
                );
            }
        }
    }
    t.wake_parked_and_check();
}

#[test]
fn a_pipe_gets_the_same_bytes_as_a_file_with_zeros_for_holes() {
    let mut t = Target::spawn(exe(), &["va", "4"]);
    let pattern = t.fact_u64("pattern", 0);
    let snap = capture(&t);
    let dir = TempDir::new("pipe");
    let path = dir.join("core");
    let summary = write_core(&snap, &path, None);
    assert!(summary.holes > 0, "zero pages became holes: {summary:?}");
    let meta = std::fs::metadata(&path).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert!(
        meta.blocks() * 512 < meta.len(),
        "the file is sparse ({} bytes on disk of {})",
        meta.blocks() * 512,
        meta.len()
    );

    let (r, w) = rustix::pipe::pipe().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::fs::File::from(r), &mut v).unwrap();
        v
    });
    let piped = export::write(
        &snap,
        Format::Core,
        w.as_fd(),
        &mut ExportOptions::default(),
    )
    .expect("write to a pipe");
    drop(w);
    let bytes = reader.join().unwrap();
    assert_eq!(piped.holes, 0, "a pipe has no holes");
    assert_eq!(bytes.len() as u64, piped.bytes);
    assert_eq!(
        bytes,
        std::fs::read(&path).unwrap(),
        "the same core, zeros in place of holes"
    );
    let core = CoreFile::parse(bytes).unwrap();
    assert!(core.bytes_at(pattern, 4096).is_some());
    drop(snap);
    assert_no_children(t.pid);
    t.assert_unharmed();
}

#[test]
fn the_filter_decides_which_mappings_hold_bytes() {
    let t = Target::spawn(exe(), &["va", "1"]);
    let pattern = t.fact_u64("pattern", 0);
    let start = t.fact_u64("filemap", 0);
    let snap = capture(&t);
    let dir = TempDir::new("filter");
    // Anonymous private memory only: the pattern, not the file mapping.
    write_core(&snap, &dir.join("anon"), Some(DumpFilter::ANON_PRIVATE));
    let anon = CoreFile::read(&dir.join("anon"));
    assert!(anon.bytes_at(pattern, 4096).is_some());
    assert!(anon.bytes_at(start, 1).is_none());
    // Every mapping, with the executable's bytes at the file offset.
    write_core(&snap, &dir.join("all"), Some(DumpFilter::all()));
    let all = CoreFile::read(&dir.join("all"));
    let file = std::fs::read(exe()).unwrap();
    assert_eq!(all.bytes_at(start, 8192).unwrap(), &file[4096..4096 + 8192]);
    // The default (0x33) keeps the first page of an ELF image, nothing else of it.
    write_core(
        &snap,
        &dir.join("default"),
        Some(DumpFilter::KERNEL_DEFAULT),
    );
    let def = CoreFile::read(&dir.join("default"));
    let image = def
        .files()
        .into_iter()
        .find(|f| f.2 == 0 && f.3 == exe().to_str().unwrap())
        .expect("the executable's first mapping");
    assert_eq!(def.bytes_at(image.0, 4).unwrap(), b"\x7fELF");
    let seg = def.loads.iter().find(|l| l.vaddr == image.0).unwrap();
    assert_eq!(seg.filesz, 4096.min(seg.memsz));
}

#[test]
fn a_write_that_fails_leaves_nothing_and_frees_the_clone() {
    let mut t = Target::spawn(exe(), &["va", "16"]);
    let snap = capture(&t);
    let dir = TempDir::new("fail");

    // A full disk.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let err = export::write(
        &snap,
        Format::Core,
        full.as_fd(),
        &mut ExportOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("no space left"), "{err}");

    // A reader that went away.
    let (r, w) = rustix::pipe::pipe().unwrap();
    drop(r);
    let err = export::write(
        &snap,
        Format::Core,
        w.as_fd(),
        &mut ExportOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("broken pipe"), "{err}");

    // Cancelled half way: no file, no partial file.
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let mut stop_half_way = |p: export::Progress| {
        if p.done > p.total / 2 {
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    };
    let mut opts = ExportOptions {
        cancel: Some(&cancel),
        progress: Some(&mut stop_half_way),
        ..Default::default()
    };
    let err =
        export::write_file(&snap, Format::Core, &dir.join("core"), false, &mut opts).unwrap_err();
    assert!(matches!(err, pss::Error::Interrupted { .. }), "{err}");
    assert!(dir.names().is_empty(), "{:?}", dir.names());

    // An existing file is not overwritten without asking.
    std::fs::write(dir.join("taken"), b"keep").unwrap();
    let err = export::write_file(
        &snap,
        Format::Core,
        &dir.join("taken"),
        false,
        &mut ExportOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, pss::Error::OutputExists { .. }), "{err}");
    assert_eq!(std::fs::read(dir.join("taken")).unwrap(), b"keep");
    export::write_file(
        &snap,
        Format::Core,
        &dir.join("taken"),
        true,
        &mut ExportOptions::default(),
    )
    .expect("overwrite when asked");

    drop(snap);
    assert_no_children(t.pid);
    t.assert_unharmed();
    t.wake_parked_and_check();
}

#[test]
fn a_clone_killed_mid_write_is_a_clear_error() {
    let mut t = Target::spawn(exe(), &["va", "32"]);
    let snap = capture(&t);
    let clone_pid = snap.va_clone().unwrap().pid();
    let dir = TempDir::new("vanish");
    // The clone this test's capture made.
    let err = common::write_core_killing(&snap, &dir.join("core"), clone_pid);
    assert!(matches!(err, pss::Error::CloneVanished { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Other);
    assert!(dir.names().is_empty(), "{:?}", dir.names());
    drop(snap);
    assert_no_children(t.pid);
    t.assert_unharmed();
    t.wake_parked_and_check();
}

/// A word this test process holds, changed after its own capture.
static SELF_WORD: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[test]
fn a_process_writes_a_core_of_itself() {
    use std::sync::atomic::Ordering;
    SELF_WORD.store(0x5345_4c46_434f_5245, Ordering::SeqCst);
    let snap = Snapshot::capture(PssTarget::Current, export::CAPTURE_FLAGS, ContextFlags::ALL)
        .expect("capture of this process");
    SELF_WORD.store(0, Ordering::SeqCst);
    let dir = TempDir::new("self");
    let path = dir.join("core");
    write_core(&snap, &path, None);
    let core = CoreFile::read(&path);
    let me = std::process::id() as i32;
    assert_eq!(
        core.prstatus_tids()[0],
        me,
        "this process's main thread first"
    );
    let addr = SELF_WORD.as_ptr() as u64;
    let word = core.bytes_at(addr, 8).expect("the word is in the core");
    assert_eq!(
        u64::from_le_bytes(word.try_into().unwrap()),
        0x5345_4c46_434f_5245
    );
    // The calling thread's registers are those it had when the engine stopped it.
    let tid = rustix::thread::gettid().as_raw_nonzero().get();
    let mine = snap
        .threads()
        .unwrap()
        .iter()
        .find(|t| t.thread_id as i32 == tid)
        .unwrap();
    assert_eq!(
        core.registers(tid).unwrap(),
        pr_reg(&mine.context.as_ref().unwrap().general)
    );
    let clone = snap.va_clone().unwrap().pid();
    drop(snap);
    // Other tests of this binary have children of their own: look for the clone alone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{clone}")).exists() {
        assert!(
            Instant::now() < deadline,
            "clone {clone} of this process was not reaped"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn py_spy_reads_the_python_stack_from_a_core() {
    let dir = TempDir::new("python");
    let script = dir.join("target.py");
    std::fs::write(
        &script,
        "import time\n\
         def leaf_for_pss():\n    print('ready', flush=True)\n    time.sleep(1000)\n\
         def branch_for_pss():\n    leaf_for_pss()\n\
         branch_for_pss()\n",
    )
    .unwrap();
    // Killed (by pid) and reaped however the test ends.
    struct Python(std::process::Child);
    impl Drop for Python {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Python(
        std::process::Command::new("python3")
            .arg(&script)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3"),
    );
    let child = &mut child.0;
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready");
    let pid = child.id() as i32;
    let snap = Snapshot::capture(
        PssTarget::Pid(pid),
        export::CAPTURE_FLAGS,
        ContextFlags::ALL,
    )
    .unwrap();
    let path = dir.join("core");
    write_core(&snap, &path, None);
    drop(snap);
    let py_spy = tools::py_spy();
    let out = tools::run(
        py_spy.to_str().unwrap(),
        &["dump", "--core", path.to_str().unwrap()],
    );
    assert!(out.contains(&format!("Thread {pid}")), "{out}");
    let leaf = out.find("leaf_for_pss").unwrap_or_else(|| panic!("{out}"));
    let branch = out
        .find("branch_for_pss")
        .unwrap_or_else(|| panic!("{out}"));
    assert!(leaf < branch, "innermost frame first:\n{out}");
    assert!(out.contains("<module>"), "{out}");
}
