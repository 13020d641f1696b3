//! The JSON document shows every field of every record: each name of each record's field
//! list (`pss_types::records::Fields`) is a key of that record's object, or is in the table
//! below of the fields the document names or places otherwise. A field a record gains
//! fails this test until the document shows it (or this table says where it is).

use pss_types::records::{
    AuxiliaryPage, CaptureInfo, Fields, HandleEntry, HandleLinux, MemoryRegion,
    PerformanceCounters, PhaseCost, ProcessInformation, ProcessLinux, RegionLinux,
    SectionInformation, SnapshotRecords, ThreadContext, ThreadEntry, ThreadLinux, Warning,
};
use serde_json::Value;

/// Checks that every field of `F` is a key of `obj`, or where `elsewhere` says it is (a
/// key path from the document's root, checked to exist).
fn shows<F: Fields>(what: &str, obj: &Value, doc: &Value, elsewhere: &[(&str, &str)]) {
    for field in F::FIELDS {
        match elsewhere.iter().find(|(f, _)| f == field) {
            Some((_, path)) => {
                let found = path
                    .split('/')
                    .try_fold(doc, |v, k| match k.parse::<usize>() {
                        Ok(i) => v.get(i),
                        Err(_) => v.get(k),
                    });
                assert!(found.is_some(), "{what}.{field}: no {path} in the document");
            }
            None => assert!(
                obj.get(field).is_some(),
                "{what}.{field} is not in the document: {obj}"
            ),
        }
    }
}

#[test]
fn every_field_of_every_record_is_in_the_document() {
    let bytes = pss_wire::format::encode(&SnapshotRecords::sample(), 1);
    let snap = pss::Snapshot::from_bytes(&bytes).unwrap();
    let doc: Value = serde_json::to_value(pss_json::snapshot(&snap)).unwrap();
    shows::<SnapshotRecords>("snapshot", &doc, &doc, &[("aux_pages", "auxiliary_pages")]);
    let process = &doc["process"];
    shows::<ProcessInformation>("process", process, &doc, &[]);
    shows::<ProcessLinux>("process.linux", &process["linux"], &doc, &[]);
    let thread = &doc["threads"][0];
    shows::<ThreadEntry>("thread", thread, &doc, &[]);
    shows::<ThreadLinux>("thread.linux", &thread["linux"], &doc, &[]);
    shows::<ThreadContext>(
        "context",
        &thread["context"],
        &doc,
        &[
            ("flags", "threads/0/context/context_flags"),
            ("general", "threads/0/context/orig_rax"),
            ("fp", "threads/0/context/fpregs_size"),
            ("xstate", "threads/0/context/xstate_size"),
            ("debug", "threads/0/context/dr7"),
        ],
    );
    let handle = &doc["handles"][0];
    shows::<HandleEntry>(
        "handle",
        handle,
        &doc,
        &[(
            "type_specific",
            "handles/0/type_specific_information/section",
        )],
    );
    shows::<HandleLinux>("handle.linux", &handle["linux"], &doc, &[]);
    let region = &doc["va_space"][0];
    shows::<MemoryRegion>(
        "region",
        region,
        &doc,
        &[
            ("mem_type", "va_space/0/type"),
            ("section", "va_space/0/size_of_image"),
        ],
    );
    shows::<SectionInformation>(
        "region.section",
        region,
        &doc,
        &[("build_id", "va_space/0/linux/build_id")],
    );
    shows::<RegionLinux>("region.linux", &region["linux"], &doc, &[]);
    shows::<AuxiliaryPage>(
        "aux page",
        &doc["auxiliary_pages"][0],
        &doc,
        &[
            ("thread_id", "auxiliary_pages/0/linux/thread_id"),
            ("kind", "auxiliary_pages/0/linux/kind"),
            ("contents", "auxiliary_pages/0/page_size"),
        ],
    );
    let perf = &doc["performance"];
    let phases = [
        "total",
        "va_clone",
        "va_space",
        "aux_pages",
        "handles",
        "threads",
    ];
    let perf_paths: Vec<(String, String)> = phases
        .iter()
        .map(|p| (p.to_string(), format!("performance/{p}_wall_clock_period")))
        .chain([(
            "pause".to_string(),
            "performance/linux/pause_us".to_string(),
        )])
        .collect();
    let perf_paths: Vec<(&str, &str)> = perf_paths
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    shows::<PerformanceCounters>("performance", perf, &doc, &perf_paths);
    shows::<PhaseCost>(
        "phase",
        perf,
        &doc,
        &[
            ("cycles", "performance/total_cycle_count"),
            ("wall", "performance/total_wall_clock_period"),
        ],
    );
    shows::<CaptureInfo>(
        "capture",
        &doc["capture"],
        &doc,
        &[("pause", "capture/pause_us"), ("total", "capture/total_us")],
    );
    shows::<Warning>("warning", &doc["warnings"][0], &doc, &[]);
}
