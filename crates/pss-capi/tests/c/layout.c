/* Every size, offset and value of spec §4–7 (x64), checked at compile time. Compiled as C11
 * and as C++17 by tests/c_programs.rs. */
#include "processsnapshot.h"

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
#define SA(c, m) static_assert(c, m)
#define ALIGNOF(t) alignof(t)
#else
#define SA(c, m) _Static_assert(c, m)
#define ALIGNOF(t) _Alignof(t)
#endif
#define SIZE(t, n) SA(sizeof(t) == (n), "sizeof " #t)
#define OFF(t, f, n) SA(offsetof(t, f) == (n), #t "." #f)

SIZE(FILETIME, 8);
SA(ALIGNOF(FILETIME) == 4, "FILETIME is 4-aligned");
SIZE(CONTEXT, 1232);
OFF(CONTEXT, ContextFlags, 48);
OFF(CONTEXT, MxCsr, 52);
OFF(CONTEXT, SegCs, 56);
OFF(CONTEXT, EFlags, 68);
OFF(CONTEXT, Dr0, 72);
OFF(CONTEXT, Dr7, 112);
OFF(CONTEXT, Rax, 120);
OFF(CONTEXT, Rsp, 152);
OFF(CONTEXT, Rdi, 176);
OFF(CONTEXT, R15, 240);
OFF(CONTEXT, Rip, 248);
OFF(CONTEXT, FltSave, 256);
OFF(CONTEXT, Xmm0, 416);
OFF(CONTEXT, VectorRegister, 768);
OFF(CONTEXT, VectorControl, 1184);
OFF(CONTEXT, LastExceptionFromRip, 1224);
SIZE(XMM_SAVE_AREA32, 512);

SIZE(MEMORY_BASIC_INFORMATION, 48);
OFF(MEMORY_BASIC_INFORMATION, AllocationProtect, 16);
OFF(MEMORY_BASIC_INFORMATION, PartitionId, 20);
OFF(MEMORY_BASIC_INFORMATION, RegionSize, 24);
OFF(MEMORY_BASIC_INFORMATION, State, 32);
OFF(MEMORY_BASIC_INFORMATION, Protect, 36);
OFF(MEMORY_BASIC_INFORMATION, Type, 40);

SIZE(PSS_PROCESS_INFORMATION, 704);
OFF(PSS_PROCESS_INFORMATION, ExitStatus, 0);
OFF(PSS_PROCESS_INFORMATION, PebBaseAddress, 8);
OFF(PSS_PROCESS_INFORMATION, AffinityMask, 16);
OFF(PSS_PROCESS_INFORMATION, BasePriority, 24);
OFF(PSS_PROCESS_INFORMATION, ProcessId, 28);
OFF(PSS_PROCESS_INFORMATION, ParentProcessId, 32);
OFF(PSS_PROCESS_INFORMATION, Flags, 36);
OFF(PSS_PROCESS_INFORMATION, CreateTime, 40);
OFF(PSS_PROCESS_INFORMATION, ExitTime, 48);
OFF(PSS_PROCESS_INFORMATION, KernelTime, 56);
OFF(PSS_PROCESS_INFORMATION, UserTime, 64);
OFF(PSS_PROCESS_INFORMATION, PriorityClass, 72);
OFF(PSS_PROCESS_INFORMATION, PeakVirtualSize, 80);
OFF(PSS_PROCESS_INFORMATION, VirtualSize, 88);
OFF(PSS_PROCESS_INFORMATION, PageFaultCount, 96);
OFF(PSS_PROCESS_INFORMATION, PeakWorkingSetSize, 104);
OFF(PSS_PROCESS_INFORMATION, WorkingSetSize, 112);
OFF(PSS_PROCESS_INFORMATION, QuotaPeakPagedPoolUsage, 120);
OFF(PSS_PROCESS_INFORMATION, QuotaPagedPoolUsage, 128);
OFF(PSS_PROCESS_INFORMATION, QuotaPeakNonPagedPoolUsage, 136);
OFF(PSS_PROCESS_INFORMATION, QuotaNonPagedPoolUsage, 144);
OFF(PSS_PROCESS_INFORMATION, PagefileUsage, 152);
OFF(PSS_PROCESS_INFORMATION, PeakPagefileUsage, 160);
OFF(PSS_PROCESS_INFORMATION, PrivateUsage, 168);
OFF(PSS_PROCESS_INFORMATION, ExecuteFlags, 176);
OFF(PSS_PROCESS_INFORMATION, ImageFileName, 180);

