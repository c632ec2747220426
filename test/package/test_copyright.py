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

"""ament_copyright license-header check, the ros2/examples way; skipped without ament."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.copyright
@pytest.mark.linter
def test_copyright():
    ament_copyright = pytest.importorskip(
        'ament_copyright.main', reason='ament_copyright is not installed (a ROS 2 install has it)'
    )
    paths = [str(ROOT / name) for name in ('bevformer_ros', 'test', 'launch', 'setup.py')]
    rc = ament_copyright.main(argv=paths)
    assert rc == 0, 'Found errors'


def test_every_python_file_carries_the_license_header():
    # Runs without ament, so a file added without the header fails here before it fails on a ROS
    # machine.
    sources = [ROOT / 'setup.py'] + [
        p for name in ('bevformer_ros', 'test', 'launch') for p in (ROOT / name).rglob('*.py')
    ]
    notice = 'Licensed under the Apache License, Version 2.0'
    missing = [
        str(p.relative_to(ROOT))
        for p in sources
        if p.read_text().strip() and notice not in p.read_text()
    ]
    assert not missing, f'no license header (run scripts/add_license_headers.py): {missing}'
