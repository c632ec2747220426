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
Camera calibration → the `lidar2img` matrices BEVFormer projects its BEV pillars with.

Frames: the *reference* frame is the one the model reasons in (`LIDAR_TOP` for nuScenes-trained
checkpoints: x right, y forward, z up). Camera frames are optical frames (z forward, x right, y
down), i.e. the `header.frame_id` of a CameraInfo, as in nuScenes `calibrated_sensor`.

Image size. BEVFormer presets resize the nominal 1600x900 nuScenes image by `image_scale` (0.5
tiny, 0.8 small, 1.0 base) and scale `lidar2img` rows 0 and 1 by the same factor. A camera that
publishes another size gets its K rescaled to the size the preprocessor resizes it to
(`intrinsics_from_camera_info(..., target_size=...)`), with the same plain `diag(sx, sy, 1)` the
official pipeline uses for its own resize (no half-pixel correction: checkpoints were trained with
that convention).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bevformer_ros.core.rotation import (
    check_rotation_matrix,
    normalized_wxyz,
    quat_wxyz_to_matrix,
    xyzw_to_wxyz,
)
import numpy as np

# (width, height) of nuScenes camera images, the size checkpoints were trained on before
# `image_scale`
NOMINAL_IMAGE_SIZE = (1600, 900)


# fx / image width of real lenses: below, wider than a fisheye; above, a long telephoto
FOCAL_PER_WIDTH = (0.1, 20.0)
DISTORTION_MODELS = frozenset({'', 'plumb_bob', 'rational_polynomial', 'equidistant'})


class CalibrationError(ValueError):
    """Calibration data that cannot produce a valid projection; names the field and the fix."""


@dataclass(frozen=True)
class Extrinsics:
    """
    Rigid transform camera → reference frame: p_ref = rotation @ p_cam + translation.

    nuScenes / official-converter names: `sensor2lidar_rotation` [3, 3], `sensor2lidar_translation`
    [3].
    """

    rotation: np.ndarray  # [3, 3] float64
    translation: np.ndarray  # [3] float64

    def inverse(self) -> Extrinsics:
        R_inv = self.rotation.T
        return Extrinsics(R_inv, -R_inv @ self.translation)

    def then(self, outer: Extrinsics) -> Extrinsics:
        """Compose `outer ∘ self`: first self, then outer (e.g. camera→ego, ego→lidar)."""
        rotation = outer.rotation @ self.rotation
        return Extrinsics(rotation, outer.rotation @ self.translation + outer.translation)


def check_intrinsics(K: Any, what: str = 'K') -> np.ndarray:
    """K as float64 [3, 3]; CalibrationError unless finite, fx, fy > 0 and last row (0, 0, 1)."""
    try:
        K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f'{what} must hold 9 numbers (row-major 3x3), got {K!r}') from exc
    if not np.all(np.isfinite(K)):
        raise CalibrationError(
            f'{what} contains NaN or inf: {K.tolist()}; fix the camera calibration'
        )
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise CalibrationError(
            f'{what} needs fx > 0 and fy > 0, got fx={K[0, 0]}, fy={K[1, 1]}; '
            'an all-zero K means the camera driver publishes an uncalibrated CameraInfo'
        )
    if not np.allclose(K[2], [0.0, 0.0, 1.0]):
        raise CalibrationError(f'{what} last row must be [0, 0, 1], got {K[2].tolist()}')
    return K


def scale_intrinsics(
    K: np.ndarray, from_size: Sequence[int], to_size: Sequence[int]
) -> np.ndarray:
    """
    Return K [3, 3] of an image resized from (width, height) `from_size` to `to_size`.

    The result is diag(sx, sy, 1) @ K.
    """
    (w0, h0), (w1, h1) = from_size, to_size
    if min(w0, h0, w1, h1) <= 0:
        raise CalibrationError(
            f'image sizes must be positive, got {tuple(from_size)} -> {tuple(to_size)}'
        )
    scaled = np.diag([w1 / w0, h1 / h0, 1.0]) @ np.asarray(K, dtype=np.float64)  # [3, 3]
    if not np.all(np.isfinite(scaled)):
        # A finite but absurd K (fx near float64 max) overflows here; refuse it before it reaches
        # lidar2img.
        raise CalibrationError(
            f'K rescaled from {tuple(from_size)} to {tuple(to_size)} is not finite; '
            'check the CameraInfo K of this camera'
        )
    return scaled


