use std::time::Duration;

/// The cost of one capture phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseCost {
    /// Cycles (the time-stamp counter on x86_64, the virtual counter on aarch64).
    pub cycles: u64,
    /// Wall-clock time.
    pub wall: Duration,
}

impl std::ops::Sub for PhaseCost {
    type Output = PhaseCost;

    /// What is left of a phase once a part of it is taken out (never below zero).
    fn sub(self, other: PhaseCost) -> PhaseCost {
        PhaseCost {
            cycles: self.cycles.saturating_sub(other.cycles),
            wall: self.wall.saturating_sub(other.wall),
        }
    }
}

impl std::ops::Add for PhaseCost {
    type Output = PhaseCost;

    /// Two parts of one phase, together.
    fn add(self, other: PhaseCost) -> PhaseCost {
        PhaseCost {
            cycles: self.cycles.wrapping_add(other.cycles),
            wall: self.wall + other.wall,
        }
    }
}

/// `PSS_PERFORMANCE_COUNTERS`: the cost of each phase, when `CREATE_MEASURE_PERFORMANCE`
/// was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerformanceCounters {
    /// `TotalCycleCount` / `TotalWallClockPeriod`.
    pub total: PhaseCost,
    /// `VaCloneCycleCount` / `VaCloneWallClockPeriod`: making the clone during the pause
    /// (with the ranges copied for it) and adopting it afterwards.
    pub va_clone: PhaseCost,
    /// `VaSpaceCycleCount` / `VaSpaceWallClockPeriod`.
    pub va_space: PhaseCost,
    /// `AuxPagesCycleCount` / `AuxPagesWallClockPeriod`: copying the auxiliary pages.
    pub aux_pages: PhaseCost,
    /// `HandlesCycleCount` / `HandlesWallClockPeriod`.
    pub handles: PhaseCost,
    /// `ThreadsCycleCount` / `ThreadsWallClockPeriod`: stopping the threads, reading their
    /// registers, and their per-thread facts afterwards.
    pub threads: PhaseCost,
    /// Linux addition: how long the target was stopped.
    pub pause: Duration,
}
