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

"""optional_ros: real packages are found, look-alikes are not."""

from __future__ import annotations

import importlib.util
import sys

from bevformer_ros import optional_ros
import pytest

LOOK_ALIKE_MODULES = ('launch', 'cv_bridge', 'cv_bridge.boost', 'cv_bridge.boost.cv_bridge_boost')


@pytest.fixture
def fresh(monkeypatch):
    """Forget cached answers and imported look-alikes, before and after the test."""
    for name in LOOK_ALIKE_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    optional_ros.available.cache_clear()
    yield monkeypatch
    optional_ros.available.cache_clear()


def write_package(root, name, files):
    for relative, text in files.items():
        path = root / name / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_summary_answers_every_piece_with_a_bool():
    summary = optional_ros.summary()
    assert list(summary) == list(optional_ros.PIECES)
    assert all(isinstance(value, bool) for value in summary.values())


@pytest.mark.parametrize('name', ['rclpy', 'ament_index_python'])
def test_installed_ros_python_packages_are_found(name):
    if importlib.util.find_spec(name) is None:
        pytest.skip(f'{name} is not installed here')
    assert optional_ros.available(name)


def test_unknown_piece_is_a_key_error_listing_the_known_ones():
    with pytest.raises(KeyError, match='message_filters'):
        optional_ros.available('messagefilters')


def test_an_unrelated_launch_package_is_not_ros_launch(fresh, tmp_path):
    # PyPI `launch` (an app launcher) or a stray `launch/__init__.py` imports fine but is not ROS.
    write_package(tmp_path, 'launch', {'__init__.py': 'def main():\n    pass\n'})
    fresh.syspath_prepend(str(tmp_path))
    assert not optional_ros.available('launch')


def test_a_launch_package_with_launch_description_counts(fresh, tmp_path):
    write_package(tmp_path, 'launch', {'__init__.py': 'class LaunchDescription:\n    pass\n'})
    fresh.syspath_prepend(str(tmp_path))
    assert optional_ros.available('launch')


def test_the_source_tree_launch_folder_is_not_ros_launch(fresh, tmp_path):
    (tmp_path / 'launch').mkdir()  # like this repository's launch/: an empty namespace package
    fresh.syspath_prepend(str(tmp_path))
    if importlib.util.find_spec('launch').origin is not None:
        pytest.skip('a real launch package shadows the folder here')
    assert not optional_ros.available('launch')


def test_pure_python_cv_bridge_from_pypi_is_refused(fresh, tmp_path):
    # PyPI cv-bridge ships ROS 1 code with a Python stand-in for the compiled boost module.
    write_package(
        tmp_path,
        'cv_bridge',
        {
            '__init__.py': 'class CvBridge:\n    pass\n',
            'boost/__init__.py': '',
            'boost/cv_bridge_boost.py': 'def cvtColor2(*args):\n    pass\n',
        },
    )
    fresh.syspath_prepend(str(tmp_path))
    assert not optional_ros.available('cv_bridge')
