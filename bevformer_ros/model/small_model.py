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
A seconds-fast BEVFormer for tests and CPU smoke runs: tiny's architecture at toy sizes.

The shapes follow the reference fixture `case_small.pt` (ResNet-50 with base_channels 16, embed 32
instead of 64, BEV 10x10, 1 encoder and 1 decoder layer, 20 queries) and 160x90 camera images fed
at scale 1.0 (the official tiny scale 0.5 is meant for 1600x900). The weights are random, so
detections mean nothing; shapes, timings, stamps and temporal bookkeeping are what such a model is
for.
"""

from __future__ import annotations

from typing import Any

SMALL_IMAGE_WIDTH, SMALL_IMAGE_HEIGHT = 160, 90

# ROS parameters (flat names of node_config.PARAMETERS) on top of the defaults.
SMALL_MODEL_PARAMETERS: dict[str, Any] = {
    'model.preset': 'tiny',
    'model.device': 'cpu',
    'model.base_channels': 16,
    'model.embed_dims': 32,
    'model.ffn_dims': 64,
    'model.bev_size': 10,
    'model.num_encoder_layers': 1,
    'model.num_decoder_layers': 1,
    'model.num_query': 20,
    # relative to the 1600x900 nominal image: a 160x90 camera goes through unresized
    'model.image_scale': 0.1,
}


def small_model_parameters(**overrides: Any) -> dict[str, Any]:
    """
    Return SMALL_MODEL_PARAMETERS with keyword overrides.

    Dots in names become double underscores
    (`small_model_parameters(outputs__score_threshold=0.0)`).
    """
    params = dict(SMALL_MODEL_PARAMETERS)
    params.update({key.replace('__', '.'): value for key, value in overrides.items()})
    return params
