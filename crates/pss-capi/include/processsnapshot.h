/*
 * processsnapshot.h: the Windows Process Snapshotting API (PSS) for Linux, backed by libpss.
 *
 * Self-contained: it defines the Windows types it uses. Names, values and x64 layouts are the
 * Windows SDK's (see docs/capi.md for where Linux differs). Link with -lpss.
 *
 *   HANDLE  a process: a pidfd (cast to HANDLE), or (HANDLE)-1 for the calling process;
 *           OpenProcess and GetCurrentProcess (below) give them as on Windows.
 *   HPSS    a snapshot; HPSSWALK a walk marker. Both are checked against a registry of live
 *           handles: any other value gives ERROR_INVALID_HANDLE.
 *
 * Licensed MIT OR Apache-2.0.
 */
#ifndef PSS_PROCESSSNAPSHOT_H
#define PSS_PROCESSSNAPSHOT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Windows base types ---------------------------------------------------------------- */

#ifndef PSS_NO_WINDOWS_TYPES
typedef uint32_t DWORD;
typedef uint16_t WORD;
typedef uint8_t BYTE;
typedef int32_t LONG;
typedef int32_t BOOL;
typedef uint64_t DWORD64;
typedef uint64_t ULONGLONG;
typedef int64_t LONGLONG;
typedef uintptr_t ULONG_PTR;
typedef uintptr_t SIZE_T;
typedef void *HANDLE;
typedef void *PVOID;
typedef uint16_t WCHAR; /* UTF-16 code unit (not the C wchar_t, which is 32-bit on Linux) */
typedef const WCHAR *PCWSTR;
typedef union _LARGE_INTEGER {
    struct {
        DWORD LowPart;
        LONG HighPart;
    } u;
    LONGLONG QuadPart;
} LARGE_INTEGER;
typedef struct _FILETIME {
    DWORD dwLowDateTime;
    DWORD dwHighDateTime;
} FILETIME;
#endif

#ifndef WINAPI
#define WINAPI
#endif

#define PSS_DECLARE_HANDLE(name) struct name##__ { int unused; }; typedef struct name##__ *name
PSS_DECLARE_HANDLE(HPSS);
PSS_DECLARE_HANDLE(HPSSWALK);

/* ---- Return codes ------------------------------------------------------------------------ */

#define ERROR_SUCCESS 0L
#define ERROR_TOO_MANY_OPEN_FILES 4L
#define ERROR_ACCESS_DENIED 5L
#define ERROR_INVALID_HANDLE 6L
#define ERROR_NOT_ENOUGH_MEMORY 8L
#define ERROR_BAD_LENGTH 24L
#define ERROR_WRITE_FAULT 29L
#define ERROR_NOT_SUPPORTED 50L
#define ERROR_INVALID_PARAMETER 87L
#define ERROR_BROKEN_PIPE 109L
#define ERROR_DISK_FULL 112L
#define ERROR_FILE_TOO_LARGE 223L
#define ERROR_MORE_DATA 234L
#define ERROR_NO_MORE_ITEMS 259L
#define ERROR_PARTIAL_COPY 299L
#define ERROR_NOT_FOUND 1168L
#define ERROR_INTERNAL_ERROR 1359L
#define ERROR_TIMEOUT 1460L

/* ---- Values found in records ---------------------------------------------------------- */

#define STILL_ACTIVE 259
#define PSS_PERF_RESOLUTION 1000000

#define MEM_COMMIT 0x00001000
#define MEM_RESERVE 0x00002000
#define MEM_FREE 0x00010000
#define MEM_PRIVATE 0x00020000
#define MEM_MAPPED 0x00040000
#define MEM_IMAGE 0x01000000

#define PAGE_NOACCESS 0x01
#define PAGE_READONLY 0x02
#define PAGE_READWRITE 0x04
#define PAGE_WRITECOPY 0x08
#define PAGE_EXECUTE 0x10
#define PAGE_EXECUTE_READ 0x20
#define PAGE_EXECUTE_READWRITE 0x40
#define PAGE_EXECUTE_WRITECOPY 0x80
#define PAGE_GUARD 0x100
#define PAGE_NOCACHE 0x200
#define PAGE_WRITECOMBINE 0x400

