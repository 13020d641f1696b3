/* The C target of the Python package's tests. It reports what it knows on stdout, one
 * fact a line (`KEY VALUE…`), then `ready`, and waits for commands on stdin.
 *
 *   target idle THREADS   THREADS extra threads named worker-N, each blocked in read();
 *                         one more, named parked, blocked in read() with r12 and r13
 *                         (x19 and x20 on arm64) loaded with known values and rsi (x1)
 *                         pointing at a byte 0xa7 on its stack. Facts: `tid NAME TID`,
 *                         `pattern ADDR LEN` (a 1 MiB buffer filled with a known pattern),
 *                         `file FD PATH POS` (a file it opened and seeked), `regs R12 R13`.
 *                         Commands: `scribble` (overwrites the pattern, answers
 *                         `scribbled`), `exit`.
 *   target vfork MS       a thread vforks a child that sleeps MS ms: that thread cannot be
 *                         stopped meanwhile. Facts: `vforker TID`; `vfork done` after.
 *   target exit-after MS  exits with status 0 after MS ms.
 *   target big MIB        holds MIB MiB of non-zero memory. Commands: `exit`.
 *
 * With PSS_TARGET_NODUMP=1 in its environment it first makes itself non-dumpable, which
 * keeps processes of its user without CAP_SYS_PTRACE from tracing it.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PATTERN_LEN (1 << 20)
#define R12_VALUE 0x505353000000000cULL
#define STACK_BYTE 0xa7 /* the parked thread's byte at rsi (x86_64) */
#define R13_VALUE 0x7079746573740d0dULL

static int block_fd;
static unsigned char *pattern;

static long gettid_(void) { return (long)syscall(SYS_gettid); }

/* The tids of the threads that park, as they announce themselves. */
static long parked_tids[64];
static int nparked;
static pthread_mutex_t tids_lock = PTHREAD_MUTEX_INITIALIZER;

static void note_parked(void) {
    pthread_mutex_lock(&tids_lock);
    if (nparked < 64) parked_tids[nparked++] = gettid_();
    pthread_mutex_unlock(&tids_lock);
}

/* Whether thread `tid` is in the read() system call now. */
static int in_read(long tid) {
    char path[64], line[32];
    snprintf(path, sizeof path, "/proc/self/task/%ld/syscall", tid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int ok = fgets(line, sizeof line, f) && atol(line) == SYS_read;
    fclose(f);
    return ok;
}

static void fact(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fact(const char *fmt, ...) {
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    va_list ap;
    pthread_mutex_lock(&lock);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    pthread_mutex_unlock(&lock);
}

/* Blocks in read() for good; the caller's name is the thread's. */
__attribute__((noinline)) static void park_here(void) {
    char b;
    if (read(block_fd, &b, 1) < 0) _exit(4);
}

static void *worker(void *arg) {
    char name[16];
    snprintf(name, sizeof name, "worker-%d", (int)(intptr_t)arg);
    pthread_setname_np(pthread_self(), name);
    fact("tid %s %ld", name, gettid_());
    note_parked();
    park_here();
    return NULL;
}

/* Loads r12 and r13 (x19 and x20 on arm64) with known values and blocks in read() with
 * them held. */
static void *parked(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "parked");
    fact("tid parked %ld", gettid_());
    fact("regs %#llx %#llx", R12_VALUE, R13_VALUE);
    note_parked();
#if defined(__x86_64__)
    char b = STACK_BYTE; /* on its stack, at the address in rsi while it waits */
    long ret;
    __asm__ volatile("movabs %[v12], %%r12\n\t"
                     "movabs %[v13], %%r13\n\t"
                     "syscall"
                     : "=a"(ret)
                     : "a"((long)SYS_read), "D"((long)block_fd), "S"(&b), "d"(1L),
                       [v12] "i"(R12_VALUE), [v13] "i"(R13_VALUE)
                     : "r12", "r13", "rcx", "r11", "memory");
    (void)ret;
#elif defined(__aarch64__)
    char b = STACK_BYTE; /* on its stack, at the address in x1 while it waits */
    register long x0 __asm__("x0") = block_fd;
    register char *x1 __asm__("x1") = &b;
    register long x2 __asm__("x2") = 1;
    register long x8 __asm__("x8") = SYS_read;
    __asm__ volatile("mov x19, %[v12]\n\t"
                     "mov x20, %[v13]\n\t"
                     "svc #0"
                     : "+r"(x0)
                     : "r"(x1), "r"(x2), "r"(x8), [v12] "r"(R12_VALUE), [v13] "r"(R13_VALUE)
                     : "x19", "x20", "memory");
#else
    park_here();
#endif
    return NULL;
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0) {
    }
}

static void commands(void) {
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        if (strncmp(line, "scribble", 8) == 0) {
            memset(pattern, 0xee, PATTERN_LEN);
            fact("scribbled");
        } else if (strncmp(line, "exit", 4) == 0) {
            break;
        }
    }
}

static int idle(int threads) {
    int p[2];
    if (pipe(p) != 0) return 1;
    block_fd = p[0];
    pattern = malloc(PATTERN_LEN);
    for (int i = 0; i < PATTERN_LEN; i++) pattern[i] = (unsigned char)(i * 7 + 3);
    fact("pattern %p %d", (void *)pattern, PATTERN_LEN);

    char path[] = "/tmp/pss-py-target-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, pattern, 4096) != 4096 || lseek(fd, 1234, SEEK_SET) != 1234) return 1;
    fact("file %d %s %d", fd, path, 1234); /* removed by the tests */

    fact("tid main %ld", gettid_());
    pthread_t t;
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t, NULL, worker, (void *)(intptr_t)i) != 0) return 1;
    if (pthread_create(&t, NULL, parked, NULL) != 0) return 1;
    /* Ready once every thread is blocked in read(). */
    for (int n = 0; n < threads + 1;) {
        sleep_ms(1);
        n = 0;
        for (int i = 0; i < nparked; i++)
            if (in_read(parked_tids[i])) n++;
    }
    fact("ready");
    commands();
    return 0;
}

static void *vforker(void *arg) {
    long ms = (long)(intptr_t)arg;
    fact("vforker %ld", gettid_());
    pid_t child = vfork();
    if (child == 0) {
        struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&t, NULL);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    fact("vfork done");
    return NULL;
}

static int big(long mib) {
    size_t len = (size_t)mib << 20;
    unsigned char *p = malloc(len);
    if (!p) return 1;
    for (size_t i = 0; i < len; i++) p[i] = (unsigned char)(i | 1);
    fact("big %p %zu", (void *)p, len);
    fact("ready");
    commands();
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *nodump = getenv("PSS_TARGET_NODUMP");
    if (nodump && strcmp(nodump, "1") == 0 && prctl(PR_SET_DUMPABLE, 0) != 0) return 1;
    if (strcmp(argv[1], "big") == 0) return big(atol(argv[2]));
    if (strcmp(argv[1], "idle") == 0) return idle(argc > 2 ? atoi(argv[2]) : 2);
    if (strcmp(argv[1], "exit-after") == 0) {
        fact("ready");
        sleep_ms(atol(argv[2]));
        return 0;
    }
    if (strcmp(argv[1], "vfork") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, vforker, (void *)(intptr_t)atol(argv[2]));
        sleep_ms(50);
        fact("ready");
        commands();
        return 0;
    }
    return 2;
}
