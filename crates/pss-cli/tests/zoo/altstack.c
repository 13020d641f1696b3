/* altstack: a thread whose signal handler runs on a small sigaltstack carved out of a
 * malloc block, and which sits inside that handler, blocked in read() about 1 KiB above the
 * alternate stack's bottom; the 16 KiB of the block below it are a canary. The main thread
 * exits (a zombie leader, as after pthread_exit), so the first live thread is the one in the
 * handler. A third thread reads the commands: `check` → `ok` or `BAD WHAT OFFSET`, `exit`.
 * Prints `pid`, `ready`. Built with `-z now`: no lazy binding runs on the small stack. */
#include "zoo.h"

#include <alloca.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>

#define ALT 16384
#define CANARY 16384
static unsigned char *block;
static volatile unsigned char *pad_at;
static size_t pad_len;
static volatile int in_handler;
static int handler_pipe[2];
static pthread_t handler_thread;

static unsigned char pattern(size_t i) { return (unsigned char)(i * 13 + 7); }

/* SIGUSR1: fills an array taking all but ~1.3 KiB of what is left of the alternate stack
 * below the kernel's frame, then waits in read(). */
static void on_usr1(int sig) {
    (void)sig;
    volatile char here;
    size_t left = (size_t)((unsigned char *)&here - (block + CANARY));
    pad_len = left - 1400;
    volatile unsigned char *pad = alloca(pad_len);
    for (size_t i = 0; i < pad_len; i++)
        pad[i] = pattern(i);
    pad_at = pad;
    in_handler = 1;
    char c;
    while (read(handler_pipe[0], &c, 1) != 0)
        ;
}

static void *handler_main(void *arg) {
    (void)arg;
    stack_t ss = {.ss_sp = block + CANARY, .ss_size = ALT, .ss_flags = 0};
    must(sigaltstack(&ss, NULL) == 0, "sigaltstack");
    for (;;)
        pause();
    return NULL;
}

static void check(void) {
    for (size_t i = 0; i < CANARY; i++)
        if (block[i] != (unsigned char)(0x5A ^ i)) {
            say("BAD canary %zu", i);
            return;
        }
    for (size_t i = 0; i < pad_len; i++)
        if (pad_at[i] != pattern(i)) {
            say("BAD handler %zu", i);
            return;
        }
    say("ok");
}

static void *commands(void *arg) {
    (void)arg;
    char line[64];
    while (read_line(0, line, sizeof line)) {
        if (!strcmp(line, "check"))
            check();
        else if (!strcmp(line, "exit"))
            exit(0);
        else
            say("unknown command");
    }
    exit(0);
}

int main(void) {
    say("pid %d", getpid());
    block = malloc(CANARY + ALT);
    must(block != NULL, "malloc");
    for (size_t i = 0; i < CANARY; i++)
        block[i] = (unsigned char)(0x5A ^ i);
    must(pipe(handler_pipe) == 0, "pipe");
    struct sigaction sa = {.sa_flags = SA_ONSTACK | SA_RESTART};
    sa.sa_handler = on_usr1;
    must(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");
    must(pthread_create(&handler_thread, NULL, handler_main, NULL) == 0, "pthread_create");
    usleep(10000);
    pthread_kill(handler_thread, SIGUSR1);
    while (!in_handler)
        usleep(1000);
    pthread_t t;
    must(pthread_create(&t, NULL, commands, NULL) == 0, "pthread_create");
    say("ready");
    pthread_exit(NULL);
}
