/* lateseccomp: installs, on command, a seccomp filter on every thread (one that allows
 * everything: what matters is that there is one, which only CAP_SYS_ADMIN may suspend).
 * Commands: `seccomp` → `filtered`, `ping` → `pong`, `exit`. Prints `pid`, `ready`. */
#include "zoo.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static void filter(void) {
    struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog prog = {.len = 1, .filter = allow};
    must(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "PR_SET_NO_NEW_PRIVS");
    must(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) == 0,
         "seccomp");
}

int main(void) {
    say("pid %d", getpid());
    say("ready");
    char line[64];
    while (read_line(0, line, sizeof line)) {
        if (!strcmp(line, "seccomp")) {
            filter();
            say("filtered");
        } else if (!strcmp(line, "ping"))
            say("pong");
        else if (!strcmp(line, "exit"))
            break;
        else
            say("unknown command");
    }
    return 0;
}
