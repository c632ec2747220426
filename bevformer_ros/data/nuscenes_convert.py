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
One nuScenes scene, read through the official `nuscenes-devkit`, as plain time series.

The time series are what a bag is made of.

`load_nuscenes` opens the tables (errors name the missing folder or file), `find_scene` picks a
scene by name, `camera_samples` lists the camera images of the six cameras in time order (the
keyframes, or every camera sweep), and `ego_poses` the ego pose of every camera sample_data of the
scene (base_link in the global frame, with a finite-difference twist in base_link, since nuScenes
poses carry no velocity). The rig and the ground truth of the scene are built in `nuscenes_rig` and
`nuscenes_ground_truth`.

Times: nuScenes timestamps are microseconds since the epoch; everything here is in nanoseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import json
from pathlib import Path
from typing import Any

from bevformer_ros.config import OFFICIAL_CAMERAS
from bevformer_ros.core.rotation import (
    quat_conjugate_wxyz,
    quat_multiply_wxyz,
    quat_wxyz_to_matrix,
    rotation_vector_of_wxyz,
)
from bevformer_ros.core.stamps import NS_PER_S, NS_PER_US
from bevformer_ros.eval.nusc_tables import TABLES
import numpy as np

REFERENCE_SENSOR = 'LIDAR_TOP'  # the frame nuScenes-trained BEVFormer reasons in
TWIST_WINDOW_S = (
    0.05  # poses at least this far apart on either side give the twist (camera poses are ~14 ms
)
# apart across the six cameras, too close for a difference that is not dominated by pose noise)


class NuScenesError(ValueError):
    """The dataset cannot be used as given (path, version, scene); the message names the fix."""


class NuScenesDataError(NuScenesError):
    """A file the tables point to cannot be read (missing or corrupt image)."""


@dataclass(frozen=True)
class CameraSample:
    """One camera image (a `sample_data` record of a camera)."""

    channel: str  # CAM_FRONT, ...
    stamp_ns: int
    path: Path  # the JPEG under the dataroot
    width: int
    height: int
    is_key_frame: bool
    token: str


@dataclass(frozen=True)
class EgoSample:
    """
    Pose of base_link in the global frame at `stamp_ns` (the nuScenes `ego_pose`).

    Plus its twist in base_link.
    """

    stamp_ns: int
    translation: np.ndarray  # [3] float64, m
    rotation_wxyz: np.ndarray  # [4] float64
    velocity: np.ndarray  # [3] float64, m/s in base_link
    rotation_rate: np.ndarray  # [3] float64, rad/s in base_link


def _check_layout(dataroot: Path, version: str) -> None:
    if not dataroot.is_dir():
        raise NuScenesError(
            f'nuScenes dataroot not found: {dataroot} (give the folder that holds '
            f'{version}/, samples/, sweeps/ and maps/)'
        )
    tables = dataroot / version
    if not tables.is_dir():
        found = sorted(
            p.name for p in dataroot.iterdir() if p.is_dir() and (p / 'scene.json').exists()
        )
        hint = (
            f'it has {found}; pass --version with one of them'
            if found
            else 'extract the metadata archive there'
        )
        raise NuScenesError(f'no table folder {tables} for version {version!r}: {hint}')
    missing = [name for name in TABLES if not (tables / f'{name}.json').exists()]
    if missing:
        raise NuScenesError(
            f'{tables} lacks the table(s) {", ".join(f"{m}.json" for m in missing)}; '
            're-extract the nuScenes metadata archive'
        )


def load_nuscenes(dataroot: str | Path, version: str = 'v1.0-mini') -> Any:
    """
    Open the devkit's `NuScenes` database of `dataroot/version`.

    NuScenesError naming what is missing.
    """
    dataroot = Path(dataroot)
    _check_layout(dataroot, version)
    try:
        from nuscenes.nuscenes import (
            NuScenes,  # lazy: the devkit imports matplotlib, OpenCV, scikit-learn
        )
    except ImportError as exc:
        raise NuScenesError(
            'the nuScenes converter needs the devkit: pip install nuscenes-devkit'
        ) from exc
    try:
        return NuScenes(version=version, dataroot=str(dataroot), verbose=False)
    except json.JSONDecodeError as exc:
        raise NuScenesError(
            f'a table of {dataroot / version} is not valid JSON ({exc}); re-extract the '
            'nuScenes metadata archive'
        ) from exc
    except (AssertionError, KeyError, TypeError, OSError) as exc:
        # The devkit asserts on missing map masks and indexes tables by token: both mean an
        # incomplete copy.
        raise NuScenesError(
            f'cannot load nuScenes {version} from {dataroot}: {type(exc).__name__}: {exc}; '
            'check that the tables, maps/ and the version belong together'
        ) from exc


def find_scene(nusc: Any, name: str) -> dict[str, Any]:
    """Return the `scene` record called `name` (e.g. scene-0061); NuScenesError lists the names."""
    for scene in nusc.scene:
        if scene['name'] == name:
            return scene
    names = sorted(s['name'] for s in nusc.scene)
    shown = ', '.join(names[:12]) + (f' ... ({len(names)} in all)' if len(names) > 12 else '')
    raise NuScenesError(
        f'unknown scene {name!r} in nuScenes {nusc.version}; pass --scene with one of: {shown}'
    )


