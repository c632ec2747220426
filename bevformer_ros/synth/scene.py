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
A deterministic driving scene: the road, the ego trajectory and the actors, queried at any time.

`Scene.create(seed, duration)` draws everything from one numpy Generator, so one seed gives one
scene. `Scene.ego_pose(t)` is base_link in the world (odom) frame; `Scene.world_boxes(t)` are the
actors as world cuboids (for the renderer) and `Scene.ground_truth(t, lidar2ego)` the same boxes as
the model outputs them: `[x, y, z_bottom, w, l, h, yaw, vx, vy]` in LIDAR_TOP,
heading = -yaw - pi/2, velocity absolute (m/s) expressed in LIDAR_TOP, as in the nuScenes
annotations.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

from bevformer_ros.core.calibration import Extrinsics
from bevformer_ros.synth.actors import Actor, EGO_LANE_D, populate
from bevformer_ros.synth.road import Road
import numpy as np

BEV_RANGE_M = (
    51.2  # ground truth keeps boxes whose centre is inside the official BEV grid (+-51.2 m)
)
DIFF_STEP_S = 1e-3  # central differences for velocities and the yaw rate


@dataclass(frozen=True)
class EgoState:
    """base_link in the world frame at time t."""

    x: float
    y: float
    yaw: float  # rad, heading of base_link +x
    velocity_world: np.ndarray  # [2] m/s
    yaw_rate: float  # rad/s

    @property
    def speed(self) -> float:
        return float(np.hypot(*self.velocity_world))

    def matrix(self) -> np.ndarray:
        """[4, 4] world <- base_link."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return np.array(
            [[c, -s, 0.0, self.x], [s, c, 0.0, self.y], [0.0, 0.0, 1.0, 0.0], [0, 0, 0, 1.0]]
        )


@dataclass(frozen=True)
class WorldBoxes:
    """Actors as upright cuboids in the world frame; N rows each."""

    centers: np.ndarray  # [N, 3] box centre (m), z = h / 2 (on the ground)
    sizes_wlh: np.ndarray  # [N, 3]
    headings: np.ndarray  # [N] rad about +z, the direction of l
    velocities: np.ndarray  # [N, 2] m/s
    colors: np.ndarray  # [N, 3] uint8
    labels: np.ndarray  # [N] int64, index into NUSCENES_CLASSES
    instance_ids: np.ndarray  # [N] int64, the actor's index in the scene


@dataclass(frozen=True)
class GroundTruth:
    boxes: np.ndarray  # [K, 9] [x, y, z_bottom, w, l, h, yaw, vx, vy] in LIDAR_TOP
    labels: np.ndarray  # [K] int64
    instance_ids: np.ndarray  # [K] int64


def extrinsics_matrix(extrinsics: Extrinsics) -> np.ndarray:
    """[4, 4] outer <- inner of a calibration `Extrinsics` (p_outer = R p_inner + t)."""
    T = np.eye(4)
    T[:3, :3] = extrinsics.rotation
    T[:3, 3] = extrinsics.translation
    return T


def wrap_angle(a: np.ndarray) -> np.ndarray:
    """Angles in [-pi, pi)."""
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


@dataclass(frozen=True)
class Scene:
    seed: int
    road: Road
    ego_s0: float
    ego_speed: float  # mean speed, m/s
    ego_speed_swing: float  # amplitude of the speed variation, m/s
    ego_speed_period: float  # s
    actors: tuple[Actor, ...]

    @classmethod
    def create(cls, seed: int, duration: float) -> Scene:
        rng = np.random.default_rng(seed)
        road = Road(
            amplitude=float(rng.uniform(6.0, 14.0)),
            wavelength=float(rng.uniform(200.0, 320.0)),
            phase=float(rng.uniform(0.0, 2 * np.pi)),
        )
        speed = float(rng.uniform(7.0, 10.0))
        swing, period = float(rng.uniform(0.3, 1.0)), float(rng.uniform(12.0, 24.0))
        actors = tuple(populate(rng, 0.0, speed, duration))
        return cls(seed, road, 0.0, speed, swing, period, actors)

    # ------------------------------------------------------------------ ego
    def _ego_s(self, t: float) -> float:
        omega = 2 * np.pi / self.ego_speed_period
        return (
            self.ego_s0
            + self.ego_speed * t
            + self.ego_speed_swing / omega * (1.0 - math.cos(omega * t))
        )

    def _ego_xyh(self, t: float) -> tuple[float, float, float]:
        x, y, heading = self.road.pose(self._ego_s(t), EGO_LANE_D)
        return float(x), float(y), float(heading)

    def ego_pose(self, t: float) -> EgoState:
        x, y, yaw = self._ego_xyh(t)
        x0, y0, yaw0 = self._ego_xyh(t - DIFF_STEP_S)
        x1, y1, yaw1 = self._ego_xyh(t + DIFF_STEP_S)
        velocity = np.array([x1 - x0, y1 - y0]) / (2 * DIFF_STEP_S)
        return EgoState(x, y, yaw, velocity, float(wrap_angle(yaw1 - yaw0)) / (2 * DIFF_STEP_S))

    # ------------------------------------------------------------------ actors
    def _actor_xyh(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = np.array([a.s0 + a.speed * t for a in self.actors])  # [N]
        d = np.array([a.d for a in self.actors])
        x, y, heading = self.road.pose(s, d)
        return x, y, heading + np.array([a.heading_offset for a in self.actors])

    def world_boxes(self, t: float) -> WorldBoxes:
        x, y, heading = self._actor_xyh(t)
        x0, y0, _ = self._actor_xyh(t - DIFF_STEP_S)
        x1, y1, _ = self._actor_xyh(t + DIFF_STEP_S)
        # [N, 3]
        sizes = np.array([a.size_wlh for a in self.actors], dtype=np.float64).reshape(-1, 3)
        return WorldBoxes(
            centers=np.stack([x, y, sizes[:, 2] / 2], axis=1),
            sizes_wlh=sizes,
            headings=wrap_angle(heading),
            velocities=np.stack([x1 - x0, y1 - y0], axis=1) / (2 * DIFF_STEP_S),
            colors=np.array([a.color for a in self.actors], dtype=np.uint8).reshape(-1, 3),
            labels=np.array([a.label for a in self.actors], dtype=np.int64),
            instance_ids=np.arange(len(self.actors), dtype=np.int64),
        )

    def world_from_lidar(self, t: float, lidar2ego: Extrinsics) -> np.ndarray:
        """[4, 4] world <- LIDAR_TOP at time t."""
        return self.ego_pose(t).matrix() @ extrinsics_matrix(lidar2ego)

    def ground_truth(
        self, t: float, lidar2ego: Extrinsics, bev_range: float = BEV_RANGE_M
    ) -> GroundTruth:
        """
        Return the ground truth of actors whose centre lies in the BEV range.

        Boxes are in LIDAR_TOP (model convention).
        """
        boxes = self.world_boxes(t)
        lidar_from_world = np.linalg.inv(self.world_from_lidar(t, lidar2ego))
        R, tr = lidar_from_world[:3, :3], lidar_from_world[:3, 3]
        centers = boxes.centers @ R.T + tr  # [N, 3]
        directions = (
            np.stack(
                [np.cos(boxes.headings), np.sin(boxes.headings), np.zeros(len(boxes.headings))],
                axis=1,
            )
            @ R.T
        )  # [N, 3]
        heading = np.arctan2(directions[:, 1], directions[:, 0])
        velocity = (
            np.concatenate([boxes.velocities, np.zeros((len(boxes.velocities), 1))], axis=1) @ R.T
        )
        size = boxes.sizes_wlh  # [N, 3] w, l, h
        gt = np.concatenate(
            [
                centers[:, :2],
                centers[:, 2:] - size[:, 2:] / 2,
                size,
                wrap_angle(-heading - np.pi / 2)[:, None],
                velocity[:, :2],
            ],
            axis=1,
        )  # [N, 9]
        keep = (np.abs(centers[:, 0]) <= bev_range) & (np.abs(centers[:, 1]) <= bev_range)
        return GroundTruth(gt[keep], boxes.labels[keep], boxes.instance_ids[keep])