#define IDLE_PRIORITY_CLASS 0x00000040
#define BELOW_NORMAL_PRIORITY_CLASS 0x00004000
#define NORMAL_PRIORITY_CLASS 0x00000020
#define ABOVE_NORMAL_PRIORITY_CLASS 0x00008000
#define HIGH_PRIORITY_CLASS 0x00000080
#define REALTIME_PRIORITY_CLASS 0x00000100

#if defined(__aarch64__)
/* ---- CONTEXT (ARM64 layout, 912 bytes: ARM64_NT_CONTEXT) -------------------------------- */

#define CONTEXT_ARM64 0x00400000L
#define CONTEXT_CONTROL (CONTEXT_ARM64 | 0x1L)
#define CONTEXT_INTEGER (CONTEXT_ARM64 | 0x2L)
#define CONTEXT_FLOATING_POINT (CONTEXT_ARM64 | 0x4L)
#define CONTEXT_DEBUG_REGISTERS (CONTEXT_ARM64 | 0x8L)
#define CONTEXT_X18 (CONTEXT_ARM64 | 0x10L)
#define CONTEXT_FULL (CONTEXT_CONTROL | CONTEXT_INTEGER | CONTEXT_FLOATING_POINT)
#define CONTEXT_ALL (CONTEXT_FULL | CONTEXT_DEBUG_REGISTERS | CONTEXT_X18)
#define ARM64_MAX_BREAKPOINTS 8
#define ARM64_MAX_WATCHPOINTS 2

typedef union _ARM64_NT_NEON128 {
    __extension__ struct {
        ULONGLONG Low;
        LONGLONG High;
    };
    double D[2];
    float S[4];
    WORD H[8];
    BYTE B[16];
} ARM64_NT_NEON128;

typedef struct __attribute__((aligned(16))) _ARM64_NT_CONTEXT {
    DWORD ContextFlags;
    DWORD Cpsr;
    __extension__ union {
        __extension__ struct {
            DWORD64 X0, X1, X2, X3, X4, X5, X6, X7, X8, X9, X10, X11, X12, X13, X14;
            DWORD64 X15, X16, X17, X18, X19, X20, X21, X22, X23, X24, X25, X26, X27, X28;
            DWORD64 Fp;
            DWORD64 Lr;
        };
        DWORD64 X[31];
    };
    DWORD64 Sp;
    DWORD64 Pc;
    ARM64_NT_NEON128 V[32];
    DWORD Fpcr;
    DWORD Fpsr;
    DWORD Bcr[ARM64_MAX_BREAKPOINTS];
    DWORD64 Bvr[ARM64_MAX_BREAKPOINTS];
    DWORD Wcr[ARM64_MAX_WATCHPOINTS];
    DWORD64 Wvr[ARM64_MAX_WATCHPOINTS];
} ARM64_NT_CONTEXT, CONTEXT, *PCONTEXT;

#else

/* ---- CONTEXT (AMD64 layout, 1232 bytes) ------------------------------------------------- */

#define CONTEXT_AMD64 0x00100000L
#define CONTEXT_CONTROL (CONTEXT_AMD64 | 0x1L)
#define CONTEXT_INTEGER (CONTEXT_AMD64 | 0x2L)
#define CONTEXT_SEGMENTS (CONTEXT_AMD64 | 0x4L)
#define CONTEXT_FLOATING_POINT (CONTEXT_AMD64 | 0x8L)
#define CONTEXT_DEBUG_REGISTERS (CONTEXT_AMD64 | 0x10L)
#define CONTEXT_FULL (CONTEXT_CONTROL | CONTEXT_INTEGER | CONTEXT_FLOATING_POINT)
#define CONTEXT_ALL \
    (CONTEXT_CONTROL | CONTEXT_INTEGER | CONTEXT_SEGMENTS | CONTEXT_FLOATING_POINT | \
     CONTEXT_DEBUG_REGISTERS)
#define CONTEXT_XSTATE (CONTEXT_AMD64 | 0x40L)

typedef struct _M128A {
    ULONGLONG Low;
    LONGLONG High;
} __attribute__((aligned(16))) M128A;

