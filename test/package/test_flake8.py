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
Run ament_flake8 over the package the ros2/examples way; skipped where it is not installed.

ament's own configuration (99 columns, google import order, single quotes, docstrings), as
`colcon test` runs it on a robot; the dev venv installs the same linter from PyPI, and ruff.toml
mirrors these rules for quick checks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ament_flake8 = pytest.importorskip(
    'ament_flake8.main',
    reason='ament_flake8 is not installed (a ROS 2 install has it); ruff runs here',
)


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8():
    paths = [str(ROOT / name) for name in ('bevformer_ros', 'test', 'launch', 'setup.py')]
    rc, errors = ament_flake8.main_with_errors(argv=paths)
    assert rc == 0, f'Found {len(errors)} code style errors / warnings:\n' + '\n'.join(errors)
