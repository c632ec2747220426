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
The ``torch`` engine: the detector in PyTorch with the fast settings of its device and precision.

Same call as ``BEVFormer.forward`` (images [B, N, 3, H, W], lidar2img, img_shape, can_bus,
prev_bev, camera_mask) and the same outputs, every floating tensor returned in float32 whatever ran
inside, so the temporal state and box decoding do not depend on the engine. All inference-only:

* batch norm folded into the convs (exact up to rounding: the official checkpoints freeze BN);
* channels_last activations in backbone and neck (the layout oneDNN and cuDNN convolve fastest);
* precision per part: ``precision`` for backbone + neck, whose weights are converted once (folded
  convs, ReLU, pooling and adds are all safe in bf16 / fp16, and no weight is cast per frame as
  under autocast), ``head_precision`` for the BEV head, run under autocast. The transformer head
  carries most of the reduced-precision error (docs/engine_notes.md) and, measured on an H200, an
  fp16 head is even slower than fp32 (tiny: 34 ms vs 27 ms, max |d bev| 0.38), so the head stays
  fp32 unless asked otherwise, on every device;
* static mode (default on CUDA): the frame runs as ``export.FrameGraph``, the same static-shape
  formulation the ONNX export traces (fixed SCA capacity, history inputs computed in Python,
  ``use_prev_bev`` flag, camera mask), with no host sync inside. On CUDA the whole frame is
  captured once per input shape in a CUDA graph and replayed (inputs copied into its static
  buffers): a few launches instead of thousands of small kernels. After each frame the
  ``max_visible`` output is read (the one sync per frame); a camera that saw more BEV queries than
  the capacity would have been truncated, so that frame is recomputed eagerly (one warning);
* without static mode, on CUDA, backbone + neck replayed from a CUDA graph, and optionally the
  head through ``torch.compile``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
import contextlib
import copy
import warnings

from bevformer_ros.model.detector import BEVFormer
from bevformer_ros.model.engines.cpu_features import has_bf16
from bevformer_ros.model.engines.fold_bn import fold_batch_norms
from bevformer_ros.model.export import BevGrid, default_capacity, frame_inputs, FrameGraph
import torch

DTYPES = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}
GRAPH_WARMUP = 3  # eager runs on a side stream before capture, as the CUDA graph docs ask


def _autocast(
    device: torch.device, dtype: torch.dtype | None, cache: bool = True
) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    # no weight cache under CUDA graph capture (the PyTorch docs' rule for autocast + graphs)
    return torch.autocast(device.type, dtype=dtype, cache_enabled=cache)


def check_precision(precision: str, device: torch.device) -> None:
    """Reject a precision this device cannot run usefully, naming the alternative."""
    if precision not in DTYPES:
        raise ValueError(f'precision must be one of {sorted(DTYPES)}, got {precision!r}')
    if precision == 'fp16' and device.type != 'cuda':
        raise ValueError('fp16 runs on CUDA only; on a CPU use bf16 (AMX / AVX512-BF16) or fp32')


def default_head_precision(precision: str, device: torch.device) -> str:
    """Return the head's precision when none is given: fp32 (see the module docstring)."""
    del precision, device  # the same answer everywhere, measured (CPU: accuracy, H200: speed)
    return 'fp32'


@contextlib.contextmanager
def _sca_capacity(encoder: torch.nn.Module, capacity: int | None) -> Iterator[None]:
    """Set the encoder's SCA row length for one call (None: sized per frame, eager)."""
    previous, encoder.sca_capacity = encoder.sca_capacity, capacity
    try:
        yield
    finally:
        encoder.sca_capacity = previous


class _Graphed:
    """A function of static-shape tensors captured once in a CUDA graph, replayed on buffers."""

    def __init__(self, fn: Callable[..., Sequence[torch.Tensor]], *examples: torch.Tensor) -> None:
        self.static_in = [e.clone() for e in examples]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(GRAPH_WARMUP):
                fn(*self.static_in)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        # thread_local: another thread of the process (the node's preprocessing) may use CUDA
        with torch.cuda.graph(self.graph, capture_error_mode='thread_local'):
            self.static_out = fn(*self.static_in)

    def __call__(self, *inputs: torch.Tensor) -> Sequence[torch.Tensor]:
        for buffer, value in zip(self.static_in, inputs):
            buffer.copy_(value, non_blocking=True)
        self.graph.replay()
        return self.static_out  # overwritten by the next replay: consume or copy it first


