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
The part every exported-graph engine shares: the detector's call signature around a runtime.

The history inputs (``bev_shift``, ``rotation_theta``) are computed here in float64 exactly as the
eager model computes them, so every backend sees the same numbers; the runtimes only run the graph.
"""

from __future__ import annotations

from collections.abc import Sequence

from bevformer_ros.model.config import BEVFormerConfig
from bevformer_ros.model.export import (
    BevGrid,
    ExportSpec,
    frame_inputs,
    INPUT_NAMES,
    OUTPUT_NAMES,
)
import numpy as np
import torch


class SCACapacityError(RuntimeError):
    """A camera sees more BEV queries than the exported graph's SCA capacity."""


class ExportedEngine:
    """Call an exported graph like ``BEVFormer.forward`` (batch 1); subclasses define ``run``."""

    backend = ''

    def __init__(self, spec: ExportSpec, cfg: BEVFormerConfig, device: torch.device) -> None:
        self.spec = spec
        self.cfg = cfg
        self.device = torch.device(device)
        self.precision = spec.precision

    def run(self, feeds: dict[str, np.ndarray]) -> Sequence[np.ndarray]:
        """Run the graph: inputs by name -> the outputs in OUTPUT_NAMES order."""
        raise NotImplementedError

    def inputs(
        self,
        img: torch.Tensor,
        lidar2img: torch.Tensor,
        img_shape: tuple[int, int],
        can_bus: torch.Tensor,
        prev_bev: torch.Tensor | None = None,
        camera_mask: torch.Tensor | None = None,
    ) -> dict[str, np.ndarray]:
        """Return the graph inputs of one frame (arguments as in ``__call__``)."""
        spec, head = self.spec, self.cfg.head
        expected = (1, spec.num_cams, 3, spec.image_height, spec.image_width)
        if tuple(img.shape) != expected or tuple(img_shape) != expected[3:]:
            raise ValueError(
                f'this {self.backend} engine was built for images {list(expected)} (batch 1), got '
                f'{list(img.shape)} with img_shape {tuple(img_shape)}: rebuild it for this size'
            )
        grid = BevGrid(
            (head.bev_h, head.bev_w), head.pc_range, head.rotate_center, head.embed_dims
        )
        values = frame_inputs(grid, img, lidar2img, can_bus, prev_bev, camera_mask)
        return {
            name: np.ascontiguousarray(v.detach().cpu().numpy())
            for name, v in zip(INPUT_NAMES, values)
        }

    def __call__(
        self,
        img: torch.Tensor,
        lidar2img: torch.Tensor,
        img_shape: tuple[int, int],
        can_bus: torch.Tensor,
        prev_bev: torch.Tensor | None = None,
        camera_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """
        Detect one frame like ``BEVFormer.forward`` (batch 1).

        Parameters
        ----------
        img
            [1, N, 3, H, W].
        lidar2img
            [1, N, 4, 4].
        img_shape
            (H, W) of the padded images.
        can_bus
            [1, 18] used can_bus.
        prev_bev
            [HW, 1, C] or None.
        camera_mask
            [1, N] bool.

        Returns
        -------
            dict(bev_embed [HW, 1, C], all_cls_scores [1, 1, Q, K], all_bbox_preds [1, 1, Q, 10])
            on the engine's device: the last decoder layer only.

        """
        feeds = self.inputs(img, lidar2img, img_shape, can_bus, prev_bev, camera_mask)
        outs = dict(zip(OUTPUT_NAMES, self.run(feeds)))
        seen = int(np.asarray(outs['max_visible']))
        if seen > self.spec.sca_capacity:
            need = -(-seen // 64) * 64
            raise SCACapacityError(
                f'a camera sees {seen} BEV queries, more than the {self.spec.sca_capacity} this '
                f'engine was exported for: results would be wrong. Re-export with '
                f'bevformer_export --sca-capacity {need} and pass the file as the engine.'
            )

        def tensor(name: str) -> torch.Tensor:
            return torch.from_numpy(np.array(outs[name], dtype=np.float32)).to(self.device)

        return {
            'bev_embed': tensor('bev_embed')[:, None],  # [HW, 1, C]
            'all_cls_scores': tensor('cls_scores')[None, None],  # [1, 1, Q, K]
            'all_bbox_preds': tensor('bbox_preds')[None, None],  # [1, 1, Q, 10]
        }
