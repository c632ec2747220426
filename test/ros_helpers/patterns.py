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

"""Known test images, generated the same way in the publisher process and in the test."""

from __future__ import annotations

import numpy as np


def bgr_pattern(height: int, width: int) -> np.ndarray:
    """uint8 [H, W, 3]: every channel different, so a swapped channel or shifted row shows."""
    y, x, c = np.indices((height, width, 3))
    return ((y * 7 + x * 3 + c * 85) % 251).astype(np.uint8)


def mono16_pattern(height: int, width: int) -> np.ndarray:
    """uint16 [H, W] with distinct high and low bytes, so a wrong byte order shows."""
    y, x = np.indices((height, width))
    return ((y * 1009 + x * 257 + 1) % 65521).astype(np.uint16)
