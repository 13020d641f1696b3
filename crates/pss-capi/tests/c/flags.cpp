// Every PSS enumeration used the way Windows C++ code uses it: flag enumerations combined
// with the SDK's operators (|, &, ^, ~, |=, &=, ^=), classes passed by name, and all of it
// against a live capture of this process. Compiled as C++17 with warnings as errors.
#include "processsnapshot.h"

#include <cstdio>
#include <unistd.h>

static_assert(sizeof(PSS_DUPLICATE_FLAGS) == 4 && sizeof(PSS_HANDLE_FLAGS) == 4 &&
                  sizeof(PSS_PROCESS_FLAGS) == 4 && sizeof(PSS_THREAD_FLAGS) == 4,
              "flag enumerations are 32-bit");
static_assert((PSS_HANDLE_HAVE_TYPE | PSS_HANDLE_HAVE_NAME) == PSS_HANDLE_FLAGS(3), "|");
static_assert((~PSS_THREAD_FLAGS_TERMINATED & PSS_THREAD_FLAGS_TERMINATED) ==
                  PSS_THREAD_FLAGS_NONE,
              "~ and &");

static int failures;
#define CHECK(c)                                                                           \
    do {                                                                                   \
        if (!(c)) {                                                                        \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s (last: %s)\n", __FILE__, __LINE__, \
                         #c, PssLinuxLastErrorMessage());                                  \
            failures++;                                                                    \
        }                                                                                  \
    } while (0)

int main() {
    PSS_CAPTURE_FLAGS capture = PSS_CAPTURE_THREADS | PSS_CAPTURE_HANDLES;
    capture |= PSS_CAPTURE_HANDLE_NAME_INFORMATION | PSS_CAPTURE_HANDLE_BASIC_INFORMATION;
    capture |= PSS_CAPTURE_HANDLE_TRACE | PSS_CREATE_MEASURE_PERFORMANCE;
    HPSS snap = nullptr;
    CHECK(PssCaptureSnapshot(reinterpret_cast<HANDLE>(-1), capture, CONTEXT_ALL, &snap) ==
          ERROR_SUCCESS);

    PSS_QUERY_INFORMATION_CLASS query = PSS_QUERY_PROCESS_INFORMATION;
    PSS_PROCESS_INFORMATION pi;
    CHECK(PssQuerySnapshot(snap, query, &pi, sizeof pi) == ERROR_SUCCESS);
    PSS_PROCESS_FLAGS pflags = pi.Flags;
    pflags &= ~PSS_PROCESS_FLAGS_PROTECTED;
    CHECK((pflags & PSS_PROCESS_FLAGS_FROZEN) == PSS_PROCESS_FLAGS_NONE);
    CHECK(pi.ProcessId == static_cast<DWORD>(getpid()));

    HPSSWALK marker = nullptr;
    CHECK(PssWalkMarkerCreate(nullptr, &marker) == ERROR_SUCCESS);
    PSS_WALK_INFORMATION_CLASS walk = PSS_WALK_THREADS;
    PSS_THREAD_ENTRY te;
    int threads = 0;
    while (PssWalkSnapshot(snap, walk, marker, &te, sizeof te) == ERROR_SUCCESS) {
        PSS_THREAD_FLAGS tflags = te.Flags;
        tflags ^= PSS_THREAD_FLAGS_TERMINATED;
        CHECK((tflags & PSS_THREAD_FLAGS_TERMINATED) == PSS_THREAD_FLAGS_TERMINATED);
        threads++;
    }
    CHECK(threads >= 1);

    walk = PSS_WALK_HANDLES;
    CHECK(PssWalkMarkerSeekToBeginning(marker) == ERROR_SUCCESS);
    PSS_HANDLE_ENTRY he;
    int named = 0;
    PSS_HANDLE_FLAGS wanted = PSS_HANDLE_HAVE_TYPE;
    wanted |= PSS_HANDLE_HAVE_NAME;
    while (PssWalkSnapshot(snap, walk, marker, &he, sizeof he) == ERROR_SUCCESS) {
        if ((he.Flags & wanted) == wanted) named++;
        PSS_OBJECT_TYPE object = he.ObjectType;
        CHECK(object >= PSS_OBJECT_TYPE_UNKNOWN && object <= PSS_OBJECT_TYPE_SEMAPHORE);
    }
    CHECK(named >= 3);  // stdin, stdout, stderr at least

    HPSS copy = nullptr;
    PSS_DUPLICATE_FLAGS d = PSS_DUPLICATE_NONE;
    d |= PSS_DUPLICATE_CLOSE_SOURCE;
    CHECK(PssDuplicateSnapshot(reinterpret_cast<HANDLE>(-1), snap, reinterpret_cast<HANDLE>(-1),
                               &copy, d) == ERROR_SUCCESS);
    CHECK(PssQuerySnapshot(snap, query, &pi, sizeof pi) == ERROR_INVALID_HANDLE);
    CHECK(PssWalkMarkerFree(marker) == ERROR_SUCCESS);
    CHECK(PssFreeSnapshot(reinterpret_cast<HANDLE>(-1), copy) == ERROR_SUCCESS);
    if (failures) return 1;
    std::printf("flags ok\n");
    return 0;
}
