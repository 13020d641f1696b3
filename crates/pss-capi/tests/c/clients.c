/* Windows client code as it is written, against a child process and against itself:
 * - Microsoft's dump-to-file guide: every handle flag with PSS_CAPTURE_HANDLE_TRACE, threads
 *   with both context flags, both breakaway flags, the VA clone, whose handle it queries
 *   and never closes — twenty times, without leaking a descriptor;
 * - Microsoft's 2013 sample: the trace flags with PSS_CREATE_MEASURE_PERFORMANCE, every
 *   counter the flags imply non-zero, the handle trace query failing as for a process
 *   without tracing;
 * - a tool that walks the threads of its own process with PSS_CAPTURE_THREADS only: each
 *   TebBaseAddress is the thread's TLS base;
 * - a caller that closes the VA clone handle anyway: freeing the snapshot then closes
 *   nothing of the caller's. */
#define _GNU_SOURCE
#include "processsnapshot.h"

#if defined(__x86_64__)
#include <asm/prctl.h>
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "check.h"

static int count_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    while (d && readdir(d)) n++;
    if (d) closedir(d);
    return n;
}

static void dump_guide(HANDLE process) {
    const DWORD flags = PSS_CAPTURE_VA_CLONE | PSS_CAPTURE_HANDLES |
                        PSS_CAPTURE_HANDLE_NAME_INFORMATION | PSS_CAPTURE_HANDLE_BASIC_INFORMATION |
                        PSS_CAPTURE_HANDLE_TYPE_SPECIFIC_INFORMATION | PSS_CAPTURE_HANDLE_TRACE |
                        PSS_CAPTURE_THREADS | PSS_CAPTURE_THREAD_CONTEXT |
                        PSS_CAPTURE_THREAD_CONTEXT_EXTENDED | PSS_CREATE_BREAKAWAY |
                        PSS_CREATE_BREAKAWAY_OPTIONAL | PSS_CREATE_USE_VM_ALLOCATIONS |
                        PSS_CREATE_RELEASE_SECTION;
    int before = -1;
    for (int i = 0; i < 20; i++) {
        /* Counted after the first capture, which starts the engine (its socket and pidfd
         * are the library's for as long as the program runs). */
        if (i == 1) before = count_fds();
        HPSS snap = NULL;
        EXPECT(PssCaptureSnapshot(process, flags, CONTEXT_ALL, &snap), ERROR_SUCCESS);
        PSS_VA_CLONE_INFORMATION ci;
        EXPECT(PssQuerySnapshot(snap, PSS_QUERY_VA_CLONE_INFORMATION, &ci, sizeof ci), ERROR_SUCCESS);
        CHECK(ci.VaCloneHandle != NULL);
        EXPECT(PssFreeSnapshot((HANDLE)-1, snap), ERROR_SUCCESS);
    }
    CHECK(count_fds() == before);
}

static void sample_2013(HANDLE process) {
    HPSS snap = NULL;
    EXPECT(PssCaptureSnapshot(process,
                              PSS_CAPTURE_VA_CLONE | PSS_CAPTURE_VA_SPACE |
                                  PSS_CAPTURE_VA_SPACE_SECTION_INFORMATION |
                                  PSS_CAPTURE_HANDLE_TRACE | PSS_CAPTURE_HANDLES |
                                  PSS_CAPTURE_HANDLE_BASIC_INFORMATION |
                                  PSS_CAPTURE_HANDLE_TYPE_SPECIFIC_INFORMATION |
                                  PSS_CAPTURE_HANDLE_NAME_INFORMATION | PSS_CAPTURE_THREADS |
                                  PSS_CAPTURE_THREAD_CONTEXT | PSS_CAPTURE_AUXILIARY_PAGES |
                                  PSS_CREATE_MEASURE_PERFORMANCE,
                              CONTEXT_ALL, &snap),
           ERROR_SUCCESS);
    PSS_PERFORMANCE_COUNTERS pc;
    EXPECT(PssQuerySnapshot(snap, PSS_QUERY_PERFORMANCE_COUNTERS, &pc, sizeof pc), ERROR_SUCCESS);
    CHECK(pc.TotalCycleCount > 0 && pc.TotalWallClockPeriod > 0);
    CHECK(pc.VaCloneCycleCount > 0 && pc.VaCloneWallClockPeriod > 0);
    CHECK(pc.VaSpaceCycleCount > 0 && pc.VaSpaceWallClockPeriod > 0);
    CHECK(pc.AuxPagesCycleCount > 0 && pc.AuxPagesWallClockPeriod > 0);
    CHECK(pc.HandlesCycleCount > 0 && pc.HandlesWallClockPeriod > 0);
    CHECK(pc.ThreadsCycleCount > 0 && pc.ThreadsWallClockPeriod > 0);
    /* The parts fit in the whole. */
    CHECK(pc.VaCloneWallClockPeriod + pc.ThreadsWallClockPeriod <= pc.TotalWallClockPeriod);
    PSS_HANDLE_TRACE_INFORMATION hti;
    EXPECT(PssQuerySnapshot(snap, PSS_QUERY_HANDLE_TRACE_INFORMATION, &hti, sizeof hti),
           ERROR_NOT_FOUND);
    EXPECT(PssFreeSnapshot((HANDLE)-1, snap), ERROR_SUCCESS);
}

