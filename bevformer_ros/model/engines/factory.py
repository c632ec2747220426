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


"""Choose, export and load the engine of a built detector (the one entry point of this package)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bevformer_ros.model.config import BEVFormerConfig
from bevformer_ros.model.detector import BEVFormer
from bevformer_ros.model.engines.base import ExportedEngine
from bevformer_ros.model.engines.cache import cache_dir, ensure_onnx, require_runtime
from bevformer_ros.model.export import make_spec
import torch

# what each exported-graph backend runs (the torch engine runs all of config.ENGINE_PRECISIONS)
EXPORTED_PRECISIONS = {
    'onnxruntime': ('fp32',),
    'openvino': ('fp32', 'bf16', 'fp16'),
    'tensorrt': ('fp32', 'fp16', 'bf16'),
}


def check_choice(backend: str, precision: str) -> None:
    """Refuse an unknown backend or precision, or a missing runtime, before any export."""
    if backend not in EXPORTED_PRECISIONS:
        raise ValueError(
            f'unknown engine backend {backend!r}: expected {list(EXPORTED_PRECISIONS)}'
        )
    if precision not in EXPORTED_PRECISIONS[backend]:
        raise ValueError(
            f'model.precision={precision} is not available with model.backend={backend}; '
            f'expected one of {list(EXPORTED_PRECISIONS[backend])}'
        )
    require_runtime(backend)  # before minutes of export: a missing runtime fails first


def create_engine(
    backend: str,
    model: BEVFormer,
    cfg: BEVFormerConfig,
    img_shape: tuple[int, int],
    num_cams: int,
    device: torch.device | str = 'cpu',
    precision: str = 'fp32',
    checkpoint: str | Path | None = None,
    preset: str = '',
    folder: str | Path | None = None,
    onnx_file: str | Path | None = None,
    sca_capacity: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> ExportedEngine:
    """
    Export (or find in the cache) the graph of ``model`` and load it in ``backend``'s runtime.

    Parameters
    ----------
    backend
        onnxruntime | openvino | tensorrt.
    model, cfg
        the built detector (eval mode, loaded weights) and its architecture.
    img_shape
        (H, W) of the padded network input.
    num_cams
        cameras per frame.
    device
        where the outputs go (tensorrt: the CUDA device it runs on).
    precision
        fp32 | bf16 | fp16 (what the backend supports, see EXPORTED_PRECISIONS).
    checkpoint
        the checkpoint file (its sha256 keys the cache; None: the weights' hash).
    preset
        a label written into the metadata and the key.
    folder
        the cache folder (default ~/.cache/bevformer_ros/engines).
    onnx_file
        use this exported file (bevformer_export) instead of the cache; it must match.
    sca_capacity
        SCA row length of the graph (default a quarter of the BEV, see export).
    progress
        called with a line per step of exporting / compiling.

    Returns
    -------
        the engine, called like ``BEVFormer.forward``.

    """
    check_choice(backend, precision)
    say = progress or (lambda _msg: None)
    root = cache_dir(folder)
    spec = make_spec(model, cfg, img_shape, num_cams, preset, checkpoint, precision, sca_capacity)
    onnx_path = ensure_onnx(model, spec, root / 'onnx', onnx_file, say)
    say(f'loading {onnx_path.name} in {backend} ({precision})')
    device = torch.device(device)
    if backend == 'onnxruntime':
        from bevformer_ros.model.engines.onnxruntime_engine import OnnxRuntimeEngine

        return OnnxRuntimeEngine(onnx_path, spec, cfg, device)
    if backend == 'openvino':
        from bevformer_ros.model.engines.openvino_engine import OpenVinoEngine

        ov = require_runtime('openvino')
        return OpenVinoEngine(onnx_path, spec, cfg, device, root / f'openvino-{ov.__version__}')
    from bevformer_ros.model.engines.tensorrt_engine import TensorRTEngine

    return TensorRTEngine(onnx_path, spec, cfg, device, root, say)


class DeferredEngine:
    """
    An engine created at its first frame, when the image size and camera count are known.

    Called like ``BEVFormer.forward``; a frame of another size exports / loads the matching engine
    (cached on disk, so a size seen before costs only the load).
    """

    def __init__(self, backend: str, model: BEVFormer, cfg: BEVFormerConfig, **options: object):
        check_choice(backend, str(options.get('precision', 'fp32')))
        self.backend = backend
        self.model, self.cfg, self.options = model, cfg, options
        self.engine: ExportedEngine | None = None

    def __call__(
        self,
        img: torch.Tensor,
        lidar2img: torch.Tensor,
        img_shape: tuple[int, int],
        can_bus: torch.Tensor,
        prev_bev: torch.Tensor | None = None,
        camera_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Create the engine for this frame's shapes if needed, then run it."""
        engine = self.prepare(img_shape, int(img.shape[1]))
        return engine(img, lidar2img, img_shape, can_bus, prev_bev, camera_mask)

    def prepare(self, img_shape: tuple[int, int], num_cams: int) -> ExportedEngine:
        """Return the engine for padded images of `img_shape` (H, W), exporting it if needed."""
        spec = None if self.engine is None else self.engine.spec
        wanted = (int(img_shape[0]), int(img_shape[1]), int(num_cams))
        if spec is None or (spec.image_height, spec.image_width, spec.num_cams) != wanted:
            self.engine = create_engine(
                self.backend, self.model, self.cfg, wanted[:2], wanted[2], **self.options
            )
        return self.engine