SIZE(PSS_VA_CLONE_INFORMATION, 8);
SIZE(PSS_AUXILIARY_PAGES_INFORMATION, 4);
SIZE(PSS_VA_SPACE_INFORMATION, 4);
SIZE(PSS_HANDLE_INFORMATION, 4);
SIZE(PSS_THREAD_INFORMATION, 8);
OFF(PSS_THREAD_INFORMATION, ContextLength, 4);
SIZE(PSS_HANDLE_TRACE_INFORMATION, 16);
OFF(PSS_HANDLE_TRACE_INFORMATION, Size, 8);
SIZE(PSS_PERFORMANCE_COUNTERS, 96);
OFF(PSS_PERFORMANCE_COUNTERS, ThreadsWallClockPeriod, 88);

SIZE(PSS_AUXILIARY_PAGE_ENTRY, 80);
OFF(PSS_AUXILIARY_PAGE_ENTRY, BasicInformation, 8);
OFF(PSS_AUXILIARY_PAGE_ENTRY, CaptureTime, 56);
OFF(PSS_AUXILIARY_PAGE_ENTRY, PageContents, 64);
OFF(PSS_AUXILIARY_PAGE_ENTRY, PageSize, 72);

SIZE(PSS_VA_SPACE_ENTRY, 80);
OFF(PSS_VA_SPACE_ENTRY, AllocationBase, 8);
OFF(PSS_VA_SPACE_ENTRY, AllocationProtect, 16);
OFF(PSS_VA_SPACE_ENTRY, RegionSize, 24);
OFF(PSS_VA_SPACE_ENTRY, State, 32);
OFF(PSS_VA_SPACE_ENTRY, Protect, 36);
OFF(PSS_VA_SPACE_ENTRY, Type, 40);
OFF(PSS_VA_SPACE_ENTRY, TimeDateStamp, 44);
OFF(PSS_VA_SPACE_ENTRY, SizeOfImage, 48);
OFF(PSS_VA_SPACE_ENTRY, ImageBase, 56);
OFF(PSS_VA_SPACE_ENTRY, CheckSum, 64);
OFF(PSS_VA_SPACE_ENTRY, MappedFileNameLength, 68);
OFF(PSS_VA_SPACE_ENTRY, MappedFileName, 72);

SIZE(PSS_HANDLE_ENTRY, 136);
OFF(PSS_HANDLE_ENTRY, Flags, 8);
OFF(PSS_HANDLE_ENTRY, ObjectType, 12);
OFF(PSS_HANDLE_ENTRY, CaptureTime, 16);
OFF(PSS_HANDLE_ENTRY, Attributes, 24);
OFF(PSS_HANDLE_ENTRY, GrantedAccess, 28);
OFF(PSS_HANDLE_ENTRY, HandleCount, 32);
OFF(PSS_HANDLE_ENTRY, PointerCount, 36);
OFF(PSS_HANDLE_ENTRY, PagedPoolCharge, 40);
OFF(PSS_HANDLE_ENTRY, NonPagedPoolCharge, 44);
OFF(PSS_HANDLE_ENTRY, CreationTime, 48);
OFF(PSS_HANDLE_ENTRY, TypeNameLength, 56);
OFF(PSS_HANDLE_ENTRY, TypeName, 64);
OFF(PSS_HANDLE_ENTRY, ObjectNameLength, 72);
OFF(PSS_HANDLE_ENTRY, ObjectName, 80);
OFF(PSS_HANDLE_ENTRY, TypeSpecificInformation, 88);
SA(sizeof(((PSS_HANDLE_ENTRY *)0)->TypeSpecificInformation) == 48, "union size");
SA(sizeof(((PSS_HANDLE_ENTRY *)0)->TypeSpecificInformation.Process) == 40, "process arm");
SA(sizeof(((PSS_HANDLE_ENTRY *)0)->TypeSpecificInformation.Thread) == 48, "thread arm");
SA(sizeof(((PSS_HANDLE_ENTRY *)0)->TypeSpecificInformation.Mutant) == 16, "mutant arm");
SA(sizeof(((PSS_HANDLE_ENTRY *)0)->TypeSpecificInformation.Event) == 8, "event arm");
SA(sizeof(((PSS_HANDLE_ENTRY *)0)->TypeSpecificInformation.Section) == 24, "section arm");
SA(sizeof(((PSS_HANDLE_ENTRY *)0)->TypeSpecificInformation.Semaphore) == 8, "semaphore arm");

