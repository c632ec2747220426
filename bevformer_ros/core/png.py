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

"""Write RGB pictures as PNG with zlib alone (no imaging library needed)."""

from __future__ import annotations

from pathlib import Path
import struct
import zlib

import numpy as np

SIGNATURE = b'\x89PNG\r\n\x1a\n'


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', crc)


def encode_png(rgb: np.ndarray, level: int = 6) -> bytes:
    """PNG bytes of a uint8 [H, W, 3] RGB array (8-bit truecolour, no filtering)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f'encode_png needs uint8 [H, W, 3], got {rgb.dtype} {rgb.shape}')
    height, width, _ = rgb.shape
    # each row: filter byte 0 ('None'), then pixels
    rows = np.zeros((height, 1 + width * 3), dtype=np.uint8)
    rows[:, 1:] = rgb.reshape(height, width * 3)
    header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)  # 8 bit, colour type 2 (RGB)
    return (
        SIGNATURE
        + _chunk(b'IHDR', header)
        + _chunk(b'IDAT', zlib.compress(rows.tobytes(), level))
        + _chunk(b'IEND', b'')
    )


def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_png(np.ascontiguousarray(rgb)))
    return path