/* The FXSAVE area: Linux's NT_PRFPREG (struct user_fpregs_struct), byte for byte. */
typedef struct _XSAVE_FORMAT {
    WORD ControlWord;
    WORD StatusWord;
    BYTE TagWord;
    BYTE Reserved1;
    WORD ErrorOpcode;
    DWORD ErrorOffset;
    WORD ErrorSelector;
    WORD Reserved2;
    DWORD DataOffset;
    WORD DataSelector;
    WORD Reserved3;
    DWORD MxCsr;
    DWORD MxCsr_Mask;
    M128A FloatRegisters[8];
    M128A XmmRegisters[16];
    BYTE Reserved4[96];
} __attribute__((aligned(16))) XSAVE_FORMAT, XMM_SAVE_AREA32;

typedef struct __attribute__((aligned(16))) _CONTEXT {
    DWORD64 P1Home;
    DWORD64 P2Home;
    DWORD64 P3Home;
    DWORD64 P4Home;
    DWORD64 P5Home;
    DWORD64 P6Home;
    DWORD ContextFlags;
    DWORD MxCsr;
    WORD SegCs;
    WORD SegDs;
    WORD SegEs;
    WORD SegFs;
    WORD SegGs;
    WORD SegSs;
    DWORD EFlags;
    DWORD64 Dr0;
    DWORD64 Dr1;
    DWORD64 Dr2;
    DWORD64 Dr3;
    DWORD64 Dr6;
    DWORD64 Dr7;
    DWORD64 Rax;
    DWORD64 Rcx;
    DWORD64 Rdx;
    DWORD64 Rbx;
    DWORD64 Rsp;
    DWORD64 Rbp;
    DWORD64 Rsi;
    DWORD64 Rdi;
    DWORD64 R8;
    DWORD64 R9;
    DWORD64 R10;
    DWORD64 R11;
    DWORD64 R12;
    DWORD64 R13;
    DWORD64 R14;
    DWORD64 R15;
    DWORD64 Rip;
    __extension__ union {
        XMM_SAVE_AREA32 FltSave;
        __extension__ struct {
            M128A Header[2];
            M128A Legacy[8];
            M128A Xmm0, Xmm1, Xmm2, Xmm3, Xmm4, Xmm5, Xmm6, Xmm7;
            M128A Xmm8, Xmm9, Xmm10, Xmm11, Xmm12, Xmm13, Xmm14, Xmm15;
        };
    };
    M128A VectorRegister[26];
    DWORD64 VectorControl;
    DWORD64 DebugControl;
    DWORD64 LastBranchToRip;
    DWORD64 LastBranchFromRip;
    DWORD64 LastExceptionToRip;
    DWORD64 LastExceptionFromRip;
} CONTEXT, *PCONTEXT;

#endif /* __aarch64__ */

/* ---- MEMORY_BASIC_INFORMATION (x64, 48 bytes) ------------------------------------------ */

typedef struct _MEMORY_BASIC_INFORMATION {
    PVOID BaseAddress;
    PVOID AllocationBase;
    DWORD AllocationProtect;
    WORD PartitionId;
    SIZE_T RegionSize;
    DWORD State;
    DWORD Protect;
    DWORD Type;
} MEMORY_BASIC_INFORMATION;

/* ---- Enumerations ------------------------------------------------------------------------ */

