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
Official BEVFormer test-time image preprocessing, in torch on the images' device.

The official test pipeline (``bevformer_{tiny,small,base}.py``) does, per camera image:

1. ``LoadMultiViewImageFromFiles``: uint8 BGR ``[H, W, 3]`` -> float32;
2. ``NormalizeMultiviewImage``: BGR -> RGB if ``to_rgb``, then ``(x - mean) / std`` in float32 with
   float32 ``mean``/``std``;
3. ``RandomScaleImageMultiViewImage`` (tiny 0.5, small 0.8; base has none):
   ``cv2.resize(INTER_LINEAR)`` of the *normalised float* image to ``int(W*s) x int(H*s)``;
   ``lidar2img`` rows 0 and 1 times ``s``;
4. ``PadMultiViewImage(size_divisor=32)``: pad bottom/right with 0 *in normalised space*.

Resizing the uint8 image before normalising is measurably different (it rounds to whole grey
levels), so the order above is kept. The resize reproduces the IPP ``cv2.resize`` arithmetic bit
for bit (fixture README §10.2): half-pixel centres, float32 weights, horizontal pass first, each
pass ``a + (b - a) * w``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

_LAYOUT = 'uint8 images [num_cams, H, W, 3] (HWC, one 8-bit colour image per camera)'


@dataclass(frozen=True)
class PreprocessedImages:
    """
    Network input and the image metadata the official pipeline would attach.

    img: float32 [num_cams, 3, Hp, Wp], normalised, resized and zero-padded, channels in network
        order (RGB if ``to_rgb`` else BGR).
    img_shape: (Hp, Wp), the padded size; the model normalises projected points by it.
    pad_shape: (Hp, Wp), same as ``img_shape`` (the official metadata carries both).
    resized_shape: (Hr, Wr), the valid (unpadded) part, rows/cols >= Hr/Wr are padding.
    ori_shape: (Hr, Wr). The official pipeline overwrites ``ori_shape`` with the resized shape.
    scale_factor: the resize factor applied to the images and to ``lidar2img`` rows 0-1 (1.0 when
        there is no resize). Note: the official ``img_metas['scale_factor']`` stays 1.0 even when
        it resizes; the model never reads it.
    """

    img: torch.Tensor
    img_shape: tuple[int, int]
    pad_shape: tuple[int, int]
    resized_shape: tuple[int, int]
    ori_shape: tuple[int, int]
    scale_factor: float


