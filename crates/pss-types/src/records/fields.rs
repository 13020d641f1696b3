//! One field list per record ([`Fields`]): the names of its fields, declared once here and
//! checked against the struct by the compiler (each list is also an exhaustive pattern:
//! a field added to a record and not to its list fails the build). The projections of a
//! record — the binary encoding (`pss-wire`), the JSON document (`pss-json`), the C
//! conversion (`pss-capi`), the Python records (`pss-py`) — are checked against these lists
//! by their tests, so that a projection that forgets a field fails a test.

use super::*;

/// A record's field names, in declaration order.
pub trait Fields {
    /// The names.
    const FIELDS: &'static [&'static str];
}

/// Implements [`Fields`] for `$t` with the fields listed, and checks at compile time that
/// the list is the struct's whole set of fields.
macro_rules! fields {
    ($t:ident { $($f:ident),* $(,)? }) => {
        impl Fields for $t {
            const FIELDS: &'static [&'static str] = &[$(stringify!($f)),*];
        }

        const _: fn(&$t) = |x: &$t| {
            let $t { $($f: _),* } = x;
        };
    };
}

fields!(ProcessInformation {
    exit_status,
    peb_base_address,
    affinity_mask,
    base_priority,
    process_id,
    parent_process_id,
    flags,
    create_time,
    exit_time,
    kernel_time,
    user_time,
    priority_class,
    peak_virtual_size,
    virtual_size,
    page_fault_count,
    peak_working_set_size,
    working_set_size,
    quota_peak_paged_pool_usage,
    quota_paged_pool_usage,
    quota_peak_non_paged_pool_usage,
    quota_non_paged_pool_usage,
    pagefile_usage,
    peak_pagefile_usage,
    private_usage,
    execute_flags,
    image_file_name,
    linux,
});
fields!(ProcessLinux {
    state,
    comm,
    nice,
    policy,
    num_threads,
    uid,
    rss_anon,
    vm_swap,
    seccomp
});
fields!(ThreadEntry {
    exit_status,
    teb_base_address,
    process_id,
    thread_id,
    affinity_mask,
    priority,
    base_priority,
    last_syscall_first_argument,
    last_syscall_number,
    create_time,
    exit_time,
    kernel_time,
    user_time,
    win32_start_address,
    capture_time,
    flags,
    suspend_count,
    context,
    linux,
});
fields!(ThreadLinux {
    name,
    state,
    syscall,
    processor,
    nice,
    sigmask,
    read
});
fields!(ThreadContext {
    flags,
    general,
    fp,
    xstate,
    debug
});
fields!(HandleEntry {
    handle,
    flags,
    object_type,
    capture_time,
    attributes,
    granted_access,
    handle_count,
    pointer_count,
    paged_pool_charge,
    non_paged_pool_charge,
    creation_time,
    type_name,
    object_name,
    type_specific,
    linux,
});
fields!(HandleLinux {
    open_flags,
    pos,
    mnt_id,
    inode,
    mode,
    size,
    detail
});
fields!(MemoryRegion {
    base_address,
    allocation_base,
    allocation_protect,
    region_size,
    state,
    protect,
    mem_type,
    section,
    linux,
});
fields!(SectionInformation {
    time_date_stamp,
    size_of_image,
    image_base,
    check_sum,
    mapped_file_name,
    build_id,
});
fields!(RegionLinux {
    perms,
    offset,
    dev,
    inode,
    pathname
});
fields!(AuxiliaryPage {
    address,
    thread_id,
    kind,
    capture_time,
    contents
});
fields!(PhaseCost { cycles, wall });
fields!(PerformanceCounters {
    total,
    va_clone,
    va_space,
    aux_pages,
    handles,
    threads,
    pause
});
fields!(CaptureInfo {
    pid,
    flags,
    context_flags,
    started,
    pause,
    threads_stopped,
    seize_rounds,
    total,
});
fields!(Warning { tid, fd, message });
fields!(CopiedRange {
    start,
    data,
    reason,
    at_pause
});
fields!(MemoryHole { start, end, reason });
fields!(SnapshotRecords {
    process,
    threads,
    handles,
    va_space,
    aux_pages,
    performance,
    capture,
    warnings,
});
