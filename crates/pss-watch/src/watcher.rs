//! Watching: each poll lists the targets, reads each ([`Usage`]), steps its [`Watch`], and
//! says what happened ([`Event`]).

use std::collections::HashMap;
use std::time::SystemTime;

use super::rules::{Condition, Rules, Watch};
use super::targets::Targets;
use super::usage::Usage;

/// What a poll saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A process came under watch.
    Started {
        /// The process.
        pid: i32,
        /// Its name.
        name: String,
    },
    /// A condition held long enough: dump now.
    Trigger {
        /// The process.
        pid: i32,
        /// The condition.
        condition: Condition,
        /// When.
        time: SystemTime,
        /// The reading that fired it.
        usage: Usage,
        /// CPU over the last interval, in percent of one CPU (none on a first reading).
        cpu_percent: Option<f64>,
    },
    /// A watched process is gone.
    Exited {
        /// The process.
        pid: i32,
        /// Its name.
        name: String,
    },
    /// The watch is over: every trigger asked for has fired, or no target is left (and
    /// none can come).
    Finished {
        /// Why.
        why: String,
    },
}

/// Watches processes for rules.
pub struct Watcher {
    targets: Targets,
    rules: Rules,
    /// By pid: the process's start time and its watch.
    watches: HashMap<i32, (u64, Watch)>,
    fired: u64,
    finished: bool,
}

impl Watcher {
    /// A watch of `targets` for `rules`, nothing read yet.
    pub fn new(targets: Targets, rules: Rules) -> Watcher {
        Watcher {
            targets,
            rules,
            watches: HashMap::new(),
            fired: 0,
            finished: false,
        }
    }

    /// Whether the watch is over (a [`Event::Finished`] was given).
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// How many triggers fired.
    pub fn fired(&self) -> u64 {
        self.fired
    }

    /// The rules.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// When to poll next at the latest for a trigger to fire on time: the earliest moment a
    /// condition now holding will have held long enough (a loop polling every interval
    /// also polls then). `None` if no condition holds.
    pub fn deadline(&self) -> Option<std::time::Instant> {
        self.watches
            .values()
            .filter_map(|(_, w)| w.deadline(&self.rules))
            .min()
    }

    /// Reads every target once and steps its watch: what happened, in order.
    pub fn poll(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        if self.finished {
            return events;
        }
        let pids = self.targets.list();
        let readings: Vec<(i32, Usage)> = pids
            .iter()
            .filter_map(|&p| Some((p, Usage::read(p)?)))
            .collect();
        self.forget_gone(&readings, &mut events);
        for (pid, usage) in readings {
            self.step(pid, usage, &mut events);
            if self.finished {
                return events;
            }
        }
        if self.watches.is_empty() && !self.targets.open_ended() {
            self.finish("no process to watch is left", &mut events);
        }
        events
    }

    /// Drops the watches of processes not read this time (gone, or a new process under an
    /// old pid).
    fn forget_gone(&mut self, readings: &[(i32, Usage)], events: &mut Vec<Event>) {
        let gone: Vec<i32> = self
            .watches
            .iter()
            .filter(|(pid, (start, _))| {
                !readings.iter().any(|(p, u)| p == *pid && u.start == *start)
            })
            .map(|(pid, _)| *pid)
            .collect();
        for pid in gone {
            if let Some((_, w)) = self.watches.remove(&pid) {
                let name = w.last().map(|u| u.name.clone()).unwrap_or_default();
                events.push(Event::Exited { pid, name });
            }
        }
    }

    /// Steps process `pid`'s watch with `usage`.
    fn step(&mut self, pid: i32, usage: Usage, events: &mut Vec<Event>) {
        if !self.watches.contains_key(&pid) {
            events.push(Event::Started {
                pid,
                name: usage.name.clone(),
            });
            self.watches
                .insert(pid, (usage.start, Watch::new(&self.rules)));
        }
        let (_, watch) = self.watches.get_mut(&pid).expect("just inserted");
        let kept = usage.clone();
        let Some((condition, cpu_percent)) = watch.update(&self.rules, usage) else {
            return;
        };
        self.fired += 1;
        events.push(Event::Trigger {
            pid,
            condition,
            time: SystemTime::now(),
            usage: kept,
            cpu_percent,
        });
        if self.rules.count.is_some_and(|n| self.fired >= n) {
            self.finish(
                &format!("{} trigger(s) fired, as many as asked", self.fired),
                events,
            );
        }
    }

    fn finish(&mut self, why: &str, events: &mut Vec<Event>) {
        self.finished = true;
        events.push(Event::Finished { why: why.into() });
    }
}
