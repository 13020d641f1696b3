/* A program that reaps its children the way supervisors, shells and servers do — a thread
 * blocked in waitpid(-1) and a SIGCHLD handler looping on waitpid(-1, WNOHANG) — captures
 * its own child and itself with a VA clone, many times. Every capture succeeds; the
 * program reaps nothing it did not make and receives no SIGCHLD it did not cause; the
 * child is unharmed (untraced, its read() resumed, its exit status its own). */
#define _GNU_SOURCE
#include "processsnapshot.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define ROUNDS 25

static pid_t child;
static atomic_int sigchlds, foreign, child_status = -1;
static atomic_int last_foreign;

/* Everything this program reaps goes through here. */
static void reaped(pid_t p, int st) {
    if (p == child) {
        atomic_store(&child_status, WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st));
    } else {
        atomic_fetch_add(&foreign, 1);
        atomic_store(&last_foreign, p);
    }
}

static void on_sigchld(int sig) {
    int st, saved = errno;
    pid_t p;
    (void)sig;
    atomic_fetch_add(&sigchlds, 1);
    while ((p = waitpid(-1, &st, WNOHANG)) > 0) reaped(p, st);
    errno = saved;
}

static void *reaper_thread(void *arg) {
    (void)arg;
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, 0);
        if (p > 0)
            reaped(p, st);
        else
            usleep(1000);
    }
    return NULL;
}

/* The number of processes whose parent is `pid`. */
static int children_of(pid_t pid) {
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[300], buf[512];
        int p = atoi(e->d_name), ppid = 0;
        if (p <= 0) continue;
        snprintf(path, sizeof path, "/proc/%d/stat", p);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fgets(buf, sizeof buf, f)) {
            char *close = strrchr(buf, ')');
            if (close && sscanf(close + 2, "%*c %d", &ppid) == 1 && ppid == pid) n++;
        }
        fclose(f);
    }
    if (d) closedir(d);
    return n;
}

static int tracer_of(pid_t pid) {
    char path[64], line[256];
    int t = -1;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "TracerPid: %d", &t) == 1) break;
    if (f) fclose(f);
    return t;
}

static void capture_and_free(HANDLE process, const char *what) {
    HPSS snap = NULL;
    PSS_VA_CLONE_INFORMATION ci;
    DWORD rc = PssCaptureSnapshot(process,
                                  PSS_CAPTURE_VA_CLONE | PSS_CAPTURE_THREADS |
                                      PSS_CAPTURE_THREAD_CONTEXT | PSS_CAPTURE_HANDLES |
                                      PSS_CAPTURE_VA_SPACE,
                                  CONTEXT_ALL, &snap);
    if (rc != ERROR_SUCCESS) {
        fprintf(stderr, "capture of %s: %u\n", what, (unsigned)rc);
        CHECK(rc == ERROR_SUCCESS);
        return;
    }
    CHECK(PssQuerySnapshot(snap, PSS_QUERY_VA_CLONE_INFORMATION, &ci, sizeof ci) ==
          ERROR_SUCCESS);
    CHECK(PssFreeSnapshot((HANDLE)-1, snap) == ERROR_SUCCESS);
}

int main(void) {
    int cmd[2];
    char b = 0;
    if (pipe(cmd)) return 2;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    child = fork();
    if (child == 0) {
        close(cmd[1]);
        /* Blocked here through every capture. */
        _exit(read(cmd[0], &b, 1) == 1 && b == 'x' ? 42 : 3);
    }
    close(cmd[0]);
    pthread_t t;
    pthread_create(&t, NULL, reaper_thread, NULL);
    int cfd = (int)syscall(SYS_pidfd_open, child, 0);
    CHECK(cfd >= 0);

    for (int i = 0; i < ROUNDS; i++) {
        capture_and_free((HANDLE)(intptr_t)cfd, "the child");
        capture_and_free((HANDLE)-1, "this process");
    }

    CHECK(atomic_load(&sigchlds) == 0);
    CHECK(atomic_load(&foreign) == 0);
    if (atomic_load(&foreign)) fprintf(stderr, "reaped foreign pid %d\n", atomic_load(&last_foreign));
    CHECK(children_of(child) == 0);
    CHECK(children_of(getpid()) == 1);
    CHECK(tracer_of(child) == 0);
    CHECK(tracer_of(getpid()) == 0);
    CHECK(atomic_load(&child_status) == -1);

    /* The child's read() resumes: it exits with the status it chose, reaped by us. */
    CHECK(write(cmd[1], "x", 1) == 1);
    for (int i = 0; i < 5000 && atomic_load(&child_status) == -1; i++) usleep(1000);
    CHECK(atomic_load(&child_status) == 42);
    CHECK(atomic_load(&sigchlds) == 1);
    CHECK(atomic_load(&foreign) == 0);

    if (failures) return 1;
    printf("reaper ok\n");
    return 0;
}
