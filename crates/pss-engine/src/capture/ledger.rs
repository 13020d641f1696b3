//! The ledger of clones (`docs/engine.md`, "Strays"): one small file per VA clone in the
//! state directory, written before the pause that makes it, completed when it is adopted,
//! removed once its zombie is reaped in the target. An engine that dies leaves its files
//! behind; the next engine of the same user finds them — when it starts, before each
//! capture of a target, and on `pss cleanup` — and reaps what they name.
//!
//! A file is `KEY=VALUE` lines: `engine`, `engine_start` (the writer and its start time, in
//! clock ticks after boot: a live writer's files are left alone), `target`,
//! `target_start`, `since` (when the pause began), and once adopted `clone`,
//! `clone_in_target`, `clone_start`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pss_sys::procfs;
use pss_trace::statedir;
use pss_trace::tracer::{self, Role};

use super::reap::{Reaped, Zombie};
use super::trampoline::Trampoline;

/// How long after the pause began a clone made in it may have started (its `starttime`),
/// for a file whose clone was never recorded.
const WINDOW: Duration = Duration::from_secs(5);
/// How old an incomplete file must be before it is taken for the remains of a dead writer.
const STALE: Duration = Duration::from_secs(60);

/// One clone's file. Dropping it leaves the file (a clone may outlive the value); [`done`]
/// removes it.
///
/// [`done`]: Entry::done
#[derive(Debug)]
pub struct Entry {
    path: PathBuf,
    lines: String,
}

/// Starts the file of a clone about to be made in `target`. `None` without a state
/// directory (the clone is then unrecorded).
pub fn intent(target: i32) -> Option<Entry> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = statedir::dir()?.join("clones");
    let _ = std::fs::create_dir(&dir);
    let me = std::process::id() as i32;
    let lines = format!(
        "engine={me}\nengine_start={}\ntarget={target}\ntarget_start={}\nsince={}\n",
        start_of(me)?,
        start_of(target)?,
        procfs::boot_ticks_now(),
    );
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let entry = Entry {
        path: dir.join(format!("{me}-{n}")),
        lines,
    };
    entry.write().then_some(entry)
}

impl Entry {
    /// Records the clone once it exists.
    pub fn made(&mut self, z: &Zombie) {
        self.lines += &format!(
            "clone={}\nclone_in_target={}\nclone_start={}\n",
            z.clone, z.clone_in_target, z.clone_start
        );
        self.write();
    }

    /// The clone is gone and reaped: the file goes.
    pub fn done(self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// The injected `clone` did not come back: thread `tid` of the target is still inside
    /// it, and the clone it makes (at any later time) is to be reaped — and the trampoline
    /// page it returns through unmapped — by a later sweep once the thread is back. The
    /// file stays, and is swept even while this engine lives.
    pub fn stuck(mut self, tid: i32, trampoline: Option<Trampoline>) {
        self.lines += &format!("stuck_tid={tid}\n");
        if let Some(t) = trampoline {
            self.lines += &format!("trampoline_base={}\ntrampoline_len={}\n", t.base, t.len);
        }
        self.write();
    }

    /// A pause that failed may still have made a clone no one recorded (the thread could
    /// not be restored after it, say): reaps what fits, then drops the file.
    pub fn settle(self) {
        let rec = parse(&self.lines);
        if let (Some(&t), Some(&t_start), Some(&since)) =
            (rec.get("target"), rec.get("target_start"), rec.get("since"))
        {
            for z in unrecorded(t as i32, t_start, since, Some(WINDOW)) {
                reap_stray(&z);
            }
        }
        self.done();
    }

    fn write(&self) -> bool {
        let tmp = self.path.with_extension("new");
        std::fs::write(&tmp, &self.lines).is_ok() && std::fs::rename(&tmp, &self.path).is_ok()
    }
}

/// A ledger file's text; with `owner`, only a regular file (not a link) that user owns.
fn read_entry(path: &std::path::Path, owner: Option<u32>) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let m = f.metadata().ok()?;
    if !m.is_file() || owner.is_some_and(|uid| m.uid() != uid) || m.len() > 4096 {
        return None;
    }
    let mut text = String::new();
    f.read_to_string(&mut text).ok()?;
    Some(text)
}

/// The real uid of process `pid`.
fn owner_of(pid: i32) -> Option<u32> {
    procfs::status_at(&format!("/proc/{pid}/status")).map(|s| s.uid)
}

fn start_of(pid: i32) -> Option<u64> {
    procfs::stat_at(&format!("/proc/{pid}/stat")).map(|s| s.starttime)
}

/// Whether `pid` is the process that started at `start` and has not exited (a zombie
/// has: an engine's zombie waits for an init that may never reap it).
fn running(pid: i32, start: u64) -> bool {
    procfs::process_alive(pid, Some(start))
}

/// Reaps what the files of dead engines name (of `target` only, if given); returns one line
/// per clone found. Runs injections on the tracer thread.
pub fn sweep(target: Option<i32>) -> Vec<String> {
    match statedir::dir() {
        Some(d) => sweep_dir(&d.join("clones"), target, None),
        None => Vec::new(),
    }
}

/// [`sweep`], and for root also the ledgers of other users' engines ([`statedir::other_users`]),
/// for their targets only: what `pss cleanup` does (an unprivileged engine cannot reap a
/// clone in a target that has since installed a seccomp filter; root can).
pub fn sweep_all(target: Option<i32>) -> Vec<String> {
    let mut report = sweep(target);
    for (dir, uid) in statedir::other_users() {
        report.extend(sweep_dir(&dir.join("clones"), target, Some(uid)));
    }
    report
}

