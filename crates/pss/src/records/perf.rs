use std::time::Duration;

/// The cost of one capture phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseCost {
    /// Cycles (the time-stamp counter on x86_64, the virtual counter on aarch64).
    pub cycles: u64,
    /// Wall-clock time.
    pub wall: Duration,
}

/// `PSS_PERFORMANCE_COUNTERS`: the cost of each phase, when `CREATE_MEASURE_PERFORMANCE`
/// was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerformanceCounters {
    /// `TotalCycleCount` / `TotalWallClockPeriod`.
    pub total: PhaseCost,
    /// `VaCloneCycleCount` / `VaCloneWallClockPeriod`.
    pub va_clone: PhaseCost,
    /// `VaSpaceCycleCount` / `VaSpaceWallClockPeriod`.
    pub va_space: PhaseCost,
    /// `AuxPagesCycleCount` / `AuxPagesWallClockPeriod`.
    pub aux_pages: PhaseCost,
    /// `HandlesCycleCount` / `HandlesWallClockPeriod`.
    pub handles: PhaseCost,
    /// `ThreadsCycleCount` / `ThreadsWallClockPeriod`: the pause plus per-thread reads.
    pub threads: PhaseCost,
    /// Linux addition: how long the target was stopped.
    pub pause: Duration,
}
