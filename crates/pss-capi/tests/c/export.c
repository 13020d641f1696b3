/* The libpss export extension as a C crash reporter uses it: PssLinuxWriteCoreDump and
 * PssLinuxWriteMiniDump of a child and of the calling process itself, into files, and each
 * failure with its Win32 code — a full disk, a file size limit, a closed pipe, a bad
 * descriptor or handle, bad flags, a snapshot without a clone — without the SIGPIPE or
 * SIGXFSZ of the failed write ending this process. */
#define _GNU_SOURCE
#include "processsnapshot.h"

#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* A word the child and this process hold, to be found in their dumps. */
static volatile uint64_t g_mark = 0;

#define FILE_HANDLE(fd) ((HANDLE)(intptr_t)(fd))
#define CAPTURE (PSS_CAPTURE_THREADS | PSS_CAPTURE_THREAD_CONTEXT | PSS_CAPTURE_VA_CLONE | \
                 PSS_CAPTURE_VA_SPACE | PSS_CAPTURE_VA_SPACE_SECTION_INFORMATION)

static void child_main(int cmd, int ack) {
    char b;
    g_mark = 0x4b52414d444c4843ull; /* "CHLDMARK" */
    if (write(ack, "r", 1) != 1) _exit(10);
    if (read(cmd, &b, 1) != 1) _exit(11);
    _exit(42);
}

/* A fresh empty file in /tmp, open for writing (and reading); unlinked at once. */
static int temp_file(void) {
    char path[] = "/tmp/pss-export-c-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) unlink(path);
    return fd;
}

static off_t size_of(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_size : -1;
}

/* The word a core holds at address `addr`, from its PT_LOAD segments; 0 if none holds it. */
static uint64_t core_word_at(int fd, uint64_t addr) {
    Elf64_Ehdr eh;
    if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh) return 0;
    for (int i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        off_t at = (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize);
        if (pread(fd, &ph, sizeof ph, at) != (ssize_t)sizeof ph) return 0;
        if (ph.p_type == PT_LOAD && ph.p_vaddr <= addr && addr + 8 <= ph.p_vaddr + ph.p_filesz) {
            uint64_t w = 0;
            if (pread(fd, &w, 8, (off_t)(ph.p_offset + addr - ph.p_vaddr)) != 8) return 0;
            return w;
        }
    }
    return 0;
}

static int starts_with(int fd, const char *magic, size_t n) {
    char head[8];
    return pread(fd, head, n, 0) == (ssize_t)n && memcmp(head, magic, n) == 0;
}

static int signal_pending(int sig) {
    sigset_t set;
    sigpending(&set);
    return sigismember(&set, sig);
}

/* Every way a write fails, each with its code, this process unharmed. */
static void failures_have_their_codes(HPSS snap) {
    int full = open("/dev/full", O_WRONLY);
    EXPECT(PssLinuxWriteCoreDump(snap, FILE_HANDLE(full), 0), ERROR_DISK_FULL);
    EXPECT(PssLinuxWriteMiniDump(snap, FILE_HANDLE(full), PSS_LINUX_MINIDUMP_WITH_FULL_MEMORY),
           ERROR_DISK_FULL);
    close(full);

    int p[2];
    CHECK(pipe(p) == 0);
    close(p[0]);
    EXPECT(PssLinuxWriteCoreDump(snap, FILE_HANDLE(p[1]), 0), ERROR_BROKEN_PIPE);
    CHECK(!signal_pending(SIGPIPE));
    close(p[1]);

    struct rlimit old, small = {64 * 1024, 0};
    getrlimit(RLIMIT_FSIZE, &old);
    small.rlim_max = old.rlim_max;
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
    int f = temp_file();
    EXPECT(PssLinuxWriteCoreDump(snap, FILE_HANDLE(f), 0), ERROR_FILE_TOO_LARGE);
    CHECK(!signal_pending(SIGXFSZ));
    setrlimit(RLIMIT_FSIZE, &old);
    close(f);

    int ro = open("/proc/self/cmdline", O_RDONLY);
    EXPECT(PssLinuxWriteCoreDump(snap, FILE_HANDLE(ro), 0), ERROR_INVALID_HANDLE);
    close(ro);
    EXPECT(PssLinuxWriteCoreDump(snap, FILE_HANDLE(ro), 0), ERROR_INVALID_HANDLE);
    EXPECT(PssLinuxWriteCoreDump(snap, FILE_HANDLE(-1), 0), ERROR_INVALID_HANDLE);
    f = temp_file();
    EXPECT(PssLinuxWriteCoreDump((HPSS)(uintptr_t)0x1234, FILE_HANDLE(f), 0), ERROR_INVALID_HANDLE);
    EXPECT(PssLinuxWriteCoreDump(snap, FILE_HANDLE(f), 0x400), ERROR_INVALID_PARAMETER);
    EXPECT(PssLinuxWriteMiniDump(snap, FILE_HANDLE(f), 0x80000000u), ERROR_INVALID_PARAMETER);
    CHECK(size_of(f) == 0);
    close(f);
}

