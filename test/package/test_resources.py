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

"""resources: installed share directory first, then the source tree, else a clear error."""

from __future__ import annotations

from bevformer_ros import resources
import pytest


def fake_install(prefix, files):
    """Create a colcon/ament install prefix with this package's marker and the share files."""
    marker = prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' / 'bevformer_ros'
    marker.parent.mkdir(parents=True)
    marker.write_text('')
    (prefix / 'share' / 'bevformer_ros').mkdir()
    for relative, text in files.items():
        path = prefix / 'share' / 'bevformer_ros' / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_editable_checkout_finds_config_in_the_source_tree(monkeypatch):
    monkeypatch.delenv('AMENT_PREFIX_PATH', raising=False)
    path = resources.config_file('fastdds_shm.xml')
    assert path == resources.SOURCE_ROOT / 'config' / 'fastdds_shm.xml'
    assert '<segment_size>134217728</segment_size>' in path.read_text()


def test_installed_share_directory_wins(monkeypatch, tmp_path):
    fake_install(tmp_path, {'config/fastdds_shm.xml': '<dds/>'})
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(tmp_path))
    share = tmp_path / 'share' / 'bevformer_ros'
    assert resources.share_dir() == share
    assert resources.config_file('fastdds_shm.xml') == share / 'config' / 'fastdds_shm.xml'


def test_source_tree_is_the_fallback_for_files_an_install_lacks(monkeypatch, tmp_path):
    fake_install(tmp_path, {'config/other.yaml': ''})
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(tmp_path))
    assert (
        resources.config_file('fastdds_shm.xml')
        == resources.SOURCE_ROOT / 'config' / 'fastdds_shm.xml'
    )


def test_missing_file_error_lists_every_place_looked(monkeypatch, tmp_path):
    fake_install(tmp_path, {})
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(tmp_path))
    with pytest.raises(resources.ResourceNotFoundError) as caught:
        resources.config_file('no_such.yaml')
    message = str(caught.value)
    assert str(tmp_path / 'share' / 'bevformer_ros' / 'config' / 'no_such.yaml') in message
    assert str(resources.SOURCE_ROOT / 'config' / 'no_such.yaml') in message
    assert 'colcon build' in message


def test_missing_file_error_says_when_nothing_is_installed(monkeypatch):
    monkeypatch.delenv('AMENT_PREFIX_PATH', raising=False)
    with pytest.raises(FileNotFoundError, match='not installed'):
        resources.package_file('launch', 'no_such.launch.py')
