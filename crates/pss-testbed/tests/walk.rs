//! Query and walk with the Windows semantics (spec §3.4–3.10).

use std::path::Path;

use pss::{
    CaptureFlags, ContextFlags, Error, QueryClass, QueryInfo, Snapshot, Target as PssTarget,
    WalkClass, WalkEntry, WalkMarker, WalkPosition,
};
use pss_testbed::harness::Target;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss-testbed"))
}

fn snapshot() -> (Target, Snapshot) {
    let mut t = Target::spawn(exe(), &["threads", "3"]);
    let flags = CaptureFlags::THREADS
        | CaptureFlags::THREAD_CONTEXT
        | CaptureFlags::HANDLES
        | CaptureFlags::HANDLE_NAME_INFORMATION
        | CaptureFlags::VA_SPACE
        | CaptureFlags::CREATE_MEASURE_PERFORMANCE;
    let snap = Snapshot::capture(PssTarget::Pid(t.pid), flags, ContextFlags::ALL).unwrap();
    t.assert_unharmed();
    (t, snap)
}

fn id(e: &WalkEntry<'_>) -> u64 {
    match e {
        WalkEntry::VaSpace(r) => r.base_address,
        WalkEntry::Handle(h) => h.handle as u64,
        WalkEntry::Thread(t) => t.thread_id as u64,
        WalkEntry::ThreadName { thread_id, .. } => *thread_id as u64,
        WalkEntry::AuxiliaryPage(p) => p.address,
    }
}

#[test]
fn every_class_walks_to_no_more_items_with_the_queried_count() {
    let (_t, snap) = snapshot();
    let counts = [
        (WalkClass::VaSpace, QueryClass::VaSpaceInformation),
        (WalkClass::Handles, QueryClass::HandleInformation),
        (WalkClass::Threads, QueryClass::ThreadInformation),
    ];
    for (walk, query) in counts {
        let want = match snap.query(query).unwrap() {
            QueryInfo::VaSpace { region_count } => region_count,
            QueryInfo::Handles { handles_captured } => handles_captured,
            QueryInfo::Threads {
                threads_captured, ..
            } => threads_captured,
            other => panic!("{other:?}"),
        } as usize;
        let mut m = WalkMarker::new();
        let mut n = 0;
        loop {
            match snap.walk(&mut m, walk) {
                Ok(_) => n += 1,
                Err(Error::NoMoreItems) => break,
                Err(e) => panic!("{walk:?}: {e}"),
            }
        }
        assert_eq!(n, want, "{walk:?}");
        // The end is sticky.
        assert!(matches!(snap.walk(&mut m, walk), Err(Error::NoMoreItems)));
        assert_eq!(snap.entries(walk).unwrap().count(), want);
    }
    // Thread names walk one entry per thread, named by comm.
    let names: Vec<String> = snap
        .entries(WalkClass::ThreadName)
        .unwrap()
        .map(|e| match e {
            WalkEntry::ThreadName { name, .. } => name.to_string_lossy().into_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(names.len(), 4);
    assert!(names.iter().all(|n| n == "pss-testbed"), "{names:?}");
    // Classes that were not captured.
    let mut m = WalkMarker::new();
    assert!(matches!(
        snap.walk(&mut m, WalkClass::AuxiliaryPages),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        snap.query(QueryClass::VaCloneInformation),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        snap.query(QueryClass::HandleTraceInformation),
        Err(Error::NotFound { .. })
    ));
    match snap.query(QueryClass::PerformanceCounters).unwrap() {
        QueryInfo::Performance(p) => {
            assert!(p.total.wall >= p.threads.wall);
            assert!(p.threads.wall >= p.pause);
            assert!(p.total.cycles > 0);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_probe_reports_an_entry_without_moving_the_marker() {
    let (_t, snap) = snapshot();
    let mut m = WalkMarker::new();
    snap.walk_probe(&m, WalkClass::Threads)
        .expect("an entry is there");
    snap.walk_probe(&m, WalkClass::Threads)
        .expect("still there");
    let first = id(&snap.walk(&mut m, WalkClass::Threads).unwrap());
    assert_eq!(
        first,
        snap.threads().unwrap()[0].thread_id as u64,
        "the probe did not move the marker"
    );
    while snap.walk(&mut m, WalkClass::Threads).is_ok() {}
    assert!(matches!(
        snap.walk_probe(&m, WalkClass::Threads),
        Err(Error::NoMoreItems)
    ));
}

#[test]
fn a_saved_position_returns_to_the_same_entry() {
    let (_t, snap) = snapshot();
    let mut m = WalkMarker::new();
    snap.walk(&mut m, WalkClass::VaSpace).unwrap();
    snap.walk(&mut m, WalkClass::VaSpace).unwrap();
    let saved = m.position();
    let third = id(&snap.walk(&mut m, WalkClass::VaSpace).unwrap());
    snap.walk(&mut m, WalkClass::VaSpace).unwrap();
    m.seek_to_beginning();
    assert_eq!(
        id(&snap.walk(&mut m, WalkClass::VaSpace).unwrap()),
        snap.va_space().unwrap()[0].base_address
    );
    m.set_position(saved).unwrap();
    assert_eq!(id(&snap.walk(&mut m, WalkClass::VaSpace).unwrap()), third);
    // A position from another marker works too; garbage does not.
    let mut other = WalkMarker::new();
    other.set_position(saved).unwrap();
    assert_eq!(
        id(&snap.walk(&mut other, WalkClass::VaSpace).unwrap()),
        third
    );
    assert!(matches!(
        other.set_position(WalkPosition(usize::MAX)),
        Err(Error::InvalidParameter(_))
    ));
}

#[test]
fn one_marker_walks_one_class_then_another_from_its_start() {
    let (_t, snap) = snapshot();
    let mut m = WalkMarker::new();
    snap.walk(&mut m, WalkClass::VaSpace).unwrap();
    let h = snap.walk(&mut m, WalkClass::Handles).unwrap();
    assert_eq!(id(&h), snap.handles().unwrap()[0].handle as u64);
}

#[test]
fn snapshots_are_send_sync_and_shared_by_clones() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Snapshot>();
    let (_t, snap) = snapshot();
    let dup = snap.clone();
    std::thread::scope(|s| {
        for _ in 0..4 {
            let d = dup.clone();
            s.spawn(move || {
                let mut m = WalkMarker::new();
                let mut n = 0;
                while snap_walk_ok(&d, &mut m) {
                    n += 1;
                }
                assert_eq!(n, d.handles().unwrap().len());
            });
        }
    });
    drop(snap);
    assert_eq!(
        dup.threads().unwrap().len(),
        4,
        "the duplicate outlives the original"
    );
}

fn snap_walk_ok(s: &Snapshot, m: &mut WalkMarker) -> bool {
    s.walk(m, WalkClass::Handles).is_ok()
}
