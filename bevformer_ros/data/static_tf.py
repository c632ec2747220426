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
Camera extrinsics from the ``/tf_static`` transforms of a recording (what the node reads from TF).

Each ``geometry_msgs/TransformStamped`` maps child-frame points into its parent frame. The static
frames form a tree; ``sensor2lidar`` of a camera is the chain camera -> common ancestor ->
reference frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bevformer_ros.core.calibration import Extrinsics, extrinsics_from_transform
import numpy as np

IDENTITY = Extrinsics(np.eye(3), np.zeros(3))


class StaticTransforms:
    """
    The static transform tree.

    ``add`` TransformStamped messages, then ask ``lookup(target, source)``.
    """

    def __init__(self, transforms: Iterable[Any] = ()) -> None:
        self._parent: dict[str, tuple[str, Extrinsics]] = {}  # child -> (parent, child -> parent)
        for transform in transforms:
            self.add(transform)

    def add(self, transform: Any) -> None:
        child = transform.child_frame_id.lstrip('/')
        parent = transform.header.frame_id.lstrip('/')
        self._parent[child] = (
            parent,
            extrinsics_from_transform(transform, f'/tf_static {parent} -> {child}'),
        )

    def _to_root(self, frame: str) -> tuple[list[str], Extrinsics]:
        """Frames from ``frame`` up to its root, and the transform frame -> root."""
        chain, to_root = [frame], IDENTITY
        while chain[-1] in self._parent and len(chain) <= len(self._parent):
            parent, child_to_parent = self._parent[chain[-1]]
            to_root = to_root.then(child_to_parent)
            chain.append(parent)
        return chain, to_root

    def lookup(self, target: str, source: str) -> Extrinsics | None:
        """
        Return the transform mapping ``source`` points into ``target``.

        None when the frames are not connected.
        """
        target, source = target.lstrip('/'), source.lstrip('/')
        target_chain, target_to_root = self._to_root(target)
        source_chain, source_to_root = self._to_root(source)
        if target_chain[-1] != source_chain[-1]:
            return None
        return source_to_root.then(target_to_root.inverse())


def camera_extrinsics(
    transforms: StaticTransforms, reference_frame: str, camera_frames: Sequence[str]
) -> list[Extrinsics] | None:
    """
    Return sensor2lidar (camera -> reference) per camera frame.

    None unless all are in the tree.
    """
    found = [transforms.lookup(reference_frame, frame) for frame in camera_frames]
    return None if any(e is None for e in found) else found
