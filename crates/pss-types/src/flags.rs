//! Every PSS enumeration and flag set, with its Windows value (spec §4, §5.3).
//!
//! The numeric values are the contract shared with `processsnapshot.h`; the Rust names drop
//! the `PSS_CAPTURE_`/`PSS_QUERY_`/… prefixes.

use bitflags::bitflags;

bitflags! {
    /// `PSS_CAPTURE_FLAGS`: what to capture, plus creation options (spec §4.1).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct CaptureFlags: u32 {
        /// `PSS_CAPTURE_VA_CLONE`: a copy-on-write clone of the whole address space.
        const VA_CLONE = 0x0000_0001;
        /// `PSS_CAPTURE_RESERVED_00000002`, which this project names
        /// `PSS_CAPTURE_AUXILIARY_PAGES`: copies of each thread's stack and TLS page.
        const AUXILIARY_PAGES = 0x0000_0002;
        /// `PSS_CAPTURE_HANDLES`: the fd table, numbers only.
        const HANDLES = 0x0000_0004;
        /// `PSS_CAPTURE_HANDLE_NAME_INFORMATION`: what each fd refers to.
        const HANDLE_NAME_INFORMATION = 0x0000_0008;
        /// `PSS_CAPTURE_HANDLE_BASIC_INFORMATION`: attributes and access of each fd.
        const HANDLE_BASIC_INFORMATION = 0x0000_0010;
        /// `PSS_CAPTURE_HANDLE_TYPE_SPECIFIC_INFORMATION`: per-kind detail (pidfd, eventfd, memfd…).
        const HANDLE_TYPE_SPECIFIC_INFORMATION = 0x0000_0020;
        /// `PSS_CAPTURE_HANDLE_TRACE`: accepted, yields nothing (Linux keeps no record of
        /// fd operations; the trace query answers not found, as on Windows for a process
        /// without handle tracing enabled).
        const HANDLE_TRACE = 0x0000_0040;
        /// `PSS_CAPTURE_THREADS`: every task of the process, frozen together.
        const THREADS = 0x0000_0080;
        /// `PSS_CAPTURE_THREAD_CONTEXT`: each thread's registers, per `ThreadContextFlags`.
        const THREAD_CONTEXT = 0x0000_0100;
        /// `PSS_CAPTURE_THREAD_CONTEXT_EXTENDED`: the full XSAVE area as well.
        const THREAD_CONTEXT_EXTENDED = 0x0000_0200;
        /// `PSS_CAPTURE_RESERVED_00000400`.
        const RESERVED_00000400 = 0x0000_0400;
        /// `PSS_CAPTURE_VA_SPACE`: the address-space layout, one record per region.
        const VA_SPACE = 0x0000_0800;
        /// `PSS_CAPTURE_VA_SPACE_SECTION_INFORMATION`: file names and image facts of regions.
        const VA_SPACE_SECTION_INFORMATION = 0x0000_1000;
        /// `PSS_CAPTURE_IPT_TRACE`: accepted, yields nothing (no Intel Processor Trace is
        /// captured).
        const IPT_TRACE = 0x0000_2000;
        /// `PSS_CAPTURE_RESERVED_00004000`.
        const RESERVED_00004000 = 0x0000_4000;
        /// `PSS_CREATE_BREAKAWAY_OPTIONAL`.
        const CREATE_BREAKAWAY_OPTIONAL = 0x0400_0000;
        /// `PSS_CREATE_BREAKAWAY`.
        const CREATE_BREAKAWAY = 0x0800_0000;
        /// `PSS_CREATE_FORCE_BREAKAWAY`.
        const CREATE_FORCE_BREAKAWAY = 0x1000_0000;
        /// `PSS_CREATE_USE_VM_ALLOCATIONS`: accepted; the Rust library always uses its own heap.
        const CREATE_USE_VM_ALLOCATIONS = 0x2000_0000;
        /// `PSS_CREATE_MEASURE_PERFORMANCE`: time each phase of the capture.
        const CREATE_MEASURE_PERFORMANCE = 0x4000_0000;
        /// `PSS_CREATE_RELEASE_SECTION`: no effect without a clone.
        const CREATE_RELEASE_SECTION = 0x8000_0000;
    }
}

