//! `pss stack --samples N` (and `--format folded|pprof`): rounds of stacks aggregated into a
//! profile ([`pss_profile`]), written as text, JSON, collapsed stacks or pprof.

use std::io::{self, IsTerminal, Write};

use anyhow::Result;
use pss::Snapshot;
use pss_profile::{Profile, Sampling};

use crate::escape::shown;
use crate::stack::{frames, live, StackArgs, StackFormat};
use crate::{interrupt, units};

/// Samples (or reads the snapshot file) and writes the profile.
pub fn profile(args: &StackArgs) -> Result<()> {
    let mut walker = args.walker();
    let mut profile = match args.pid()? {
        Some(pid) => {
            interrupt::live_target();
            interrupt::sampling();
            let how = Sampling {
                samples: args.samples(),
                interval: args.interval(),
                live: live(args),
            };
            pss_profile::sample(pid, &how, &mut walker, |_| !interrupt::sampling_stopped())?
        }
        None => {
            interrupt::no_target();
            let snap = Snapshot::load(args.target())?;
            let stacks = walker.stacks(&snap)?;
            let p = snap.process();
            let mut profile = Profile::new(p.process_id, p.linux.comm.clone(), args.interval());
            let info = snap.capture_info();
            profile.add(&stacks, info.pause, info.threads_stopped as u64);
            profile
        }
    };
    profile
        .stacks
        .retain(|s| args.wants(s.thread_id, &s.thread_name));
    let out = match args.format() {
        StackFormat::Text => {
            let mut out = Vec::new();
            text(&mut out, &profile)?;
            out
        }
        StackFormat::Json => {
            let mut out = serde_json::to_vec_pretty(&pss_json::profile(&profile))?;
            out.push(b'\n');
            out
        }
        StackFormat::Folded => {
            let mut out = Vec::new();
            pss_profile::folded::write(&profile, &mut out)?;
            out
        }
        StackFormat::Pprof => pss_profile::pprof::encode(&profile),
    };
    emit(args, &out)?;
    for w in &profile.warnings {
        eprintln!("pss: warning: {}", shown(w));
    }
    Ok(())
}

/// Writes `bytes` to `-o FILE` (whole or not at all) or to standard output (not a binary
/// profile to a terminal).
pub fn emit(args: &StackArgs, bytes: &[u8]) -> Result<()> {
    match args.output() {
        (Some(path), force) => crate::output::write_file(path, bytes, force),
        (None, _) => {
            let stdout = io::stdout();
            if args.format() == StackFormat::Pprof && stdout.is_terminal() {
                anyhow::bail!("not writing a binary profile to a terminal: use -o FILE");
            }
            let mut out = stdout.lock();
            out.write_all(bytes)?;
            out.flush()?;
            Ok(())
        }
    }
}

/// The text form: a header, then each thread with its distinct chains, most sampled first.
fn text(out: &mut impl Write, p: &Profile) -> io::Result<()> {
    writeln!(
        out,
        "PID {} ({}): {} round{} in {}, every {}; longest stop of one thread {}",
        p.pid,
        shown(&p.process_name.to_string_lossy()),
        p.rounds,
        if p.rounds == 1 { "" } else { "s" },
        units::duration(p.duration),
        units::duration(p.interval),
        units::duration(p.longest_stop),
    )?;
    for (tid, chains) in p.by_thread() {
        let total: u64 = chains.iter().map(|c| c.count).sum();
        writeln!(
            out,
            "TID {tid} \"{}\": {total} sample{}",
            shown(&chains[0].thread_name.to_string_lossy()),
            if total == 1 { "" } else { "s" }
        )?;
        for c in chains {
            let pct = c.count as f64 * 100.0 / total.max(1) as f64;
            writeln!(out, "  {} ({pct:.0}%):", c.count)?;
            let mut buf = Vec::new();
            frames(&mut buf, &c.frames, usize::MAX)?;
            for line in buf.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                out.write_all(b"    ")?;
                out.write_all(line)?;
                out.write_all(b"\n")?;
            }
        }
    }
    Ok(())
}
