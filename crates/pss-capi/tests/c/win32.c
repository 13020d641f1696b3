/* Windows code that gets its process HANDLEs the Windows way — OpenProcess, GetCurrentProcess,
 * CloseHandle, GetLastError from the header — against a child and against itself:
 * - a capture through OpenProcess's handle, freed with GetCurrentProcess();
 * - handles are close-on-exec unless inheritable was asked for, and CloseHandle closes them;
 * - the failures Windows code checks for: a pid with no process, a thread's id, pid 0 —
 *   NULL and ERROR_INVALID_PARAMETER — and a second CloseHandle, ERROR_INVALID_HANDLE;
 * - CloseHandle never closes what OpenProcess did not return: not the library's own
 *   descriptors (a capture still works after it was handed every fd number), not a
 *   descriptor that took the number of a handle the caller closed with close(2);
 * - with stdin closed, OpenProcess does not return fd 0, which would read as NULL. */
#define _GNU_SOURCE
#include "processsnapshot.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "check.h"

static DWORD threads_of(HANDLE process) {
    HPSS snap = NULL;
    EXPECT(PssCaptureSnapshot(process, PSS_CAPTURE_THREADS, 0, &snap), ERROR_SUCCESS);
    PSS_THREAD_INFORMATION ti = {0};
    EXPECT(PssQuerySnapshot(snap, PSS_QUERY_THREAD_INFORMATION, &ti, sizeof ti), ERROR_SUCCESS);
    EXPECT(PssFreeSnapshot(GetCurrentProcess(), snap), ERROR_SUCCESS);
    return ti.ThreadsCaptured;
}

static int fd_of(HANDLE h) { return (int)(intptr_t)h; }

static void handles_of_a_child(pid_t child) {
    HANDLE h = OpenProcess(PROCESS_ALL_ACCESS, FALSE, (DWORD)child);
    CHECK(h != NULL);
    CHECK(threads_of(h) == 1);
    CHECK(fcntl(fd_of(h), F_GETFD) & FD_CLOEXEC);
    HANDLE inherited = OpenProcess(PROCESS_QUERY_INFORMATION | PROCESS_VM_READ, TRUE, (DWORD)child);
    CHECK(inherited != NULL && !(fcntl(fd_of(inherited), F_GETFD) & FD_CLOEXEC));
    CHECK(CloseHandle(inherited) == TRUE);
    CHECK(CloseHandle(h) == TRUE);
    CHECK(fcntl(fd_of(h), F_GETFD) == -1);
    CHECK(CloseHandle(h) == FALSE);
    CHECK(GetLastError() == ERROR_INVALID_HANDLE);
}

static void the_calling_process(void) {
    CHECK(threads_of(GetCurrentProcess()) == 1);
    CHECK(CloseHandle(GetCurrentProcess()) == TRUE);
    HANDLE self = OpenProcess(PROCESS_ALL_ACCESS, FALSE, (DWORD)getpid());
    CHECK(self != NULL && threads_of(self) == 1);
    CHECK(CloseHandle(self) == TRUE);
}

static pid_t thread_tid;
static void *report_tid(void *arg) {
    (void)arg;
    __atomic_store_n(&thread_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_SEQ_CST);
    pause();
    return NULL;
}

static void refused(DWORD pid, const char *why) {
    CHECK(OpenProcess(PROCESS_ALL_ACCESS, FALSE, pid) == NULL);
    CHECK(GetLastError() == ERROR_INVALID_PARAMETER);
    CHECK(strstr(PssLinuxLastErrorMessage(), why) != NULL);
}

static void what_cannot_be_opened(pid_t gone) {
    refused((DWORD)gone, "no process has id");
    refused(0, "no process has id");
    refused(0xFFFFFFFFu, "no process has id");
    pthread_t t;
    pthread_create(&t, NULL, report_tid, NULL);
    while (!__atomic_load_n(&thread_tid, __ATOMIC_SEQ_CST)) usleep(1000);
    refused((DWORD)thread_tid, "thread");
}

static void nothing_else_is_closed(pid_t child) {
    /* Every fd number, the library's own engine socket among them. */
    for (intptr_t fd = 0; fd < 256; fd++) {
        CHECK(CloseHandle((HANDLE)fd) == FALSE);
    }
    CHECK(GetLastError() == ERROR_INVALID_HANDLE);
    CHECK(threads_of(GetCurrentProcess()) == 2); /* the engine still answers */
    /* A handle closed with close(2), its number taken by a pipe. */
    HANDLE h = OpenProcess(PROCESS_ALL_ACCESS, FALSE, (DWORD)child);
    int n = fd_of(h);
    close(n);
    int p[2];
    if (pipe(p) || dup2(p[0], n) != n) abort();
    CHECK(CloseHandle(h) == FALSE && GetLastError() == ERROR_INVALID_HANDLE);
    CHECK(fcntl(n, F_GETFD) != -1);
    close(n);
    close(p[0]);
    close(p[1]);
}

static void stdin_closed(pid_t child) {
    int saved = dup(0);
    close(0);
    HANDLE h = OpenProcess(PROCESS_ALL_ACCESS, FALSE, (DWORD)child);
    CHECK(h != NULL && fd_of(h) > 0);
    CHECK(threads_of(h) == 1);
    CHECK(CloseHandle(h) == TRUE);
    dup2(saved, 0);
    close(saved);
}

int main(void) {
    pid_t child = fork();
    if (child == 0) {
        for (;;) pause();
    }
    handles_of_a_child(child);
    the_calling_process();
    stdin_closed(child);
    pid_t gone = fork();
    if (gone == 0) _exit(0);
    waitpid(gone, NULL, 0);
    what_cannot_be_opened(gone);
    nothing_else_is_closed(child);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    if (failures) return 1;
    printf("win32 ok\n");
    return 0;
}