impl CaptureFlags {
    /// The capture flags this build implements. `--all` in the CLI means exactly these.
    pub const SUPPORTED: CaptureFlags = CaptureFlags::VA_CLONE
        .union(CaptureFlags::AUXILIARY_PAGES)
        .union(CaptureFlags::HANDLES)
        .union(CaptureFlags::HANDLE_NAME_INFORMATION)
        .union(CaptureFlags::HANDLE_BASIC_INFORMATION)
        .union(CaptureFlags::HANDLE_TYPE_SPECIFIC_INFORMATION)
        .union(CaptureFlags::THREADS)
        .union(CaptureFlags::THREAD_CONTEXT)
        .union(CaptureFlags::THREAD_CONTEXT_EXTENDED)
        .union(CaptureFlags::VA_SPACE)
        .union(CaptureFlags::VA_SPACE_SECTION_INFORMATION)
        .union(CaptureFlags::CREATE_USE_VM_ALLOCATIONS)
        .union(CaptureFlags::CREATE_MEASURE_PERFORMANCE)
        .union(CaptureFlags::CREATE_RELEASE_SECTION)
        .union(CaptureFlags::CREATE_BREAKAWAY_OPTIONAL)
        .union(CaptureFlags::CREATE_BREAKAWAY);

    /// Flags a capture accepts but records nothing for (Windows code passes them
    /// routinely): handle and IPT tracing have no Linux source. Each gives the snapshot a
    /// warning saying so; not in [`CaptureFlags::SUPPORTED`], so `--all` leaves them out.
    pub const WITHOUT_DATA: CaptureFlags =
        CaptureFlags::HANDLE_TRACE.union(CaptureFlags::IPT_TRACE);

    /// The name of one flag without its `PSS_CAPTURE_`/`PSS_CREATE_` prefix, lowercase with
    /// hyphens (`va-space-section-information`), as the CLI spells it. `None` for unknown bits.
    pub fn cli_name(self) -> Option<&'static str> {
        FLAG_NAMES.iter().find(|(f, _)| *f == self).map(|(_, n)| *n)
    }

    /// Parses one CLI flag name (see [`CaptureFlags::cli_name`]).
    pub fn from_cli_name(name: &str) -> Option<CaptureFlags> {
        FLAG_NAMES.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
    }

    /// Every flag with its CLI name, in bit order.
    pub fn all_cli_names() -> impl Iterator<Item = (CaptureFlags, &'static str)> {
        FLAG_NAMES.iter().copied()
    }
}

const FLAG_NAMES: &[(CaptureFlags, &str)] = &[
    (CaptureFlags::VA_CLONE, "va-clone"),
    (CaptureFlags::AUXILIARY_PAGES, "auxiliary-pages"),
    (CaptureFlags::HANDLES, "handles"),
    (
        CaptureFlags::HANDLE_NAME_INFORMATION,
        "handle-name-information",
    ),
    (
        CaptureFlags::HANDLE_BASIC_INFORMATION,
        "handle-basic-information",
    ),
    (
        CaptureFlags::HANDLE_TYPE_SPECIFIC_INFORMATION,
        "handle-type-specific-information",
    ),
    (CaptureFlags::HANDLE_TRACE, "handle-trace"),
    (CaptureFlags::THREADS, "threads"),
    (CaptureFlags::THREAD_CONTEXT, "thread-context"),
    (
        CaptureFlags::THREAD_CONTEXT_EXTENDED,
        "thread-context-extended",
    ),
    (CaptureFlags::VA_SPACE, "va-space"),
    (
        CaptureFlags::VA_SPACE_SECTION_INFORMATION,
        "va-space-section-information",
    ),
    (CaptureFlags::IPT_TRACE, "ipt-trace"),
    (
        CaptureFlags::CREATE_BREAKAWAY_OPTIONAL,
        "create-breakaway-optional",
    ),
    (CaptureFlags::CREATE_BREAKAWAY, "create-breakaway"),
    (
        CaptureFlags::CREATE_FORCE_BREAKAWAY,
        "create-force-breakaway",
    ),
    (
        CaptureFlags::CREATE_USE_VM_ALLOCATIONS,
        "create-use-vm-allocations",
    ),
    (
        CaptureFlags::CREATE_MEASURE_PERFORMANCE,
        "create-measure-performance",
    ),
    (
        CaptureFlags::CREATE_RELEASE_SECTION,
        "create-release-section",
    ),
];

