"""How the workflow's jobs allocate memory: freed memory is kept for reuse instead of being returned
to the operating system and faulted in again.

A job allocates and frees many arrays of 1-64 MB (a column of 10^6 features is 8 MB).  glibc's
malloc gives every allocation above its mmap threshold (128 kB at first, growing to at most 32 MB)
fresh pages from the kernel and returns them on free, and numpy asks for transparent huge pages
on large arrays, which the kernel may compact memory to provide; every new array then pays its
page faults again, in the kernel.  On the 2-core test VMs, while other jobs ran, that was a third
to a half of the time of the moderate and normalize steps at 10^6 features (moderate: 3.3-3.6 s of
system time of 9-12 s; 1.1-1.3 s with these settings); on an idle VM moderate gains ~5% (5.2 ->
4.9 s).  The numbers are the same.  :func:`reuse_freed_memory` raises the mmap threshold to glibc's
maximum and the trim threshold to 128 MiB, so freed arrays up to 32 MB are reused from the heap,
and turns numpy's huge-page advice off.  Freed memory kept for reuse raises a job's peak RSS a
little (moderate at 10^6 x 100: 1.49-1.54 -> 1.58-1.60 GB).
"""

from __future__ import annotations

import ctypes
import platform

import numpy as np

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

#: allocations up to this size come from the heap and are reused (glibc's maximum, 64-bit)
MMAP_THRESHOLD = 32 << 20
#: free memory at the top of the heap kept, rather than returned to the system
TRIM_THRESHOLD = 128 << 20
#: extra heap requested at a time when the heap grows
TOP_PAD = 64 << 20


def reuse_freed_memory() -> bool:
    """Set this process' allocator as the module docstring says; True where glibc took the
    settings (False on other C libraries, which are left as they are)."""
    # numpy >= 2 keeps it in numpy._core, numpy 1.26 in numpy.core
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    set_hugepage = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    if set_hugepage is not None:
        set_hugepage(False)
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = [mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD), mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
            mallopt(_M_TOP_PAD, TOP_PAD)]  # fmt: skip
    return all(r == 1 for r in done)
