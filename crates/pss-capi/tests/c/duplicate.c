/* PssDuplicateSnapshot between processes, the way Windows Error Reporting uses it: this
 * program (the "service") captures a target child, duplicates the snapshot into a second
 * child (the "receiver", which links libpss too), which queries and walks it; then remote
 * free, CLOSE_SOURCE both ways, a duplicate pulled back from the receiver, bogus handles,
 * and no harm to either child. */
#define _GNU_SOURCE
#include "processsnapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* A request to the receiver, and what the target knows about itself. */
typedef struct {
    char op;
    HPSS h;
    int target_pid;
    int target_fd;
} Request;

static int count_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

/* Queries and walks a duplicated snapshot; the number of failed checks. */
static int check_snapshot(const Request *r) {
    int before = failures;
    PSS_PROCESS_INFORMATION pi;
    EXPECT(PssQuerySnapshot(r->h, PSS_QUERY_PROCESS_INFORMATION, &pi, sizeof pi), ERROR_SUCCESS);
    CHECK(pi.ProcessId == (DWORD)r->target_pid);
    CHECK(pi.ExitStatus == STILL_ACTIVE);
    PSS_THREAD_INFORMATION ti;
    EXPECT(PssQuerySnapshot(r->h, PSS_QUERY_THREAD_INFORMATION, &ti, sizeof ti), ERROR_SUCCESS);
    CHECK(ti.ThreadsCaptured == 1 && ti.ContextLength == sizeof(CONTEXT));
    PSS_HANDLE_INFORMATION hi;
    EXPECT(PssQuerySnapshot(r->h, PSS_QUERY_HANDLE_INFORMATION, &hi, sizeof hi), ERROR_SUCCESS);
    PSS_VA_SPACE_INFORMATION vi;
    EXPECT(PssQuerySnapshot(r->h, PSS_QUERY_VA_SPACE_INFORMATION, &vi, sizeof vi), ERROR_SUCCESS);
    /* The clone is a process of the capturer's; it does not travel (docs/format.md). */
    PSS_VA_CLONE_INFORMATION ci;
    EXPECT(PssQuerySnapshot(r->h, PSS_QUERY_VA_CLONE_INFORMATION, &ci, sizeof ci), ERROR_NOT_FOUND);

    HPSSWALK m;
    EXPECT(PssWalkMarkerCreate(NULL, &m), ERROR_SUCCESS);
    PSS_THREAD_ENTRY te;
    EXPECT(PssWalkSnapshot(r->h, PSS_WALK_THREADS, m, &te, sizeof te), ERROR_SUCCESS);
    CHECK(te.ThreadId == (DWORD)r->target_pid);
    CHECK(te.ContextRecord != NULL);
#if defined(__aarch64__)
    if (te.ContextRecord) CHECK(te.ContextRecord->X0 == (DWORD64)r->target_fd);
#else
    if (te.ContextRecord) CHECK(te.ContextRecord->Rdi == (DWORD64)r->target_fd);
#endif
    EXPECT(PssWalkSnapshot(r->h, PSS_WALK_THREADS, m, &te, sizeof te), ERROR_NO_MORE_ITEMS);
    PSS_HANDLE_ENTRY he;
    DWORD n = 0, rc;
    int saw_fd = 0;
    while ((rc = PssWalkSnapshot(r->h, PSS_WALK_HANDLES, m, &he, sizeof he)) == ERROR_SUCCESS) {
        n++;
        if (he.Handle == (HANDLE)(intptr_t)r->target_fd) saw_fd = 1;
    }
    EXPECT(rc, ERROR_NO_MORE_ITEMS);
    CHECK(n == hi.HandlesCaptured && saw_fd);
    PSS_VA_SPACE_ENTRY ve;
    n = 0;
    while ((rc = PssWalkSnapshot(r->h, PSS_WALK_VA_SPACE, m, &ve, sizeof ve)) == ERROR_SUCCESS) n++;
    EXPECT(rc, ERROR_NO_MORE_ITEMS);
    CHECK(n == vi.RegionCount);
    EXPECT(PssWalkMarkerFree(m), ERROR_SUCCESS);
    return failures - before;
}

/* The receiver: answers requests until told to exit. */
static int receiver(int in, int out) {
    Request r;
    while (read(in, &r, sizeof r) == (ssize_t)sizeof r) {
        int answer = -1;
        PSS_PROCESS_INFORMATION pi;
        switch (r.op) {
        case 'q': answer = check_snapshot(&r); break;
        case 'g': answer = (int)PssQuerySnapshot(r.h, PSS_QUERY_PROCESS_INFORMATION, &pi, sizeof pi); break;
        case 'f': answer = (int)PssFreeSnapshot((HANDLE)-1, r.h); break;
        case 'n': answer = count_fds(); break;
        case 'x': return failures ? 1 : 0;
        }
        if (write(out, &answer, sizeof answer) != (ssize_t)sizeof answer) return 2;
    }
    return 3;
}

