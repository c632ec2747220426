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
Test dependencies that rosdep cannot install: skip with the pip command that installs them.

On a ROS 2 robot `rosdep install` brings everything in package.xml; rosbags, mcap, the nuScenes
devkit and pyquaternion have no rosdep key. The development venv (`make setup`) has them all.
Each test skips on its own (the module still imports): `requires(...)` makes an autouse fixture
for a test module, `lazy(...)` stands in for a name imported from such a package.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

# top-level module -> pip command (versions as in requirements-dev.txt / requirements-nodeps.txt)
PIP = {
    'rosbags': 'pip install rosbags==0.11.9',
    'mcap': 'pip install mcap==1.6.0',
    'pyquaternion': 'pip install pyquaternion==0.9.9',
    'nuscenes': (
        'pip install pyquaternion shapely descartes matplotlib scikit-learn scipy tqdm fire '
        'cachetools pycocotools opencv-python-headless && '
        'pip install --no-deps nuscenes-devkit==1.2.0'
    ),
}


def needs(module: str) -> ModuleType:
    """Import `module` or skip: `<package> is not installed (no rosdep key); <pip command>`."""
    top = module.split('.')[0]
    return pytest.importorskip(
        module, reason=f'{top} is not installed (it has no rosdep key); {PIP[top]}'
    )


def requires(*modules: str) -> Callable[[], None]:
    """Return an autouse module fixture that skips every test of the module without `modules`."""

    @pytest.fixture(scope='module', autouse=True)
    def optional_dependencies() -> None:
        for module in modules:
            needs(module)

    return optional_dependencies


def lazy(module: str, name: str) -> Callable[..., Any]:
    """Return a stand-in for `from module import name` that imports (or skips) when called."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(needs(module), name)(*args, **kwargs)

    return call
