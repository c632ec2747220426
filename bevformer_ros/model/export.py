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
Export the whole detector of one frame to a plugin-free ONNX graph (standard ops, static shapes).

The graph runs everything from the preprocessed images to the last decoder layer's class logits and
boxes; temporal state, the ego-motion numbers and box decoding stay in Python, identical for every
backend (``engines.base.ExportedEngine`` computes the inputs). Inputs (batch 1):

- ``img`` [N, 3, H, W] float32, preprocessed and padded (model.preprocess).
- ``lidar2img`` [N, 4, 4] float32 (the model's projection is float32 anyway).
- ``can_bus`` [18] float32, the used can_bus (its MLP runs in float32 anyway).
- ``shift`` [2] float32 and ``rotation`` [2, 3] float32: ``bev_shift`` / ``rotation_theta`` of the
  can_bus, computed in float64 in Python exactly as the eager model does (no float64 in the graph).
- ``prev_bev`` [HW, C] float32 and ``use_prev_bev`` [1] bool (False: a first frame; prev_bev
  is then ignored).
- ``camera_mask`` [N] bool, False for a camera left out (dropout).

Outputs: ``bev_embed`` [HW, C], ``cls_scores`` [Q, K] logits, ``bbox_preds`` [Q, 10] and
``max_visible`` [] float32 (the most BEV queries one camera sees: above the graph's SCA capacity
the caller must refuse the frame). Metadata (``metadata_props``) identifies what the file was
built from.
"""

from __future__ import annotations

from collections.abc import Callable
import copy
import dataclasses
from dataclasses import dataclass
import hashlib
import json
from pathlib import Path
from typing import NamedTuple

import bevformer_ros
from bevformer_ros.model.config import BEVFormerConfig
from bevformer_ros.model.detector import BEVFormer
from bevformer_ros.model.head import BEVFormerHead
from bevformer_ros.model.spatial_cross_attention import camera_hits, most_visible
from bevformer_ros.model.transformer import bev_shift, rotation_theta, StaticHistory
import torch
from torch import nn

OPSET = 17
INPUT_NAMES = (
    'img',
    'lidar2img',
    'can_bus',
    'shift',
    'rotation',
    'prev_bev',
    'use_prev_bev',
    'camera_mask',
)
OUTPUT_NAMES = ('bev_embed', 'cls_scores', 'bbox_preds', 'max_visible')
# Fraction of the BEV that one camera may see in a graph (SCA row length K, rounded up to 64): a
# 90 degree camera sees at most a quarter of the plane; the nuScenes rig's busiest camera sees
# 19 % (tiny: 476 of 2500 queries).
DEFAULT_CAPACITY_FRACTION = 0.25


@dataclass(frozen=True)
class ExportSpec:
    """What identifies an exported graph; every field goes into the file's metadata."""

    preset: str  # a label: the architecture itself is identified by architecture_sha256
    architecture_sha256: str
    checkpoint_sha256: str
    image_height: int
    image_width: int
    num_cams: int
    bev_h: int
    bev_w: int
    embed_dims: int
    sca_capacity: int
    source_sha256: str  # the model code that traced the graph (a fix there re-exports)
    precision: str = 'fp32'  # the precision the runtime is asked for; the graph itself is float32
    opset: int = OPSET
    package_version: str = bevformer_ros.__version__

    def metadata(self) -> dict[str, str]:
        """Return the fields as ONNX metadata_props strings."""
        return {k: str(v) for k, v in dataclasses.asdict(self).items()}

    def key(self) -> str:
        """Return a short hash of every field: the cache file name."""
        blob = json.dumps(self.metadata(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:24]


def architecture_sha256(cfg: BEVFormerConfig) -> str:
    """Hash the architecture (the typed config's repr: every field, nested)."""
    return hashlib.sha256(repr(cfg).encode()).hexdigest()


def weights_sha256(model: nn.Module, checkpoint: str | Path | None = None) -> str:
    """Return the sha256 of the checkpoint file, or of the model's weights when there is none."""
    digest = hashlib.sha256()
    if checkpoint:
        with open(checkpoint, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                digest.update(block)
        return digest.hexdigest()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def model_source_sha256() -> str:
    """Hash the model package's source files (bevformer_ros/model/*.py), which define the graph."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob('*.py')):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def default_capacity(bev_h: int, bev_w: int) -> int:
    """Return the default SCA capacity of a BEV grid: a quarter of it, rounded up to 64."""
    return min(bev_h * bev_w, -(-int(bev_h * bev_w * DEFAULT_CAPACITY_FRACTION) // 64) * 64)


def make_spec(
    model: BEVFormer,
    cfg: BEVFormerConfig,
    img_shape: tuple[int, int],
    num_cams: int,
    preset: str = '',
    checkpoint: str | Path | None = None,
    precision: str = 'fp32',
    sca_capacity: int | None = None,
) -> ExportSpec:
    """Describe the graph of ``model`` for padded images of ``img_shape`` (H, W)."""
    head = cfg.head
    capacity = sca_capacity or default_capacity(head.bev_h, head.bev_w)
    return ExportSpec(
        preset=preset or 'custom',
        architecture_sha256=architecture_sha256(cfg),
        checkpoint_sha256=weights_sha256(model, checkpoint),
        image_height=int(img_shape[0]),
        image_width=int(img_shape[1]),
        num_cams=int(num_cams),
        bev_h=head.bev_h,
        bev_w=head.bev_w,
        embed_dims=head.embed_dims,
        sca_capacity=min(int(capacity), head.bev_h * head.bev_w),
        source_sha256=model_source_sha256(),
        precision=precision,
    )


class BevGrid(NamedTuple):
    """What ``frame_inputs`` needs of the BEV head (from its config or from the module)."""

    bev_hw: tuple[int, int]
    pc_range: tuple[float, ...]
    rotate_center: tuple[float, ...]
    embed_dims: int

    @classmethod
    def of_head(cls, head: BEVFormerHead) -> BevGrid:
        """Read the grid of a built head module."""
        transformer = head.transformer
        return cls(head.bev_hw, head.pc_range, transformer.rotate_center, transformer.embed_dims)


def frame_inputs(
    grid: BevGrid,
    img: torch.Tensor,
    lidar2img: torch.Tensor,
    can_bus: torch.Tensor,
    prev_bev: torch.Tensor | None = None,
    camera_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, ...]:
    """
    Return the ``FrameGraph`` inputs (INPUT_NAMES order) of one frame of batch 1.

    Arguments as ``BEVFormer.forward`` (img [1, N, 3, H, W], lidar2img [1, N, 4, 4], can_bus
    [1, 18], prev_bev [HW, 1, C] or None, camera_mask [1, N] or None). The history numbers are
    computed on the CPU in float64 exactly as the eager model does (no float64 in any graph); the
    other tensors stay on their device.
    """
    n, bev_hw = img.shape[1], grid.bev_hw
    can64 = can_bus.detach().cpu().to(torch.float64)  # [1, 18]
    # use_shift is applied inside the graph, as rotate_prev_bev is
    shift = bev_shift(can64, bev_hw, grid.pc_range, True)  # [1, 2] float32
    rotation = rotation_theta(can64[:, -1], bev_hw, grid.rotate_center)  # [1, 2, 3] float32
    hw, c = bev_hw[0] * bev_hw[1], grid.embed_dims
    if prev_bev is None:
        history = torch.zeros(hw, c, device=img.device)  # [HW, C], ignored by the graph
    else:
        history = prev_bev[:, 0].float()  # [HW, C]
    if camera_mask is None:
        mask = torch.ones(n, dtype=torch.bool, device=img.device)  # [N]
    else:
        mask = camera_mask[0].bool()
    return (
        img[0].float(),
        lidar2img[0].float(),
        can64[0].float(),
        shift[0],
        rotation[0],
        history,
        torch.tensor([prev_bev is not None]),
        mask,
    )


class FrameGraph(nn.Module):
    """The detector as one static graph of a frame (see the module docstring for the interface)."""

    def __init__(
        self,
        model: BEVFormer,
        img_shape: tuple[int, int],
        features: Callable[[torch.Tensor], list[torch.Tensor]] | None = None,
    ) -> None:
        """
        Wrap ``model`` for padded images of ``img_shape`` (H, W).

        ``features`` replaces ``model.extract_img_feat`` (img [1, N, 3, H, W] -> per level
        [1, N, C, h, w]): the torch engine passes its folded, reduced-precision backbone + neck.
        """
        super().__init__()
        self.model = model
        self.img_shape = img_shape
        self.features = features or model.extract_img_feat

    def forward(
        self,
        img: torch.Tensor,
        lidar2img: torch.Tensor,
        can_bus: torch.Tensor,
        shift: torch.Tensor,
        rotation: torch.Tensor,
        prev_bev: torch.Tensor,
        use_prev_bev: torch.Tensor,
        camera_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run one frame; shapes as in the module docstring."""
        head = self.model.pts_bbox_head
        feats = self.features(img[None])  # per level [1, N, C, h, w]
        static = StaticHistory(shift[None], rotation[None], use_prev_bev.view(1))
        out = head(
            feats,
            lidar2img[None],
            self.img_shape,
            can_bus[None],
            prev_bev[:, None],
            camera_mask[None],
            static=static,
        )
        _, bev_mask = head.transformer.encoder.camera_geometry(
            head.bev_hw, lidar2img[None], self.img_shape, img.device
        )  # [N, 1, HW, Z]
        max_visible = most_visible(camera_hits(bev_mask, camera_mask[None]))  # []
        return (
            out['bev_embed'][:, 0],
            out['all_cls_scores'][-1, 0],
            out['all_bbox_preds'][-1, 0],
            max_visible,
        )


def example_inputs(spec: ExportSpec) -> tuple[torch.Tensor, ...]:
    """Make inputs of the right shapes for tracing (any values: the graph has no branches)."""
    n, hw = spec.num_cams, spec.bev_h * spec.bev_w
    lidar2img = torch.eye(4).repeat(n, 1, 1)  # [N, 4, 4]
    return (
        torch.zeros(n, 3, spec.image_height, spec.image_width),
        lidar2img,
        torch.zeros(18),
        torch.zeros(2),
        torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
        torch.zeros(hw, spec.embed_dims),
        torch.ones(1, dtype=torch.bool),
        torch.ones(n, dtype=torch.bool),
    )


def export_onnx(
    model: BEVFormer,
    spec: ExportSpec,
    path: str | Path,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """
    Write the ONNX graph of ``model`` for ``spec`` to ``path`` (written whole, then renamed).

    The TorchScript exporter is used (the dynamo exporter stops on the data-dependent parts that
    the eager model keeps for speed); SCA gets the static capacity of the spec while tracing.
    """
    import onnx  # optional: pip install onnx

    say = progress or (lambda _msg: None)
    if next(model.parameters()).device.type != 'cpu':
        # trace a CPU copy: the example inputs are CPU tensors, and the CPU trace is the tested one
        model = copy.deepcopy(model).cpu()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.partial')
    encoder = model.pts_bbox_head.transformer.encoder
    previous, encoder.sca_capacity = encoder.sca_capacity, spec.sca_capacity
    training = model.training
    say(
        f'exporting ONNX ({spec.preset}, {spec.image_width}x{spec.image_height}, '
        f'{spec.num_cams} cameras, opset {spec.opset}) to {path}'
    )
    try:
        # eval() on the wrapper too: the exporter restores the wrapper's mode, recursively
        graph = FrameGraph(model, (spec.image_height, spec.image_width)).eval()
        with torch.no_grad():
            torch.onnx.export(
                graph,
                example_inputs(spec),
                str(tmp),
                dynamo=False,
                opset_version=spec.opset,
                input_names=list(INPUT_NAMES),
                output_names=list(OUTPUT_NAMES),
                external_data=False,
            )
    finally:
        encoder.sca_capacity = previous
        model.train(training)
    say('writing the metadata')
    proto = onnx.load(str(tmp))
    onnx.helper.set_model_props(proto, spec.metadata())
    onnx.save(proto, str(tmp))
    tmp.replace(path)
    say(f'exported {path} ({path.stat().st_size / 1e6:.1f} MB)')
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    """Return the metadata_props of an ONNX file (without loading its weights)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}
