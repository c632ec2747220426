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

"""ament_pep257 docstring check, the ros2/examples way; skipped where ament is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ament_pep257 = pytest.importorskip(
    'ament_pep257.main', reason='ament_pep257 is not installed (a ROS 2 install has it)'
)


@pytest.mark.pep257
@pytest.mark.linter
def test_pep257():
    paths = [str(ROOT / name) for name in ('bevformer_ros', 'test', 'launch', 'setup.py')]
    # ament's own convention (D213: a multi-line summary starts on the second line)
    rc = ament_pep257.main(argv=paths)
    assert rc == 0, 'Found code style errors / warnings'
