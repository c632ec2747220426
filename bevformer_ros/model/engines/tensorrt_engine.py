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
TensorRT engine: built from the same ONNX graph with the TensorRT Python API, cached as a plan.

Needs an NVIDIA GPU and ``pip install tensorrt`` (or JetPack's python3-libnvinfer). The plan is
specific to the GPU and the TensorRT version, so it is cached under a folder of that version with a
JSON file of the graph's metadata next to it (checked before the plan is used).
Equivalent command line: ``trtexec --onnx=MODEL.onnx --saveEngine=MODEL.plan [--fp16 | --bf16]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import json
from pathlib import Path

from bevformer_ros.model.config import BEVFormerConfig
from bevformer_ros.model.engines.base import ExportedEngine
from bevformer_ros.model.engines.cache import check_metadata, require_runtime
from bevformer_ros.model.export import ExportSpec, OUTPUT_NAMES
import numpy as np
import torch

WORKSPACE_BYTES = 4 << 30


def build_plan(trt: object, onnx_path: Path, precision: str, say: Callable[[str], None]) -> bytes:
    """Parse the ONNX graph and build a serialized engine (minutes for the big presets)."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f'TensorRT cannot parse {onnx_path}: {errors}')
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if precision == 'fp16':
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == 'bf16':
        config.set_flag(trt.BuilderFlag.BF16)
    say(f'building the TensorRT {trt.__version__} engine ({precision}) from {onnx_path.name}')
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(f'TensorRT could not build an engine from {onnx_path}')
    return bytes(plan)


class TensorRTEngine(ExportedEngine):
    """The exported graph as a TensorRT engine on the current CUDA device."""

    backend = 'tensorrt'

    def __init__(
        self,
        onnx_path: Path,
        spec: ExportSpec,
        cfg: BEVFormerConfig,
        device: torch.device,
        folder: Path,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(spec, cfg, device)
        if self.device.type != 'cuda' or not torch.cuda.is_available():
            raise ValueError('model.backend=tensorrt needs model.device:=cuda and a CUDA torch')
        trt = require_runtime('tensorrt')
        self.version = trt.__version__
        say = progress or (lambda _msg: None)
        plan_path = folder / f'tensorrt-{trt.__version__}' / f'{spec.key()}.plan'
        meta_path = plan_path.with_suffix('.json')
        if plan_path.exists() and meta_path.exists():
            check_metadata(plan_path, json.loads(meta_path.read_text()), spec)
            plan = plan_path.read_bytes()
        else:
            plan = build_plan(trt, onnx_path, spec.precision, say)
            plan_path.parent.mkdir(parents=True, exist_ok=True)
            plan_path.write_bytes(plan)
            meta_path.write_text(json.dumps(spec.metadata(), indent=1))
            say(f'cached the TensorRT engine in {plan_path}')
        self.engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(plan)
        self.context = self.engine.create_execution_context()
        self.outputs = {}  # name -> preallocated CUDA tensor
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT:
                shape = tuple(self.engine.get_tensor_shape(name))
                dtype = torch.from_numpy(
                    np.empty(0, trt.nptype(self.engine.get_tensor_dtype(name)))
                )
                self.outputs[name] = torch.empty(shape, dtype=dtype.dtype, device=self.device)
                self.context.set_tensor_address(name, self.outputs[name].data_ptr())

    def run(self, feeds: dict[str, np.ndarray]) -> Sequence[np.ndarray]:
        """Copy the inputs to the GPU, execute on the current stream, copy the outputs back."""
        inputs = {k: torch.from_numpy(v).to(self.device) for k, v in feeds.items()}
        for name, tensor in inputs.items():
            self.context.set_tensor_address(name, tensor.data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError('TensorRT execution failed')
        stream.synchronize()
        return [self.outputs[name].cpu().numpy() for name in OUTPUT_NAMES]
