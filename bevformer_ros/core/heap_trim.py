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
back. `malloc_trim(0)` returns the free pages of every arena. glibc also raises its mmap threshold
(up to 32 MiB) each time a large mmapped block is freed, after which image-sized buffers come from
the heap and fragment it; `fix_mmap_threshold` pins it so that they are mapped and unmapped whole.
Elsewhere (musl, macOS, Windows) both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform

M_MMAP_THRESHOLD = -3  # mallopt parameter number in glibc's malloc.h
MMAP_THRESHOLD_BYTES = 512 * 1024  # a 320x180 rgb8 image and up are mapped on their own


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


def fix_mmap_threshold(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Serve blocks from `threshold_bytes` up by mmap, always; True when glibc took it."""
    libc = _glibc()
    return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold_bytes)) if libc is not None else False


def release_freed_memory() -> bool:
    """Return freed heap pages to the OS; True when glibc gave some back."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
