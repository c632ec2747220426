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

# Copyright 2026 bevformer_ros contributors
# SPDX-License-Identifier: Apache-2.0
"""--backend / --precision of bench_node, soak and demo reach the node and the in-process paths."""

from __future__ import annotations

from bevformer_ros.data.params_file import read_params_file
from bevformer_ros.model.engines import DeferredEngine
from bevformer_ros.tools import demo, soak
from bevformer_ros.tools.bench_node import _params_file
import pytest


def test_demo_passes_backend_and_precision_to_the_node():
    args = demo.build_parser().parse_args(['--backend', 'openvino', '--precision', 'bf16'])
    assert demo.engine_arguments(args) == [
        '-p',
        'model.backend:=openvino',
        '-p',
        'model.precision:=bf16',
    ]
    sized = demo.build_parser().parse_args(['--backend', 'openvino', '--width', '400', '--height',
                                            '225'])
    assert demo.engine_arguments(sized)[-2:] == ['-p', 'model.engine_image_size:=[400, 225]']
    default = demo.build_parser().parse_args([])
    assert demo.engine_arguments(default)[1::2] == [
        'model.backend:=torch',
        'model.precision:=fp32',
    ]


def test_bench_node_writes_backend_and_precision_into_the_node_parameters(tmp_path):
    path = _params_file(tmp_path / 'params.yaml', 'small-test', 'cpu', 'bf16', 'onnxruntime')
    params = read_params_file(path)
    assert params['model.backend'] == 'onnxruntime'
    assert params['model.precision'] == 'bf16'


def test_soak_without_ros_runs_the_small_model_on_onnxruntime(tmp_path, monkeypatch):
    pytest.importorskip(
        'onnxruntime', reason='onnxruntime is not installed (requirements-dev.txt)'
    )
    monkeypatch.setenv('HOME', str(tmp_path))  # the engine cache lands in this test's folder
    pipeline, config = soak._build_pipeline('small-test', 'cpu', '', 'onnxruntime', 'fp32')
    assert (config.model.backend, config.model.precision) == ('onnxruntime', 'fp32')
    assert isinstance(pipeline.model, DeferredEngine)
    argv = ['--no-ros', '--frames', '2', '--report-every', '1', '--backend', 'onnxruntime']
    assert soak.main(argv) == 0
    # the engine was exported at the first frame (not eager torch)
    assert list((tmp_path / '.cache' / 'bevformer_ros' / 'engines').rglob('*.onnx'))
