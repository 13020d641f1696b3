//! Go's stacks, as Go's own traceback reads them. A Go program runs goroutines on small
//! stacks in its heap and its scheduler on each thread's `g0` stack, switching between the
//! two in assembly that call-frame information cannot describe:
//!
//! - `runtime.goexit` is the outermost frame of every goroutine, `runtime.mstart` and
//!   `runtime.rt0_go` of every thread's `g0`: the walk is complete there;
//! - `runtime.mcall` switches a goroutine away for good (it parks, the thread schedules
//!   another): on `g0` it is the outermost frame;
//! - `runtime.systemstack` runs a function on `g0` for the goroutine that is still the
//!   thread's: the walk follows it back onto the goroutine's stack.

use std::ops::Range;

use object::{Object, ObjectSymbol};

/// What a Go runtime function means for a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GoFrame {
    /// The outermost frame of a stack.
    Outermost,
    /// A switch from a goroutine's stack to `g0` that the walk follows back.
    SystemStack,
}

/// The Go runtime functions of one module, by stated address.
#[derive(Debug, Default)]
pub(crate) struct GoRuntime {
    funcs: Vec<(Range<u64>, GoFrame)>,
}

impl GoRuntime {
    /// The runtime functions of `elf` if it is a Go program (it has a `.gopclntab` or
    /// `.go.buildinfo` section) whose symbol table names them.
    pub fn of<'d, R: object::ReadRef<'d>>(elf: &object::File<'d, R>) -> Option<GoRuntime> {
        let is_go = [".gopclntab", ".go.buildinfo", ".data.rel.ro.gopclntab"]
            .iter()
            .any(|n| elf.section_by_name(n).is_some());
        if !is_go {
            return None;
        }
        let funcs: Vec<(Range<u64>, GoFrame)> = elf
            .symbols()
            .filter_map(|s| {
                let kind = match s.name().ok()? {
                    "runtime.goexit"
                    | "runtime.goexit.abi0"
                    | "runtime.mstart"
                    | "runtime.mstart.abi0"
                    | "runtime.rt0_go"
                    | "runtime.rt0_go.abi0"
                    | "runtime.mcall"
                    | "runtime.mcall.abi0" => GoFrame::Outermost,
                    "runtime.systemstack" | "runtime.systemstack.abi0" => GoFrame::SystemStack,
                    _ => return None,
                };
                let size = s.size().max(1);
                Some((s.address()..s.address() + size, kind))
            })
            .collect();
        (!funcs.is_empty()).then_some(GoRuntime { funcs })
    }

    /// What the function at stated address `svma` means, if it is one of those.
    pub fn at(&self, svma: u64) -> Option<GoFrame> {
        self.funcs
            .iter()
            .find(|(r, _)| r.contains(&svma))
            .map(|(_, k)| *k)
    }
}
