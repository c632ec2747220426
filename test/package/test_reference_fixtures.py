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
A missing official fixture skips where no shared folder is configured, and fails where one is.

In a colcon workspace there is no `../shared` and no BEVFORMER_SHARED: the parity tests skip with
a reason naming BEVFORMER_SHARED. With a shared folder (or CI / BEVFORMER_REQUIRE_FIXTURES=1) a
missing file is a failure, so CI cannot skip parity silently.
"""

from __future__ import annotations

import pytest
import reference_fixtures
from reference_fixtures import require


@pytest.fixture
def workspace(monkeypatch, tmp_path):
    """Simulate a fresh colcon workspace: no shared folder beside the checkout, no variables."""
    monkeypatch.setattr(reference_fixtures, '_BESIDE', tmp_path / 'no_shared_here')
    for name in ('BEVFORMER_SHARED', 'CI', 'BEVFORMER_REQUIRE_FIXTURES'):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_present_fixture_is_returned(workspace, tmp_path):
    path = tmp_path / 'case.pt'
    path.write_bytes(b'')
    assert require(path) == path


def test_absent_shared_folder_skips_naming_the_variable(workspace, tmp_path):
    with pytest.raises(pytest.skip.Exception, match='set BEVFORMER_SHARED'):
        require(tmp_path / 'case_small.pt')


@pytest.mark.parametrize(
    'setting',
    [('BEVFORMER_SHARED', '/somewhere'), ('CI', 'true'), ('BEVFORMER_REQUIRE_FIXTURES', '1')],
)
def test_configured_or_required_fixtures_fail_when_missing(workspace, tmp_path, setting):
    workspace.setenv(*setting)
    with pytest.raises(pytest.fail.Exception, match='fixture missing'):
        require(tmp_path / 'case_small.pt')


def test_shared_folder_beside_the_checkout_makes_a_missing_file_fail(workspace, tmp_path):
    (tmp_path / 'shared').mkdir()
    workspace.setattr(reference_fixtures, '_BESIDE', tmp_path / 'shared')
    with pytest.raises(pytest.fail.Exception, match='fixture missing'):
        require(tmp_path / 'shared' / 'case_small.pt')