/* A DWORD rather than a C enum: it holds 0x80000000, and C++ code ORs the values. */
typedef DWORD PSS_CAPTURE_FLAGS;
#define PSS_CAPTURE_NONE ((PSS_CAPTURE_FLAGS)0x00000000u)
#define PSS_CAPTURE_VA_CLONE ((PSS_CAPTURE_FLAGS)0x00000001u)
#define PSS_CAPTURE_RESERVED_00000002 ((PSS_CAPTURE_FLAGS)0x00000002u)
#define PSS_CAPTURE_HANDLES ((PSS_CAPTURE_FLAGS)0x00000004u)
#define PSS_CAPTURE_HANDLE_NAME_INFORMATION ((PSS_CAPTURE_FLAGS)0x00000008u)
#define PSS_CAPTURE_HANDLE_BASIC_INFORMATION ((PSS_CAPTURE_FLAGS)0x00000010u)
#define PSS_CAPTURE_HANDLE_TYPE_SPECIFIC_INFORMATION ((PSS_CAPTURE_FLAGS)0x00000020u)
#define PSS_CAPTURE_HANDLE_TRACE ((PSS_CAPTURE_FLAGS)0x00000040u)
#define PSS_CAPTURE_THREADS ((PSS_CAPTURE_FLAGS)0x00000080u)
#define PSS_CAPTURE_THREAD_CONTEXT ((PSS_CAPTURE_FLAGS)0x00000100u)
#define PSS_CAPTURE_THREAD_CONTEXT_EXTENDED ((PSS_CAPTURE_FLAGS)0x00000200u)
#define PSS_CAPTURE_RESERVED_00000400 ((PSS_CAPTURE_FLAGS)0x00000400u)
#define PSS_CAPTURE_VA_SPACE ((PSS_CAPTURE_FLAGS)0x00000800u)
#define PSS_CAPTURE_VA_SPACE_SECTION_INFORMATION ((PSS_CAPTURE_FLAGS)0x00001000u)
#define PSS_CAPTURE_IPT_TRACE ((PSS_CAPTURE_FLAGS)0x00002000u)
#define PSS_CAPTURE_RESERVED_00004000 ((PSS_CAPTURE_FLAGS)0x00004000u)
#define PSS_CREATE_BREAKAWAY_OPTIONAL ((PSS_CAPTURE_FLAGS)0x04000000u)
#define PSS_CREATE_BREAKAWAY ((PSS_CAPTURE_FLAGS)0x08000000u)
#define PSS_CREATE_FORCE_BREAKAWAY ((PSS_CAPTURE_FLAGS)0x10000000u)
#define PSS_CREATE_USE_VM_ALLOCATIONS ((PSS_CAPTURE_FLAGS)0x20000000u)
#define PSS_CREATE_MEASURE_PERFORMANCE ((PSS_CAPTURE_FLAGS)0x40000000u)
#define PSS_CREATE_RELEASE_SECTION ((PSS_CAPTURE_FLAGS)0x80000000u)
/* libpss: auxiliary pages (each thread's stack and TLS page) are captured with bit 0x2. */
#define PSS_CAPTURE_AUXILIARY_PAGES PSS_CAPTURE_RESERVED_00000002

typedef enum {
    PSS_QUERY_PROCESS_INFORMATION = 0,
    PSS_QUERY_VA_CLONE_INFORMATION = 1,
    PSS_QUERY_AUXILIARY_PAGES_INFORMATION = 2,
    PSS_QUERY_VA_SPACE_INFORMATION = 3,
    PSS_QUERY_HANDLE_INFORMATION = 4,
    PSS_QUERY_THREAD_INFORMATION = 5,
    PSS_QUERY_HANDLE_TRACE_INFORMATION = 6,
    PSS_QUERY_PERFORMANCE_COUNTERS = 7
} PSS_QUERY_INFORMATION_CLASS;

typedef enum {
    PSS_WALK_AUXILIARY_PAGES = 0,
    PSS_WALK_VA_SPACE = 1,
    PSS_WALK_HANDLES = 2,
    PSS_WALK_THREADS = 3,
    PSS_WALK_THREAD_NAME = 4
} PSS_WALK_INFORMATION_CLASS;

/* The flag enumerations have a fixed 32-bit type in C++, so that the bitwise operators
 * defined at the end of this header (the SDK's DEFINE_ENUM_FLAG_OPERATORS) stay in range.
 * Their size is 4 in C and in C++ alike. */
#ifdef __cplusplus
#define PSS_FLAG_ENUM enum : unsigned int
#else
#define PSS_FLAG_ENUM enum
#endif

typedef PSS_FLAG_ENUM { PSS_DUPLICATE_NONE = 0x00, PSS_DUPLICATE_CLOSE_SOURCE = 0x01 } PSS_DUPLICATE_FLAGS;

typedef PSS_FLAG_ENUM {
    PSS_HANDLE_NONE = 0x00,
    PSS_HANDLE_HAVE_TYPE = 0x01,
    PSS_HANDLE_HAVE_NAME = 0x02,
    PSS_HANDLE_HAVE_BASIC_INFORMATION = 0x04,
    PSS_HANDLE_HAVE_TYPE_SPECIFIC_INFORMATION = 0x08
} PSS_HANDLE_FLAGS;

