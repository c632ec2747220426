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


"""The node's pipeline runs the exported graph with model.backend: same results as torch."""

from __future__ import annotations

from bevformer_ros.config import NodeConfig
from bevformer_ros.core.ego_motion import EgoPose
from bevformer_ros.core.rig import load_rig
from bevformer_ros.frontend.plain_msgs import camera_info_msg, image_msg
from bevformer_ros.model.small_model import SMALL_IMAGE_HEIGHT as H
from bevformer_ros.model.small_model import SMALL_IMAGE_WIDTH as W
from bevformer_ros.model.small_model import small_model_parameters
from bevformer_ros.pipeline import CameraInput, FrameSet, Pipeline
from bevformer_ros.resources import config_file
import numpy as np
import pytest
import torch

NS = 1_000_000_000


def _frame(config, rig, stamp_s, x):
    rng = np.random.default_rng(0)
    f = 1266.417 * W / 1600
    K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]])
    cams = []
    for name in config.cameras.names:
        pixels = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
        msg = image_msg(pixels, 'rgb8', frame_id=name)
        cams.append(
            CameraInput(msg, camera_info_msg(K, W, H, name), rig.camera(name).sensor2lidar)
        )
    pose = EgoPose(round(stamp_s * NS), np.array([x, 0.0, 0.0]), np.array([1.0, 0.0, 0.0, 0.0]))
    return FrameSet(round(stamp_s * NS), cams, pose)


def test_openvino_backend_gives_the_torch_results_with_history(tmp_path):
    pytest.importorskip('openvino', reason='openvino is not installed (requirements-dev.txt)')
    rig = load_rig(config_file('nuscenes_rig.yaml'))
    results = {}
    for backend in ('torch', 'openvino'):
        params = small_model_parameters(
            model__device='cpu', model__backend=backend, model__engine_cache=str(tmp_path)
        )
        config = NodeConfig.from_parameters(params)
        pipeline = Pipeline.from_settings(config, torch.device('cpu'))
        results[backend] = [
            pipeline.run(_frame(config, rig, 10.0 + 0.5 * i, 2.0 * i)) for i in range(3)
        ]
    # exported at the first frame, into model.engine_cache
    assert list(tmp_path.glob('onnx/*.onnx'))
    for ref, got in zip(results['torch'], results['openvino']):
        assert float(np.abs(ref.bev - got.bev).max()) < 1e-4
        assert float(np.abs(ref.scores[:5] - got.scores[:5]).max()) < 1e-4
    assert results['torch'][2].reset is None  # the last frames ran with history


def test_engine_image_size_builds_the_engine_before_the_first_frame(tmp_path):
    pytest.importorskip('onnxruntime', reason='onnxruntime is not installed (requirements-dev)')
    rig = load_rig(config_file('nuscenes_rig.yaml'))
    params = small_model_parameters(
        model__backend='onnxruntime',
        model__engine_cache=str(tmp_path),
        model__engine_image_size=[W, H],
    )
    config = NodeConfig.from_parameters(params)
    pipeline = Pipeline.from_settings(config, torch.device('cpu'))
    built = pipeline.model.engine  # exported and loaded at construction (the node: configure)
    assert built is not None and list(tmp_path.glob('onnx/*.onnx'))
    assert (built.spec.image_width, built.spec.image_height) == (160, 96)  # padded to 32
    result = pipeline.run(_frame(config, rig, 10.0, 0.0))
    assert pipeline.model.engine is built and len(result.scores) > 0  # that size: no rebuild