bitflags! {
    /// `CONTEXT.ContextFlags` for AMD64 (spec §5.3), passed as `ThreadContextFlags`: which
    /// register groups are captured for each thread.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct ContextFlags: u32 {
        /// `CONTEXT_AMD64`, the architecture bit every other flag includes.
        const AMD64 = 0x0010_0000;
        /// `CONTEXT_CONTROL`: rip, rsp, rbp, eflags, cs, ss.
        const CONTROL = 0x0010_0001;
        /// `CONTEXT_INTEGER`: the general-purpose registers.
        const INTEGER = 0x0010_0002;
        /// `CONTEXT_SEGMENTS`: ds, es, fs, gs (and on Linux fs_base, gs_base).
        const SEGMENTS = 0x0010_0004;
        /// `CONTEXT_FLOATING_POINT`: the x87/SSE (FXSAVE) state.
        const FLOATING_POINT = 0x0010_0008;
        /// `CONTEXT_DEBUG_REGISTERS`: dr0–dr3, dr6, dr7.
        const DEBUG_REGISTERS = 0x0010_0010;
        /// `CONTEXT_XSTATE`: the extended (AVX…) state.
        const XSTATE = 0x0010_0040;
        /// `CONTEXT_FULL` = CONTROL | INTEGER | FLOATING_POINT.
        const FULL = 0x0010_000B;
        /// `CONTEXT_ALL` = FULL | SEGMENTS | DEBUG_REGISTERS.
        const ALL = 0x0010_001F;
    }
}

impl ContextFlags {
    /// Whether the group `group` (one of the single-group constants) is requested.
    pub fn wants(self, group: ContextFlags) -> bool {
        self.contains(group)
    }

    /// The CLI names of the register groups, lowercase, as `--context-flags` spells them.
    pub fn from_cli_name(name: &str) -> Option<ContextFlags> {
        Some(match name {
            "control" => ContextFlags::CONTROL,
            "integer" => ContextFlags::INTEGER,
            "segments" => ContextFlags::SEGMENTS,
            "floating-point" => ContextFlags::FLOATING_POINT,
            "debug-registers" => ContextFlags::DEBUG_REGISTERS,
            "xstate" => ContextFlags::XSTATE,
            "full" => ContextFlags::FULL,
            "all" => ContextFlags::ALL,
            _ => return None,
        })
    }
}

/// Declares a C-like enum with explicit Windows values and a checked conversion from `i32`.
macro_rules! windows_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $val:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum $name { $($(#[$vm])* $var = $val),* }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var),*];

            /// The Windows numeric value.
            pub fn value(self) -> i32 { self as i32 }

            /// The enumerator with Windows value `v`, if there is one.
            pub fn from_value(v: i32) -> Option<$name> {
                match v { $($val => Some($name::$var),)* _ => None }
            }
        }
    };
}

windows_enum! {
    /// `PSS_QUERY_INFORMATION_CLASS` (spec §4.2).
    QueryClass {
        /// `PSS_QUERY_PROCESS_INFORMATION`.
        ProcessInformation = 0,
        /// `PSS_QUERY_VA_CLONE_INFORMATION`.
        VaCloneInformation = 1,
        /// `PSS_QUERY_AUXILIARY_PAGES_INFORMATION`.
        AuxiliaryPagesInformation = 2,
        /// `PSS_QUERY_VA_SPACE_INFORMATION`.
        VaSpaceInformation = 3,
        /// `PSS_QUERY_HANDLE_INFORMATION`.
        HandleInformation = 4,
        /// `PSS_QUERY_THREAD_INFORMATION`.
        ThreadInformation = 5,
        /// `PSS_QUERY_HANDLE_TRACE_INFORMATION`.
        HandleTraceInformation = 6,
        /// `PSS_QUERY_PERFORMANCE_COUNTERS`.
        PerformanceCounters = 7,
    }
}

windows_enum! {
    /// `PSS_WALK_INFORMATION_CLASS` (spec §4.3).
    WalkClass {
        /// `PSS_WALK_AUXILIARY_PAGES`.
        AuxiliaryPages = 0,
        /// `PSS_WALK_VA_SPACE`.
        VaSpace = 1,
        /// `PSS_WALK_HANDLES`.
        Handles = 2,
        /// `PSS_WALK_THREADS`.
        Threads = 3,
        /// `PSS_WALK_THREAD_NAME`: thread names (Linux `comm`).
        ThreadName = 4,
    }
}

