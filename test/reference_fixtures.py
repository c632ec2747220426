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
Locate the fixtures computed by the official BEVFormer code.

They live in `../shared` beside the checkout (as CI has it) or in the folder named by
BEVFORMER_SHARED. In a colcon workspace neither exists: the tests that need a fixture skip with a
reason that names BEVFORMER_SHARED. Where a shared folder is configured (BEVFORMER_SHARED set or
`../shared` present), or CI / BEVFORMER_REQUIRE_FIXTURES=1 is set, a missing file fails the test,
so a CI run can never skip parity silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_BESIDE = Path(__file__).resolve().parents[2] / 'shared'
SHARED = Path(os.environ.get('BEVFORMER_SHARED') or _BESIDE)
REFERENCE = SHARED / 'fixtures' / 'bevformer_reference'
CASE_SMALL = REFERENCE / 'case_small.pt'


def fixtures_required() -> bool:
    """Return whether a missing fixture is a failure rather than a skip."""
    if os.environ.get('CI') or os.environ.get('BEVFORMER_REQUIRE_FIXTURES') == '1':
        return True
    return bool(os.environ.get('BEVFORMER_SHARED')) or _BESIDE.is_dir()


def require(path: Path) -> Path:
    """Return `path` if it exists; else skip the test, or fail it where fixtures are due."""
    if path.exists():
        return path
    if fixtures_required():
        pytest.fail(f'fixture missing: {path} (shared folder {SHARED})', pytrace=False)
    pytest.skip(
        f'fixture {path.name} not available: no shared folder at {SHARED}; set BEVFORMER_SHARED '
        'to the folder that holds fixtures/bevformer_reference'
    )