typedef enum {
    PSS_OBJECT_TYPE_UNKNOWN = 0,
    PSS_OBJECT_TYPE_PROCESS = 1,
    PSS_OBJECT_TYPE_THREAD = 2,
    PSS_OBJECT_TYPE_MUTANT = 3,
    PSS_OBJECT_TYPE_EVENT = 4,
    PSS_OBJECT_TYPE_SECTION = 5,
    PSS_OBJECT_TYPE_SEMAPHORE = 6
} PSS_OBJECT_TYPE;

typedef PSS_FLAG_ENUM {
    PSS_PROCESS_FLAGS_NONE = 0x00000000,
    PSS_PROCESS_FLAGS_PROTECTED = 0x00000001,
    PSS_PROCESS_FLAGS_WOW64 = 0x00000002,
    PSS_PROCESS_FLAGS_RESERVED_03 = 0x00000004,
    PSS_PROCESS_FLAGS_RESERVED_04 = 0x00000008,
    PSS_PROCESS_FLAGS_FROZEN = 0x00000010
} PSS_PROCESS_FLAGS;

typedef PSS_FLAG_ENUM { PSS_THREAD_FLAGS_NONE = 0x0000, PSS_THREAD_FLAGS_TERMINATED = 0x0001 } PSS_THREAD_FLAGS;

#undef PSS_FLAG_ENUM

/* ---- Query records --------------------------------------------------------------------- */

typedef struct {
    DWORD ExitStatus;
    void *PebBaseAddress;
    ULONG_PTR AffinityMask;
    LONG BasePriority;
    DWORD ProcessId;
    DWORD ParentProcessId;
    PSS_PROCESS_FLAGS Flags;
    FILETIME CreateTime;
    FILETIME ExitTime;
    FILETIME KernelTime;
    FILETIME UserTime;
    DWORD PriorityClass;
    ULONG_PTR PeakVirtualSize;
    ULONG_PTR VirtualSize;
    DWORD PageFaultCount;
    ULONG_PTR PeakWorkingSetSize;
    ULONG_PTR WorkingSetSize;
    ULONG_PTR QuotaPeakPagedPoolUsage;
    ULONG_PTR QuotaPagedPoolUsage;
    ULONG_PTR QuotaPeakNonPagedPoolUsage;
    ULONG_PTR QuotaNonPagedPoolUsage;
    ULONG_PTR PagefileUsage;
    ULONG_PTR PeakPagefileUsage;
    ULONG_PTR PrivateUsage;
    DWORD ExecuteFlags;
    WCHAR ImageFileName[260];
} PSS_PROCESS_INFORMATION;

/* VaCloneHandle: a pidfd of the clone, new at each query; the caller closes it. */
typedef struct {
    HANDLE VaCloneHandle;
} PSS_VA_CLONE_INFORMATION;

typedef struct {
    DWORD AuxPagesCaptured;
} PSS_AUXILIARY_PAGES_INFORMATION;

typedef struct {
    DWORD RegionCount;
} PSS_VA_SPACE_INFORMATION;

typedef struct {
    DWORD HandlesCaptured;
} PSS_HANDLE_INFORMATION;

typedef struct {
    DWORD ThreadsCaptured;
    DWORD ContextLength;
} PSS_THREAD_INFORMATION;

typedef struct {
    HANDLE SectionHandle;
    DWORD Size;
} PSS_HANDLE_TRACE_INFORMATION;

typedef struct {
    uint64_t TotalCycleCount;
    uint64_t TotalWallClockPeriod;
    uint64_t VaCloneCycleCount;
    uint64_t VaCloneWallClockPeriod;
    uint64_t VaSpaceCycleCount;
    uint64_t VaSpaceWallClockPeriod;
    uint64_t AuxPagesCycleCount;
    uint64_t AuxPagesWallClockPeriod;
    uint64_t HandlesCycleCount;
    uint64_t HandlesWallClockPeriod;
    uint64_t ThreadsCycleCount;
    uint64_t ThreadsWallClockPeriod;
} PSS_PERFORMANCE_COUNTERS;

