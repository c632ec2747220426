# Copyright 2026 The bevformer_ros Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
Give memory that was freed back to the operating system (glibc's `malloc_trim`).

glibc keeps freed blocks in its heaps (one arena per thread that allocated) for reuse; buffers of a
larger image size, once freed, stay resident and RSS does not come back after the size changes
back. By default glibc also moves its mmap threshold (up to 32 MiB) and its trim threshold (up to
64 MiB) each time a large mapped block is freed, so which buffers come from a heap, and what RSS
keeps after a size change, depend on the allocation history.

`pin_malloc_thresholds` (the node, at start) fixes both at the values that movement ends at:
tensors under 32 MiB are reused from the heap, and a heap's top is not given back on every free.
Lower values map or trim and re-fault each intermediate tensor of every forward pass, a page fault
per 4 KiB each time: a 512 KiB mmap threshold made the tiny model's forward 1.8x as long.
When the image size changes, `shrink_heaps(True)` lowers the trim threshold to glibc's default
while the buffers of the old size are freed (`malloc_trim` returns free pages inside every heap,
but the free top of a thread's heap goes back only on a free that finds it over the threshold),
and `shrink_heaps(False)` pins it again. Without a pin, and elsewhere (musl, macOS, Windows), all
of it is a no-op but `release_freed_memory`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers in glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES  # what glibc pairs with it when it moves both
SHRINK_TRIM_THRESHOLD_BYTES = 128 * 1024  # glibc's DEFAULT_TRIM_THRESHOLD

_pinned_trim_bytes: list[int] = []  # the pinned trim threshold, once pinned (process-wide state)


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc':
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def pin_malloc_thresholds(
    mmap_bytes: int = MMAP_THRESHOLD_BYTES, trim_bytes: int = TRIM_THRESHOLD_BYTES
) -> bool:
    """Map blocks from `mmap_bytes` up, trim a heap top beyond `trim_bytes`; True if taken."""
    libc = _glibc()
    if libc is None:
        return False
    taken = bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_bytes)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, trim_bytes)
    )
    _pinned_trim_bytes[:] = [trim_bytes] if taken else []
    return taken


def shrink_heaps(enabled: bool) -> bool:
    """Give heap tops back on every free (True) or pin the threshold again; True if it moved."""
    libc = _glibc()
    if libc is None or not _pinned_trim_bytes:
        return False  # unpinned glibc moves its thresholds itself: setting one would stop that
    trim_bytes = SHRINK_TRIM_THRESHOLD_BYTES if enabled else _pinned_trim_bytes[0]
    return bool(libc.mallopt(M_TRIM_THRESHOLD, trim_bytes))


def release_freed_memory() -> bool:
    """Return freed heap pages to the OS; True when glibc gave some back."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
