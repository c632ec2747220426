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
