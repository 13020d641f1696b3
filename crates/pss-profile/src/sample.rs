//! Sampling a live process: a round every interval, each the stacks `pss stack` reads
//! ([`pss_stack::capture_stacks`]: by default a blocked thread is not stopped and any other
//! is stopped alone), added to a [`Profile`]. Module files, symbols and the perf map are
//! read once and kept by the walker across rounds.

use std::time::{Duration, Instant};

use pss_stack::{LiveCapture, Walker};
use pss_types::error::{Error, Result};

use super::Profile;

/// How [`sample`] samples.
#[derive(Debug, Clone)]
pub struct Sampling {
    /// How many rounds.
    pub samples: u32,
    /// From the start of one round to the start of the next (a round that takes longer
    /// delays the next; rounds are never bunched up to catch up).
    pub interval: Duration,
    /// How each round reads the process.
    pub live: LiveCapture,
}

impl Default for Sampling {
    /// 100 rounds, 10 ms apart (100 Hz), each read one thread at a time.
    fn default() -> Sampling {
        Sampling {
            samples: 100,
            interval: Duration::from_millis(10),
            live: LiveCapture::default(),
        }
    }
}

/// Rounds in a row that may fail (a thread that would not stop in time, say) before
/// sampling gives up.
const MOST_FAILURES_IN_A_ROW: u32 = 5;

/// Samples process `pid` as `how` says, with `walker`; `go_on` is asked before each round
/// after the first (false ends sampling early: an interrupted command writes what it has).
///
/// The first round's error is returned (no such process, not permitted, …). A process that
/// exits later ends the profile with a warning; a round that fails otherwise is skipped
/// with a warning, and [`MOST_FAILURES_IN_A_ROW`] in a row end it.
pub fn sample(
    pid: i32,
    how: &Sampling,
    walker: &mut Walker,
    mut go_on: impl FnMut(&Profile) -> bool,
) -> Result<Profile> {
    let mut profile: Option<Profile> = None;
    let start = Instant::now();
    let mut next = start;
    let (mut failures, mut late) = (0, 0);
    for round in 0..how.samples {
        if let Some(p) = &profile {
            if !go_on(p) {
                break;
            }
        }
        let now = Instant::now();
        match next.checked_duration_since(now) {
            Some(wait) => std::thread::sleep(wait),
            None if round > 0 => late += 1,
            None => {}
        }
        next = next.max(now) + how.interval;
        match pss_stack::capture_stacks(pid, &how.live, walker) {
            Ok((snap, stacks)) => {
                failures = 0;
                let info = snap.capture_info();
                let p = profile.get_or_insert_with(|| {
                    let proc = snap.process();
                    Profile::new(proc.process_id, proc.linux.comm.clone(), how.interval)
                });
                p.add(&stacks, info.pause, info.threads_stopped as u64);
            }
            Err(e) => {
                let Some(p) = profile.as_mut() else {
                    return Err(e);
                };
                if gone(&e) {
                    p.warn(&format!("the process exited after {} rounds", p.rounds));
                    break;
                }
                p.warn(&format!("a round failed (skipped): {e}"));
                failures += 1;
                if failures >= MOST_FAILURES_IN_A_ROW {
                    p.warn(&format!(
                        "{failures} rounds failed in a row: sampling ended"
                    ));
                    break;
                }
            }
        }
    }
    let mut profile = profile.ok_or(Error::InvalidParameter(
        "no samples asked for (--samples 0)".into(),
    ))?;
    profile.duration = start.elapsed();
    if late > 0 {
        profile.warn(&format!(
            "{late} rounds started late: a round took longer than the {} ms interval",
            how.interval.as_millis()
        ));
    }
    Ok(profile)
}

/// Whether `e` says the process is gone.
fn gone(e: &Error) -> bool {
    matches!(
        e,
        Error::NoSuchProcess { .. } | Error::ProcessExited { .. } | Error::Zombie { .. }
    )
}