static int req_fd, ans_fd;
static int ask(char op, HPSS h, int target_pid, int target_fd) {
    Request r = {op, h, target_pid, target_fd};
    int answer = -100;
    if (write(req_fd, &r, sizeof r) != (ssize_t)sizeof r) return -101;
    if (read(ans_fd, &answer, sizeof answer) != (ssize_t)sizeof answer) return -102;
    return answer;
}

static int tracer_of(pid_t pid) {
    char path[64], line[256];
    int t = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "TracerPid: %d", &t) == 1) break;
    fclose(f);
    return t;
}

int main(void) {
    /* The target: blocked in read(cmd) during the captures, exits 42 when told. */
    int cmdp[2];
    if (pipe(cmdp)) return 2;
    pid_t target = fork();
    if (target == 0) {
        char b;
        close(cmdp[1]);
        if (read(cmdp[0], &b, 1) != 1) _exit(11);
        _exit(42);
    }
    close(cmdp[0]);

    /* The receiver. */
    int reqp[2], ansp[2];
    if (pipe(reqp) || pipe(ansp)) return 2;
    pid_t recv = fork();
    if (recv == 0) {
        close(reqp[1]);
        close(ansp[0]);
        close(cmdp[1]);
        _exit(receiver(reqp[0], ansp[1]));
    }
    close(reqp[0]);
    close(ansp[1]);
    req_fd = reqp[1];
    ans_fd = ansp[0];
    usleep(20000); /* let both block in read() */
    int target_fd = cmdp[0]; /* the number the target reads from */
    HANDLE tproc = (HANDLE)(intptr_t)syscall(SYS_pidfd_open, target, 0);
    HANDLE rproc = (HANDLE)(intptr_t)syscall(SYS_pidfd_open, recv, 0);
    CHECK((intptr_t)tproc >= 0 && (intptr_t)rproc >= 0);
    int recv_fds = ask('n', NULL, 0, 0);
    CHECK(recv_fds > 0);

    HPSS snap = NULL;
    PSS_CAPTURE_FLAGS flags = PSS_CAPTURE_THREADS | PSS_CAPTURE_THREAD_CONTEXT | PSS_CAPTURE_HANDLES |
                              PSS_CAPTURE_HANDLE_NAME_INFORMATION | PSS_CAPTURE_VA_SPACE |
                              PSS_CAPTURE_VA_CLONE;
    EXPECT(PssCaptureSnapshot(tproc, flags, CONTEXT_ALL, &snap), ERROR_SUCCESS);

    /* ---- Into the receiver; it queries and walks; a remote free ends it there. */
    HPSS there = NULL;
    EXPECT(PssDuplicateSnapshot((HANDLE)-1, snap, rproc, &there, PSS_DUPLICATE_NONE), ERROR_SUCCESS);
    CHECK(there != NULL && there != snap);
    CHECK(ask('n', NULL, 0, 0) == recv_fds + 1);
    CHECK(ask('q', there, (int)target, target_fd) == 0);
    CHECK(ask('q', there, (int)target, target_fd) == 0); /* again, from its cache */
    /* The handle is the receiver's: here it names nothing. */
    PSS_PROCESS_INFORMATION pi;
    EXPECT(PssQuerySnapshot(there, PSS_QUERY_PROCESS_INFORMATION, &pi, sizeof pi), ERROR_INVALID_HANDLE);
    EXPECT(PssFreeSnapshot(rproc, there), ERROR_SUCCESS);
    CHECK(ask('g', there, 0, 0) == ERROR_INVALID_HANDLE);
    CHECK(ask('n', NULL, 0, 0) == recv_fds);
    EXPECT(PssFreeSnapshot(rproc, there), ERROR_INVALID_HANDLE);
    /* Our snapshot is untouched, its clone included. */
    EXPECT(PssQuerySnapshot(snap, PSS_QUERY_PROCESS_INFORMATION, &pi, sizeof pi), ERROR_SUCCESS);
    PSS_VA_CLONE_INFORMATION ci;
    EXPECT(PssQuerySnapshot(snap, PSS_QUERY_VA_CLONE_INFORMATION, &ci, sizeof ci), ERROR_SUCCESS);

    /* ---- The receiver frees its own copy. */
    EXPECT(PssDuplicateSnapshot((HANDLE)-1, snap, rproc, &there, PSS_DUPLICATE_NONE), ERROR_SUCCESS);
    CHECK(ask('f', there, 0, 0) == ERROR_SUCCESS);
    CHECK(ask('f', there, 0, 0) == ERROR_INVALID_HANDLE);
    CHECK(ask('n', NULL, 0, 0) == recv_fds);

    /* ---- CLOSE_SOURCE into the receiver, then pulled back with CLOSE_SOURCE. */
    EXPECT(PssDuplicateSnapshot((HANDLE)-1, snap, rproc, &there, PSS_DUPLICATE_CLOSE_SOURCE), ERROR_SUCCESS);
    EXPECT(PssQuerySnapshot(snap, PSS_QUERY_PROCESS_INFORMATION, &pi, sizeof pi), ERROR_INVALID_HANDLE);
    CHECK(ask('q', there, (int)target, target_fd) == 0);
    HPSS back = NULL;
    EXPECT(PssDuplicateSnapshot(rproc, there, (HANDLE)-1, &back, PSS_DUPLICATE_CLOSE_SOURCE), ERROR_SUCCESS);
    CHECK(ask('g', there, 0, 0) == ERROR_INVALID_HANDLE);
    CHECK(ask('n', NULL, 0, 0) == recv_fds);
    EXPECT(PssQuerySnapshot(back, PSS_QUERY_PROCESS_INFORMATION, &pi, sizeof pi), ERROR_SUCCESS);
    CHECK(pi.ProcessId == (DWORD)target);
    PSS_THREAD_INFORMATION ti;
    EXPECT(PssQuerySnapshot(back, PSS_QUERY_THREAD_INFORMATION, &ti, sizeof ti), ERROR_SUCCESS);
    CHECK(ti.ThreadsCaptured == 1);
    /* Duplicated again from here into the receiver, and from the receiver into itself. */
    EXPECT(PssDuplicateSnapshot((HANDLE)-1, back, rproc, &there, PSS_DUPLICATE_NONE), ERROR_SUCCESS);
    HPSS twice = NULL;
    EXPECT(PssDuplicateSnapshot(rproc, there, rproc, &twice, PSS_DUPLICATE_NONE), ERROR_SUCCESS);
    CHECK(twice != there);
    CHECK(ask('q', twice, (int)target, target_fd) == 0);
    CHECK(ask('f', there, 0, 0) == ERROR_SUCCESS);
    CHECK(ask('q', twice, (int)target, target_fd) == 0);
    EXPECT(PssFreeSnapshot(rproc, twice), ERROR_SUCCESS);
    CHECK(ask('n', NULL, 0, 0) == recv_fds);
    EXPECT(PssFreeSnapshot((HANDLE)-1, back), ERROR_SUCCESS);
    EXPECT(PssFreeSnapshot((HANDLE)-1, back), ERROR_INVALID_HANDLE);

    /* ---- Handles that look like snapshot memfds but are not. */
    HPSS fake0 = (HPSS)(uintptr_t)0x7000000100000000ull; /* fd 0: a pipe */
    HPSS fake1 = (HPSS)(uintptr_t)0x7000000100000001ull; /* fd 1 */
    EXPECT(PssFreeSnapshot(rproc, fake0), ERROR_INVALID_HANDLE);
    CHECK(ask('f', fake1, 0, 0) == ERROR_INVALID_HANDLE);
    CHECK(ask('g', fake0, 0, 0) == ERROR_INVALID_HANDLE);
    CHECK(ask('n', NULL, 0, 0) == recv_fds); /* nothing closed */
    EXPECT(PssQuerySnapshot(fake1, PSS_QUERY_PROCESS_INFORMATION, &pi, sizeof pi), ERROR_INVALID_HANDLE);
    EXPECT(PssFreeSnapshot((HANDLE)-1, fake1), ERROR_INVALID_HANDLE);
    CHECK(fcntl(1, F_GETFD) >= 0);
    /* A snapshot captured here lives in our memory: another process cannot take it. */
    EXPECT(PssCaptureSnapshot(tproc, PSS_CAPTURE_THREADS, 0, &snap), ERROR_SUCCESS);
    EXPECT(PssDuplicateSnapshot(rproc, snap, (HANDLE)-1, &back, PSS_DUPLICATE_NONE), ERROR_NOT_SUPPORTED);
    EXPECT(PssDuplicateSnapshot((HANDLE)-1, snap, (HANDLE)(intptr_t)12345, &back, PSS_DUPLICATE_NONE),
           ERROR_INVALID_HANDLE);
    EXPECT(PssFreeSnapshot((HANDLE)-1, snap), ERROR_SUCCESS);

    /* ---- Neither child was harmed: untraced, and each ends by itself. */
    CHECK(tracer_of(recv) == 0 && tracer_of(target) == 0);
    int status = 0;
    if (ask('x', NULL, 0, 0) != -102) failures++; /* it exits without answering */
    CHECK(waitpid(recv, &status, 0) == recv);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (write(cmdp[1], "x", 1) != 1) return 6;
    CHECK(waitpid(target, &status, 0) == target);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 42);

    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    puts("duplicate ok");
    return 0;
}
