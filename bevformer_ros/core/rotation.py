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
Quaternion and rotation-matrix helpers (numpy, float64).

Two quaternion orders meet in this package: ROS messages carry (x, y, z, w) and nuScenes /
pyquaternion / the official BEVFormer `can_bus` carry (w, x, y, z). Every function name says which
one it takes.
"""

from __future__ import annotations

from collections.abc import Sequence
import math

import numpy as np

# A unit quaternion read from a message or a file may carry rounding noise; anything further from 1
# than this is a corrupt value, not noise, and is rejected instead of silently normalised.
UNIT_NORM_TOLERANCE = 1e-3


def xyzw_to_wxyz(q_xyzw: Sequence[float]) -> np.ndarray:
    x, y, z, w = (float(v) for v in q_xyzw)
    return np.array([w, x, y, z], dtype=np.float64)


def wxyz_to_xyzw(q_wxyz: Sequence[float]) -> np.ndarray:
    w, x, y, z = (float(v) for v in q_wxyz)
    return np.array([x, y, z, w], dtype=np.float64)


def normalized_wxyz(q_wxyz: Sequence[float], what: str = 'quaternion') -> np.ndarray:
    """Return the unit quaternion [4] (w, x, y, z); ValueError naming `what` if not finite unit."""
    q = np.asarray(q_wxyz, dtype=np.float64).reshape(-1)
    if q.shape != (4,) or not np.all(np.isfinite(q)):
        raise ValueError(f'{what} must be 4 finite numbers, got {list(np.atleast_1d(q_wxyz))}')
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > UNIT_NORM_TOLERANCE:
        raise ValueError(f'{what} must be a unit quaternion, got norm {norm:.6g}: {q.tolist()}')
    return q / norm


def quat_wxyz_to_matrix(q_wxyz: Sequence[float]) -> np.ndarray:
    """Rotation matrix [3, 3] of a unit quaternion (w, x, y, z), as pyquaternion computes it."""
    w, x, y, z = normalized_wxyz(q_wxyz)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ],
        dtype=np.float64,
    )


def matrix_to_quat_wxyz(R: np.ndarray) -> np.ndarray:
    """Return the unit quaternion [4] (w, x, y, z), w >= 0, of a rotation [3, 3] (Shepperd)."""
    R = np.asarray(R, dtype=np.float64)
    trace = R[0, 0] + R[1, 1] + R[2, 2]
    # Pick the largest of w, x, y, z as the pivot so the division below is well conditioned.
    pivots = [trace, R[0, 0], R[1, 1], R[2, 2]]
    k = int(np.argmax(pivots))
    if k == 0:
        s = math.sqrt(1.0 + trace) * 2
        q = [0.25 * s, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s]
    elif k == 1:
        s = math.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2]) * 2
        q = [(R[2, 1] - R[1, 2]) / s, 0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s]
    elif k == 2:
        s = math.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2]) * 2
        q = [(R[0, 2] - R[2, 0]) / s, (R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s]
    else:
        s = math.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1]) * 2
        q = [(R[1, 0] - R[0, 1]) / s, (R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s]
    q = np.array(q, dtype=np.float64)
    q /= np.linalg.norm(q)
    return -q if q[0] < 0 else q


def check_rotation_matrix(
    R: np.ndarray, what: str = 'rotation matrix', atol: float = 1e-6
) -> np.ndarray:
    """R as float64 [3, 3]; ValueError naming `what` unless finite, orthonormal, right-handed."""
    R = np.asarray(R, dtype=np.float64)
    if R.shape != (3, 3) or not np.all(np.isfinite(R)):
        raise ValueError(f'{what} must be a finite 3x3 matrix, got shape {R.shape}')
    if not np.allclose(R @ R.T, np.eye(3), atol=atol) or np.linalg.det(R) < 0:
        raise ValueError(
            f'{what} is not a proper rotation (R @ R.T != I or det(R) = {np.linalg.det(R):.6g})'
        )
    return R


def slerp_wxyz(q0: Sequence[float], q1: Sequence[float], fraction: float) -> np.ndarray:
    """Spherical interpolation along the shorter arc; fraction outside [0, 1] extrapolates."""
    a = normalized_wxyz(q0)
    b = normalized_wxyz(q1)
    dot = float(np.dot(a, b))
    if dot < 0.0:  # q and -q are the same rotation; take the short way round
        b, dot = -b, -dot
    if dot > 0.9995:  # nearly parallel: sin(theta) ~ 0, lerp is exact to float precision
        q = a + fraction * (b - a)
        return q / np.linalg.norm(q)
    theta = math.acos(min(dot, 1.0))
    q = (math.sin((1.0 - fraction) * theta) * a + math.sin(fraction * theta) * b) / math.sin(theta)
    return q / np.linalg.norm(q)


def yaw_of_wxyz(q_wxyz: Sequence[float]) -> float:
    """Heading (rad) of the rotated x axis in the xy plane: nuScenes devkit `quaternion_yaw`."""
    v = quat_wxyz_to_matrix(q_wxyz)[:, 0]
    return math.atan2(v[1], v[0])


def yaw_to_wxyz(yaw: float) -> np.ndarray:
    """Return the unit quaternion (w, x, y, z) of a rotation by `yaw` rad about +z."""
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)], dtype=np.float64)


def quat_multiply_wxyz(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """Hamilton product a ⊗ b (w, x, y, z): the rotation b followed by a."""
    w1, x1, y1, z1 = (float(v) for v in a)
    w2, x2, y2, z2 = (float(v) for v in b)
    return np.array(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        dtype=np.float64,
    )


def quat_conjugate_wxyz(q: Sequence[float]) -> np.ndarray:
    w, x, y, z = (float(v) for v in q)
    return np.array([w, -x, -y, -z], dtype=np.float64)


def rotation_vector_of_wxyz(q_wxyz: Sequence[float]) -> np.ndarray:
    """Axis * angle [3] (rad) of a unit quaternion, angle in [0, pi]."""
    q = normalized_wxyz(q_wxyz)
    if q[0] < 0:
        q = -q
    sin_half = float(np.linalg.norm(q[1:]))
    if sin_half < 1e-12:
        return 2.0 * q[1:]  # small-angle limit of axis * 2 * asin(sin_half)
    return q[1:] / sin_half * (2.0 * math.atan2(sin_half, q[0]))
