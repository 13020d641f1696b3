//! Minidumps (`pss_export`, `Format::Minidump`), read back with rust-minidump's reader and
//! processed by its minidump processor — the crates crash reporting services use — and
//! checked against what the target itself knows: every thread with the registers it had
//! when stopped, its stack bytes, thread names, modules with the build-ids of the files on
//! disk, the Linux streams, and memory as it was in the pause.

use std::path::{Path, PathBuf};

use minidump::{
    Minidump, MinidumpLinuxProcStatus, MinidumpMemoryInfoList, MinidumpMiscInfo,
    MinidumpModuleList, MinidumpRawContext, MinidumpSystemInfo, MinidumpThreadList,
    MinidumpThreadNames, Module,
};
use minidump_common::format::MINIDUMP_STREAM_TYPE;
use pss::{CaptureFlags, ContextFlags, Snapshot, Target as PssTarget};
use pss_export::{self as export, ExportOptions, Format};
use pss_testbed::harness::Target;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss-testbed"))
}

fn temp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("pss-minidump-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// Writes a minidump of `snap` to a fresh file and returns its path.
fn write(snap: &Snapshot, name: &str, full_memory: bool) -> PathBuf {
    let path = temp(name);
    let mut opts = ExportOptions {
        full_memory,
        ..Default::default()
    };
    export::write_file(snap, Format::Minidump, &path, false, &mut opts).expect("write a minidump");
    path
}

/// The GNU build-id of the file at `path`, read from the file by the `object` crate.
fn build_id_on_disk(path: &Path) -> Vec<u8> {
    use object::Object;
    let data = std::fs::read(path).unwrap();
    let file = object::File::parse(&data[..]).unwrap();
    file.build_id().unwrap().expect("a build-id").to_vec()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn a_minidump_holds_threads_stacks_modules_and_the_linux_streams() {
    let mut t = Target::spawn_env(exe(), &["va", "2"], &[("PSS_TESTBED_MARK", "minidump-env")]);
    let snap = Snapshot::capture(
        PssTarget::Pid(t.pid),
        export::CAPTURE_FLAGS,
        ContextFlags::ALL,
    )
    .unwrap();
    let path = write(&snap, "full", false);
    let dump = Minidump::read_path(&path).expect("rust-minidump reads it");
    let system = dump.get_stream::<MinidumpSystemInfo>().unwrap();
    assert_eq!(system.os, minidump::system_info::Os::Linux);
    #[cfg(target_arch = "x86_64")]
    assert_eq!(system.cpu, minidump::system_info::Cpu::X86_64);
    let misc = dump.get_stream::<MinidumpMiscInfo>().ok();
    assert_eq!(
        misc.as_ref().and_then(|m| m.raw.process_id().copied()),
        Some(t.pid as u32)
    );
    let memory = dump.get_memory().expect("a memory list");
    let threads = dump.get_stream::<MinidumpThreadList>().unwrap();
    let names = dump.get_stream::<MinidumpThreadNames>().unwrap();
    let clone = snap.va_clone().unwrap();

    let want = snap.threads().unwrap();
    assert_eq!(threads.threads.len(), want.len());
    assert_eq!(
        threads.threads[0].raw.thread_id, t.pid as u32,
        "the main thread first"
    );
    for th in want {
        let md = threads
            .threads
            .iter()
            .find(|x| x.raw.thread_id == th.thread_id)
            .unwrap_or_else(|| panic!("thread {} missing", th.thread_id));
        let g = th.context.as_ref().unwrap().general;
        let ctx = md.context(&system, misc.as_ref()).expect("a context");
        let fp = th.context.as_ref().unwrap().fp.as_ref().unwrap();
        match &ctx.raw {
            #[cfg(target_arch = "x86_64")]
            MinidumpRawContext::Amd64(c) => {
                assert_eq!(
                    (c.rip, c.rsp, c.rbp, c.r12, c.r13, c.r14, c.r15),
                    (g.rip, g.rsp, g.rbp, g.r12, g.r13, g.r14, g.r15),
                    "registers of {}",
                    th.thread_id
                );
                assert_eq!(&c.float_save[..], &fp[..512], "FXSAVE area");
            }
            #[cfg(target_arch = "aarch64")]
            MinidumpRawContext::Arm64(c) => {
                assert_eq!(
                    (c.pc, c.sp, c.iregs),
                    (g.pc, g.sp, g.regs),
                    "{}",
                    th.thread_id
                );
                assert_eq!(c.float_regs[0].to_le_bytes(), fp[..16], "v0");
            }
            other => panic!("not this machine's context: {other:?}"),
        }
        let stack = md.stack_memory(&memory).expect("a stack");
        let sp = g.stack_pointer();
        assert!(stack.base_address() <= sp && sp < stack.base_address() + stack.size());
        let mut live = vec![0u8; stack.size() as usize];
        clone.read_exact(stack.base_address(), &mut live).unwrap();
        assert_eq!(stack.bytes(), &live[..], "stack bytes of {}", th.thread_id);
        assert_eq!(
            names.get_name(th.thread_id).as_deref(),
            Some(&*th.linux.name.to_string_lossy())
        );
    }

    // Modules: the executable and libc, with the build-ids of the files on disk.
    let modules = dump.get_stream::<MinidumpModuleList>().unwrap();
    let exe_path = std::fs::canonicalize(exe()).unwrap();
    let main = modules
        .iter()
        .find(|m| Path::new(&*m.code_file()) == exe_path)
        .unwrap_or_else(|| {
            panic!(
                "no module for the executable: {:?}",
                modules.iter().map(|m| m.code_file()).collect::<Vec<_>>()
            )
        });
    assert_eq!(
        main.code_identifier().unwrap().as_str(),
        hex(&build_id_on_disk(&exe_path))
    );
    let libc = modules
        .iter()
        .find(|m| m.code_file().contains("libc.so"))
        .expect("libc");
    assert_eq!(
        libc.code_identifier().unwrap().as_str(),
        hex(&build_id_on_disk(Path::new(&*libc.code_file())))
    );
    assert!(
        modules.iter().any(|m| m.code_file() == "linux-gate.so"),
        "the vDSO"
    );

    // Memory info: the pattern page is committed read-write private memory.
    let pattern = t.fact_u64("pattern", 0);
    let info = dump.get_stream::<MinidumpMemoryInfoList>().unwrap();
    let region = info
        .memory_info_at_address(pattern)
        .expect("the pattern's region");
    assert_eq!(region.raw.protection, 0x04, "PAGE_READWRITE");
    assert_eq!(region.raw.state, 0x1000, "MEM_COMMIT");

    // The Linux streams.
    let status = dump.get_stream::<MinidumpLinuxProcStatus>().unwrap();
    let pid_line = status
        .iter()
        .find(|(k, _)| k.as_bytes() == b"Pid")
        .map(|(_, v)| v.as_bytes().to_vec());
    assert_eq!(pid_line, Some(t.pid.to_string().into_bytes()));
    let raw = |kind: MINIDUMP_STREAM_TYPE| dump.get_raw_stream(kind as u32).unwrap().to_vec();
    let auxv = std::fs::read(format!("/proc/{}/auxv", t.pid)).unwrap();
    assert_eq!(raw(MINIDUMP_STREAM_TYPE::LinuxAuxv), auxv);
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", t.pid)).unwrap();
    assert_eq!(raw(MINIDUMP_STREAM_TYPE::LinuxCmdLine), cmdline);
    let environ = raw(MINIDUMP_STREAM_TYPE::LinuxEnviron);
    assert!(environ
        .split(|&b| b == 0)
        .any(|v| v == b"PSS_TESTBED_MARK=minidump-env"));
    let maps = String::from_utf8(raw(MINIDUMP_STREAM_TYPE::LinuxMaps)).unwrap();
    assert!(
        maps.lines()
            .any(|l| l.starts_with(&format!("{pattern:08x}-"))),
        "{maps}"
    );
    assert!(maps.contains(exe_path.to_str().unwrap()));
    assert!(!raw(MINIDUMP_STREAM_TYPE::LinuxCpuInfo).is_empty());
    assert!(!raw(MINIDUMP_STREAM_TYPE::LinuxLsbRelease).is_empty());
    // A live dump: no exception.
    assert!(dump
        .get_raw_stream(MINIDUMP_STREAM_TYPE::ExceptionStream as u32)
        .is_err());

    check_with_the_processor(&dump, &snap);
    t.assert_unharmed();
    drop(snap);
    let _ = std::fs::remove_file(&path);
}

/// rust-minidump's processor (what crash-reporting services run) takes the dump: no crash,
/// every thread, each thread's first frame at its instruction pointer.
fn check_with_the_processor(dump: &Minidump<'_, memmap2::Mmap>, snap: &Snapshot) {
    let provider =
        minidump_unwind::Symbolizer::new(minidump_unwind::simple_symbol_supplier(vec![]));
    let state = futures_executor::block_on(minidump_processor::process_minidump(dump, &provider))
        .expect("the processor takes it");
    assert!(state.exception_info.is_none(), "a live dump has no crash");
    assert_eq!(state.threads.len(), snap.threads().unwrap().len());
    for (stack, th) in state
        .threads
        .iter()
        .zip(state.threads.iter().map(|s| s.thread_id).map(|tid| {
            snap.threads()
                .unwrap()
                .iter()
                .find(|x| x.thread_id == tid)
                .unwrap()
        }))
    {
        let ip = th.context.as_ref().unwrap().general.instruction_pointer();
        assert_eq!(stack.frames[0].instruction, ip, "thread {}", th.thread_id);
        assert!(
            stack.frames[0].module.is_some(),
            "frame 0 of {} is in a module",
            th.thread_id
        );
    }
}

#[test]
fn without_a_clone_stacks_come_from_the_auxiliary_pages_even_from_a_file() {
    let t = Target::spawn(exe(), &["threads", "2"]);
    let flags = CaptureFlags::THREADS
        | CaptureFlags::THREAD_CONTEXT
        | CaptureFlags::AUXILIARY_PAGES
        | CaptureFlags::VA_SPACE
        | CaptureFlags::VA_SPACE_SECTION_INFORMATION;
    let live = Snapshot::capture(PssTarget::Pid(t.pid), flags, ContextFlags::ALL).unwrap();
    // Saved and read back: a snapshot file has no clone, and still makes a minidump.
    let file = temp("snapshot");
    live.save(&file).unwrap();
    let snap = Snapshot::load(&file).unwrap();
    let _ = std::fs::remove_file(&file);
    let path = write(&snap, "aux", false);
    let dump = Minidump::read_path(&path).unwrap();
    let memory = dump.get_memory().unwrap();
    let threads = dump.get_stream::<MinidumpThreadList>().unwrap();
    assert_eq!(threads.threads.len(), snap.threads().unwrap().len());
    for th in &threads.threads {
        let page = snap
            .auxiliary_pages()
            .unwrap()
            .iter()
            .find(|p| {
                p.thread_id == th.raw.thread_id && p.kind == pss::records::AuxiliaryPageKind::Stack
            })
            .unwrap();
        let stack = th
            .stack_memory(&memory)
            .expect("a stack from the auxiliary pages");
        assert_eq!(
            (stack.base_address(), stack.bytes()),
            (page.address, &page.contents[..])
        );
    }
    assert!(
        dump.get_raw_stream(MINIDUMP_STREAM_TYPE::LinuxAuxv as u32)
            .is_err(),
        "no clone, no auxv"
    );
    let err = export::write_file(
        &snap,
        Format::Minidump,
        &temp("nofull"),
        false,
        &mut ExportOptions {
            full_memory: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("VA clone"), "{err}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_full_memory_minidump_holds_memory_as_it_was_in_the_pause() {
    let mut t = Target::spawn(exe(), &["va", "4"]);
    let (mem, mem_len) = (t.fact_u64("mem", 0), t.fact_u64("mem", 1));
    let pattern = t.fact_u64("pattern", 0);
    let dontfork = t.fact_u64("dontfork", 0);
    let snap = Snapshot::capture(
        PssTarget::Pid(t.pid),
        export::CAPTURE_FLAGS,
        ContextFlags::ALL,
    )
    .unwrap();
    t.ask("scribble", "scribbled");
    let path = write(&snap, "memory64", true);
    let dump = Minidump::read_path(&path).unwrap();
    let memory = dump.get_memory().unwrap();
    let at = |addr: u64, len: usize| -> Vec<u8> {
        let m = memory
            .memory_at_address(addr)
            .unwrap_or_else(|| panic!("no memory at {addr:#x}"));
        let off = (addr - m.base_address()) as usize;
        m.bytes()[off..off + len].to_vec()
    };
    assert!(at(pattern, 4096)
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i * 7 + 3) as u8));
    for p in [0, 1, mem_len / 4096 - 1] {
        assert_eq!(at(mem + p * 4096, 8), p.to_le_bytes());
    }
    assert!(at(dontfork, 16)
        .iter()
        .enumerate()
        .all(|(i, &b)| b == 0xD0 ^ (i as u8)));
    drop(snap);
    let _ = std::fs::remove_file(&path);
    t.assert_unharmed();
}