windows_enum! {
    /// `PSS_OBJECT_TYPE` (spec §4.6): what kind of kernel object a handle refers to.
    ObjectType {
        /// `PSS_OBJECT_TYPE_UNKNOWN`: every fd kind without a Windows counterpart.
        Unknown = 0,
        /// `PSS_OBJECT_TYPE_PROCESS`: a process pidfd.
        Process = 1,
        /// `PSS_OBJECT_TYPE_THREAD`: a thread pidfd (`PIDFD_THREAD`).
        Thread = 2,
        /// `PSS_OBJECT_TYPE_MUTANT`: never produced on Linux.
        Mutant = 3,
        /// `PSS_OBJECT_TYPE_EVENT`: an eventfd.
        Event = 4,
        /// `PSS_OBJECT_TYPE_SECTION`: a memfd or a file in a tmpfs shared-memory mount.
        Section = 5,
        /// `PSS_OBJECT_TYPE_SEMAPHORE`: an eventfd made with `EFD_SEMAPHORE`.
        Semaphore = 6,
    }
}

windows_enum! {
    /// `PSS_DUPLICATE_FLAGS` (spec §4.4).
    DuplicateFlags {
        /// `PSS_DUPLICATE_NONE`.
        None = 0,
        /// `PSS_DUPLICATE_CLOSE_SOURCE`.
        CloseSource = 1,
    }
}

bitflags! {
    /// `PSS_HANDLE_FLAGS` (spec §4.5): which parts of a handle entry are valid.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct HandleFlags: u32 {
        /// `PSS_HANDLE_HAVE_TYPE`.
        const HAVE_TYPE = 0x01;
        /// `PSS_HANDLE_HAVE_NAME`.
        const HAVE_NAME = 0x02;
        /// `PSS_HANDLE_HAVE_BASIC_INFORMATION`.
        const HAVE_BASIC_INFORMATION = 0x04;
        /// `PSS_HANDLE_HAVE_TYPE_SPECIFIC_INFORMATION`.
        const HAVE_TYPE_SPECIFIC_INFORMATION = 0x08;
    }
}

bitflags! {
    /// `PSS_PROCESS_FLAGS` (spec §4.7).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct ProcessFlags: u32 {
        /// `PSS_PROCESS_FLAGS_PROTECTED`: never set on Linux.
        const PROTECTED = 0x01;
        /// `PSS_PROCESS_FLAGS_WOW64`: a 32-bit process on a 64-bit kernel.
        const WOW64 = 0x02;
        /// `PSS_PROCESS_FLAGS_RESERVED_03`.
        const RESERVED_03 = 0x04;
        /// `PSS_PROCESS_FLAGS_RESERVED_04`.
        const RESERVED_04 = 0x08;
        /// `PSS_PROCESS_FLAGS_FROZEN`: the process was stopped (state `T`) before the capture.
        const FROZEN = 0x10;
    }
}

bitflags! {
    /// `PSS_THREAD_FLAGS` (spec §4.8).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct ThreadFlags: u32 {
        /// `PSS_THREAD_FLAGS_TERMINATED`: the thread had exited (a zombie leader).
        const TERMINATED = 0x01;
    }
}

/// `STILL_ACTIVE`: the `ExitStatus` of a live process or thread.
pub const STILL_ACTIVE: u32 = 259;

/// `PSS_PERF_RESOLUTION`: the performance counters' wall-clock unit is the microsecond.
pub const PERF_RESOLUTION: u64 = 1_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_values() {
        assert_eq!(CaptureFlags::VA_SPACE_SECTION_INFORMATION.bits(), 0x1000);
        assert_eq!(CaptureFlags::CREATE_RELEASE_SECTION.bits(), 0x8000_0000);
        assert_eq!(QueryClass::PerformanceCounters.value(), 7);
        assert_eq!(WalkClass::ThreadName.value(), 4);
        assert_eq!(ObjectType::Semaphore.value(), 6);
        assert_eq!(ContextFlags::ALL.bits(), 0x10001F);
        assert_eq!(
            ContextFlags::FULL,
            ContextFlags::CONTROL | ContextFlags::INTEGER | ContextFlags::FLOATING_POINT
        );
        assert_eq!(QueryClass::from_value(8), None);
    }

    #[test]
    fn cli_names_round_trip() {
        for (f, n) in CaptureFlags::all_cli_names() {
            assert_eq!(CaptureFlags::from_cli_name(n), Some(f));
            assert_eq!(f.cli_name(), Some(n));
        }
        assert_eq!(
            CaptureFlags::from_cli_name("va-space-section-information"),
            Some(CaptureFlags::VA_SPACE_SECTION_INFORMATION)
        );
    }
}
