//! Stacks of the test bed's own parked threads, checked against the chain the test bed
//! is known to park in — no debugger needed, so it runs everywhere, the arm64 emulator too
//! (`scripts/test-aarch64.sh`): read one at a time (blocked threads not stopped; what a
//! walk cannot finish from the `syscall` file — arm64's link register — read again
//! stopped alone) and all together, symbols only and with debug information.

use pss_stack::{LiveCapture, StackEnd, Walker};
use pss_testbed::harness::{wait_all_in_read, Target};

fn exe() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_pss-testbed"))
}

/// The functions of a parked thread's chain, innermost first, as the test bed runs them.
const PARKED: [&str; 3] = [
    "pss_testbed::park::raw_read",
    "pss_testbed::park::read_byte_checked",
    "pss_testbed::park::park",
];

#[test]
fn parked_threads_are_walked_to_their_start_read_either_way() {
    let mut t = Target::spawn(exe(), &["threads", "2"]);
    wait_all_in_read(t.pid);
    let parked = t.parked_tids();
    for (consistent, walker) in [
        (false, Walker::new()),
        (false, Walker::symbols_only()),
        (true, Walker::new()),
    ] {
        let mut walker = walker;
        let how = LiveCapture {
            consistent,
            ..LiveCapture::default()
        };
        let (_, stacks) = pss_stack::capture_stacks(t.pid, &how, &mut walker).expect("stacks");
        for tid in &parked {
            let s = stacks
                .threads
                .iter()
                .find(|s| s.thread_id == *tid as u32)
                .expect("every parked thread");
            let names: Vec<&str> = s
                .frames
                .iter()
                .filter(|f| !f.inlined)
                .filter_map(|f| f.function.as_deref())
                .collect();
            let at = names
                .iter()
                .position(|n| *n == PARKED[0])
                .unwrap_or_else(|| panic!("thread {tid}: {names:?}"));
            assert_eq!(
                &names[at..at + 3],
                PARKED,
                "thread {tid} (consistent {consistent})"
            );
            assert_eq!(s.end, StackEnd::Complete, "thread {tid}: {names:?}");
        }
        let main = stacks
            .threads
            .iter()
            .find(|s| s.thread_id == t.pid as u32)
            .unwrap();
        assert!(
            main.frames
                .iter()
                .any(|f| f.function.as_deref() == Some("pss_testbed::main")),
            "{:?}",
            main.frames
        );
    }
    t.assert_unharmed();
    t.wake_parked_and_check();
}
