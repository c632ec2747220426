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
Road users and street furniture of the nuScenes detection classes, placed along the road.

Sizes are the nuScenes per-class mean box sizes (w, l, h in m, from the train split's annotations
as commonly quoted, e.g. by the mmdet3d anchor configs), varied by +-10 % per object. Speeds are
typical urban ones. Objects that share a lane line share its speed, so they never drive through
each other; pedestrians walk on the sidewalks, parked vehicles and the construction zone sit in the
right parking lane.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
from dataclasses import dataclass

from bevformer_ros.core.markers import NUSCENES_CLASSES
from bevformer_ros.synth.road import LANE_WIDTH, PARKING_EDGE, SIDEWALK_EDGE
import numpy as np

# class -> mean (w, l, h) in metres
MEAN_SIZE_WLH = {
    'car': (1.95, 4.62, 1.73),
    'truck': (2.52, 6.94, 2.84),
    'construction_vehicle': (2.73, 6.37, 3.19),
    'bus': (2.94, 10.5, 3.47),
    'trailer': (2.92, 12.29, 3.87),
    'barrier': (2.50, 0.49, 0.99),
    'motorcycle': (0.77, 2.11, 1.47),
    'bicycle': (0.61, 1.70, 1.29),
    'pedestrian': (0.67, 0.73, 1.77),
    'traffic_cone': (0.41, 0.41, 1.07),
}

# Body colours (RGB 0-255) to pick from, per class.
PALETTES = {
    'car': (
        (235, 235, 235),
        (160, 163, 168),
        (40, 42, 48),
        (170, 30, 35),
        (35, 70, 150),
        (95, 100, 105),
        (30, 90, 60),
    ),
    'truck': ((240, 240, 240), (40, 80, 160), (225, 180, 40)),
    'construction_vehicle': ((240, 180, 20), (230, 120, 20)),
    'bus': ((200, 40, 40), (40, 140, 80), (235, 235, 235)),
    'trailer': ((200, 200, 205), (120, 125, 130)),
    'barrier': ((235, 235, 230), (230, 110, 30)),
    'motorcycle': ((25, 25, 30), (180, 30, 30)),
    'bicycle': ((30, 30, 35), (40, 90, 160)),
    'pedestrian': ((50, 50, 70), (120, 60, 50), (60, 100, 150), (150, 140, 110)),
    'traffic_cone': ((245, 110, 20),),
}

EGO_LANE_D = -LANE_WIDTH / 2
ONCOMING_LANE_D = LANE_WIDTH / 2
PARKING_D = -(LANE_WIDTH + PARKING_EDGE) / 2  # right parking lane centre
BIKE_LANE_D = (LANE_WIDTH + PARKING_EDGE) / 2  # left bike lane centre
SIDEWALK_D = (PARKING_EDGE + SIDEWALK_EDGE) / 2


@dataclass(frozen=True)
class Actor:
    """One object; its road position at time t (s) is (s0 + speed * t, d)."""

    label: int  # index into NUSCENES_CLASSES
    size_wlh: tuple[float, float, float]
    color: tuple[int, int, int]
    s0: float  # m along the road at t = 0
    d: float  # m left of the centreline
    speed: float  # m/s along +s (negative: towards -s)
    heading_offset: float  # rad added to the road heading (pi: facing -s; pi/2: barrier across)

    @property
    def class_name(self) -> str:
        return NUSCENES_CLASSES[self.label]


def _label(name: str) -> int:
    return NUSCENES_CLASSES.index(name)


def _make(
    rng: np.random.Generator,
    name: str,
    s0: float,
    d: float,
    speed: float,
    heading_offset: float = 0.0,
) -> Actor:
    size = tuple(float(v * rng.uniform(0.9, 1.1)) for v in MEAN_SIZE_WLH[name])  # (w, l, h)
    palette = PALETTES[name]
    color = palette[int(rng.integers(len(palette)))]
    return Actor(
        _label(name), size, color, float(s0), float(d), float(speed), float(heading_offset)
    )


