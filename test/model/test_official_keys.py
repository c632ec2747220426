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

"""Each preset's state dict has exactly the official keys, shapes, dtypes, in order (README §8)."""

from __future__ import annotations

import json

from bevformer_ros.model.config import preset
from bevformer_ros.model.detector import build_bevformer
import pytest
from reference_fixtures import REFERENCE, require
import torch

FIXTURES = REFERENCE


def manifest(name: str) -> list[tuple[str, list[int], str]]:
    path = FIXTURES / f'official_keys_{name}.json'
    return [(key, shape, dtype) for key, shape, dtype in json.loads(require(path).read_text())]


@pytest.mark.parametrize('name', ['tiny', 'small', 'base'])
def test_preset_state_dict_equals_official_manifest(name):
    with torch.device('meta'):  # no memory, no init cost
        model = build_bevformer(preset(name))
    ours = [
        (k, list(v.shape), str(v.dtype).removeprefix('torch.'))
        for k, v in model.state_dict().items()
    ]
    expected = manifest(name)
    missing = sorted({k for k, _, _ in expected} - {k for k, _, _ in ours})
    unexpected = sorted({k for k, _, _ in ours} - {k for k, _, _ in expected})
    assert not missing and not unexpected, f'missing {missing[:5]}, unexpected {unexpected[:5]}'
    assert ours == expected


@pytest.mark.parametrize('name', ['tiny', 'small', 'base'])
def test_head_only_model_has_the_head_keys(name):
    with torch.device('meta'):
        model = build_bevformer(preset(name), head_only=True)
    expected = [(k, s) for k, s, _ in manifest(name) if k.startswith('pts_bbox_head.')]
    assert [(k, list(v.shape)) for k, v in model.state_dict().items()] == expected
