//! Profiles: many stacks of one process, sampled at an interval ([`sample`]) and
//! aggregated — each distinct call chain of each thread with how many rounds found it — then
//! written for the tools people read profiles with: collapsed stacks ([`folded`]: Brendan
//! Gregg's `flamegraph.pl`, `inferno-flamegraph`, speedscope) or a gzipped pprof
//! `profile.proto` ([`pprof`]: `go tool pprof`, Grafana Pyroscope, Parca).
//!
//! ```no_run
//! use std::time::Duration;
//!
//! let how = pss_profile::Sampling {
//!     samples: 100,
//!     interval: Duration::from_millis(10),
//!     ..pss_profile::Sampling::default()
//! };
//! let profile = pss_profile::sample(1234, &how, &mut pss_stack::Walker::new(), |_| true)?;
//! let mut out = std::io::stdout();
//! pss_profile::folded::write(&profile, &mut out)?;
//! std::fs::write("cpu.pb.gz", pss_profile::pprof::encode(&profile))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod folded;
pub mod pprof;
mod sample;

use std::collections::HashMap;
use std::ffi::OsString;
use std::time::{Duration, SystemTime};

use pss_stack::{Frame, Stacks};
pub use sample::{sample, Sampling};

/// The most distinct warnings a profile keeps.
const MOST_WARNINGS: usize = 64;

/// One call chain of one thread, and how many rounds found the thread in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampledStack {
    /// The thread.
    pub thread_id: u32,
    /// Its name (`comm`) when the chain was first seen.
    pub thread_name: OsString,
    /// The frames, innermost first (as [`pss_stack::ThreadStack::frames`]).
    pub frames: Vec<Frame>,
    /// How many rounds found it.
    pub count: u64,
}

/// Stacks sampled from one process, aggregated.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The process.
    pub pid: u32,
    /// Its name (`comm`).
    pub process_name: OsString,
    /// When the first round was taken.
    pub started: SystemTime,
    /// From the first round to the end of the last.
    pub duration: Duration,
    /// The interval asked for between rounds.
    pub interval: Duration,
    /// How many rounds were taken.
    pub rounds: u32,
    /// The longest any thread was stopped in any round (a thread read while blocked is not
    /// stopped at all).
    pub longest_stop: Duration,
    /// How many threads were stopped, over all rounds.
    pub threads_stopped: u64,
    /// Each distinct call chain of each thread, in the order first seen.
    pub stacks: Vec<SampledStack>,
    /// What was missing, each said once.
    pub warnings: Vec<String>,
    index: HashMap<Key, usize>,
}

/// What makes two sampled chains the same: the thread and each frame's address and names
/// (not how the frame was found, which differs between a thread read stopped and blocked).
type Key = (u32, Vec<(u64, bool, Option<String>, Option<u32>)>);

impl Profile {
    /// An empty profile of process `pid` (`name`), sampled every `interval`.
    pub fn new(pid: u32, name: OsString, interval: Duration) -> Profile {
        Profile {
            pid,
            process_name: name,
            started: SystemTime::now(),
            duration: Duration::ZERO,
            interval,
            rounds: 0,
            longest_stop: Duration::ZERO,
            threads_stopped: 0,
            stacks: Vec::new(),
            warnings: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Adds one round: every thread of `stacks`, found in its chain once; `stop` is the
    /// longest any thread was stopped for it, `stopped` how many were.
    pub fn add(&mut self, stacks: &Stacks, stop: Duration, stopped: u64) {
        if self.rounds == 0 {
            self.started = SystemTime::now();
        }
        self.rounds += 1;
        self.longest_stop = self.longest_stop.max(stop);
        self.threads_stopped += stopped;
        for t in &stacks.threads {
            let key = (
                t.thread_id,
                t.frames
                    .iter()
                    .map(|f| (f.address, f.inlined, f.function.clone(), f.line))
                    .collect(),
            );
            match self.index.get(&key) {
                Some(&i) => self.stacks[i].count += 1,
                None => {
                    self.index.insert(key, self.stacks.len());
                    self.stacks.push(SampledStack {
                        thread_id: t.thread_id,
                        thread_name: t.name.clone(),
                        frames: t.frames.clone(),
                        count: 1,
                    });
                }
            }
        }
        for w in &stacks.warnings {
            self.warn(w);
        }
    }

    /// Notes `warning`, unless already noted (or too many are).
    pub fn warn(&mut self, warning: &str) {
        if self.warnings.len() < MOST_WARNINGS && !self.warnings.iter().any(|w| w == warning) {
            self.warnings.push(warning.to_owned());
        }
    }

    /// Each thread (in the order first seen) with its chains, most sampled first: what the
    /// text and JSON forms list.
    pub fn by_thread(&self) -> Vec<(u32, Vec<&SampledStack>)> {
        let mut threads: Vec<(u32, Vec<&SampledStack>)> = Vec::new();
        for s in &self.stacks {
            match threads.iter_mut().find(|(tid, _)| *tid == s.thread_id) {
                Some((_, chains)) => chains.push(s),
                None => threads.push((s.thread_id, vec![s])),
            }
        }
        for (_, chains) in &mut threads {
            chains.sort_by_key(|s| std::cmp::Reverse(s.count));
        }
        threads
    }

    /// The samples of thread `tid` (one per round it was found in).
    pub fn samples_of(&self, tid: u32) -> u64 {
        self.stacks
            .iter()
            .filter(|s| s.thread_id == tid)
            .map(|s| s.count)
            .sum()
    }
}

/// How a frame is named in the outputs: its function, else `module+0xOFFSET`, else its
/// address.
pub fn frame_name(f: &Frame) -> String {
    if let Some(name) = &f.function {
        return name.clone();
    }
    match (&f.module, f.module_offset) {
        (Some(m), Some(off)) => {
            let file = m.file_name().unwrap_or(m.as_os_str());
            format!("{}+{off:#x}", file.to_string_lossy())
        }
        _ => format!("{:#x}", f.address),
    }
}