def _field(obj: Any, *names: str) -> Any:
    for name in names:
        if isinstance(obj, Mapping) and name in obj:
            return obj[name]
        if hasattr(obj, name):
            return getattr(obj, name)
    raise CalibrationError(f'CameraInfo-like data has none of the fields {names}')


def intrinsics_from_camera_info(
    info: Any, target_size: Sequence[int] | None = None, matrix: str = 'k'
) -> np.ndarray:
    """
    K [3, 3] float64 from a sensor_msgs/CameraInfo (or anything with `k`, `width`, `height`).

    matrix='k' reads the raw-image K (nuScenes images are already undistorted); matrix='p' reads
    the left 3x3 of the rectified projection P, for rectified image topics. With `target_size`
    (width, height) K is rescaled to the size the image will be resized to before the preset's
    `image_scale` applies.
    """
    if matrix == 'k':
        K = check_intrinsics(_field(info, 'k', 'K'), 'CameraInfo.k')
    elif matrix == 'p':
        P = np.asarray(_field(info, 'p', 'P'), dtype=np.float64).reshape(-1)
        if P.size != 12:
            raise CalibrationError(f'CameraInfo.p must hold 12 numbers, got {P.size}')
        K = check_intrinsics(P.reshape(3, 4)[:, :3], 'CameraInfo.p[:, :3]')
    else:
        raise CalibrationError(f"matrix must be 'k' or 'p', got {matrix!r}")
    if target_size is None:
        return K
    size = (int(_field(info, 'width')), int(_field(info, 'height')))
    if min(size) <= 0:
        raise CalibrationError(
            f'CameraInfo width/height are {size}; the driver must fill them to rescale K'
        )
    return K if tuple(size) == tuple(target_size) else scale_intrinsics(K, size, target_size)


def check_plausible(info: Any) -> None:
    """
    Raise CalibrationError for a CameraInfo no real camera has.

    Focal lengths within FOCAL_PER_WIDTH of the image width (a fisheye to a long telephoto),
    principal point inside the image, a distortion model ROS knows. Skipped while the size is
    unset (0): the size check reports that.
    """
    width, height = int(_field(info, 'width')), int(_field(info, 'height'))
    if width <= 0 or height <= 0:
        return
    K = check_intrinsics(_field(info, 'k', 'K'), 'CameraInfo.k')
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    low, high = FOCAL_PER_WIDTH
    if not (low * width <= fx <= high * width and low * width <= fy <= high * width):
        raise CalibrationError(
            f'focal lengths fx={fx:g}, fy={fy:g} are not of the scale of a {width}x{height} '
            f'image ({low:g} to {high:g} times its width): K is for another resolution or wrong'
        )
    if not (0 <= cx <= width and 0 <= cy <= height):
        raise CalibrationError(
            f'principal point ({cx:g}, {cy:g}) is outside the {width}x{height} image'
        )
    model = str(getattr(info, 'distortion_model', '') or '')
    if model not in DISTORTION_MODELS:
        raise CalibrationError(
            f'distortion_model {model!r} is unknown; ROS defines {sorted(DISTORTION_MODELS)}'
        )


def distortion_note(info: Any) -> str | None:
    """Return a warning when a CameraInfo has non-zero distortion (the model ignores it)."""
    d = getattr(info, 'd', None)  # a numpy array in rclpy messages, a list in plain ones
    coefficients = np.zeros(0) if d is None else np.asarray(d, dtype=np.float64).reshape(-1)
    if not np.any(coefficients != 0):
        return None
    model = getattr(info, 'distortion_model', '') or 'unnamed'
    return (
        f'{model} distortion coefficients are non-zero, but the model ignores distortion: images '
        'must be rectified, e.g. image_proc (set cameras.rectified: true if they already are)'
    )