/* A core (holding `mark` at &g_mark), a minidump and a full-memory minidump of `snap`. */
static void dumps_hold(HPSS snap, uint64_t mark) {
    int core = temp_file();
    EXPECT(PssLinuxWriteCoreDump(snap, FILE_HANDLE(core), 0), ERROR_SUCCESS);
    CHECK(starts_with(core, "\177ELF", 4));
    uint16_t type = 0;
    CHECK(pread(core, &type, 2, 16) == 2 && type == ET_CORE);
    CHECK(core_word_at(core, (uint64_t)(uintptr_t)&g_mark) == mark);
    close(core);

    int md = temp_file();
    EXPECT(PssLinuxWriteMiniDump(snap, FILE_HANDLE(md), PSS_LINUX_MINIDUMP_NORMAL), ERROR_SUCCESS);
    CHECK(starts_with(md, "MDMP", 4));
    int full = temp_file();
    EXPECT(PssLinuxWriteMiniDump(snap, FILE_HANDLE(full), PSS_LINUX_MINIDUMP_WITH_FULL_MEMORY),
           ERROR_SUCCESS);
    CHECK(size_of(full) > size_of(md) + 64 * 1024);
    close(md);
    close(full);
}

int main(void) {
    int cmdp[2], ackp[2];
    char b;
    if (pipe(cmdp) || pipe(ackp)) return 2;
    pid_t child = fork();
    if (child == 0) {
        close(cmdp[1]);
        close(ackp[0]);
        child_main(cmdp[0], ackp[1]);
    }
    close(cmdp[0]);
    close(ackp[1]);
    if (read(ackp[0], &b, 1) != 1) return 3;
    int pidfd = (int)syscall(SYS_pidfd_open, child, 0);

    /* The child. */
    HPSS snap = NULL;
    EXPECT(PssCaptureSnapshot(FILE_HANDLE(pidfd), CAPTURE, CONTEXT_ALL, &snap), ERROR_SUCCESS);
    dumps_hold(snap, 0x4b52414d444c4843ull);
    failures_have_their_codes(snap);
    EXPECT(PssFreeSnapshot((HANDLE)-1, snap), ERROR_SUCCESS);

    /* Without a clone: no core; a minidump still (no stack memory without auxiliary pages). */
    EXPECT(PssCaptureSnapshot(FILE_HANDLE(pidfd), PSS_CAPTURE_THREADS | PSS_CAPTURE_THREAD_CONTEXT,
                              CONTEXT_ALL, &snap),
           ERROR_SUCCESS);
    int f = temp_file();
    EXPECT(PssLinuxWriteCoreDump(snap, FILE_HANDLE(f), 0), ERROR_NOT_FOUND);
    EXPECT(PssLinuxWriteMiniDump(snap, FILE_HANDLE(f), PSS_LINUX_MINIDUMP_WITH_FULL_MEMORY),
           ERROR_NOT_FOUND);
    EXPECT(PssLinuxWriteMiniDump(snap, FILE_HANDLE(f), PSS_LINUX_MINIDUMP_NORMAL), ERROR_SUCCESS);
    CHECK(starts_with(f, "MDMP", 4));
    close(f);
    EXPECT(PssFreeSnapshot((HANDLE)-1, snap), ERROR_SUCCESS);

    /* This process dumping itself, as a crash reporter does. */
    g_mark = 0x464c4553464c4553ull; /* "SELFSELF" */
    EXPECT(PssCaptureSnapshot((HANDLE)-1, CAPTURE, CONTEXT_ALL, &snap), ERROR_SUCCESS);
    g_mark = 0;
    dumps_hold(snap, 0x464c4553464c4553ull);
    EXPECT(PssFreeSnapshot((HANDLE)-1, snap), ERROR_SUCCESS);

    /* The child was not harmed: it resumes its read() and exits as it means to. */
    if (write(cmdp[1], "x", 1) != 1) return 4;
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 42);
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("export ok\n");
    return 0;
}