def scene_samples(nusc: Any, scene: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the keyframe `sample` records of the scene, in time order."""
    samples, token = [], scene['first_sample_token']
    while token:
        sample = nusc.get('sample', token)
        samples.append(sample)
        token = sample['next']
    return samples


def _in_scene(nusc: Any, record: dict[str, Any], scene_token: str) -> bool:
    return nusc.get('sample', record['sample_token'])['scene_token'] == scene_token


def channel_records(nusc: Any, scene: dict[str, Any], channel: str) -> list[dict[str, Any]]:
    """
    Every `sample_data` record of `channel` in the scene (keyframes and sweeps), in time order.

    The records of one sensor form a prev/next chain; it is followed both ways from the first
    keyframe and cut where a record belongs to a sample of another scene.
    """
    first = scene_samples(nusc, scene)[0]['data'].get(channel)
    if first is None:
        return []
    start = nusc.get('sample_data', first)
    records = [start]
    record = start
    while record['prev'] and _in_scene(
        nusc, prev := nusc.get('sample_data', record['prev']), scene['token']
    ):
        records.insert(0, prev)
        record = prev
    record = start
    while record['next'] and _in_scene(
        nusc, nxt := nusc.get('sample_data', record['next']), scene['token']
    ):
        records.append(nxt)
        record = nxt
    return records


def _camera_sample(nusc: Any, record: dict[str, Any]) -> CameraSample:
    return CameraSample(
        channel=record['channel'],
        stamp_ns=int(record['timestamp']) * NS_PER_US,
        path=Path(nusc.dataroot) / record['filename'],
        width=int(record['width']),
        height=int(record['height']),
        is_key_frame=bool(record['is_key_frame']),
        token=record['token'],
    )


def camera_samples(
    nusc: Any,
    scene: dict[str, Any],
    sweeps: bool = False,
    cameras: Sequence[str] = OFFICIAL_CAMERAS,
) -> list[CameraSample]:
    """
    Return the images of `cameras` in time order.

    Keyframes only, or every camera sweep with `sweeps`.
    """
    samples = []
    for channel in cameras:
        records = [r for r in channel_records(nusc, scene, channel) if sweeps or r['is_key_frame']]
        if not records:
            raise NuScenesError(
                f'scene {scene["name"]} has no {channel} images; the converter needs the six '
                f'cameras {", ".join(cameras)}'
            )
        samples += [_camera_sample(nusc, r) for r in records]
    return sorted(samples, key=lambda s: (s.stamp_ns, cameras.index(s.channel)))


def body_twists(
    stamps_ns: np.ndarray,
    translations: np.ndarray,
    rotations_wxyz: np.ndarray,
    window_s: float = TWIST_WINDOW_S,
) -> tuple[np.ndarray, np.ndarray]:
    """
    Finite-difference twist of poses.

    (velocity [P, 3] m/s, rotation_rate [P, 3] rad/s) in base_link.

    stamps_ns [P] sorted, translations [P, 3], rotations_wxyz [P, 4]. Pose i is differenced with
    the nearest poses at least `window_s` before and after it (one-sided at the ends of the
    series). The velocity is the three-point derivative for uneven steps, exact for constant
    acceleration: camera poses are not evenly spaced, and a plain secant would give the velocity at
    the middle of the window, not at pose i.
    """
    count = len(stamps_ns)
    velocity, rotation_rate = np.zeros((count, 3)), np.zeros((count, 3))
    window_ns = int(window_s * NS_PER_S)
    for i in range(count):
        lo = max(int(np.searchsorted(stamps_ns, stamps_ns[i] - window_ns, side='right')) - 1, 0)
        hi = min(int(np.searchsorted(stamps_ns, stamps_ns[i] + window_ns, side='left')), count - 1)
        dt = (stamps_ns[hi] - stamps_ns[lo]) / NS_PER_S
        if dt <= 0:
            continue
        h1, h2 = (
            (stamps_ns[i] - stamps_ns[lo]) / NS_PER_S,
            (stamps_ns[hi] - stamps_ns[i]) / NS_PER_S,
        )
        if h1 > 0 and h2 > 0:
            world_velocity = (
                h1 / (h2 * dt) * translations[hi]
                - h2 / (h1 * dt) * translations[lo]
                + (h2 - h1) / (h1 * h2) * translations[i]
            )  # [3]
        else:
            world_velocity = (translations[hi] - translations[lo]) / dt  # [3]
        velocity[i] = quat_wxyz_to_matrix(rotations_wxyz[i]).T @ world_velocity
        delta = quat_multiply_wxyz(quat_conjugate_wxyz(rotations_wxyz[lo]), rotations_wxyz[hi])
        rotation_rate[i] = rotation_vector_of_wxyz(delta) / dt
    return velocity, rotation_rate


def ego_poses(
    nusc: Any, scene: dict[str, Any], cameras: Sequence[str] = OFFICIAL_CAMERAS
) -> list[EgoSample]:
    """
    Return the ego pose of every camera sample_data of the scene, one per timestamp.

    Keyframes and sweeps.
    """
    by_stamp: dict[int, dict[str, Any]] = {}
    for channel in cameras:
        for record in channel_records(nusc, scene, channel):
            pose = nusc.get('ego_pose', record['ego_pose_token'])
            by_stamp.setdefault(int(pose['timestamp']) * NS_PER_US, pose)
    stamps = np.array(sorted(by_stamp), dtype=np.int64)  # [P]
    translations = np.array(
        [by_stamp[s]['translation'] for s in stamps], dtype=np.float64
    ).reshape(-1, 3)
    rotations = np.array([by_stamp[s]['rotation'] for s in stamps], dtype=np.float64).reshape(
        -1, 4
    )
    velocity, rotation_rate = body_twists(stamps, translations, rotations)
    return [
        EgoSample(int(s), translations[i], rotations[i], velocity[i], rotation_rate[i])
        for i, s in enumerate(stamps)
    ]
