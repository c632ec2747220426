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

"""glibc's malloc thresholds as the node pins them: reused tensors, heaps that shrink on demand."""

import platform
import subprocess
import sys
import textwrap

from bevformer_ros.core.heap_trim import MMAP_THRESHOLD_BYTES
import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc',
    reason='malloc thresholds are glibc settings; elsewhere the calls are no-ops',
)

BLOCK_BYTES = 4 * 1024 * 1024  # an intermediate tensor of the tiny model at 6x400x225
ROUNDS = 64
PAGES_PER_BLOCK = BLOCK_BYTES // 4096


def _minor_faults(pin_args: str) -> int:
    """Page faults of a child that pins the thresholds, then fills and frees a block ROUNDS x."""
    script = textwrap.dedent(f"""
        import resource
        import torch
        from bevformer_ros.core.heap_trim import pin_malloc_thresholds
        assert pin_malloc_thresholds({pin_args})
        torch.ones({BLOCK_BYTES // 4})  # first use: the heap grows once
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range({ROUNDS}):
            block = torch.ones({BLOCK_BYTES // 4})  # float32: BLOCK_BYTES
            del block
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """)
    out = subprocess.run(
        [sys.executable, '-c', script], capture_output=True, text=True, timeout=120, check=True
    )
    return int(out.stdout.split()[-1])


def test_pinned_thresholds_reuse_blocks_instead_of_mapping_them():
    # A block under the threshold comes back from the heap: no fresh pages, no faults per round.
    assert BLOCK_BYTES < MMAP_THRESHOLD_BYTES
    faults = _minor_faults('')
    assert faults < ROUNDS * PAGES_PER_BLOCK // 8, faults


def test_a_low_mmap_threshold_faults_every_page_of_every_block():
    # The probe sees mapping: with the block above the threshold, each round maps fresh zero pages.
    faults = _minor_faults('mmap_bytes=512 * 1024')
    assert faults >= ROUNDS * PAGES_PER_BLOCK // 2, faults


def _rss_after_late_free(shrink: str) -> tuple[float, float]:
    """Grow the heap by 32 MiB, free it after the pin (and `shrink`); MiB (grown, still held)."""
    script = textwrap.dedent(f"""
        import ctypes
        from bevformer_ros.core.heap_trim import pin_malloc_thresholds, shrink_heaps
        libc = ctypes.CDLL('libc.so.6')
        libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
        libc.free.argtypes = [ctypes.c_void_p]

        def rss_mib():
            with open('/proc/self/status') as status:
                line = next(line for line in status if line.startswith('RssAnon:'))
            return int(line.split()[1]) / 1024

        assert pin_malloc_thresholds()
        base = rss_mib()
        blocks = [libc.malloc(4 << 20) for _ in range(8)]  # under the mmap threshold: the heap
        for block in blocks:
            ctypes.memset(block, 1, 4 << 20)
        grown = rss_mib() - base
        {shrink}
        for block in reversed(blocks):  # each free finds the heap top free
            libc.free(block)
        print(grown, rss_mib() - base)
    """)
    out = subprocess.run(
        [sys.executable, '-c', script], capture_output=True, text=True, timeout=120, check=True
    )
    grown, held = out.stdout.split()[-2:]
    return float(grown), float(held)


def test_pinned_heap_keeps_its_free_top_until_asked_to_shrink():
    # Pinned: a freed heap top stays resident (the next forward reuses it without faults) ...
    grown, held = _rss_after_late_free('pass')
    assert grown >= 30.0 and held >= 30.0, (grown, held)
    # ... after an image size change the node shrinks: every free gives the top back.
    grown, held = _rss_after_late_free('assert shrink_heaps(True)')
    assert grown >= 30.0 and held < 2.0, (grown, held)


def test_shrinking_is_a_no_op_without_a_pin():
    # glibc moves unpinned thresholds itself; setting one would stop that for good.
    script = 'from bevformer_ros.core.heap_trim import shrink_heaps; print(shrink_heaps(True))'
    out = subprocess.run(
        [sys.executable, '-c', script], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split()[-1] == 'False'
