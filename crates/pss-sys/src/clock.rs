//! Clocks: boot time, clock ticks, cycle counters.

use std::time::{Duration, SystemTime};

use rustix::time::{clock_gettime, ClockId};

/// The wall-clock time the system booted, from `CLOCK_REALTIME − CLOCK_BOOTTIME`.
/// `/proc` start times count from here.
pub fn boot_time() -> SystemTime {
    let up = clock_gettime(ClockId::Boottime);
    let up = Duration::new(up.tv_sec as u64, up.tv_nsec as u32);
    SystemTime::now() - up
}

/// `sysconf(_SC_CLK_TCK)`, the unit of `/proc` CPU times.
pub fn ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// Converts `/proc` clock ticks to a duration.
pub fn ticks(t: u64, per_second: u64) -> Duration {
    let per_second = per_second.max(1);
    Duration::from_secs(t / per_second)
        + Duration::from_nanos((t % per_second) * 1_000_000_000 / per_second)
}

/// A cycle counter for the performance counters: the TSC on x86_64, `cntvct_el0` on aarch64.
pub fn cycles() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC has no memory effects and is available on every x86_64 CPU.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(target_arch = "aarch64")]
    {
        let v: u64;
        // SAFETY: reading the virtual counter is permitted at EL0 on Linux and has no side
        // effects.
        unsafe { core::arch::asm!("mrs {}, cntvct_el0", out(reg) v) };
        v
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        0
    }
}

/// Measures a phase: wall time and cycles.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    start: std::time::Instant,
    cycles: u64,
}

impl Stopwatch {
    /// Starts measuring.
    pub fn start() -> Stopwatch {
        Stopwatch {
            start: std::time::Instant::now(),
            cycles: cycles(),
        }
    }

    /// The elapsed (wall, cycles).
    pub fn elapsed(&self) -> (Duration, u64) {
        (self.start.elapsed(), cycles().wrapping_sub(self.cycles))
    }
}
