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


"""ONNX Runtime engine: the CPU execution provider, or TensorRT / CUDA ones on a GPU."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bevformer_ros.model.config import BEVFormerConfig
from bevformer_ros.model.engines.base import ExportedEngine
from bevformer_ros.model.engines.cache import require_runtime
from bevformer_ros.model.export import ExportSpec, OUTPUT_NAMES
import numpy as np
import torch

PRECISIONS = ('fp32',)  # the graph is float32; ORT runs it as it is


def providers(ort: object, device: torch.device) -> list[str]:
    """Return the execution providers for ``device``: GPU ones first when they are available."""
    available = ort.get_available_providers()
    if device.type == 'cuda':
        gpu = [p for p in ('TensorrtExecutionProvider', 'CUDAExecutionProvider') if p in available]
        if not gpu:
            raise RuntimeError(
                'model.backend=onnxruntime on CUDA needs onnxruntime-gpu (pip install '
                f'onnxruntime-gpu); this onnxruntime has {available}'
            )
        return [*gpu, 'CPUExecutionProvider']
    return ['CPUExecutionProvider']


class OnnxRuntimeEngine(ExportedEngine):
    """The exported graph in an ONNX Runtime session."""

    backend = 'onnxruntime'

    def __init__(
        self, onnx_path: Path, spec: ExportSpec, cfg: BEVFormerConfig, device: torch.device
    ) -> None:
        super().__init__(spec, cfg, device)
        if spec.precision not in PRECISIONS:
            raise ValueError(
                f'model.backend=onnxruntime runs fp32 only, not {spec.precision!r}: use '
                'model.precision:=fp32, or openvino (bf16) / tensorrt (fp16)'
            )
        ort = require_runtime('onnxruntime')
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only
        self.version = ort.__version__
        self.session = ort.InferenceSession(
            str(onnx_path), options, providers=providers(ort, self.device)
        )

    def run(self, feeds: dict[str, np.ndarray]) -> Sequence[np.ndarray]:
        """Run the session."""
        return self.session.run(list(OUTPUT_NAMES), feeds)
