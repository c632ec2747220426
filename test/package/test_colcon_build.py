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
Build the package with the real colcon in a scratch workspace and check the install space.

colcon's ament_python build (colcon-ros from PyPI in the dev venv; on a robot the distro's) must
put every console script in lib/bevformer_ros, where `ros2 run` and launch_ros look, register the
package in the ament index and install every file the launch file and the parameter files name.
"""

from __future__ import annotations

from pathlib import Path
import shutil
import subprocess
import sys

from bevformer_ros import launch_spec
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _console_scripts() -> list[str]:
    text = (ROOT / 'setup.py').read_text()
    return sorted(
        line.split('=')[0].strip().strip("'")
        for line in text.splitlines()
        if ' = bevformer_ros.' in line and ':main' in line
    )


@pytest.fixture(scope='module')
def install(tmp_path_factory) -> Path:
    pytest.importorskip('colcon_ros', reason='colcon-ros is not installed (pip or the ROS distro)')
    colcon = Path(sys.executable).with_name('colcon')
    if not colcon.exists():
        colcon = Path(shutil.which('colcon') or 'colcon')
    workspace = tmp_path_factory.mktemp('ws')
    (workspace / 'src').mkdir()
    (workspace / 'src' / 'bevformer_ros').symlink_to(ROOT, target_is_directory=True)
    result = subprocess.run(
        [str(colcon), 'build', '--packages-select', 'bevformer_ros', '--base-paths', 'src'],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return workspace / 'install' / 'bevformer_ros'


def test_every_console_script_is_an_executable_in_lib_bevformer_ros(install):
    scripts = _console_scripts()
    assert launch_spec.EXECUTABLE in scripts
    installed = sorted(p.name for p in (install / 'lib' / 'bevformer_ros').iterdir())
    assert installed == scripts


def test_the_ament_index_and_share_files_are_installed(install):
    index = install / 'share' / 'ament_index' / 'resource_index' / 'packages' / 'bevformer_ros'
    assert index.is_file()
    share = install / 'share' / 'bevformer_ros'
    assert (share / 'package.xml').read_bytes() == (ROOT / 'package.xml').read_bytes()
    # what setup.py's data_files select: launch files, every config file, the checkpoints
    for folder, pattern in (('launch', '*.launch.py'), ('config', '*'), ('models', '*.pth')):
        shipped = sorted(p.name for p in (ROOT / folder).glob(pattern) if p.is_file())
        assert shipped and sorted(p.name for p in (share / folder).iterdir()) == shipped, folder


def test_every_file_the_launch_file_and_parameter_files_name_is_installed(install):
    config = install / 'share' / 'bevformer_ros' / 'config'
    for preset in ('tiny', 'small', 'base'):  # params_file default: config/bevformer_<preset>.yaml
        assert (config / f'bevformer_{preset}.yaml').is_file()
    assert (config / 'bevformer.rviz').is_file()  # the launch file's rviz default
    named = set()
    for path in config.glob('bevformer_*.yaml'):
        for params in yaml.safe_load(path.read_text()).values():
            for value in params['ros__parameters'].values():
                if isinstance(value, dict):
                    named |= {v for v in value.values() if isinstance(v, str) and '.' in v}
    models = install / 'share' / 'bevformer_ros' / 'models'
    for name in named:
        if name.endswith(('.yaml', '.xml')):
            assert (config / name).is_file(), name
        elif name.endswith('.pth'):
            assert (models / name).is_file(), name
