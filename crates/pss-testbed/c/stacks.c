/* A target with known call chains for stack tests, built several ways (with and without
 * frame pointers, -O0 and -O2, stripped). Each thread announces `tid NAME TID`, then blocks
 * in read() on a pipe nobody writes; `ready` once every thread is blocked. Commands on
 * stdin: `exit` (or end of input).
 *
 * Threads:
 *   chain      chain_outer -> chain_middle -> chain_inner (always inlined) -> read
 *   signal     signal_victim -> raise(SIGUSR1) -> on_usr1 (the handler) -> read
 *   deep       recurse(DEPTH) with a 4 KiB frame each -> read (deeper than a stack copy)
 *   main       main -> read(stdin)
 *   spin       (with the argument `spin`) spin_outer -> spin_inner, which never blocks:
 *              a thread that is always running
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef DEPTH
#define DEPTH 200
#endif

static int block_fd;
static volatile int sink;
/* The threads' tids, set by each before it announces itself. */
static volatile long tids[3];

#define NOINLINE __attribute__((noinline))
#define ALWAYS_INLINE __attribute__((always_inline)) inline

static void say(const char *what) {
    char line[64];
    int n = snprintf(line, sizeof line, "tid %s %ld\n", what, (long)syscall(SYS_gettid));
    if (write(1, line, (size_t)n) < 0) _exit(3);
}

/* Blocks for good; the extra arithmetic keeps the callers from being tail calls. */
NOINLINE static void block_here(void) {
    char b;
    if (read(block_fd, &b, 1) < 0) _exit(4);
    sink++;
}

static ALWAYS_INLINE void chain_inner(void) {
    block_here();
    sink++;
}

NOINLINE void chain_middle(void) {
    chain_inner();
    sink++;
}

NOINLINE void chain_outer(void) {
    chain_middle();
    sink++;
}

static void *chain_thread(void *arg) {
    (void)arg;
    tids[0] = (long)syscall(SYS_gettid);
    say("chain");
    chain_outer();
    return NULL;
}

static void on_usr1(int sig) {
    (void)sig;
    block_here();
}

NOINLINE void signal_victim(void) {
    raise(SIGUSR1);
    sink++;
}

static void *signal_thread(void *arg) {
    (void)arg;
    tids[1] = (long)syscall(SYS_gettid);
    say("signal");
    signal_victim();
    return NULL;
}

NOINLINE int recurse(int n) {
    volatile char frame[4096];
    frame[0] = (char)n;
    if (n == 0) {
        block_here();
        return frame[0];
    }
    return recurse(n - 1) + frame[0];
}

NOINLINE static void spin_inner(void) {
    for (;;) sink++;
}

NOINLINE void spin_outer(void) {
    spin_inner();
    sink++;
}

static volatile int spin_said;

static void *spin_thread(void *arg) {
    (void)arg;
    say("spin");
    spin_said = 1;
    spin_outer();
    return NULL;
}

static void *deep_thread(void *arg) {
    (void)arg;
    tids[2] = (long)syscall(SYS_gettid);
    say("deep");
    recurse(DEPTH);
    return NULL;
}

/* Whether thread `tid` of this process sleeps in read(). */
static int blocked(long tid) {
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/syscall", tid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int ok = fgets(buf, sizeof buf, f) && atoi(buf) == SYS_read;
    fclose(f);
    return ok;
}

int main(int argc, char **argv) {
    int p[2];
    if (pipe(p)) return 2;
    block_fd = p[0];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    setvbuf(stdout, NULL, _IONBF, 0);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 8 << 20);
    pthread_t t[3];
    void *(*fns[3])(void *) = {chain_thread, signal_thread, deep_thread};
    for (int i = 0; i < 3; i++)
        if (pthread_create(&t[i], &attr, fns[i], NULL)) return 2;
    pthread_t spinner;
    int spin = argc > 1 && strcmp(argv[1], "spin") == 0;
    if (spin && pthread_create(&spinner, &attr, spin_thread, NULL)) return 2;
    say("main");
    /* Every thread in read(). */
    for (;;) {
        int all = 1;
        for (int i = 0; i < 3; i++) all = all && tids[i] && blocked(tids[i]);
        if (all && (!spin || spin_said)) break;
        usleep(1000);
    }
    if (write(1, "ready\n", 6) < 0) return 3;
    char cmd[64];
    ssize_t n;
    while ((n = read(0, cmd, sizeof cmd)) > 0) {
        if (n >= 4 && memcmp(cmd, "exit", 4) == 0) break;
    }
    return 0;
}
