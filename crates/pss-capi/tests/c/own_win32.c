/* A program that brings its own Win32 process functions and access rights (a compatibility
 * layer's, say): PSS_NO_WIN32_PROCESS_FUNCTIONS leaves the header's out, so that its own
 * compile without a redefinition (the test builds with -Werror). */
#define PSS_NO_WIN32_PROCESS_FUNCTIONS
#include "processsnapshot.h"

#include <stdio.h>

#define PROCESS_QUERY_INFORMATION 0x0400
#define PROCESS_VM_READ 0x0010
#define PROCESS_ALL_ACCESS (0x000F0000L | 0x00100000L | 0xFFFF)

static HANDLE GetCurrentProcess(void) { return (HANDLE)(intptr_t)-1; }
static BOOL CloseHandle(HANDLE h) { return PssLinuxCloseHandle(h); }

int main(void) {
    if (PssFreeSnapshot(GetCurrentProcess(), NULL) != ERROR_INVALID_HANDLE) return 1;
    if (CloseHandle((HANDLE)(intptr_t)7) != FALSE) return 1;
    if (PssLinuxGetLastError() != ERROR_INVALID_HANDLE) return 1;
    if (PROCESS_ALL_ACCESS != 0x1FFFFF || (PROCESS_QUERY_INFORMATION | PROCESS_VM_READ) != 0x410)
        return 1;
    printf("own win32 ok\n");
    return 0;
}