SIZE(PSS_THREAD_ENTRY, 120);
OFF(PSS_THREAD_ENTRY, TebBaseAddress, 8);
OFF(PSS_THREAD_ENTRY, ProcessId, 16);
OFF(PSS_THREAD_ENTRY, ThreadId, 20);
OFF(PSS_THREAD_ENTRY, AffinityMask, 24);
OFF(PSS_THREAD_ENTRY, Priority, 32);
OFF(PSS_THREAD_ENTRY, BasePriority, 36);
OFF(PSS_THREAD_ENTRY, LastSyscallFirstArgument, 40);
OFF(PSS_THREAD_ENTRY, LastSyscallNumber, 48);
OFF(PSS_THREAD_ENTRY, CreateTime, 52);
OFF(PSS_THREAD_ENTRY, ExitTime, 60);
OFF(PSS_THREAD_ENTRY, KernelTime, 68);
OFF(PSS_THREAD_ENTRY, UserTime, 76);
OFF(PSS_THREAD_ENTRY, Win32StartAddress, 88);
OFF(PSS_THREAD_ENTRY, CaptureTime, 96);
OFF(PSS_THREAD_ENTRY, Flags, 104);
OFF(PSS_THREAD_ENTRY, SuspendCount, 108);
OFF(PSS_THREAD_ENTRY, SizeOfContextRecord, 110);
OFF(PSS_THREAD_ENTRY, ContextRecord, 112);

SIZE(PSS_THREAD_NAME, 16);
OFF(PSS_THREAD_NAME, ThreadName, 8);
SIZE(PSS_ALLOCATOR, 24);
OFF(PSS_ALLOCATOR, AllocRoutine, 8);
OFF(PSS_ALLOCATOR, FreeRoutine, 16);

/* Values (spec §4, §5.3, §9.7). */
SA(PSS_CAPTURE_VA_SPACE_SECTION_INFORMATION == 0x1000, "flag");
SA(PSS_CREATE_RELEASE_SECTION == 0x80000000u, "flag");
SA(PSS_QUERY_PERFORMANCE_COUNTERS == 7 && PSS_WALK_THREAD_NAME == 4, "classes");
SA(PSS_OBJECT_TYPE_SEMAPHORE == 6 && PSS_PROCESS_FLAGS_FROZEN == 0x10, "enums");
SA(CONTEXT_ALL == 0x10001F && CONTEXT_FULL == 0x10000B && CONTEXT_XSTATE == 0x100040, "ctx");
SA(ERROR_BAD_LENGTH == 24 && ERROR_MORE_DATA == 234 && ERROR_NO_MORE_ITEMS == 259 &&
       ERROR_NOT_FOUND == 1168 && ERROR_INVALID_HANDLE == 6,
   "codes");
SA(sizeof(PSS_CAPTURE_FLAGS) == 4 && sizeof(PSS_QUERY_INFORMATION_CLASS) == 4, "enum sizes");
SA(sizeof(WCHAR) == 2 && sizeof(HANDLE) == 8, "base types");

int main(void) {
    puts("layout ok");
    return 0;
}
