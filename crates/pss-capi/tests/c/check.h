/* What the C test programs share: a CHECK that counts failures and says where, with the
 * process (several tests fork) and libpss's reason for its last failure. */
#ifndef PSS_TEST_CHECK_H
#define PSS_TEST_CHECK_H

#include <stdio.h>
#include <unistd.h>

#include "processsnapshot.h"

static int failures;
#define CHECK(c)                                                                          \
    do {                                                                                  \
        if (!(c)) {                                                                       \
            fprintf(stderr, "[%d] %s:%d: CHECK failed: %s (last: %s)\n", (int)getpid(),     \
                    __FILE__, __LINE__, #c, PssLinuxLastErrorMessage());                  \
            failures++;                                                                   \
        }                                                                                 \
    } while (0)
#define EXPECT(call, code) CHECK((call) == (DWORD)(code))

#endif
