/* The PSS API used the way Windows code uses it, against a child process this program
 * spawns and knows: capture, query every class, walk every class to the end, markers,
 * allocator, duplicate, free, every documented error code, and no harm to the child. */
#define _GNU_SOURCE
#include "processsnapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* What the child knows: a word it changes after the capture, and the fd it reads. */
static volatile uint64_t g_word = 0x1111222233334444ull;

static void child_main(int cmd, int ack) {
    char b;
    g_word = 0x5053535f434c4f4eull;
    if (write(ack, "r", 1) != 1) _exit(10);
    /* Blocked in read(cmd) during the capture: its Rdi is `cmd`. */
    if (read(cmd, &b, 1) != 1) _exit(11);
    g_word = 0xdeadbeefull;
    if (write(ack, "a", 1) != 1) _exit(12);
    if (read(cmd, &b, 1) != 1) _exit(13);
    _exit(42);
}

/* A counting allocator, as a Windows caller might pass. */
typedef struct {
    int allocs, frees;
} Counts;
static void *WINAPI count_alloc(void *ctx, DWORD size) {
    ((Counts *)ctx)->allocs++;
    return malloc(size);
}
static void WINAPI count_free(void *ctx, void *p) {
    if (p) ((Counts *)ctx)->frees++;
    free(p);
}

static int pid_of_pidfd(int fd) {
    char path[64], line[256];
    int pid = -1;
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Pid: %d", &pid) == 1) break;
    fclose(f);
    return pid;
}

static int utf16_equals(const WCHAR *s, WORD bytes, const char *ascii) {
    size_t n = strlen(ascii);
    if (bytes != n * 2 || !s) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] != (WCHAR)ascii[i]) return 0;
    return s[n] == 0;
}

