/* server: the zoo protocol (zoo.h) from a thread per connection, built both dynamically and
 * `-static`. Commands on stdin: `exit`. */
#include "zoo.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

static void *serve(void *arg) {
    int c = (int)(intptr_t)arg;
    char line[64];
    while (read_line(c, line, sizeof line)) {
        char out[64];
        int n = snprintf(out, sizeof out, "%d %llu\n", getpid(),
                         (unsigned long long)zoo_sum(strtoull(line, NULL, 10)));
        if (write(c, out, n) != n)
            break;
    }
    close(c);
    return NULL;
}

static void *accept_loop(void *arg) {
    int l = (int)(intptr_t)arg;
    for (;;) {
        int c = accept(l, NULL, NULL);
        if (c < 0)
            continue;
        pthread_t t;
        if (pthread_create(&t, NULL, serve, (void *)(intptr_t)c) == 0)
            pthread_detach(t);
        else
            close(c);
    }
    return NULL;
}

int main(void) {
    say("pid %d", getpid());
    int l = socket(AF_INET, SOCK_STREAM, 0);
    must(l >= 0, "socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    must(bind(l, (struct sockaddr *)&a, sizeof a) == 0, "bind");
    must(listen(l, 128) == 0, "listen");
    socklen_t len = sizeof a;
    must(getsockname(l, (struct sockaddr *)&a, &len) == 0, "getsockname");
    pthread_t t;
    must(pthread_create(&t, NULL, accept_loop, (void *)(intptr_t)l) == 0, "pthread_create");
    say("port %d", ntohs(a.sin_port));
    say("ready");
    char line[64];
    while (read_line(0, line, sizeof line)) {
        if (!strcmp(line, "exit"))
            break;
        say("unknown command");
    }
    return 0;
}
