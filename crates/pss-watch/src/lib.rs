//! Watching processes for a condition, as ProcDump does: which processes ([`Targets`]: a
//! pid, every process of a name — also ones started later — or a process group), what
//! `/proc` says of each ([`Usage`]: CPU, commit, threads, file descriptors), and when a
//! condition has held for long enough ([`Watch`]). Nothing here traces, stops or writes to
//! a process: each poll reads a few `/proc` files. What to do when a trigger fires (a core,
//! a minidump, stacks) is the caller's: `pss watch` dumps with pss; the Python package
//! yields the events.
//!
//! ```no_run
//! use std::time::Duration;
//! use pss_watch::{Condition, Rules, Targets, Watcher};
//!
//! let rules = Rules {
//!     conditions: vec![Condition::CpuAtLeast(80.0)],
//!     hold: Duration::from_secs(10),
//!     ..Rules::default()
//! };
//! let mut watcher = Watcher::new(Targets::Pid(1234), rules);
//! loop {
//!     for event in watcher.poll() {
//!         println!("{event:?}");
//!     }
//!     std::thread::sleep(Duration::from_secs(1));
//! }
//! ```

#![warn(missing_docs)]
#![deny(unsafe_code)]

mod rules;
mod targets;
mod usage;
mod watcher;

pub use rules::{Condition, Rules, Watch};
pub use targets::Targets;
pub use usage::Usage;
pub use watcher::{Event, Watcher};