/* ---- Walk entries ---------------------------------------------------------------------- */

typedef struct {
    void *Address;
    MEMORY_BASIC_INFORMATION BasicInformation;
    FILETIME CaptureTime;
    void *PageContents;
    DWORD PageSize;
} PSS_AUXILIARY_PAGE_ENTRY;

typedef struct {
    void *BaseAddress;
    void *AllocationBase;
    DWORD AllocationProtect;
    ULONG_PTR RegionSize;
    DWORD State;
    DWORD Protect;
    DWORD Type;
    DWORD TimeDateStamp;
    DWORD SizeOfImage;
    void *ImageBase;
    DWORD CheckSum;
    WORD MappedFileNameLength;
    const WCHAR *MappedFileName;
} PSS_VA_SPACE_ENTRY;

typedef struct {
    HANDLE Handle;
    PSS_HANDLE_FLAGS Flags;
    PSS_OBJECT_TYPE ObjectType;
    FILETIME CaptureTime;
    DWORD Attributes;
    DWORD GrantedAccess;
    DWORD HandleCount;
    DWORD PointerCount;
    DWORD PagedPoolCharge;
    DWORD NonPagedPoolCharge;
    FILETIME CreationTime;
    WORD TypeNameLength;
    const WCHAR *TypeName;
    WORD ObjectNameLength;
    const WCHAR *ObjectName;
    union {
        struct {
            DWORD ExitStatus;
            void *PebBaseAddress;
            ULONG_PTR AffinityMask;
            LONG BasePriority;
            DWORD ProcessId;
            DWORD ParentProcessId;
            DWORD Flags;
        } Process;
        struct {
            DWORD ExitStatus;
            void *TebBaseAddress;
            DWORD ProcessId;
            DWORD ThreadId;
            ULONG_PTR AffinityMask;
            int Priority;
            int BasePriority;
            void *Win32StartAddress;
        } Thread;
        struct {
            LONG CurrentCount;
            BOOL Abandoned;
            DWORD OwnerProcessId;
            DWORD OwnerThreadId;
        } Mutant;
        struct {
            BOOL ManualReset;
            BOOL Signaled;
        } Event;
        struct {
            void *BaseAddress;
            DWORD AllocationAttributes;
            LARGE_INTEGER MaximumSize;
        } Section;
        struct {
            LONG CurrentCount;
            LONG MaximumCount;
        } Semaphore;
    } TypeSpecificInformation;
} PSS_HANDLE_ENTRY;

typedef struct {
    DWORD ExitStatus;
    void *TebBaseAddress;
    DWORD ProcessId;
    DWORD ThreadId;
    ULONG_PTR AffinityMask;
    int Priority;
    int BasePriority;
    void *LastSyscallFirstArgument;
    WORD LastSyscallNumber;
    FILETIME CreateTime;
    FILETIME ExitTime;
    FILETIME KernelTime;
    FILETIME UserTime;
    void *Win32StartAddress;
    FILETIME CaptureTime;
    PSS_THREAD_FLAGS Flags;
    WORD SuspendCount;
    WORD SizeOfContextRecord;
    PCONTEXT ContextRecord;
} PSS_THREAD_ENTRY;

typedef struct {
    WORD ThreadNameSize;
    PCWSTR ThreadName;
} PSS_THREAD_NAME;

typedef struct {
    void *Context;
    void *(WINAPI *AllocRoutine)(void *Context, DWORD Size);
    void(WINAPI *FreeRoutine)(void *Context, void *Address);
} PSS_ALLOCATOR;

/* ---- Functions ------------------------------------------------------------------------- */

DWORD WINAPI PssCaptureSnapshot(HANDLE ProcessHandle, PSS_CAPTURE_FLAGS CaptureFlags,
                                DWORD ThreadContextFlags, HPSS *SnapshotHandle);
DWORD WINAPI PssFreeSnapshot(HANDLE ProcessHandle, HPSS SnapshotHandle);
DWORD WINAPI PssQuerySnapshot(HPSS SnapshotHandle, PSS_QUERY_INFORMATION_CLASS InformationClass,
                              void *Buffer, DWORD BufferLength);