def _axis_taps(
    n_out: int, n_in: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """
    Source taps of one axis of IPP-style bilinear resizing (half-pixel centres, edge clamp).

    Returns i0, i1 (int64 [n_out]) and the float32 weight of i1, w [n_out]. The source coordinate
    is computed in float64 and rounded once to float32, which is where IPP's float32 weight comes
    from.
    """
    src = (
        (torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5
    ).float()  # [n_out]
    floor = torch.floor(src)
    w = src - floor  # float32, weight of the right/lower neighbour
    i0 = floor.long()
    i1 = (i0 + 1).clamp(0, n_in - 1)
    i0 = i0.clamp(0, n_in - 1)
    return i0.to(device), i1.to(device), w.to(device)


def _lerp_(
    a: torch.Tensor, b: torch.Tensor, w: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Compute ``a + (b - a) * w``, each op rounded to float32 (no FMA), in ``b``'s storage."""
    diff = b.sub_(a).mul_(w)
    return torch.add(a, diff, out=out) if out is not None else diff.add_(a)


class ImagePreprocessor:
    """
    uint8 camera images -> the official network input (normalise, resize, pad).

    Parameters
    ----------
    mean, std
        per-channel constants in *network* channel order (as written in ``img_norm_cfg``).
    to_rgb
        the network expects RGB (official tiny) rather than BGR (small, base).
    scale
        resize factor (tiny 0.5, small 0.8) or None for no resize (base).
    size_divisor
        pad height and width up to a multiple of this (official 32); None or 1: no padding.
    exact
        True reproduces the official arithmetic bit for bit; False uses ``F.interpolate`` (one
        fused kernel). That is within 2.4e-7 of the official values when the in/out size ratio is a
        binary fraction (official 0.5 and 0.8 at 1600x900); otherwise its float32 source
        coordinates cost up to ~1e-5 of the value range.

    """

    def __init__(
        self,
        mean: tuple[float, float, float] | list[float],
        std: tuple[float, float, float] | list[float],
        to_rgb: bool,
        scale: float | None = None,
        size_divisor: int | None = 32,
        exact: bool = True,
    ) -> None:
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(
                f'mean and std need 3 values (one per channel), got mean={mean}, std={std}'
            )
        if any(float(s) == 0.0 for s in std):
            raise ValueError(f'std must be non-zero, got {std}')
        if scale is not None and not float(scale) > 0.0:
            raise ValueError(f'scale must be a positive number or None (no resize), got {scale}')
        if size_divisor is not None and int(size_divisor) < 1:
            raise ValueError(f'size_divisor must be >= 1 or None, got {size_divisor}')
        # The official NormalizeMultiviewImage stores mean/std as float32 arrays; so do we.
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.to_rgb = bool(to_rgb)
        self.scale = None if scale is None else float(scale)
        self.size_divisor = 1 if size_divisor is None else int(size_divisor)
        self.exact = bool(exact)
        self._taps: dict[tuple[int, int, int, int, str], tuple[torch.Tensor, ...]] = {}

    @classmethod
    def from_config(cls, image_cfg: Any, exact: bool = True) -> ImagePreprocessor:
        """Build from an image config (mean, std, to_rgb, scale, size_divisor)."""
        return cls(
            mean=tuple(image_cfg.mean),
            std=tuple(image_cfg.std),
            to_rgb=image_cfg.to_rgb,
            scale=getattr(image_cfg, 'scale', None),
            size_divisor=getattr(image_cfg, 'size_divisor', 32),
            exact=exact,
        )

    def output_shapes(self, height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """(resized (Hr, Wr), padded (Hp, Wp)) for an input of ``height`` x ``width`` pixels."""
        if self.scale is None:
            resized = (height, width)
        else:
            # RandomScaleImageMultiViewImage: int() truncation of the Python float product.
            resized = (int(height * self.scale), int(width * self.scale))
        d = self.size_divisor
        padded = (-(-resized[0] // d) * d, -(-resized[1] // d) * d)
        return resized, padded

    def __call__(
        self,
        images: torch.Tensor | np.ndarray,
        channel_order: str = 'bgr',
        device: torch.device | str | None = None,
    ) -> PreprocessedImages:
        """
        Preprocess one frame's camera images.

        Parameters
        ----------
        images
            uint8 [num_cams, H, W, 3], tensor on any device or numpy array.
        channel_order
            'bgr' (cv_bridge ``bgr8``, what the official loader reads) or 'rgb'.
        device
            move the uint8 images here first (cheaper than moving the float result).

        """
        x = self._check_images(images, channel_order)
        if device is not None:
            x = x.to(device, non_blocking=True)
        num_cams, height, width, _ = x.shape
        resized, padded = self.output_shapes(height, width)
        img = self._normalize(x, channel_order)  # [num_cams, 3, H, W]
        out = img.new_zeros((num_cams, 3) + padded)  # [num_cams, 3, Hp, Wp], zero padding
        valid = out[:, :, : resized[0], : resized[1]]
        if resized == (height, width):
            valid.copy_(img)
        elif self.exact:
            self._resize_exact(img, resized, out=valid)
        else:
            valid.copy_(
                F.interpolate(
                    img, size=resized, mode='bilinear', align_corners=False, antialias=False
                )
            )
        return PreprocessedImages(
            img=out,
            img_shape=padded,
            pad_shape=padded,
            resized_shape=resized,
            ori_shape=resized,
            scale_factor=1.0 if self.scale is None else self.scale,
        )

    def scale_lidar2img(self, lidar2img: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """
        Return ``diag(s, s, 1, 1) @ lidar2img`` in float64 (lidar2img [..., 4, 4], original image).

        Only rows 0 and 1 (u·d and v·d) change, so the product is the exact row scaling the
        official numpy matmul gives. Returns the same kind (tensor or numpy) as the input; the
        input is not modified.
        """
        is_numpy = isinstance(lidar2img, np.ndarray)
        mat = torch.as_tensor(lidar2img).to(torch.float64).clone()  # [..., 4, 4]
        if mat.shape[-2:] != (4, 4):
            raise ValueError(
                f'lidar2img must be [..., 4, 4] (e.g. [num_cams, 4, 4]), got {tuple(mat.shape)}'
            )
        if self.scale is not None:
            mat[..., :2, :] *= self.scale
        return mat.numpy() if is_numpy else mat

    def _check_images(self, images: torch.Tensor | np.ndarray, channel_order: str) -> torch.Tensor:
        if channel_order not in ('bgr', 'rgb'):
            raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
        if isinstance(images, np.ndarray):
            images = torch.from_numpy(np.ascontiguousarray(images))
        if not isinstance(images, torch.Tensor):
            raise ValueError(
                f'expected {_LAYOUT} as a torch tensor or numpy array, got {type(images).__name__}'
            )
        if images.dtype != torch.uint8:
            raise ValueError(
                f'expected {_LAYOUT}, got dtype {images.dtype}; convert 8-bit images, not floats'
            )
        if images.ndim != 4:
            hint = ' (add the camera dimension: images[None])' if images.ndim == 3 else ''
            raise ValueError(f'expected {_LAYOUT}, got shape {tuple(images.shape)}{hint}')
        if images.shape[-1] != 3:
            raise ValueError(
                f'expected {_LAYOUT}, got {images.shape[-1]} channels in shape '
                f'{tuple(images.shape)}'
                ' (drop alpha / convert mono to bgr8 first; CHW input must be permuted to HWC)'
            )
        if min(images.shape[:3]) == 0:
            raise ValueError(
                f'expected {_LAYOUT} with no empty dimension, got {tuple(images.shape)}'
            )
        return images

    def _normalize(self, x: torch.Tensor, channel_order: str) -> torch.Tensor:
        """Normalise uint8 [N, H, W, 3] -> float32 [N, 3, H, W], network order, (x-mean)/std."""
        chw = x.permute(0, 3, 1, 2)  # [N, 3, H, W] view
        if (channel_order == 'bgr') == self.to_rgb:
            chw = chw.flip(1)  # swap B and R: the official flip happens before mean/std
        img = chw.to(torch.float32, memory_format=torch.contiguous_format)  # [N, 3, H, W]
        mean = torch.from_numpy(self.mean).to(img.device, non_blocking=True)[
            :, None, None
        ]  # [3, 1, 1]
        std = torch.from_numpy(self.std).to(img.device, non_blocking=True)[
            :, None, None
        ]  # [3, 1, 1]
        return img.sub_(mean).div_(std)

    def _resize_exact(
        self, img: torch.Tensor, size: tuple[int, int], out: torch.Tensor
    ) -> torch.Tensor:
        """Resize img [N, 3, H, W] to ``size`` as IPP cv2.resize(INTER_LINEAR): [N, 3, Hr, Wr]."""
        x0, x1, wx, y0, y1, wy = self._get_taps(img.shape[-2], img.shape[-1], size, img.device)
        left = img.index_select(3, x0)  # [N, 3, H, Wr]
        rows = _lerp_(left, img.index_select(3, x1), wx)  # [N, 3, H, Wr], horizontal pass first
        top = rows.index_select(2, y0)  # [N, 3, Hr, Wr]
        return _lerp_(top, rows.index_select(2, y1), wy[:, None], out=out)

    def _get_taps(
        self, height: int, width: int, size: tuple[int, int], device: torch.device
    ) -> tuple[torch.Tensor, ...]:
        key = (height, width, size[0], size[1], str(device))
        if key not in self._taps:
            self._taps[key] = _axis_taps(size[1], width, device) + _axis_taps(
                size[0], height, device
            )
        return self._taps[key]
