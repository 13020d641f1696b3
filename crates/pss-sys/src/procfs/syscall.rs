//! `/proc/PID/task/TID/syscall`: what a thread blocked in the kernel is doing, read without
//! stopping it — `NR ARG1…ARG6 SP PC` while in a syscall, `-1 SP PC` when blocked outside
//! one, `running` otherwise.

use super::hex_u64;

/// One thread's `syscall` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSyscall {
    /// The syscall number and its six arguments, if it is in one.
    pub call: Option<(i64, [u64; 6])>,
    /// Its stack pointer.
    pub sp: u64,
    /// Its instruction pointer.
    pub pc: u64,
}

/// Parses a `syscall` file; `None` for a running thread or a malformed line.
pub fn parse(text: &[u8]) -> Option<TaskSyscall> {
    let mut fields = text
        .split(|c| c.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    let first = fields.next()?;
    let number = |f: &[u8]| -> Option<u64> { hex_u64(f.strip_prefix(b"0x")?) };
    let nr: i64 = std::str::from_utf8(first).ok()?.parse().ok()?;
    let rest: Vec<u64> = fields.map(number).collect::<Option<_>>()?;
    match (nr, rest.len()) {
        (-1, 2) => Some(TaskSyscall {
            call: None,
            sp: rest[0],
            pc: rest[1],
        }),
        (nr, 8) if nr >= 0 => Some(TaskSyscall {
            call: Some((nr, rest[..6].try_into().ok()?)),
            sp: rest[6],
            pc: rest[7],
        }),
        _ => None,
    }
}

/// Reads and parses thread `tid`'s `syscall` file (in process `pid`).
pub fn read(pid: i32, tid: i32) -> Option<TaskSyscall> {
    let mut buf = Vec::with_capacity(160);
    super::read_at(
        &rustix::fs::CWD,
        &format!("/proc/{pid}/task/{tid}/syscall"),
        &mut buf,
    )
    .ok()?;
    parse(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_a_syscall_outside_one_and_running() {
        let line =
            b"61 0xffffffffffffffff 0x7ffd1 0x40000000 0x0 0x0 0x0 0x7ffc8a2b1e28 0x7f3a1b2c3d4e\n";
        let s = parse(line).unwrap();
        assert_eq!(
            s.call,
            Some((61, [u64::MAX, 0x7ffd1, 0x4000_0000, 0, 0, 0]))
        );
        assert_eq!((s.sp, s.pc), (0x7ffc8a2b1e28, 0x7f3a1b2c3d4e));
        let s = parse(b"-1 0x7ffc8a2b1e28 0x7f3a1b2c3d4e\n").unwrap();
        assert_eq!((s.call, s.sp), (None, 0x7ffc8a2b1e28));
        assert_eq!(parse(b"running\n"), None);
        assert_eq!(parse(b"0 0x1 0x2\n"), None);
    }
}