DWORD WINAPI PssWalkSnapshot(HPSS SnapshotHandle, PSS_WALK_INFORMATION_CLASS InformationClass,
                             HPSSWALK WalkMarkerHandle, void *Buffer, DWORD BufferLength);
DWORD WINAPI PssDuplicateSnapshot(HANDLE SourceProcessHandle, HPSS SnapshotHandle,
                                  HANDLE TargetProcessHandle, HPSS *TargetSnapshotHandle,
                                  PSS_DUPLICATE_FLAGS Flags);
DWORD WINAPI PssWalkMarkerCreate(PSS_ALLOCATOR const *Allocator, HPSSWALK *WalkMarkerHandle);
DWORD WINAPI PssWalkMarkerFree(HPSSWALK WalkMarkerHandle);
DWORD WINAPI PssWalkMarkerGetPosition(HPSSWALK WalkMarkerHandle, ULONG_PTR *Position);
DWORD WINAPI PssWalkMarkerSetPosition(HPSSWALK WalkMarkerHandle, ULONG_PTR Position);
DWORD WINAPI PssWalkMarkerSeekToBeginning(HPSSWALK WalkMarkerHandle);

/* libpss extension: why the calling thread's last PSS call failed, in English ("" after a
 * success). Valid until the thread's next call into libpss. */
const char *PssLinuxLastErrorMessage(void);

/* libpss extension, the Linux counterpart of handing a snapshot to MiniDumpWriteDump: write
 * an ELF core (for gdb, lldb, eu-stack) of a snapshot captured with PSS_CAPTURE_VA_CLONE
 * and PSS_CAPTURE_THREAD_CONTEXT to the open file descriptor FileHandle (cast to HANDLE, as
 * process handles are pidfds), from its current position. CoreDumpFilter: 0 follows the
 * target's own /proc/PID/coredump_filter (as the kernel and gdb do), anything else gives
 * the coredump_filter bits (0x1ff: every mapping). A regular file gets holes for zero
 * pages. Returns ERROR_SUCCESS, or ERROR_INVALID_HANDLE (snapshot or descriptor),
 * ERROR_NOT_FOUND (no VA clone, no contexts), ERROR_INVALID_PARAMETER, ERROR_DISK_FULL,
 * ERROR_FILE_TOO_LARGE, ERROR_BROKEN_PIPE, ERROR_WRITE_FAULT, ERROR_PARTIAL_COPY (the clone
 * is gone). SIGPIPE and SIGXFSZ raised by the write are kept from the calling process. */
DWORD WINAPI PssLinuxWriteCoreDump(HPSS SnapshotHandle, HANDLE FileHandle, DWORD CoreDumpFilter);

/* The MINIDUMP_TYPE values PssLinuxWriteMiniDump acts on, with Windows' values
 * (MiniDumpNormal, MiniDumpWithFullMemory); the other MINIDUMP_TYPE bits are accepted. */
#define PSS_LINUX_MINIDUMP_NORMAL 0x00000000
#define PSS_LINUX_MINIDUMP_WITH_FULL_MEMORY 0x00000002

/* libpss extension: write a minidump (for Breakpad, Crashpad, rust-minidump) of a snapshot
 * with thread contexts to FileHandle: threads, modules with build-ids, each thread's stack
 * (from the VA clone, or from PSS_CAPTURE_AUXILIARY_PAGES without one: a duplicated
 * snapshot works), memory info and the Linux streams. PSS_LINUX_MINIDUMP_WITH_FULL_MEMORY adds
 * every mapping the target's coredump_filter keeps (needs the VA clone). DumpType values
 * are MINIDUMP_TYPE's. Codes as
 * PssLinuxWriteCoreDump. */
DWORD WINAPI PssLinuxWriteMiniDump(HPSS SnapshotHandle, HANDLE FileHandle, DWORD DumpType);

