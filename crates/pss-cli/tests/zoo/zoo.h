/* zoo.h: what the zoo's C targets share (crates/pss-cli/tests/zoo.rs builds and runs them).
 *
 * A target prints `pid N`, then what it knows (`port P`, …), then `ready`, one line each,
 * and obeys commands on stdin. Servers answer the zoo protocol on 127.0.0.1: a client sends
 * `N\n` (0 < N <= 1000) and reads `PID SUM\n`, SUM = zoo_sum(N), computed with an
 * allocation of N * 100 words so that the runtime's allocator (and collector) works. */
#ifndef ZOO_H
#define ZOO_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Prints one line and flushes it. */
__attribute__((unused)) static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* Exits 3 naming what failed, when `ok` is false. */
__attribute__((unused)) static void must(int ok, const char *what) {
    if (!ok) {
        say("FAILED %s: %s", what, strerror(errno));
        exit(3);
    }
}

/* The zoo protocol's answer for N: sum of (i * i) % 7919 for i < N * 100. */
__attribute__((unused)) static uint64_t zoo_sum(uint64_t n) {
    uint64_t len = n * 100, sum = 0;
    uint64_t *v = malloc(len * sizeof *v);
    must(v != NULL, "malloc");
    for (uint64_t i = 0; i < len; i++)
        v[i] = (i * i) % 7919;
    for (uint64_t i = 0; i < len; i++)
        sum += v[i];
    free(v);
    return sum;
}

/* Reads one line of at most `cap - 1` bytes from fd into `buf` (NUL-terminated, without
 * the newline); 0 at end of input. */
__attribute__((unused)) static int read_line(int fd, char *buf, size_t cap) {
    size_t n = 0;
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        if (c == '\n')
            break;
        if (n + 1 < cap)
            buf[n++] = c;
    }
    buf[n] = 0;
    return 1;
}

#endif
