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


"""OpenVINO engine (CPU): fp32, or bf16 / fp16 through INFERENCE_PRECISION_HINT."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bevformer_ros.model.config import BEVFormerConfig
from bevformer_ros.model.engines.base import ExportedEngine
from bevformer_ros.model.engines.cache import require_runtime
from bevformer_ros.model.export import ExportSpec, OUTPUT_NAMES
import numpy as np
import torch

HINTS = {'fp32': 'f32', 'bf16': 'bf16', 'fp16': 'f16'}
# OPTIMIZATION_CAPABILITIES names of what each reduced precision needs on the CPU
CAPABILITY = {'bf16': 'BF16', 'fp16': 'FP16'}


class OpenVinoEngine(ExportedEngine):
    """The exported graph compiled by OpenVINO for the CPU (compiled blobs cached in cache_dir)."""

    backend = 'openvino'

    def __init__(
        self,
        onnx_path: Path,
        spec: ExportSpec,
        cfg: BEVFormerConfig,
        device: torch.device,
        compiled_cache: Path,
    ) -> None:
        super().__init__(spec, cfg, device)
        ov = require_runtime('openvino')
        if spec.precision not in HINTS:
            raise ValueError(f'model.precision {spec.precision!r}: expected one of {list(HINTS)}')
        core = ov.Core()
        need = CAPABILITY.get(spec.precision)
        capabilities = core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES')
        if need and need not in capabilities:
            raise ValueError(
                f'model.precision={spec.precision} needs a CPU with {need} support (OpenVINO '
                f'reports {list(capabilities)}): use model.precision:=fp32'
            )
        self.version = ov.get_version()
        # OpenVINO keys its compiled blobs by graph, device and properties itself
        core.set_property({'CACHE_DIR': str(compiled_cache)})
        config = {
            'INFERENCE_PRECISION_HINT': HINTS[spec.precision],
            'PERFORMANCE_HINT': 'LATENCY',
        }
        self.compiled = core.compile_model(str(onnx_path), 'CPU', config)
        self.request = self.compiled.create_infer_request()
        self.output_ports = [self.compiled.output(name) for name in OUTPUT_NAMES]

    def run(self, feeds: dict[str, np.ndarray]) -> Sequence[np.ndarray]:
        """Run one inference request."""
        result = self.request.infer(feeds)
        return [np.array(result[port]) for port in self.output_ports]