class TorchEngine:
    """Fast inference wrapper of a ``BEVFormer`` (see the module docstring); folds a copy."""

    backend = 'torch'

    def __init__(
        self,
        model: BEVFormer,
        precision: str = 'fp32',
        head_precision: str | None = None,
        fold_bn: bool = True,
        channels_last: bool = True,
        cuda_graph: bool = True,
        compile_head: bool = False,
        static: bool | None = None,
        sca_capacity: int | None = None,
        compile_mode: str | None = None,
    ) -> None:
        """
        Prepare a copy of ``model`` (on its device, eval mode) for inference.

        Parameters
        ----------
        model
            the detector, weights loaded, already on the target device.
        precision
            fp32 | bf16 | fp16 (CUDA only) for backbone + neck.
        head_precision
            the same choice for the BEV head; None: ``default_head_precision``.
        fold_bn
            fold batch norms into the convs.
        channels_last
            NHWC activations in backbone and neck.
        cuda_graph
            on CUDA, replay the whole frame (static mode) or else backbone + neck from a CUDA
            graph.
        compile_head
            wrap the head in ``torch.compile`` (the first calls compile: slow); eager mode only.
        static
            run frames of batch 1 as ``export.FrameGraph``; None: on CUDA only.
        sca_capacity
            SCA row length of static mode; None: ``export.default_capacity``.
        compile_mode
            static mode only: ``torch.compile`` the static frame with this mode (e.g.
            'reduce-overhead', which replays its own CUDA graphs, or 'max-autotune-no-cudagraphs',
            captured in the engine's graph); None: no compile.

        """
        if model.img_backbone is None or model.img_neck is None:
            raise ValueError('TorchEngine needs the whole detector, not a head-only one')
        self.device = next(model.parameters()).device
        self.precision = precision
        self.head_precision = head_precision or default_head_precision(precision, self.device)
        for name in (self.precision, self.head_precision):
            check_precision(name, self.device)
        self.model = copy.deepcopy(model).eval()
        self.folded_bn = fold_batch_norms(self.model.img_backbone) if fold_bn else 0
        self.channels_last = channels_last
        self.backbone_dtype = DTYPES[precision] or torch.float32
        # the head gets its features in its own precision, as under autocast of the whole model
        self.feature_dtype = DTYPES[self.head_precision] or torch.float32
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        for part in (self.model.img_backbone, self.model.img_neck):
            part.to(dtype=self.backbone_dtype, memory_format=fmt)
        self.cuda_graph = cuda_graph and self.device.type == 'cuda'
        self._graphs: dict[tuple[int, ...], _Graphed] = {}
        head = self.model.pts_bbox_head
        self._head: Callable = torch.compile(head, dynamic=False) if compile_head else head
        self.static = (self.device.type == 'cuda') if static is None else static
        num_bev = head.bev_hw[0] * head.bev_hw[1]
        self.sca_capacity = min(sca_capacity or default_capacity(*head.bev_hw), num_bev)
        self._grid = BevGrid.of_head(head)
        self._frames: dict[tuple[int, ...], Callable[..., Sequence[torch.Tensor]]] = {}
        self.overflow_frames = 0  # frames recomputed eagerly: a camera saw more than the capacity
        self.compile_mode = compile_mode if self.static else None
        self.capture_error = ''  # why the frame could not be captured, if it could not

    def describe(self) -> str:
        """Name what this engine does in one line, for logs and benchmark tables."""
        parts = [f'torch {self.precision}']
        if self.head_precision != self.precision:
            parts.append(f'head {self.head_precision}')
        if self.folded_bn:
            parts.append(f'{self.folded_bn} BN folded')
        if self.channels_last:
            parts.append('channels_last')
        if self.static:
            graph = ', CUDA graph (frame)' if self.cuda_graph and not self.capture_error else ''
            parts.append(f'static (SCA capacity {self.sca_capacity}{graph})')
        elif self.cuda_graph:
            parts.append('CUDA graph (backbone+neck)')
        if self._head is not self.model.pts_bbox_head and not self.static:
            parts.append('compiled head')
        if self.compile_mode:
            parts.append(f'compiled frame ({self.compile_mode})')
        if self.device.type == 'cpu' and 'bf16' in (self.precision, self.head_precision):
            parts.append('native bf16' if has_bf16() else 'bf16 EMULATED (no AMX/AVX512-BF16)')
        return ', '.join(parts)

    def _backbone_neck(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Compute FPN levels [B*N, C, h, w] (head precision, contiguous) from x [B*N, 3, H, W]."""
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        x = x.to(dtype=self.backbone_dtype, memory_format=fmt)
        with torch.autocast(x.device.type, enabled=False):  # its own precision, not the head's
            feats = self.model.img_neck(self.model.img_backbone(x))
        layout = torch.contiguous_format  # the head flattens and views the levels
        return [f.to(dtype=self.feature_dtype, memory_format=layout) for f in feats]

    def features(self, img: torch.Tensor, graph: bool | None = None) -> list[torch.Tensor]:
        """Compute FPN levels [B, N, C, h, w] (head precision) from img [B, N, 3, H, W]."""
        B, N = img.shape[:2]
        x = img.flatten(0, 1)  # [B*N, 3, H, W]
        if self.cuda_graph if graph is None else graph:
            key = tuple(x.shape)
            if key not in self._graphs:
                self._graphs[key] = _Graphed(self._backbone_neck, x)
            feats = self._graphs[key](x)
        else:
            feats = self._backbone_neck(x)
        return [f.view(B, N, *f.shape[1:]) for f in feats]

    def _frame(self, img_shape: tuple[int, int], inputs: Sequence[torch.Tensor]) -> Callable:
        """Return the static frame function of this shape: a CUDA graph, or FrameGraph itself."""
        key = (*img_shape, *inputs[0].shape)
        if key not in self._frames:
            graph: Callable = FrameGraph(
                self.model, img_shape, lambda img: self.features(img, graph=False)
            )
            if self.compile_mode:
                graph = torch.compile(graph, mode=self.compile_mode, dynamic=False)
            precision = DTYPES[self.head_precision]
            encoder = self.model.pts_bbox_head.transformer.encoder

            def run(*args: torch.Tensor) -> Sequence[torch.Tensor]:
                with torch.no_grad(), _autocast(self.device, precision, cache=False):
                    with _sca_capacity(encoder, self.sca_capacity):
                        return graph(*args)

            # reduce-overhead replays CUDA graphs of its own: no second capture around them
            own_graph = self.cuda_graph and self.compile_mode != 'reduce-overhead'
            self._frames[key] = self._capture(run, inputs) if own_graph else run
        return self._frames[key]

    def _capture(self, run: Callable, inputs: Sequence[torch.Tensor]) -> Callable:
        """Capture ``run`` in a CUDA graph; if capture fails, warn and run it uncaptured."""
        try:
            return _Graphed(run, *inputs)
        except RuntimeError as err:  # an op that cannot be captured: slower, still right
            self.capture_error = f'{type(err).__name__}: {err}'.splitlines()[0]
            warnings.warn(
                f'CUDA graph capture of the static frame failed ({self.capture_error}); '
                f'running it without a graph',
                stacklevel=4,
            )
            return run

    def _static_call(
        self,
        img: torch.Tensor,
        lidar2img: torch.Tensor,
        img_shape: tuple[int, int],
        can_bus: torch.Tensor,
        prev_bev: torch.Tensor | None,
        camera_mask: torch.Tensor | None,
    ) -> dict[str, torch.Tensor] | None:
        """Run one frame statically; None when a camera saw more queries than the capacity."""
        inputs = frame_inputs(self._grid, img, lidar2img, can_bus, prev_bev, camera_mask)
        inputs = [t.to(self.device, non_blocking=True) for t in inputs]
        bev, cls, box, max_visible = self._frame(img_shape, inputs)(*inputs)
        if int(max_visible) > self.sca_capacity:  # the one host sync of a frame
            self.overflow_frames += 1
            if self.overflow_frames == 1:
                warnings.warn(
                    f'a camera sees {int(max_visible)} BEV queries, more than the SCA capacity '
                    f'{self.sca_capacity} of the static torch engine: such frames run eagerly '
                    f'(slower); raise sca_capacity to keep them static',
                    stacklevel=3,
                )
            return None
        # copies: the next replay overwrites the graph's outputs
        return {
            'bev_embed': bev.to(torch.float32, copy=True)[:, None],  # [HW, 1, C]
            'all_cls_scores': cls.to(torch.float32, copy=True)[None, None],  # [1, 1, Q, K]
            'all_bbox_preds': box.to(torch.float32, copy=True)[None, None],  # [1, 1, Q, 10]
        }

    def __call__(
        self,
        img: torch.Tensor,
        lidar2img: torch.Tensor,
        img_shape: Sequence[int],
        can_bus: torch.Tensor,
        prev_bev: torch.Tensor | None = None,
        camera_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """
        Run one frame; arguments and outputs as ``BEVFormer.forward`` (outputs in float32).

        A static frame (batch 1) returns the last decoder layer only, as the exported engines do:
        bev_embed [HW, 1, C], all_cls_scores [1, 1, Q, K], all_bbox_preds [1, 1, Q, 10].
        """
        img_shape = (int(img_shape[0]), int(img_shape[1]))
        if self.static and img.shape[0] == 1:
            out = self._static_call(img, lidar2img, img_shape, can_bus, prev_bev, camera_mask)
            if out is not None:
                return out
        with torch.no_grad():
            feats = self.features(img, graph=self.cuda_graph and not self.static)
            with _autocast(self.device, DTYPES[self.head_precision]):
                out = self._head(
                    feats, lidar2img, tuple(img_shape), can_bus, prev_bev, camera_mask
                )
        return {k: v.float() if v.is_floating_point() else v for k, v in out.items()}
