/* pss_threads: list the threads of a process, with where each one is, through the Windows
 * Process Snapshotting API on Linux.
 *
 * With pss installed (scripts/install.sh):
 *   cc examples/pss_threads.c $(pkg-config --cflags --libs pss) -o pss_threads
 * or with CMake, examples/cmake/CMakeLists.txt; from a build tree:
 *   cargo build --release
 *   cc -Icrates/pss-capi/include examples/pss_threads.c -Ltarget/release -lpss \
 *      -Wl,-rpath,$PWD/target/release -o pss_threads
 * then
 *   ./pss_threads PID
 */
#include <processsnapshot.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PID\n", argv[0]);
        return 2;
    }
    /* As on Windows; the HANDLE is a pidfd. */
    HANDLE process = OpenProcess(PROCESS_ALL_ACCESS, FALSE, (DWORD)atoi(argv[1]));
    if (process == NULL) {
        fprintf(stderr, "OpenProcess: error %u: %s\n", GetLastError(), PssLinuxLastErrorMessage());
        return 1;
    }
    HPSS snap;
    DWORD rc = PssCaptureSnapshot(process, PSS_CAPTURE_THREADS | PSS_CAPTURE_THREAD_CONTEXT,
                                  CONTEXT_ALL, &snap);
    if (rc != ERROR_SUCCESS) {
        fprintf(stderr, "PssCaptureSnapshot: error %u: %s\n", rc, PssLinuxLastErrorMessage());
        return 1;
    }
    PSS_THREAD_INFORMATION ti;
    PssQuerySnapshot(snap, PSS_QUERY_THREAD_INFORMATION, &ti, sizeof ti);
    printf("%u thread(s)\n", ti.ThreadsCaptured);

    HPSSWALK marker;
    PssWalkMarkerCreate(NULL, &marker);
    PSS_THREAD_ENTRY te;
    while (PssWalkSnapshot(snap, PSS_WALK_THREADS, marker, &te, sizeof te) == ERROR_SUCCESS) {
        if (te.Flags & PSS_THREAD_FLAGS_TERMINATED) continue;
        printf("thread %u", te.ThreadId);
#if defined(__aarch64__)
        if (te.ContextRecord)
            printf(": pc %#llx sp %#llx", (unsigned long long)te.ContextRecord->Pc,
                   (unsigned long long)te.ContextRecord->Sp);
#else
        if (te.ContextRecord)
            printf(": rip %#llx rsp %#llx", (unsigned long long)te.ContextRecord->Rip,
                   (unsigned long long)te.ContextRecord->Rsp);
#endif
        printf("\n");
    }
    PssWalkMarkerFree(marker);
    PssFreeSnapshot(GetCurrentProcess(), snap);
    CloseHandle(process);
    return 0;
}
