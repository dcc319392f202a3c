"""The process's memory as the memory benchmark reads it, without hooking any allocation.

``rss_bytes`` is what the kernel counts resident. On glibc (>= 2.33), ``heap_mb``
splits the C heap into what is in use (live C allocations and Python's larger
objects) and what is free but still held (fragmentation, or memory not yet
reused), and ``trimmed_rss_mb`` gives the free pages back (``malloc_trim(0)``) and
reads the RSS again. Elsewhere (musl, macOS) those two answer ``None``.
``sqlite_mb`` is what SQLite itself holds (its page caches, mostly: part of the heap
in use), from the library Python's ``sqlite3`` is linked to; ``None`` without one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["heap_mb", "rss_bytes", "sqlite_mb", "trimmed_rss_mb"]

MB = 1024 * 1024


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd",
            "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def _glibc() -> ctypes.CDLL | None:
    # glibc >= 2.33 has mallinfo2; elsewhere (musl, macOS) the heap columns stay empty.
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.mallinfo2.restype = _MallInfo2
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError, TypeError):
        return None
    return libc


_LIBC = _glibc()


def heap_mb() -> tuple[float | None, float | None]:
    """(in use, free) in glibc's heap: every arena's chunks plus the mmapped ones."""
    if _LIBC is None:
        return None, None
    info = _LIBC.mallinfo2()
    return (info.uordblks + info.hblkhd) / MB, info.fordblks / MB


def trimmed_rss_mb() -> float | None:
    if _LIBC is None:
        return None
    _LIBC.malloc_trim(0)
    return rss_bytes() / MB


def _sqlite() -> ctypes.CDLL | None:
    # The library already loaded by the sqlite3 module (dlopen returns that one), so
    # its counter covers every connection of the process, DBOS's included.
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        return None
    try:
        library = ctypes.CDLL(name)
        library.sqlite3_memory_used.restype = ctypes.c_int64
    except (OSError, AttributeError):
        return None
    return library


_SQLITE = _sqlite()


def sqlite_mb() -> float | None:
    if _SQLITE is None:
        return None
    return float(_SQLITE.sqlite3_memory_used()) / MB
