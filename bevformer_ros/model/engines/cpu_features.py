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
Which reduced-precision matrix units this CPU has, read from the kernel's /proc/cpuinfo flags.

bf16 autocast on a CPU without bf16 instructions still runs, but emulated and slower than fp32, so
engines and benchmarks ask here before choosing bf16.
"""

from __future__ import annotations

from pathlib import Path

CPUINFO = Path('/proc/cpuinfo')


def cpu_flags(cpuinfo: Path = CPUINFO) -> set[str]:
    """Return the feature flags of the first processor listed (empty off Linux)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith('flags'):
            return set(line.split(':', 1)[1].split())
    return set()


def bf16_features(flags: set[str] | None = None) -> list[str]:
    """Name the bf16 units present: AMX (amx_bf16) and/or AVX512-BF16 (avx512_bf16)."""
    flags = cpu_flags() if flags is None else flags
    found = []
    if 'amx_bf16' in flags:
        found.append('AMX')
    if 'avx512_bf16' in flags:
        found.append('AVX512-BF16')
    return found


def has_bf16(flags: set[str] | None = None) -> bool:
    """Tell whether bf16 matrix maths runs natively on this CPU (AMX or AVX512-BF16)."""
    return bool(bf16_features(flags))