def _translation(translation: Any, what: str) -> np.ndarray:
    t = np.asarray(translation, dtype=np.float64).reshape(-1)
    if t.shape != (3,) or not np.all(np.isfinite(t)):
        raise CalibrationError(f'{what} translation must be 3 finite numbers, got {translation!r}')
    return t


def extrinsics_from_quaternion(
    translation: Sequence[float], rotation_wxyz: Sequence[float], what: str = 'extrinsics'
) -> Extrinsics:
    """Extrinsics from a translation [3] and a unit quaternion (w, x, y, z) (nuScenes layout)."""
    t = _translation(translation, what)
    try:
        R = quat_wxyz_to_matrix(normalized_wxyz(rotation_wxyz, f'{what} rotation'))
    except ValueError as exc:
        raise CalibrationError(str(exc)) from exc
    return Extrinsics(R, t)


def extrinsics_from_matrix(
    translation: Sequence[float], rotation: Any, what: str = 'extrinsics'
) -> Extrinsics:
    t = _translation(translation, what)
    try:
        R = check_rotation_matrix(rotation, f'{what} rotation')
    except ValueError as exc:
        raise CalibrationError(str(exc)) from exc
    return Extrinsics(R, t)


def extrinsics_from_transform(transform: Any, what: str = 'TF transform') -> Extrinsics:
    """
    Extrinsics from a geometry_msgs Transform / TransformStamped (duck-typed).

    Pass tf `lookup_transform(target_frame=reference_frame, source_frame=camera_optical_frame,
    stamp)`: that transform maps camera points into the reference frame, which is exactly
    `sensor2lidar`.
    """
    tf = getattr(transform, 'transform', transform)
    tr, rot = tf.translation, tf.rotation
    return extrinsics_from_quaternion(
        (tr.x, tr.y, tr.z), xyzw_to_wxyz((rot.x, rot.y, rot.z, rot.w)), what
    )


def lidar2img(
    K: np.ndarray,
    sensor2lidar_rotation: np.ndarray,
    sensor2lidar_translation: np.ndarray,
    image_scale: float = 1.0,
) -> np.ndarray:
    """
    Projection [4, 4] float64 of homogeneous reference points (x, y, z, 1) to (u·d, v·d, d, 1).

    Built step for step as the official `CustomNuScenesDataset.get_data_info`, then scaled like
    `RandomScaleImageMultiViewImage` (rows 0 and 1 times `image_scale`), so it matches the official
    values bit for bit.
    """
    K = check_intrinsics(K)
    lidar2cam_r = np.linalg.inv(np.asarray(sensor2lidar_rotation, dtype=np.float64))
    lidar2cam_t = np.asarray(sensor2lidar_translation, dtype=np.float64) @ lidar2cam_r.T
    lidar2cam_rt = np.eye(4)
    lidar2cam_rt[:3, :3] = lidar2cam_r.T
    lidar2cam_rt[3, :3] = -lidar2cam_t
    viewpad = np.eye(4)
    viewpad[: K.shape[0], : K.shape[1]] = K
    projection = viewpad @ lidar2cam_rt.T
    scale = np.eye(4)
    scale[0, 0] *= image_scale
    scale[1, 1] *= image_scale
    return scale @ projection


def lidar2img_stack(
    intrinsics: Sequence[np.ndarray], extrinsics: Sequence[Extrinsics], image_scale: float = 1.0
) -> np.ndarray:
    """[num_cams, 4, 4] float64 `lidar2img`, one per camera in the given (model) order."""
    if len(intrinsics) != len(extrinsics):
        raise CalibrationError(f'{len(intrinsics)} intrinsics but {len(extrinsics)} extrinsics')
    return np.stack(
        [
            lidar2img(K, e.rotation, e.translation, image_scale)
            for K, e in zip(intrinsics, extrinsics)
        ]
    )
