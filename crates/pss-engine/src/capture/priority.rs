//! Linux scheduling → Windows priority classes and levels (documented in `docs/mapping.md`).

use pss_types::records::PriorityClass;

const SCHED_FIFO: u64 = 1;
const SCHED_RR: u64 = 2;
const SCHED_IDLE: u64 = 5;

/// The priority class of a task with this policy and nice value.
pub fn class(policy: u64, nice: i64) -> PriorityClass {
    match policy {
        SCHED_FIFO | SCHED_RR => PriorityClass::Realtime,
        SCHED_IDLE => PriorityClass::Idle,
        _ => match nice {
            i64::MIN..=-15 => PriorityClass::High,
            -14..=-1 => PriorityClass::AboveNormal,
            0 => PriorityClass::Normal,
            1..=14 => PriorityClass::BelowNormal,
            _ => PriorityClass::Idle,
        },
    }
}

/// The Windows priority level (1–31) of a task: its class's base level, or 16–31 by
/// real-time priority for `SCHED_FIFO`/`SCHED_RR`.
pub fn level(policy: u64, rt_priority: u64, nice: i64) -> i32 {
    match policy {
        SCHED_FIFO | SCHED_RR => 16 + (rt_priority.min(99) * 15 / 99) as i32,
        _ => class(policy, nice).base_priority(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping() {
        assert_eq!(class(0, 0), PriorityClass::Normal);
        assert_eq!(class(0, 19), PriorityClass::Idle);
        assert_eq!(class(0, 5), PriorityClass::BelowNormal);
        assert_eq!(class(0, -5), PriorityClass::AboveNormal);
        assert_eq!(class(0, -20), PriorityClass::High);
        assert_eq!(class(SCHED_FIFO, 0), PriorityClass::Realtime);
        assert_eq!(level(0, 0, 0), 8);
        assert_eq!(level(SCHED_RR, 99, 0), 31);
        assert_eq!(level(SCHED_FIFO, 1, 0), 16);
    }
}
