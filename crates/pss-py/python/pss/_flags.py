"""The Windows enumerations and flags, with the Windows values (``processsnapshot.h``)."""

from __future__ import annotations

import enum


class CaptureFlags(enum.IntFlag):
    """``PSS_CAPTURE_FLAGS``: what :func:`pss.capture` captures."""

    NONE = 0
    VA_CLONE = 0x1
    AUXILIARY_PAGES = 0x2
    HANDLES = 0x4
    HANDLE_NAME_INFORMATION = 0x8
    HANDLE_BASIC_INFORMATION = 0x10
    HANDLE_TYPE_SPECIFIC_INFORMATION = 0x20
    HANDLE_TRACE = 0x40
    THREADS = 0x80
    THREAD_CONTEXT = 0x100
    THREAD_CONTEXT_EXTENDED = 0x200
    RESERVED_00000400 = 0x400
    VA_SPACE = 0x800
    VA_SPACE_SECTION_INFORMATION = 0x1000
    IPT_TRACE = 0x2000
    RESERVED_00004000 = 0x4000
    CREATE_BREAKAWAY_OPTIONAL = 0x04000000
    CREATE_BREAKAWAY = 0x08000000
    CREATE_FORCE_BREAKAWAY = 0x10000000
    CREATE_USE_VM_ALLOCATIONS = 0x20000000
    CREATE_MEASURE_PERFORMANCE = 0x40000000
    CREATE_RELEASE_SECTION = 0x80000000


class ContextFlags(enum.IntFlag):
    """``CONTEXT_*`` (AMD64 values): which register groups each thread's context holds.
    Linux names them all in :attr:`pss.Thread.registers` whatever is asked; the flags say
    which groups were asked for."""

    AMD64 = 0x100000
    CONTROL = 0x100001
    INTEGER = 0x100002
    SEGMENTS = 0x100004
    FLOATING_POINT = 0x100008
    DEBUG_REGISTERS = 0x100010
    XSTATE = 0x100040
    FULL = 0x10000B
    ALL = 0x10001F


class ProcessFlags(enum.IntFlag):
    """``PSS_PROCESS_FLAGS``."""

    NONE = 0
    PROTECTED = 0x1
    WOW64 = 0x2
    RESERVED_03 = 0x4
    RESERVED_04 = 0x8
    FROZEN = 0x10


class ThreadFlags(enum.IntFlag):
    """``PSS_THREAD_FLAGS``."""

    NONE = 0
    TERMINATED = 0x1


class HandleFlags(enum.IntFlag):
    """``PSS_HANDLE_FLAGS``: which parts of a handle entry were captured."""

    NONE = 0
    HAVE_TYPE = 0x1
    HAVE_NAME = 0x2
    HAVE_BASIC_INFORMATION = 0x4
    HAVE_TYPE_SPECIFIC_INFORMATION = 0x8


class ObjectType(enum.IntEnum):
    """``PSS_OBJECT_TYPE``: what a descriptor is, in Windows terms (``docs/mapping.md``)."""

    UNKNOWN = 0
    PROCESS = 1
    THREAD = 2
    MUTANT = 3
    EVENT = 4
    SECTION = 5
    SEMAPHORE = 6


class MemoryState(enum.IntEnum):
    """``MEM_COMMIT`` / ``MEM_RESERVE`` / ``MEM_FREE``."""

    COMMIT = 0x1000
    RESERVE = 0x2000
    FREE = 0x10000


class MemoryType(enum.IntEnum):
    """``MEM_PRIVATE`` / ``MEM_MAPPED`` / ``MEM_IMAGE`` (``NONE`` for free regions)."""

    NONE = 0
    PRIVATE = 0x20000
    MAPPED = 0x40000
    IMAGE = 0x1000000