def _lane_column(
    rng: np.random.Generator,
    names: Sequence[str],
    weights: Sequence[float],
    s_from: float,
    s_to: float,
    d: float,
    speed: float,
    gap: tuple[float, float],
) -> list[Actor]:
    """
    Place objects one behind the other on one lane line.

    Bumper gaps are drawn from `gap`; all move at `speed`.
    """
    out: list[Actor] = []
    p = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    s = s_from + rng.uniform(*gap)
    while s < s_to:
        name = names[int(rng.choice(len(names), p=p))]
        actor = _make(rng, name, s, d, speed, 0.0 if speed >= 0 else np.pi)
        length = actor.size_wlh[1]
        # s is where its rear bumper goes
        out.append(dataclasses.replace(actor, s0=s + length / 2))
        s += length + rng.uniform(*gap)
    return out


def populate(
    rng: np.random.Generator, ego_s0: float, ego_speed: float, duration: float
) -> list[Actor]:
    """Actors for an ego that starts at `ego_s0` and drives about `ego_speed * duration` metres."""
    travel = ego_speed * duration
    near, far = ego_s0 - 70.0, ego_s0 + travel + 90.0
    actors: list[Actor] = []
    # Ego lane: the same speed as the ego on average, one gap ahead and one behind kept free.
    actors += _lane_column(
        rng,
        ('car', 'truck', 'bus'),
        (8, 1.5, 1),
        ego_s0 + 14.0,
        far,
        EGO_LANE_D,
        ego_speed,
        (10.0, 30.0),
    )
    actors += [_make(rng, 'car', ego_s0 - rng.uniform(16.0, 30.0), EGO_LANE_D, ego_speed)]
    # Oncoming lane: starts far enough ahead to keep coming for the whole scene.
    oncoming = -rng.uniform(7.0, 12.0)
    actors += _lane_column(
        rng,
        ('car', 'truck', 'bus', 'motorcycle'),
        (8, 1.5, 1, 1),
        near,
        far - oncoming * duration,
        ONCOMING_LANE_D,
        oncoming,
        (12.0, 40.0),
    )
    # Left bike lane, against the ego's direction like the oncoming traffic.
    actors += _lane_column(
        rng,
        ('bicycle', 'motorcycle'),
        (3, 1),
        near,
        far + 5.0 * duration,
        BIKE_LANE_D,
        -rng.uniform(3.0, 5.0),
        (8.0, 40.0),
    )
    actors += _parking_and_works(rng, near, far)
    actors += _pedestrians(rng, near, far)
    return actors


def _parking_and_works(rng: np.random.Generator, near: float, far: float) -> list[Actor]:
    """
    Park vehicles in the right parking lane.

    The row is interrupted by a construction zone ahead of the ego.
    """
    works_from = near + 70.0 + rng.uniform(25.0, 45.0)
    works_to = works_from + 22.0
    parked = [
        a
        for a in _lane_column(
            rng,
            ('car', 'truck', 'trailer', 'car'),
            (6, 1, 0.6, 2),
            near,
            far,
            PARKING_D,
            0.0,
            (1.5, 9.0),
        )
        if not works_from - 8.0 < a.s0 < works_to + 8.0
    ]
    works = [
        _make(
            rng, 'construction_vehicle', works_from + 12.0, PARKING_D, 0.0, rng.uniform(-0.2, 0.2)
        )
    ]
    for s in np.arange(works_from, works_to, 3.0):  # cones along the lane edge
        works.append(_make(rng, 'traffic_cone', s, -LANE_WIDTH - 0.35, 0.0))
    # barriers along the kerb, long side w
    for s in np.arange(works_from - 2.0, works_to + 2.0, 2.7):
        works.append(_make(rng, 'barrier', s, -PARKING_EDGE + 0.4, 0.0, np.pi / 2))
    return parked + works


def _pedestrians(rng: np.random.Generator, near: float, far: float) -> list[Actor]:
    out = []
    for s in np.arange(near, far, 9.0) + rng.uniform(
        0.0, 9.0, size=int(np.ceil((far - near) / 9.0))
    ):
        if rng.uniform() < 0.45:
            continue
        side = 1.0 if rng.uniform() < 0.5 else -1.0
        speed = rng.uniform(0.8, 1.6) * (1.0 if rng.uniform() < 0.5 else -1.0)
        d = side * (SIDEWALK_D + rng.uniform(-1.0, 1.0))
        out.append(_make(rng, 'pedestrian', s, d, speed, 0.0 if speed >= 0 else np.pi))
    return out