static pthread_t reader;
static int reader_fd;
static unsigned long reader_fs;

/* The calling thread's TLS base: fs_base (x86_64), tpidr_el0 (arm64) — its TebBaseAddress. */
static unsigned long thread_pointer(void) {
#if defined(__aarch64__)
    unsigned long tp;
    __asm__ volatile("mrs %0, tpidr_el0" : "=r"(tp));
    return tp;
#else
    unsigned long fs = 0;
    syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
    return fs;
#endif
}

static void *read_one(void *arg) {
    char b;
    (void)arg;
    __atomic_store_n(&reader_fs, thread_pointer(), __ATOMIC_SEQ_CST);
    if (read(reader_fd, &b, 1) != 1) abort();
    return NULL;
}

static void own_threads(void) {
    int p[2];
    if (pipe(p)) abort();
    reader_fd = p[0];
    pthread_create(&reader, NULL, read_one, NULL);
    while (!__atomic_load_n(&reader_fs, __ATOMIC_SEQ_CST)) usleep(1000);
    usleep(20000);
    unsigned long my_fs = thread_pointer();
    HPSS snap = NULL;
    EXPECT(PssCaptureSnapshot((HANDLE)-1, PSS_CAPTURE_THREADS, 0, &snap), ERROR_SUCCESS);
    HPSSWALK m;
    EXPECT(PssWalkMarkerCreate(NULL, &m), ERROR_SUCCESS);
    PSS_THREAD_ENTRY te;
    int seen = 0;
    while (PssWalkSnapshot(snap, PSS_WALK_THREADS, m, &te, sizeof te) == ERROR_SUCCESS) {
        CHECK(te.TebBaseAddress != NULL);
        if (te.ThreadId == (DWORD)getpid()) {
            CHECK((unsigned long)te.TebBaseAddress == my_fs);
            seen++;
        } else if ((unsigned long)te.TebBaseAddress == reader_fs) {
            seen++;
        }
    }
    CHECK(seen == 2);
    EXPECT(PssWalkMarkerFree(m), ERROR_SUCCESS);
    EXPECT(PssFreeSnapshot((HANDLE)-1, snap), ERROR_SUCCESS);
    CHECK(write(p[1], "x", 1) == 1);
    pthread_join(reader, NULL);
    close(p[0]);
    close(p[1]);
}

static void closes_the_clone_handle(HANDLE process) {
    HPSS snap = NULL;
    EXPECT(PssCaptureSnapshot(process, PSS_CAPTURE_VA_CLONE, 0, &snap), ERROR_SUCCESS);
    PSS_VA_CLONE_INFORMATION ci;
    EXPECT(PssQuerySnapshot(snap, PSS_QUERY_VA_CLONE_INFORMATION, &ci, sizeof ci), ERROR_SUCCESS);
    int fd = (int)(intptr_t)ci.VaCloneHandle;
    CHECK(close(fd) == 0);
    /* The number is taken again by a file of the caller's... */
    int mine = open("/dev/null", O_RDONLY);
    CHECK(mine == fd);
    EXPECT(PssFreeSnapshot((HANDLE)-1, snap), ERROR_SUCCESS);
    /* ...which the free leaves open. */
    CHECK(fcntl(mine, F_GETFD) >= 0);
    close(mine);
}

int main(void) {
    int cmd[2];
    if (pipe(cmd)) return 2;
    pid_t child = fork();
    if (child == 0) {
        char b;
        close(cmd[1]);
        _exit(read(cmd[0], &b, 1) == 1 ? 42 : 3);
    }
    close(cmd[0]);
    int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
    CHECK(pidfd >= 0);
    HANDLE process = (HANDLE)(intptr_t)pidfd;

    dump_guide(process);
    sample_2013(process);
    sample_2013((HANDLE)-1);
    own_threads();
    closes_the_clone_handle(process);

    int st = 0;
    CHECK(write(cmd[1], "x", 1) == 1);
    CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 42);
    if (failures) return 1;
    printf("clients ok\n");
    return 0;
}
