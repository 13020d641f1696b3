/* reaper: a supervisor's way of reaping — a thread blocked in wait4(-1, …, __WALL), which
 * collects every child, clone-type children (exit signal 0) included, and reports each as
 * `reaped PID`. The process keeps a child of its own (a sleeping fork) so that the wait
 * always blocks. Commands: `ping` → `pong`, `exit`. Prints `pid`, `child PID`, `ready`. */
#include "zoo.h"

#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

static void *reap(void *arg) {
    (void)arg;
    for (;;) {
        int status;
        pid_t p = wait4(-1, &status, __WALL, NULL);
        if (p > 0)
            say("reaped %d", p);
        else if (errno != EINTR)
            usleep(1000);
    }
    return NULL;
}

int main(void) {
    say("pid %d", getpid());
    pid_t child = fork();
    must(child >= 0, "fork");
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;)
            pause();
    }
    say("child %d", child);
    pthread_t t;
    must(pthread_create(&t, NULL, reap, NULL) == 0, "pthread_create");
    say("ready");
    char line[64];
    while (read_line(0, line, sizeof line)) {
        if (!strcmp(line, "ping"))
            say("pong");
        else if (!strcmp(line, "exit"))
            break;
        else
            say("unknown command");
    }
    kill(child, SIGKILL);
    return 0;
}