/* ---- Process handles, as Windows code gets them ------------------------------------------
 * libpss extensions behind the Win32 functions below (exported under these names only, so
 * that they never meet another library's OpenProcess):
 *   PssLinuxOpenProcess: a pidfd of process dwProcessId (close-on-exec unless
 *     bInheritHandle), or NULL with the reason for PssLinuxGetLastError:
 *     ERROR_INVALID_PARAMETER (no such process, or a thread's id, as Windows says),
 *     ERROR_ACCESS_DENIED, ERROR_TOO_MANY_OPEN_FILES. dwDesiredAccess is not checked: a
 *     pidfd carries no rights, and whether the process may be traced is decided at capture.
 *   PssLinuxCloseHandle: closes a handle PssLinuxOpenProcess returned; TRUE. (HANDLE)-1 is
 *     left alone (TRUE). Any other value: FALSE, ERROR_INVALID_HANDLE, nothing closed.
 *   PssLinuxGetLastError: the code of the calling thread's last failed libpss call. */
HANDLE WINAPI PssLinuxOpenProcess(DWORD dwDesiredAccess, BOOL bInheritHandle, DWORD dwProcessId);
BOOL WINAPI PssLinuxCloseHandle(HANDLE hObject);
DWORD WINAPI PssLinuxGetLastError(void);

/* Windows' access rights, for OpenProcess calls as written (not checked, see above); left
 * out with the process functions below, whose companions they are. */
#if !defined(PSS_NO_WIN32_PROCESS_FUNCTIONS) && !defined(PSS_NO_WINDOWS_TYPES)
#define PROCESS_TERMINATE 0x0001
#define PROCESS_VM_READ 0x0010
#define PROCESS_DUP_HANDLE 0x0040
#define PROCESS_QUERY_INFORMATION 0x0400
#define PROCESS_QUERY_LIMITED_INFORMATION 0x1000
#define PROCESS_ALL_ACCESS 0x1FFFFF
#endif
#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

/* GetCurrentProcess, OpenProcess, CloseHandle and GetLastError, enough for Windows code to
 * get and release the process HANDLEs the PSS functions take (and the PROCESS_* rights
 * above). Left out with
 * PSS_NO_WIN32_PROCESS_FUNCTIONS, or PSS_NO_WINDOWS_TYPES (a program bringing its own
 * Windows types brings its own functions). */
#if !defined(PSS_NO_WIN32_PROCESS_FUNCTIONS) && !defined(PSS_NO_WINDOWS_TYPES)
static inline HANDLE GetCurrentProcess(void) { return (HANDLE)(intptr_t)-1; }
static inline HANDLE OpenProcess(DWORD dwDesiredAccess, BOOL bInheritHandle, DWORD dwProcessId) {
    return PssLinuxOpenProcess(dwDesiredAccess, bInheritHandle, dwProcessId);
}
static inline BOOL CloseHandle(HANDLE hObject) { return PssLinuxCloseHandle(hObject); }
static inline DWORD GetLastError(void) { return PssLinuxGetLastError(); }
#endif

#ifdef __cplusplus
}

/* What the Windows SDK's DEFINE_ENUM_FLAG_OPERATORS gives C++ code for the flag
 * enumerations: |, &, ^, ~ and the compound assignments (`d |= PSS_DUPLICATE_CLOSE_SOURCE`). */
#define PSS_ENUM_FLAG_OPERATORS(T)                                                           \
    inline constexpr T operator|(T a, T b) { return T(unsigned(a) | unsigned(b)); }          \
    inline constexpr T operator&(T a, T b) { return T(unsigned(a) & unsigned(b)); }          \
    inline constexpr T operator^(T a, T b) { return T(unsigned(a) ^ unsigned(b)); }          \
    inline constexpr T operator~(T a) { return T(~unsigned(a)); }                           \
    inline T &operator|=(T &a, T b) { return a = a | b; }                                   \
    inline T &operator&=(T &a, T b) { return a = a & b; }                                   \
    inline T &operator^=(T &a, T b) { return a = a ^ b; }
PSS_ENUM_FLAG_OPERATORS(PSS_DUPLICATE_FLAGS)
PSS_ENUM_FLAG_OPERATORS(PSS_HANDLE_FLAGS)
PSS_ENUM_FLAG_OPERATORS(PSS_PROCESS_FLAGS)
PSS_ENUM_FLAG_OPERATORS(PSS_THREAD_FLAGS)
#undef PSS_ENUM_FLAG_OPERATORS
#endif

#endif /* PSS_PROCESSSNAPSHOT_H */
