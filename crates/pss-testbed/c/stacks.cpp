// A C++ call chain for stack tests: a method and a template instance, demangled as gdb
// shows them. Announces `tid cpp TID`, then `ready`, and blocks in read().
#include <cstdio>
#include <unistd.h>
#include <sys/syscall.h>

namespace pss_test {

volatile int sink;

__attribute__((noinline)) void block_in_read() {
    char b;
    if (read(0, &b, 1) < 0) _exit(4);
    sink++;
}

template <typename T> __attribute__((noinline)) void templated(T value) {
    block_in_read();
    sink += static_cast<int>(value);
}

struct Widget {
    __attribute__((noinline)) void method() {
        templated<long>(7);
        sink++;
    }
};

}  // namespace pss_test

int main() {
    std::printf("tid cpp %ld\nready\n", static_cast<long>(syscall(SYS_gettid)));
    std::fflush(stdout);
    pss_test::Widget w;
    w.method();
    return 0;
}
