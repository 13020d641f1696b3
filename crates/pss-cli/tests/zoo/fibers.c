/* fibers: every thread of this process runs on a coroutine stack carved out of one malloc
 * block (ucontext's makecontext/swapcontext, as fiber libraries and green threads do). The
 * stacks are 16 KiB and adjacent; the 16 KiB of the block below the lowest one are a canary.
 *
 * - The main thread reads its commands on fiber 0, blocked in read() about 1 KiB above
 *   that fiber's bottom (it runs each command back on its own stack);
 * - two threads sit on fibers 1 and 2, blocked in read() of a pipe nobody writes, the same
 *   way;
 * - a third thread switches between fibers 3 and 4 as fast as it can, each checking the
 *   other's arithmetic (a load that is stopped at any instruction, stack pointer anywhere).
 *
 * Each blocked fiber fills the array that takes up most of its stack with a pattern.
 * Prints `pid`, `ready`; commands: `check` → `ok` or `BAD WHAT OFFSET`, `exit`. */
#include "zoo.h"

#include <pthread.h>
#include <ucontext.h>

#define STACK 16384
#define CANARY 16384
#define FIBERS 5
/* The blocked fibers' arrays: all of the stack but the last ~1.3 KiB. */
#define PAD (STACK - 1400)

static unsigned char *block;
static ucontext_t fiber[FIBERS], home[FIBERS];
static volatile unsigned char *pads[3];
static char command[64];
static volatile int bad_pingpong;

static unsigned char *stack_of(int i) { return block + CANARY + (size_t)i * STACK; }

static unsigned char pattern(int fib, size_t i) { return (unsigned char)(fib * 37 + i * 11 + 5); }

/* Fills this fiber's array, then reads lines from `fd` (fiber 0: each one back to the main
 * thread's own stack to be run there). Never returns. */
static void blocked(int fib, int fd) {
    volatile unsigned char pad[PAD];
    for (size_t i = 0; i < PAD; i++)
        pad[i] = pattern(fib, i);
    pads[fib] = pad;
    for (;;) {
        size_t n = 0;
        char c;
        for (;;) {
            ssize_t r = read(fd, &c, 1);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                c = '\n';
                strcpy(command, "exit");
                n = 4;
            }
            if (c == '\n')
                break;
            if (n + 1 < sizeof command)
                command[n++] = c;
        }
        command[n] = 0;
        swapcontext(&fiber[fib], &home[fib]);
    }
}

static void start_fiber(int fib, void (*fn)(void), int argc, int a, int b) {
    must(getcontext(&fiber[fib]) == 0, "getcontext");
    fiber[fib].uc_stack.ss_sp = stack_of(fib);
    fiber[fib].uc_stack.ss_size = STACK;
    fiber[fib].uc_link = NULL;
    makecontext(&fiber[fib], fn, argc, a, b);
}

static void *blocked_thread(void *arg) {
    int fib = (int)(intptr_t)arg;
    int p[2];
    must(pipe(p) == 0, "pipe");
    start_fiber(fib, (void (*)(void))blocked, 2, fib, p[0]);
    swapcontext(&home[fib], &fiber[fib]);
    return NULL;
}

static uint64_t shared_value;

/* Fibers 3 and 4: each steps a generator, hands over, and checks what the other did. */
static void pingpong(int me, int other) {
    uint64_t expect = shared_value;
    for (;;) {
        if (shared_value != expect)
            bad_pingpong = 1;
        shared_value = shared_value * 6364136223846793005ULL + 1442695040888963407ULL + me;
        expect = shared_value * 6364136223846793005ULL + 1442695040888963407ULL + other;
        swapcontext(&fiber[me], &fiber[other]);
    }
}

static void *pingpong_thread(void *arg) {
    (void)arg;
    start_fiber(3, (void (*)(void))pingpong, 2, 3, 4);
    start_fiber(4, (void (*)(void))pingpong, 2, 4, 3);
    /* Fiber 4 runs first once fiber 3 hands over; prime its expectation. */
    swapcontext(&home[3], &fiber[3]);
    return NULL;
}

/* `ok`, or the first byte out of place. */
static void check(void) {
    for (size_t i = 0; i < CANARY; i++)
        if (block[i] != (unsigned char)(0xC5 ^ i)) {
            say("BAD canary %zu", i);
            return;
        }
    for (int f = 0; f < 3; f++)
        for (size_t i = 0; i < PAD; i++)
            if (pads[f][i] != pattern(f, i)) {
                say("BAD fiber%d %zu", f, i);
                return;
            }
    if (bad_pingpong) {
        say("BAD pingpong 0");
        return;
    }
    say("ok");
}

int main(void) {
    say("pid %d", getpid());
    block = malloc(CANARY + (size_t)FIBERS * STACK);
    must(block != NULL, "malloc");
    for (size_t i = 0; i < CANARY; i++)
        block[i] = (unsigned char)(0xC5 ^ i);
    pthread_t t;
    for (int f = 1; f <= 2; f++)
        must(pthread_create(&t, NULL, blocked_thread, (void *)(intptr_t)f) == 0, "pthread_create");
    must(pthread_create(&t, NULL, pingpong_thread, NULL) == 0, "pthread_create");
    start_fiber(0, (void (*)(void))blocked, 2, 0, 0);
    while (!pads[1] || !pads[2])
        usleep(1000);
    say("stacks %p %p", (void *)stack_of(0), (void *)stack_of(FIBERS));
    say("ready");
    for (;;) {
        swapcontext(&home[0], &fiber[0]);
        if (!strcmp(command, "check"))
            check();
        else if (!strcmp(command, "exit"))
            return 0;
        else
            say("unknown command");
    }
}
