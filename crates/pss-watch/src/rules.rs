//! The conditions a watch looks for and the state machine of one watched process
//! ([`Watch`]): a condition fires once it has held, poll after poll, for [`Rules::hold`]
//! (ProcDump's `-s`); then no trigger for [`Rules::cooldown`], and the condition must hold
//! for the whole `hold` again. Conditions are independent (any one may fire), as ProcDump's
//! triggers are.

use std::time::{Duration, Instant};

use super::usage::Usage;

/// A condition on a process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Condition {
    /// CPU at or above this percent of one CPU (every thread together; ProcDump's `-C`).
    CpuAtLeast(f64),
    /// CPU below this percent (ProcDump's `-c`).
    CpuBelow(f64),
    /// Commit at or above this many bytes (ProcDump's `-M`, see [`Usage::commit`]).
    CommitAtLeast(u64),
    /// Commit below this many bytes (ProcDump's `-m`).
    CommitBelow(u64),
    /// At least this many threads (ProcDump's `-T`).
    ThreadsAtLeast(u64),
    /// At least this many open file descriptors (ProcDump's `-F`).
    FdsAtLeast(u64),
    /// Every this long, whatever the process does (a timed dump; `hold` does not apply).
    Every(Duration),
}

impl Condition {
    /// The trigger's short name, as dump file names carry it: `cpu`, `cpu-below`, `mem`,
    /// `mem-below`, `threads`, `fds`, `time`.
    pub fn name(&self) -> &'static str {
        match self {
            Condition::CpuAtLeast(_) => "cpu",
            Condition::CpuBelow(_) => "cpu-below",
            Condition::CommitAtLeast(_) => "mem",
            Condition::CommitBelow(_) => "mem-below",
            Condition::ThreadsAtLeast(_) => "threads",
            Condition::FdsAtLeast(_) => "fds",
            Condition::Every(_) => "time",
        }
    }

    /// Whether `now` (with `before`, the previous reading, for CPU) meets the condition;
    /// `None` when it cannot be told (CPU on the first reading, file descriptors not
    /// listable).
    pub fn holds(&self, now: &Usage, before: Option<&Usage>) -> Option<bool> {
        let cpu = || before.map(|b| now.cpu_percent_since(b));
        Some(match *self {
            Condition::CpuAtLeast(p) => cpu()? >= p,
            Condition::CpuBelow(p) => cpu()? < p,
            Condition::CommitAtLeast(b) => now.commit >= b,
            Condition::CommitBelow(b) => now.commit < b,
            Condition::ThreadsAtLeast(n) => now.threads >= n,
            Condition::FdsAtLeast(n) => now.fds? >= n,
            Condition::Every(_) => true,
        })
    }
}

impl Condition {
    /// The latest moment the condition, first seen holding in reading `now`, can have
    /// begun: a level (commit, threads, descriptors) when it was read. CPU is an average
    /// over the interval since `before`: a load of at most `m` (100 × the process's
    /// threads, at most the CPUs) that began at `b` gives at most `m × (now − b) / window`,
    /// so an average of `p` means it began at or before `now − p/m × window` — crediting
    /// that much never fires a trigger early.
    fn began(&self, now: &Usage, before: Option<&Usage>) -> Instant {
        let (Condition::CpuAtLeast(p), Some(b)) = (self, before) else {
            return now.at;
        };
        let window = now.at.saturating_duration_since(b.at);
        let most = 100.0 * now.threads.clamp(1, online_cpus()) as f64;
        now.at - window.mul_f64((p / most).clamp(0.0, 1.0))
    }
}

/// The CPUs online.
fn online_cpus() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Condition::CpuAtLeast(p) => write!(f, "cpu >= {p}%"),
            Condition::CpuBelow(p) => write!(f, "cpu < {p}%"),
            Condition::CommitAtLeast(b) => write!(f, "commit >= {b} bytes"),
            Condition::CommitBelow(b) => write!(f, "commit < {b} bytes"),
            Condition::ThreadsAtLeast(n) => write!(f, "threads >= {n}"),
            Condition::FdsAtLeast(n) => write!(f, "fds >= {n}"),
            Condition::Every(d) => write!(f, "every {} s", d.as_secs_f64()),
        }
    }
}

/// What a watch looks for, and how often it may fire.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// The conditions (any one fires).
    pub conditions: Vec<Condition>,
    /// How long a condition must hold before it fires (ProcDump's `-s`, 10 s by default).
    pub hold: Duration,
    /// After a trigger, how long before the next may fire (for any condition).
    pub cooldown: Duration,
    /// How many triggers in all, for every process together (ProcDump's `-n`); `None`:
    /// no limit.
    pub count: Option<u64>,
}

impl Default for Rules {
    /// No condition, 10 s hold, no cooldown, one trigger.
    fn default() -> Rules {
        Rules {
            conditions: Vec::new(),
            hold: Duration::from_secs(10),
            cooldown: Duration::ZERO,
            count: Some(1),
        }
    }
}

/// One watched process's state: its last reading, since when each condition has held, and
/// when it last fired.
#[derive(Debug, Clone)]
pub struct Watch {
    /// The reading before the last (for CPU over the last interval).
    last: Option<Usage>,
    /// Per condition: since when it has held without a break (`None`: it does not).
    since: Vec<Option<Instant>>,
    /// When it last fired.
    fired: Option<Instant>,
    /// When it was first seen (the start of a timed condition's period).
    seen: Option<Instant>,
}

