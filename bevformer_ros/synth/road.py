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
A gently winding two-lane road.

Its centreline is y = A sin(2 pi x / wavelength + phase) in the world frame.

Positions on the road are (s, d): arc length `s` along the centreline (m, increasing with x) and
lateral offset `d` to the left of the direction of increasing s (m). Traffic keeps right: the lane
with d in (-3.5, 0) drives towards +s, the one with d in (0, 3.5) towards -s.

Because the centreline is a function of x with a small slope, the (s, d) of an arbitrary ground
point is found from its x alone (one correction step), which keeps the per-pixel road colouring
vectorised and cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LANE_WIDTH = 3.5
PARKING_EDGE = 6.0  # |d| where the parking / bike lane ends and the kerb begins
SIDEWALK_EDGE = 9.0  # |d| where the sidewalk ends and the verge begins


@dataclass(frozen=True)
class Road:
    amplitude: float = 12.0  # m
    wavelength: float = 260.0  # m
    phase: float = 0.0  # rad
    x_range: tuple[float, float] = (-600.0, 3000.0)  # m, extent of the arc-length table
    table_step: float = 0.25  # m
    _x: np.ndarray = field(init=False, repr=False, compare=False)  # [T] table x
    _s: np.ndarray = field(init=False, repr=False, compare=False)  # [T] arc length at _x

    def __post_init__(self) -> None:
        x = np.arange(self.x_range[0], self.x_range[1] + self.table_step, self.table_step)  # [T]
        speed = np.sqrt(1.0 + self.slope(x) ** 2)  # ds/dx
        s = np.concatenate([[0.0], np.cumsum(0.5 * (speed[1:] + speed[:-1]) * self.table_step)])
        s -= np.interp(0.0, x, s)  # s = 0 at x = 0
        object.__setattr__(self, '_x', x)
        object.__setattr__(self, '_s', s)

    def center_y(self, x: np.ndarray) -> np.ndarray:
        return self.amplitude * np.sin(2 * np.pi * x / self.wavelength + self.phase)

    def slope(self, x: np.ndarray) -> np.ndarray:
        """dy/dx of the centreline."""
        k = 2 * np.pi / self.wavelength
        return self.amplitude * k * np.cos(k * x + self.phase)

    def heading_at_x(self, x: np.ndarray) -> np.ndarray:
        return np.arctan(self.slope(x))

    def x_of_s(self, s: np.ndarray) -> np.ndarray:
        return np.interp(s, self._s, self._x)

    def pose(self, s: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World (x, y, heading of +s) of road coordinates (s, d); arrays broadcast."""
        xc = self.x_of_s(np.asarray(s, dtype=np.float64))
        heading = self.heading_at_x(xc)
        d = np.asarray(d, dtype=np.float64)
        return xc - d * np.sin(heading), self.center_y(xc) + d * np.cos(heading), heading

    def road_coordinates(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """
        Approximate (s, d) of world ground points [...].

        Exact on straight stretches, ~cm on curves.
        """
        heading = self.heading_at_x(x)
        d = (y - self.center_y(x)) * np.cos(heading)
        foot = x + d * np.sin(heading)  # x of the centreline point the offset is measured from
        heading = self.heading_at_x(foot)
        d = (y - self.center_y(foot)) / np.cos(heading)
        return np.interp(foot, self._x, self._s), d
