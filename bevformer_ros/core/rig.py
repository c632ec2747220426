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
Camera rig YAML (config/nuscenes_rig.yaml) → a validated `Rig`.

A rig gives, per camera, K at its image size and the camera → reference-frame extrinsics, either
directly (`sensor2lidar`) or as camera → base (`sensor2ego`) plus the rig-level `lidar2ego`
(reference → base). Rotations are quaternions (w, x, y, z), as nuScenes writes them, or 3x3
matrices. See the shipped file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bevformer_ros.core.calibration import (
    CalibrationError,
    check_intrinsics,
    Extrinsics,
    extrinsics_from_matrix,
    extrinsics_from_quaternion,
    lidar2img_stack,
)
import numpy as np
import yaml

# sensor2lidar and sensor2ego given together must describe the same mounting; the shipped file
# rounds the derived values to 12 decimals, a typo is orders of magnitude larger.
CONSISTENCY_ATOL = 1e-6


class RigError(CalibrationError):
    """A rig file that cannot be used; the message names the file and the offending key."""


@dataclass(frozen=True)
class RigCamera:
    name: str
    frame_id: str
    K: np.ndarray  # [3, 3] float64, pixels of an image of `image_size`
    image_size: tuple[int, int]  # (width, height)
    sensor2lidar: Extrinsics  # camera optical frame → reference frame


@dataclass(frozen=True)
class Rig:
    reference_frame: str
    base_frame: str
    nominal_image_size: tuple[int, int]  # (width, height)
    lidar2ego: Extrinsics | None  # reference frame → base frame
    cameras: tuple[RigCamera, ...]

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cameras)

    def camera(self, name: str) -> RigCamera:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise RigError(f'camera {name!r} is not in the rig; it has {list(self.camera_names)}')

    def lidar2img(
        self, image_scale: float = 1.0, names: Sequence[str] | None = None
    ) -> np.ndarray:
        """[num_cams, 4, 4] float64 `lidar2img` in the order of `names` (default: the rig's)."""
        cams = [self.camera(n) for n in (names or self.camera_names)]
        return lidar2img_stack([c.K for c in cams], [c.sensor2lidar for c in cams], image_scale)


def _get(node: Mapping, key: str, where: str) -> Any:
    if not isinstance(node, Mapping) or key not in node:
        raise RigError(f'{where}: missing key {key!r}')
    return node[key]


def _size(value: Any, where: str) -> tuple[int, int]:
    if (
        not isinstance(value, Sequence)
        or len(value) != 2
        or not all(isinstance(v, int) and v > 0 for v in value)
    ):
        raise RigError(f'{where} must be [width, height] as two positive integers, got {value!r}')
    return int(value[0]), int(value[1])


def _transform(node: Any, where: str) -> Extrinsics:
    """Extrinsics from {translation, rotation_wxyz and/or rotation_matrix}, rotations agreeing."""
    if not isinstance(node, Mapping):
        raise RigError(
            f'{where} must be a mapping with translation and rotation_wxyz or rotation_matrix'
        )
    translation = _get(node, 'translation', where)
    candidates = []
    try:
        if 'rotation_wxyz' in node:
            candidates.append(
                extrinsics_from_quaternion(translation, node['rotation_wxyz'], where)
            )
        if 'rotation_matrix' in node:
            candidates.append(extrinsics_from_matrix(translation, node['rotation_matrix'], where))
    except (CalibrationError, ValueError, TypeError) as exc:
        raise RigError(str(exc)) from exc
    if not candidates:
        raise RigError(f'{where}: needs rotation_wxyz (w, x, y, z) or rotation_matrix (3x3)')
    if len(candidates) == 2 and not np.allclose(
        candidates[0].rotation, candidates[1].rotation, atol=CONSISTENCY_ATOL
    ):
        raise RigError(
            f'{where}: rotation_wxyz and rotation_matrix describe different rotations; keep one'
        )
    return candidates[0]


def _camera(name: str, node: Any, lidar2ego: Extrinsics | None, where: str) -> RigCamera:
    if not isinstance(node, Mapping):
        raise RigError(f'{where} must be a mapping')
    try:
        K = check_intrinsics(_get(node, 'K', where), f'{where}.K')
    except CalibrationError as exc:
        raise RigError(str(exc)) from exc
    direct = (
        _transform(node['sensor2lidar'], f'{where}.sensor2lidar')
        if 'sensor2lidar' in node
        else None
    )
    via_ego = None
    if 'sensor2ego' in node:
        if lidar2ego is None:
            raise RigError(
                f'{where}.sensor2ego needs the rig-level lidar2ego; add it or give sensor2lidar'
            )
        via_ego = _transform(node['sensor2ego'], f'{where}.sensor2ego').then(lidar2ego.inverse())
    if direct is None and via_ego is None:
        raise RigError(f'{where}: needs sensor2lidar (camera -> reference frame) or sensor2ego')
    if (
        direct is not None
        and via_ego is not None
        and not (
            np.allclose(direct.rotation, via_ego.rotation, atol=CONSISTENCY_ATOL)
            and np.allclose(direct.translation, via_ego.translation, atol=CONSISTENCY_ATOL)
        )
    ):
        raise RigError(
            f'{where}: sensor2lidar disagrees with inv(lidar2ego) @ sensor2ego; '
            'fix or drop one of them'
        )
    return RigCamera(
        name=name,
        frame_id=str(node.get('frame_id', name)),
        K=K,
        image_size=_size(_get(node, 'image_size', where), f'{where}.image_size'),
        sensor2lidar=direct if direct is not None else via_ego,
    )


def parse_rig(data: Any, source: str = '<rig>') -> Rig:
    """Validate a rig already read from YAML; errors are prefixed by `source` and the key path."""
    if not isinstance(data, Mapping):
        raise RigError(f'{source}: the top level must be a mapping')
    lidar2ego = (
        _transform(data['lidar2ego'], f'{source}: lidar2ego') if 'lidar2ego' in data else None
    )
    cameras_node = _get(data, 'cameras', source)
    if not isinstance(cameras_node, Mapping) or not cameras_node:
        raise RigError(f'{source}: cameras must be a non-empty mapping name -> camera')
    cameras = tuple(
        _camera(str(name), node, lidar2ego, f'{source}: cameras.{name}')
        for name, node in cameras_node.items()
    )
    return Rig(
        reference_frame=str(data.get('reference_frame', 'LIDAR_TOP')),
        base_frame=str(data.get('base_frame', 'base_link')),
        nominal_image_size=_size(
            data.get('nominal_image_size', [1600, 900]), f'{source}: nominal_image_size'
        ),
        lidar2ego=lidar2ego,
        cameras=cameras,
    )


def load_rig(path: str | Path) -> Rig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise RigError(f'cannot read rig file {path}: {exc}') from exc
    except yaml.YAMLError as exc:
        raise RigError(f'{path} is not valid YAML: {exc}') from exc
    return parse_rig(data, str(path))
