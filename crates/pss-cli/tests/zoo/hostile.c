/* hostile: a process whose names, paths and files are chosen to hurt whoever inspects it.
 *
 *   hostile map PATH…   maps each file (read and execute, as a loaded module), announces
 *                       `mapped ADDR PATH`;
 *   hostile names DIR   names two threads `\e]0;owned\a` and `a\nTID 1 fake`, keeps a memfd
 *                       called `\e[2J\nforged row` and a file `DIR/evil\nname` (open and
 *                       mapped), announces `file PATH-LENGTH`;
 *   hostile longpath DIR  keeps an fd on a file whose path is over 4096 bytes long,
 *                       announces `longfd FD`.
 *
 * Prints `pid`, then what it announces, then `ready`; commands: `ping` → `pong`, `exit`.
 * Built with -z now: nothing is resolved lazily once it is ready. */
#include "zoo.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>

static void *idle(void *arg) {
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static void named_thread(const char *name) {
    pthread_t t;
    must(pthread_create(&t, NULL, idle, NULL) == 0, "pthread_create");
    must(pthread_setname_np(t, name) == 0, "pthread_setname_np");
}

static void map_files(int argc, char **argv) {
    for (int i = 2; i < argc; i++) {
        int fd = open(argv[i], O_RDONLY);
        must(fd >= 0, argv[i]);
        void *p = mmap(NULL, 65536, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
        must(p != MAP_FAILED, "mmap");
        close(fd);
        say("mapped %p %s", p, argv[i]);
    }
}

static void names(const char *dir) {
    named_thread("\x1b]0;owned\x07");
    named_thread("a\nTID 1 fake");
    must(memfd_create("\x1b[2J\nforged row", 0) >= 0, "memfd_create");
    char path[4096];
    snprintf(path, sizeof path, "%s/evil\nname", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    must(fd >= 0, "open evil");
    must(ftruncate(fd, 4096) == 0, "ftruncate");
    must(mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) != MAP_FAILED, "mmap evil");
    say("file %zu", strlen(path));
}

static void longpath(const char *dir) {
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    must(d >= 0, "open dir");
    char part[201];
    memset(part, 'd', 200);
    part[200] = 0;
    for (int i = 0; i < 25; i++) {
        if (mkdirat(d, part, 0755) != 0 && errno != EEXIST)
            must(0, "mkdirat");
        int next = openat(d, part, O_RDONLY | O_DIRECTORY);
        must(next >= 0, "openat dir");
        close(d);
        d = next;
    }
    int fd = openat(d, "file", O_RDWR | O_CREAT, 0644);
    must(fd >= 0, "openat file");
    close(d);
    say("longfd %d", fd);
}

int main(int argc, char **argv) {
    say("pid %d", getpid());
    if (argc >= 2 && !strcmp(argv[1], "map"))
        map_files(argc, argv);
    else if (argc == 3 && !strcmp(argv[1], "names"))
        names(argv[2]);
    else if (argc == 3 && !strcmp(argv[1], "longpath"))
        longpath(argv[2]);
    else {
        say("usage: hostile map PATH… | names DIR | longpath DIR");
        return 2;
    }
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
    return 0;
}