int main(void) {
    int cmdp[2], ackp[2];
    char b;
    if (pipe(cmdp) || pipe(ackp)) return 2;
    pid_t child = fork();
    if (child == 0) {
        close(cmdp[1]);
        close(ackp[0]);
        child_main(cmdp[0], ackp[1]);
    }
    close(cmdp[0]);
    close(ackp[1]);
    if (read(ackp[0], &b, 1) != 1) return 3;
    usleep(20000); /* let it block in read() */
    int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
    CHECK(pidfd >= 0);
    HANDLE process = (HANDLE)(intptr_t)pidfd;

    /* ---- Capture everything. */
    PSS_CAPTURE_FLAGS flags =
        PSS_CAPTURE_VA_CLONE | PSS_CAPTURE_HANDLES | PSS_CAPTURE_HANDLE_NAME_INFORMATION |
        PSS_CAPTURE_HANDLE_BASIC_INFORMATION | PSS_CAPTURE_HANDLE_TYPE_SPECIFIC_INFORMATION |
        PSS_CAPTURE_THREADS | PSS_CAPTURE_THREAD_CONTEXT | PSS_CAPTURE_VA_SPACE |
        PSS_CAPTURE_VA_SPACE_SECTION_INFORMATION | PSS_CAPTURE_AUXILIARY_PAGES |
        PSS_CREATE_MEASURE_PERFORMANCE;
    HPSS snap = NULL;
    EXPECT(PssCaptureSnapshot(process, flags, CONTEXT_ALL, &snap), ERROR_SUCCESS);
    CHECK(snap != NULL);

    /* ---- Query every class. */
    PSS_PROCESS_INFORMATION pi;
    EXPECT(PssQuerySnapshot(snap, PSS_QUERY_PROCESS_INFORMATION, &pi, sizeof pi), ERROR_SUCCESS);
    CHECK(pi.ProcessId == (DWORD)child);
    CHECK(pi.ParentProcessId == (DWORD)getpid());
    CHECK(pi.ExitStatus == STILL_ACTIVE);
    CHECK(pi.ImageFileName[0] == '/');
    EXPECT(PssQuerySnapshot(snap, PSS_QUERY_PROCESS_INFORMATION, &pi, sizeof pi - 1), ERROR_BAD_LENGTH);
    EXPECT(PssQuerySnapshot(snap, PSS_QUERY_PROCESS_INFORMATION, &pi, sizeof pi + 8), ERROR_BAD_LENGTH);
    EXPECT(PssQuerySnapshot(snap, (PSS_QUERY_INFORMATION_CLASS)99, &pi, sizeof pi), ERROR_INVALID_PARAMETER);

    PSS_THREAD_INFORMATION ti;
    EXPECT(PssQuerySnapshot(snap, PSS_QUERY_THREAD_INFORMATION, &ti, sizeof ti), ERROR_SUCCESS);
    CHECK(ti.ThreadsCaptured == 1);
    CHECK(ti.ContextLength == sizeof(CONTEXT));
    PSS_HANDLE_INFORMATION hi;
    EXPECT(PssQuerySnapshot(snap, PSS_QUERY_HANDLE_INFORMATION, &hi, sizeof hi), ERROR_SUCCESS);
    PSS_VA_SPACE_INFORMATION vi;
    EXPECT(PssQuerySnapshot(snap, PSS_QUERY_VA_SPACE_INFORMATION, &vi, sizeof vi), ERROR_SUCCESS);
    CHECK(vi.RegionCount > 5);
    PSS_AUXILIARY_PAGES_INFORMATION ai;
    EXPECT(PssQuerySnapshot(snap, PSS_QUERY_AUXILIARY_PAGES_INFORMATION, &ai, sizeof ai), ERROR_SUCCESS);
    CHECK(ai.AuxPagesCaptured >= 1);
    PSS_PERFORMANCE_COUNTERS pc;
    EXPECT(PssQuerySnapshot(snap, PSS_QUERY_PERFORMANCE_COUNTERS, &pc, sizeof pc), ERROR_SUCCESS);
    CHECK(pc.TotalWallClockPeriod > 0);
    PSS_HANDLE_TRACE_INFORMATION hti;
    EXPECT(PssQuerySnapshot(snap, PSS_QUERY_HANDLE_TRACE_INFORMATION, &hti, sizeof hti), ERROR_NOT_FOUND);

    /* The clone: a pidfd the snapshot owns, the same on every query (Windows code never
     * closes it); the clone holds the word as it was. */
    PSS_VA_CLONE_INFORMATION ci, ci2;
    EXPECT(PssQuerySnapshot(snap, PSS_QUERY_VA_CLONE_INFORMATION, &ci, sizeof ci), ERROR_SUCCESS);
    EXPECT(PssQuerySnapshot(snap, PSS_QUERY_VA_CLONE_INFORMATION, &ci2, sizeof ci2), ERROR_SUCCESS);
    CHECK(ci.VaCloneHandle == ci2.VaCloneHandle);
    int clonefd = (int)(intptr_t)ci.VaCloneHandle;
    int clone_pid = pid_of_pidfd(clonefd);
    CHECK(clone_pid > 0 && clone_pid != child);
    if (write(cmdp[1], "x", 1) != 1) return 4; /* the child changes its word */
    if (read(ackp[0], &b, 1) != 1) return 5;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", clone_pid);
    int mem = open(path, O_RDONLY);
    uint64_t w = 0;
    CHECK(mem >= 0 && pread(mem, &w, 8, (off_t)(uintptr_t)&g_word) == 8);
    CHECK(w == 0x5053535f434c4f4eull);
    close(mem);

    /* ---- Walk every class to the end, through a counting allocator. */
    Counts counts = {0, 0};
    PSS_ALLOCATOR alloc = {&counts, count_alloc, count_free};
    HPSSWALK marker = NULL;
    EXPECT(PssWalkMarkerCreate(&alloc, &marker), ERROR_SUCCESS);

    PSS_THREAD_ENTRY te;
    DWORD n = 0, rc;
    /* A NULL buffer probes: ERROR_MORE_DATA, and the marker stays put. */
    EXPECT(PssWalkSnapshot(snap, PSS_WALK_THREADS, marker, NULL, 0), ERROR_MORE_DATA);
    EXPECT(PssWalkSnapshot(snap, PSS_WALK_THREADS, marker, &te, sizeof te - 1), ERROR_BAD_LENGTH);
    while ((rc = PssWalkSnapshot(snap, PSS_WALK_THREADS, marker, &te, sizeof te)) == ERROR_SUCCESS) {
        n++;
        CHECK(te.ThreadId == (DWORD)child && te.ProcessId == (DWORD)child);
        CHECK(te.ExitStatus == STILL_ACTIVE);
        CHECK(te.SizeOfContextRecord == sizeof(CONTEXT));
        CHECK(te.ContextRecord != NULL && ((uintptr_t)te.ContextRecord & 15) == 0);
        if (te.ContextRecord) {
#if defined(__aarch64__)
            /* Blocked in read(cmd): the fd is in X0, the pc inside libc; no debug
             * registers are read on arm64 (docs/aarch64.md). */
            CHECK(te.ContextRecord->ContextFlags == (CONTEXT_FULL | CONTEXT_X18));
            CHECK(te.ContextRecord->X0 == (DWORD64)cmdp[0]);
            CHECK(te.ContextRecord->Pc != 0 && te.ContextRecord->Sp != 0);
#else
            CHECK(te.ContextRecord->ContextFlags == CONTEXT_ALL);
            /* Blocked in read(cmd): the fd is in Rdi, and Rip is inside libc. */
            CHECK(te.ContextRecord->Rdi == (DWORD64)cmdp[0]);
            CHECK(te.ContextRecord->Rip != 0 && te.ContextRecord->Rsp != 0);
#endif
        }
    }
    EXPECT(rc, ERROR_NO_MORE_ITEMS);
    CHECK(n == ti.ThreadsCaptured);
    EXPECT(PssWalkSnapshot(snap, PSS_WALK_THREADS, marker, NULL, 0), ERROR_NO_MORE_ITEMS);

    /* Positions come back to the same entry. */
    EXPECT(PssWalkMarkerSeekToBeginning(marker), ERROR_SUCCESS);
    PSS_VA_SPACE_ENTRY ve, first, again;
    EXPECT(PssWalkSnapshot(snap, PSS_WALK_VA_SPACE, marker, &first, sizeof first), ERROR_SUCCESS);
    ULONG_PTR pos = 0;
    EXPECT(PssWalkMarkerGetPosition(marker, &pos), ERROR_SUCCESS);
    EXPECT(PssWalkSnapshot(snap, PSS_WALK_VA_SPACE, marker, &ve, sizeof ve), ERROR_SUCCESS);
    EXPECT(PssWalkMarkerSetPosition(marker, pos), ERROR_SUCCESS);
    EXPECT(PssWalkSnapshot(snap, PSS_WALK_VA_SPACE, marker, &again, sizeof again), ERROR_SUCCESS);
    CHECK(again.BaseAddress == ve.BaseAddress && again.RegionSize == ve.RegionSize);
    EXPECT(PssWalkMarkerSeekToBeginning(marker), ERROR_SUCCESS);
    n = 0;
    int saw_image = 0;
    while ((rc = PssWalkSnapshot(snap, PSS_WALK_VA_SPACE, marker, &ve, sizeof ve)) == ERROR_SUCCESS) {
        if (n == 0) CHECK(ve.BaseAddress == first.BaseAddress);
        n++;
        if (ve.Type == MEM_IMAGE && ve.MappedFileNameLength > 0) {
            saw_image = 1;
            CHECK(ve.MappedFileName[ve.MappedFileNameLength / 2] == 0);
        }
    }
    EXPECT(rc, ERROR_NO_MORE_ITEMS);
    CHECK(n == vi.RegionCount && saw_image);

    PSS_HANDLE_ENTRY he;
    int saw_cmd = 0;
    n = 0;
    while ((rc = PssWalkSnapshot(snap, PSS_WALK_HANDLES, marker, &he, sizeof he)) == ERROR_SUCCESS) {
        n++;
        if ((intptr_t)he.Handle == cmdp[0]) {
            saw_cmd = 1;
            CHECK(he.Flags & PSS_HANDLE_HAVE_TYPE);
            CHECK(utf16_equals(he.TypeName, he.TypeNameLength, "Pipe"));
        }
    }
    EXPECT(rc, ERROR_NO_MORE_ITEMS);
    CHECK(n == hi.HandlesCaptured && saw_cmd);

    PSS_AUXILIARY_PAGE_ENTRY ae;
    n = 0;
    while ((rc = PssWalkSnapshot(snap, PSS_WALK_AUXILIARY_PAGES, marker, &ae, sizeof ae)) == ERROR_SUCCESS) {
        n++;
        CHECK(ae.PageContents != NULL && ae.PageSize >= 4096 && ae.PageSize % 4096 == 0);
        CHECK(ae.BasicInformation.State == MEM_COMMIT);
    }
    EXPECT(rc, ERROR_NO_MORE_ITEMS);
    CHECK(n == ai.AuxPagesCaptured);

    PSS_THREAD_NAME tn;
    EXPECT(PssWalkSnapshot(snap, PSS_WALK_THREAD_NAME, marker, &tn, sizeof tn), ERROR_SUCCESS);
    CHECK(tn.ThreadName != NULL && tn.ThreadNameSize > 0);
    EXPECT(PssWalkSnapshot(snap, (PSS_WALK_INFORMATION_CLASS)9, marker, &tn, sizeof tn), ERROR_INVALID_PARAMETER);

    CHECK(counts.allocs > 0 && counts.frees == 0);
    EXPECT(PssWalkMarkerFree(marker), ERROR_SUCCESS);
    CHECK(counts.frees == counts.allocs);
    EXPECT(PssWalkMarkerFree(marker), ERROR_INVALID_HANDLE);

    /* ---- Handles that are not what they claim. */
    HPSSWALK m2;
    EXPECT(PssWalkMarkerCreate(NULL, &m2), ERROR_SUCCESS);
    EXPECT(PssQuerySnapshot((HPSS)m2, PSS_QUERY_PROCESS_INFORMATION, &pi, sizeof pi), ERROR_INVALID_HANDLE);
    EXPECT(PssQuerySnapshot((HPSS)(uintptr_t)0x1234, PSS_QUERY_PROCESS_INFORMATION, &pi, sizeof pi), ERROR_INVALID_HANDLE);
    EXPECT(PssWalkSnapshot(snap, PSS_WALK_THREADS, (HPSSWALK)snap, &te, sizeof te), ERROR_INVALID_HANDLE);
    EXPECT(PssWalkMarkerGetPosition((HPSSWALK)(uintptr_t)0x42, &pos), ERROR_INVALID_HANDLE);

    /* ---- Duplicate into the same process, then free both. */
    HPSS dup = NULL;
    EXPECT(PssDuplicateSnapshot((HANDLE)-1, snap, (HANDLE)-1, &dup, PSS_DUPLICATE_NONE), ERROR_SUCCESS);
    CHECK(dup != NULL && dup != snap);
    EXPECT(PssQuerySnapshot(dup, PSS_QUERY_PROCESS_INFORMATION, &pi, sizeof pi), ERROR_SUCCESS);
    CHECK(pi.ProcessId == (DWORD)child);
    HPSS dup2 = NULL;
    EXPECT(PssDuplicateSnapshot((HANDLE)-1, dup, (HANDLE)-1, &dup2, PSS_DUPLICATE_CLOSE_SOURCE), ERROR_SUCCESS);
    EXPECT(PssQuerySnapshot(dup, PSS_QUERY_PROCESS_INFORMATION, &pi, sizeof pi), ERROR_INVALID_HANDLE);
    EXPECT(PssFreeSnapshot((HANDLE)-1, dup2), ERROR_SUCCESS);
    EXPECT(PssFreeSnapshot((HANDLE)-1, snap), ERROR_SUCCESS);
    EXPECT(PssFreeSnapshot((HANDLE)-1, snap), ERROR_INVALID_HANDLE);
    EXPECT(PssWalkSnapshot(snap, PSS_WALK_THREADS, m2, &te, sizeof te), ERROR_INVALID_HANDLE);
    EXPECT(PssWalkMarkerFree(m2), ERROR_SUCCESS);

    /* The clone is gone once the last handle is freed, and so is its handle. */
    snprintf(path, sizeof path, "/proc/%d", clone_pid);
    CHECK(access(path, F_OK) != 0);
    CHECK(fcntl(clonefd, F_GETFD) == -1 && errno == EBADF);
    /* The child keeps no child of ours. */
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", child, child);
    FILE *f = fopen(path, "r");
    CHECK(f && fgetc(f) == EOF);
    if (f) fclose(f);

    /* ---- Capture errors. */
    HPSS bad = NULL;
    EXPECT(PssCaptureSnapshot((HANDLE)(intptr_t)987654, PSS_CAPTURE_THREADS, 0, &bad), ERROR_INVALID_HANDLE);
    EXPECT(PssCaptureSnapshot((HANDLE)(intptr_t)1, PSS_CAPTURE_THREADS, 0, &bad), ERROR_INVALID_HANDLE);
    EXPECT(PssCaptureSnapshot(process, PSS_CREATE_FORCE_BREAKAWAY, 0, &bad), ERROR_NOT_SUPPORTED);
    CHECK(strstr(PssLinuxLastErrorMessage(), "create-force-breakaway") != NULL);

    /* ---- The trace flags Microsoft's samples and .NET wrappers pass: the capture
     * succeeds with everything else; the trace query fails as for a process without
     * handle tracing. */
    HPSS traced = NULL;
    EXPECT(PssCaptureSnapshot(process,
                              PSS_CAPTURE_HANDLE_TRACE | PSS_CAPTURE_IPT_TRACE |
                                  PSS_CAPTURE_THREADS | PSS_CAPTURE_HANDLES,
                              0, &traced),
           ERROR_SUCCESS);
    PSS_THREAD_INFORMATION tti;
    EXPECT(PssQuerySnapshot(traced, PSS_QUERY_THREAD_INFORMATION, &tti, sizeof tti), ERROR_SUCCESS);
    CHECK(tti.ThreadsCaptured == 1);
    EXPECT(PssQuerySnapshot(traced, PSS_QUERY_HANDLE_TRACE_INFORMATION, &hti, sizeof hti),
           ERROR_NOT_FOUND);
    CHECK(strstr(PssLinuxLastErrorMessage(), "handle trace") != NULL);
    EXPECT(PssFreeSnapshot((HANDLE)-1, traced), ERROR_SUCCESS);
    EXPECT(PssCaptureSnapshot(process, PSS_CAPTURE_THREADS, 0, NULL), ERROR_INVALID_PARAMETER);
    EXPECT(PssFreeSnapshot(process, (HPSS)(uintptr_t)0x99), ERROR_NOT_SUPPORTED);

    /* ---- The calling process with PSS_CAPTURE_NONE (CPython's getppid). */
    HPSS self = NULL;
    EXPECT(PssCaptureSnapshot((HANDLE)-1, PSS_CAPTURE_NONE, 0, &self), ERROR_SUCCESS);
    EXPECT(PssQuerySnapshot(self, PSS_QUERY_PROCESS_INFORMATION, &pi, sizeof pi), ERROR_SUCCESS);
    CHECK(pi.ProcessId == (DWORD)getpid() && pi.ParentProcessId == (DWORD)getppid());
    EXPECT(PssQuerySnapshot(self, PSS_QUERY_THREAD_INFORMATION, &ti, sizeof ti), ERROR_NOT_FOUND);
    EXPECT(PssFreeSnapshot((HANDLE)-1, self), ERROR_SUCCESS);

    /* ---- The child was not harmed: it finishes by itself, with its own status. */
    if (write(cmdp[1], "x", 1) != 1) return 6;
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 42);
    close(pidfd);

    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    puts("api ok");
    return 0;
}
