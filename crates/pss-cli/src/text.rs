//! The default text output: a process header, then tables.

use std::io::{self, Write};

use pss::records::{MemState, MemType, PageProtection};
use pss::Snapshot;

use crate::escape::{shown, shown_os};
use crate::units::{duration, size, utc};

/// "s" unless `n` is 1.
fn plural(n: impl TryInto<u64>) -> &'static str {
    if n.try_into().ok() == Some(1) {
        ""
    } else {
        "s"
    }
}

/// Writes the whole snapshot as text.
pub fn snapshot(out: &mut impl Write, snap: &Snapshot) -> io::Result<()> {
    let p = snap.process();
    let info = snap.capture_info();
    writeln!(
        out,
        "Process {} ({})  parent {}  state {}  {} thread{}",
        p.process_id,
        shown_os(p.image_file_name.as_os_str()),
        p.parent_process_id,
        p.linux.state,
        p.linux.num_threads,
        plural(p.linux.num_threads)
    )?;
    writeln!(
        out,
        "  created {}  user {}  kernel {}  priority class {:#x} (base {})",
        utc(p.create_time),
        duration(p.user_time),
        duration(p.kernel_time),
        p.priority_class.value(),
        p.base_priority
    )?;
    writeln!(
        out,
        "  virtual {}  working set {} (peak {})  private {}",
        size(p.virtual_size),
        size(p.working_set_size),
        size(p.peak_working_set_size),
        size(p.private_usage)
    )?;
    if info.threads_stopped > 0 {
        writeln!(
            out,
            "Target paused for {} ({} thread{} stopped together, {} round{}); capture took {}",
            duration(info.pause),
            info.threads_stopped,
            plural(info.threads_stopped),
            info.seize_rounds,
            plural(info.seize_rounds),
            duration(info.total)
        )?;
    } else {
        writeln!(
            out,
            "Target not paused; capture took {}",
            duration(info.total)
        )?;
    }

    if let Some(pages) = snap.auxiliary_pages() {
        let bytes: usize = pages.iter().map(|p| p.contents.len()).sum();
        writeln!(
            out,
            "Auxiliary pages: {} copies (thread stacks and TLS pages), {}",
            pages.len(),
            size(bytes as u64)
        )?;
    }
    if let Some(c) = snap.va_clone() {
        writeln!(
            out,
            "VA clone: pid {} (pid {} inside the target); {} range(s) copied during the pause, {} not captured",
            c.pid(),
            c.pid_in_target(),
            c.copies().len(),
            c.holes().len()
        )?;
    }

    if let Some(threads) = snap.threads() {
        writeln!(out, "\nThreads ({})", threads.len())?;
        writeln!(
            out,
            "  {:>8}  {:5}  {:>4}  {:>7}  {:>18}  {:>18}  NAME",
            "TID", "STATE", "PRIO", "SYSCALL", "IP", "SP"
        )?;
        for t in threads {
            let (ip, sp) = t
                .context
                .as_ref()
                .map_or((String::new(), String::new()), |c| {
                    (
                        format!("{:#x}", c.general.instruction_pointer()),
                        format!("{:#x}", c.general.stack_pointer()),
                    )
                });
            writeln!(
                out,
                "  {:>8}  {:5}  {:>4}  {:>7}  {:>18}  {:>18}  {}",
                t.thread_id,
                t.linux.state,
                t.priority,
                t.linux.syscall.map_or("-".into(), |n| n.to_string()),
                ip,
                sp,
                shown_os(&t.linux.name)
            )?;
        }
    }

    top_frames(out, snap)?;

    if let Some(handles) = snap.handles() {
        writeln!(out, "\nHandles ({})", handles.len())?;
        writeln!(out, "  {:>6}  {:12}  {:>4}  NAME", "FD", "TYPE", "OBJ")?;
        for h in handles {
            writeln!(
                out,
                "  {:>6}  {:12}  {:>4}  {}",
                h.handle,
                h.type_name.name(),
                h.object_type.value(),
                h.object_name.as_deref().map_or(String::new(), shown_os)
            )?;
        }
    }

    if let Some(regions) = snap.va_space() {
        writeln!(out, "\nRegions ({})", regions.len())?;
        writeln!(
            out,
            "  {:>18}  {:>10}  {:7}  {:7}  {:8}  NAME",
            "BASE", "SIZE", "STATE", "TYPE", "PROTECT"
        )?;
        for r in regions {
            let name = r
                .section
                .as_ref()
                .and_then(|s| s.mapped_file_name.as_ref())
                .map(|p| shown_os(p.as_os_str()))
                .or_else(|| r.linux.as_ref().map(|l| shown_os(&l.pathname)))
                .unwrap_or_default();
            writeln!(
                out,
                "  {:>#18x}  {:>10}  {:7}  {:7}  {:8}  {}",
                r.base_address,
                size(r.region_size),
                state(r.state),
                mem_type(r.mem_type),
                protect(r.protect),
                name
            )?;
        }
    }

    if !snap.warnings().is_empty() {
        writeln!(out, "\nWarnings")?;
        for w in snap.warnings() {
            writeln!(out, "  {}", shown(&w.to_string()))?;
        }
    }
    Ok(())
}

/// The top frames of each thread, when the snapshot holds registers and stack bytes.
fn top_frames(out: &mut impl Write, snap: &Snapshot) -> io::Result<()> {
    let has_stack_bytes = snap.auxiliary_pages().is_some() || snap.va_clone().is_some();
    if !has_stack_bytes {
        return Ok(());
    }
    let Ok(stacks) = pss_stack::stacks(snap) else {
        return Ok(());
    };
    writeln!(
        out,
        "\nStacks (top {TOP_FRAMES} frames; `pss stack` prints them whole)"
    )?;
    for t in &stacks.threads {
        writeln!(out, "  TID {} \"{}\":", t.thread_id, shown_os(&t.name))?;
        crate::stack::frames(out, &t.frames, TOP_FRAMES)?;
    }
    Ok(())
}

/// How many frames of each thread `pss capture` shows.
const TOP_FRAMES: usize = 3;

fn state(s: MemState) -> &'static str {
    match s {
        MemState::Commit => "commit",
        MemState::Reserve => "reserve",
        MemState::Free => "free",
    }
}

fn mem_type(t: MemType) -> &'static str {
    match t {
        MemType::None => "",
        MemType::Private => "private",
        MemType::Mapped => "mapped",
        MemType::Image => "image",
    }
}

fn protect(p: PageProtection) -> &'static str {
    match p {
        PageProtection::NOACCESS => "---",
        PageProtection::READONLY => "r--",
        PageProtection::READWRITE => "rw-",
        PageProtection::WRITECOPY => "rc-",
        PageProtection::EXECUTE => "--x",
        PageProtection::EXECUTE_READ => "r-x",
        PageProtection::EXECUTE_READWRITE => "rwx",
        PageProtection::EXECUTE_WRITECOPY => "rcx",
        _ => "",
    }
}
