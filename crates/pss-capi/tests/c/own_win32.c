/* A program that brings its own Win32 process functions (a compatibility layer's, say):
 * PSS_NO_WIN32_PROCESS_FUNCTIONS leaves the header's out, so that its own compile. */
#define PSS_NO_WIN32_PROCESS_FUNCTIONS
#include "processsnapshot.h"

#include <stdio.h>

static HANDLE GetCurrentProcess(void) { return (HANDLE)(intptr_t)-1; }
static BOOL CloseHandle(HANDLE h) { return PssLinuxCloseHandle(h); }

int main(void) {
    if (PssFreeSnapshot(GetCurrentProcess(), NULL) != ERROR_INVALID_HANDLE) return 1;
    if (CloseHandle((HANDLE)(intptr_t)7) != FALSE) return 1;
    if (PssLinuxGetLastError() != ERROR_INVALID_HANDLE) return 1;
    printf("own win32 ok\n");
    return 0;
}