/// Sweeps the ledger directory `dir`; with `owner`, a directory of that user's, whose
/// files are taken only if that user owns them and only for targets that user owns.
fn sweep_dir(dir: &std::path::Path, target: Option<i32>, owner: Option<u32>) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut report = Vec::new();
    for e in entries.flatten() {
        // `NAME.new` is a file being written — or left by an engine killed before it
        // renamed it: read like the others, and dropped once old if it is incomplete.
        let path = e.path();
        let Some(rec) = read_entry(&path, owner).map(|t| parse(&t)) else {
            continue;
        };
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().unwrap_or_default() > STALE);
        let get = |k: &str| rec.get(k).copied();

        let (Some(engine), Some(engine_start), Some(t), Some(t_start), Some(since)) = (
            get("engine"),
            get("engine_start"),
            get("target"),
            get("target_start"),
            get("since"),
        ) else {
            if old {
                let _ = std::fs::remove_file(&path);
            }
            continue;
        };
        let t = t as i32;
        let stuck_tid = get("stuck_tid").map(|v| v as i32);
        let live_writer = running(engine as i32, engine_start) && stuck_tid.is_none();
        if live_writer || target.is_some_and(|p| p != t) {
            continue;
        }
        if !running(t, t_start) {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if owner.is_some_and(|uid| owner_of(t) != Some(uid)) {
            continue;
        }
        if let Some(tid) = stuck_tid {
            let line = sweep_stuck(t, t_start, since, tid, &rec);
            if line.ends_with("reaped") {
                let _ = std::fs::remove_file(&path);
            }
            report.push(format!(
                "clone of process {t} (left by engine {engine}): {line}"
            ));
            continue;
        }
        let zombies = match (get("clone"), get("clone_in_target"), get("clone_start")) {
            (Some(c), Some(ct), Some(cs)) => vec![Zombie {
                target: t,
                target_start: t_start,
                clone: c as i32,
                clone_in_target: ct as i32,
                clone_start: cs,
            }],
            _ => unrecorded(t, t_start, since, Some(WINDOW)),
        };
        let mut all_gone = true;
        for z in zombies {
            let reaped = reap_stray(&z);
            report.push(format!(
                "clone {} of process {t} (left by engine {engine}): {}",
                z.clone,
                match &reaped {
                    Reaped::Gone => "reaped".to_string(),
                    Reaped::Later => "could not be reaped yet".to_string(),
                    Reaped::Never(why) => format!("cannot be reaped: {why}"),
                }
            ));
            all_gone &= reaped == Reaped::Gone;
        }
        if all_gone {
            let _ = std::fs::remove_file(&path);
        }
    }
    report
}

/// A clone whose injected `clone` did not come back in thread `tid` of `target`: once the
/// thread has left the call, the clone it made (a child with exit signal 0 started after the
/// pause began at `since`) is reaped and the trampoline it returned through unmapped. What
/// became of it, ending in `reaped` when nothing is left.
fn sweep_stuck(
    target: i32,
    target_start: u64,
    since: u64,
    tid: i32,
    rec: &HashMap<String, u64>,
) -> String {
    let in_clone = procfs::syscall::read(target, tid)
        .and_then(|s| s.call)
        .is_some_and(|(nr, _)| nr == libc::SYS_clone);
    if in_clone {
        return format!("thread {tid} is still inside the injected clone(); nothing to reap yet");
    }
    let mut left = 0;
    for z in unrecorded(target, target_start, since, None) {
        if reap_stray(&z) != Reaped::Gone {
            left += 1;
        }
    }
    if let (Some(&base), Some(&len)) = (rec.get("trampoline_base"), rec.get("trampoline_len")) {
        if (Trampoline { base, len }).unmap(target).is_err() {
            left += 1;
        }
    }
    if left > 0 {
        format!("thread {tid} is back; {left} thing(s) could not be cleaned up yet")
    } else {
        format!("thread {tid} is back; its clone reaped")
    }
}

/// Kills a stray clone that still runs (one made without a trampoline), then reaps it.
fn reap_stray(z: &Zombie) -> Reaped {
    if z.gone() {
        return Reaped::Gone;
    }
    z.kill_if_alive();
    let z = z.clone();
    tracer::run_on(Role::Capture, move || z.reap()).unwrap_or(Reaped::Later)
}

/// The children of `target` that look like a clone made in a pause that began at `since`
/// (exit signal 0, started after it, within `window` if given): a dead engine recorded no
/// more.
fn unrecorded(target: i32, target_start: u64, since: u64, window: Option<Duration>) -> Vec<Zombie> {
    let window = window.map_or(u64::MAX - since, procfs::ticks_in);
    procfs::children_of(target)
        .into_iter()
        .filter_map(|pid| {
            let st = procfs::stat_at(&format!("/proc/{pid}/stat"))?;
            let ns = procfs::status_at(&format!("/proc/{pid}/status"))?;
            let fits = st.exit_signal == 0
                && st.starttime >= since
                && st.starttime <= since.saturating_add(window);
            fits.then_some(Zombie {
                target,
                target_start,
                clone: pid,
                clone_in_target: ns.ns_pid,
                clone_start: st.starttime,
            })
        })
        .collect()
}

fn parse(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.trim().parse().ok()?)))
        .collect()
}