impl Watch {
    /// A process not read yet, watched for `rules`.
    pub fn new(rules: &Rules) -> Watch {
        Watch {
            last: None,
            since: vec![None; rules.conditions.len()],
            fired: None,
            seen: None,
        }
    }

    /// Takes reading `now`: the first condition that has held for long enough (and the
    /// reading's CPU percent, for the record), if any may fire now. Firing restarts every
    /// condition's hold.
    pub fn update(&mut self, rules: &Rules, now: Usage) -> Option<(Condition, Option<f64>)> {
        let before = self.last.take();
        let cpu = before.as_ref().map(|b| now.cpu_percent_since(b));
        let t = now.at;
        let seen = *self.seen.get_or_insert(t);
        let mut ready = None;
        for (i, c) in rules.conditions.iter().enumerate() {
            let since = &mut self.since[i];
            match c.holds(&now, before.as_ref()) {
                Some(true) => {
                    let start = *since.get_or_insert_with(|| c.began(&now, before.as_ref()));
                    if ready.is_none() && self.long_enough(c, rules, start, seen, t) {
                        ready = Some(*c);
                    }
                }
                Some(false) => *since = None,
                // Unknown (the first CPU reading): neither holding nor broken.
                None => {}
            }
        }
        self.last = Some(now);
        let cooling = self
            .fired
            .is_some_and(|f| t.saturating_duration_since(f) < rules.cooldown);
        let fire = ready.filter(|_| !cooling)?;
        self.fired = Some(t);
        self.since.iter_mut().for_each(|s| *s = None);
        Some((fire, cpu))
    }

    /// When it would next fire if every condition holding now goes on holding (the poll
    /// to make then: a trigger fires within one interval of its condition holding for the
    /// hold, not up to two); `None` if none holds.
    pub fn deadline(&self, rules: &Rules) -> Option<Instant> {
        let cooled = self.fired.map(|f| f + rules.cooldown);
        let due = rules
            .conditions
            .iter()
            .zip(&self.since)
            .filter_map(|(c, since)| match c {
                Condition::Every(period) => Some(self.fired.or(self.seen)? + *period),
                _ => Some((*since)? + rules.hold),
            })
            .min()?;
        Some(cooled.map_or(due, |c| c.max(due)))
    }

    /// Whether condition `c`, holding since `start`, may fire at `t`.
    fn long_enough(
        &self,
        c: &Condition,
        rules: &Rules,
        start: Instant,
        seen: Instant,
        t: Instant,
    ) -> bool {
        match c {
            Condition::Every(period) => {
                let from = self.fired.unwrap_or(seen);
                // The first timed dump at once, then one a period.
                self.fired.is_none() || t.saturating_duration_since(from) >= *period
            }
            _ => t.saturating_duration_since(start) >= rules.hold,
        }
    }

    /// The last reading, if any.
    pub fn last(&self) -> Option<&Usage> {
        self.last.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(at: Instant, threads: u64, cpu_ticks: u64) -> Usage {
        Usage {
            at,
            name: "t".into(),
            start: 1,
            pgid: 1,
            cpu_ticks,
            commit: 0,
            threads,
            fds: Some(3),
        }
    }

    #[test]
    fn a_condition_fires_once_held_for_the_hold_then_cools_down() {
        let rules = Rules {
            conditions: vec![Condition::ThreadsAtLeast(5)],
            hold: Duration::from_secs(2),
            cooldown: Duration::from_secs(5),
            count: None,
        };
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut w = Watch::new(&rules);
        assert!(w.update(&rules, usage(at(0), 1, 0)).is_none());
        assert!(w.update(&rules, usage(at(1), 5, 0)).is_none(), "held 0 s");
        assert!(w.update(&rules, usage(at(2), 5, 0)).is_none(), "held 1 s");
        assert!(w.update(&rules, usage(at(3), 5, 0)).is_some(), "held 2 s");
        // Held again for 2 s, but cooling down until 8.
        for s in 4..8 {
            assert!(w.update(&rules, usage(at(s), 5, 0)).is_none(), "{s}");
        }
        assert!(w.update(&rules, usage(at(8), 5, 0)).is_some());
        // A break restarts the hold.
        assert!(w.update(&rules, usage(at(14), 1, 0)).is_none());
        assert!(w.update(&rules, usage(at(15), 5, 0)).is_none());
        assert!(w.update(&rules, usage(at(17), 5, 0)).is_some());
    }

    #[test]
    fn cpu_needs_two_readings() {
        let rules = Rules {
            conditions: vec![Condition::CpuAtLeast(50.0)],
            hold: Duration::ZERO,
            ..Rules::default()
        };
        let t0 = Instant::now();
        let mut w = Watch::new(&rules);
        let hz = pss_sys::procfs::ticks_in(Duration::from_secs(1));
        assert!(w.update(&rules, usage(t0, 1, 0)).is_none());
        let (c, cpu) = w
            .update(&rules, usage(t0 + Duration::from_secs(1), 1, hz))
            .unwrap();
        assert_eq!(c, Condition::CpuAtLeast(50.0));
        assert!((cpu.unwrap() - 100.0).abs() < 1e-6);
    }
}
