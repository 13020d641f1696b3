//! Scheduling facts of other tasks.

use rustix::process::Pid;

/// The first 64 bits of the CPU affinity of `tid` (0 if it cannot be read).
pub fn affinity_mask(tid: i32) -> u64 {
    let Some(pid) = Pid::from_raw(tid) else {
        return 0;
    };
    match rustix::thread::sched_getaffinity(Some(pid)) {
        Ok(set) => (0..64)
            .filter(|&i| set.is_set(i))
            .fold(0u64, |m, i| m | (1 << i)),
        Err(_) => 0,
    }
}
