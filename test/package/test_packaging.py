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

"""Packaging: versions agree, and an install (like colcon's) puts data where ament finds it."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import bevformer_ros

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_FILES = (
    'setup.py',
    'setup.cfg',
    'package.xml',
    'resource',
    'config',
    'launch',
    'models',
    'bevformer_ros',
)


def test_package_xml_setup_py_and_module_agree_on_name_and_version():
    package = ET.parse(ROOT / 'package.xml').getroot()
    assert package.get('format') == '3'
    assert package.findtext('name') == 'bevformer_ros'
    assert package.findtext('export/build_type') == 'ament_python'
    setup_version = re.search(r"version='([^']+)'", (ROOT / 'setup.py').read_text()).group(1)
    assert package.findtext('version') == setup_version == bevformer_ros.__version__


def test_every_console_script_points_at_a_main_function():
    entries = re.findall(r"'(\w+) = ([\w.]+):(\w+)'", (ROOT / 'setup.py').read_text())
    assert 'bevformer_node' in [name for name, _, _ in entries]
    for name, module, function in entries:
        target = getattr(importlib.import_module(module), function, None)
        assert callable(target), f'console script {name} -> {module}:{function} is not a function'


def test_install_puts_data_files_where_ament_and_resources_find_them(tmp_path):
    source = tmp_path / 'src'
    source.mkdir()
    for name in PACKAGE_FILES:  # a copy, so the build leaves nothing in the checkout
        origin = ROOT / name
        # e.g. launch/ in a clone while it holds no file (git keeps no empty folder)
        if not origin.exists():
            continue
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns('__pycache__'))
        else:
            shutil.copy2(origin, source / name)
    (source / 'models').mkdir(exist_ok=True)
    (source / 'models' / 'packaging_test.pth').write_bytes(b'PK\x03\x04')  # models/*.pth ship too
    # Build a wheel, then install it into a throwaway venv, the prefix (laid out like colcon's:
    # bin/, lib/pythonX.Y/site-packages/, share/). `pip install --prefix` would first uninstall the
    # dev venv's editable bevformer_ros; pip with --python never touches the running environment.
    offline = ['--quiet', '--no-deps', '--no-index']
    wheels = tmp_path / 'wheels'
    pip = subprocess.run(
        [
            sys.executable,
            '-m',
            'pip',
            'wheel',
            *offline,
            '--no-build-isolation',
            '--wheel-dir',
            str(wheels),
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    prefix = tmp_path / 'install'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(prefix)], check=True)
    pip = subprocess.run(
        [
            sys.executable,
            '-m',
            'pip',
            '--python',
            str(prefix / 'bin' / 'python'),
            'install',
            *offline,
            *wheels.glob('*.whl'),
        ],
        capture_output=True,
        text=True,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr

    share = prefix / 'share' / 'bevformer_ros'
    assert (
        prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' / 'bevformer_ros'
    ).is_file()
    assert (share / 'package.xml').is_file()
    shipped = (ROOT / 'config' / 'fastdds_shm.xml').read_bytes()
    assert (share / 'config' / 'fastdds_shm.xml').read_bytes() == shipped
    assert (prefix / 'bin' / 'bevformer_node').is_file()
    assert (share / 'models' / 'packaging_test.pth').read_bytes() == b'PK\x03\x04'

    site = (
        prefix
        / 'lib'
        / f'python{sys.version_info.major}.{sys.version_info.minor}'
        / 'site-packages'
    )
    env = {**os.environ, 'AMENT_PREFIX_PATH': str(prefix), 'PYTHONPATH': str(site)}
    code = (
        'import bevformer_ros; from bevformer_ros.resources import checkpoint_path, config_file; '
        "print(bevformer_ros.__file__); print(config_file('fastdds_shm.xml')); "
        "print(checkpoint_path('packaging_test.pth'))"
    )
    out = subprocess.run(
        [sys.executable, '-c', code], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    module_file, config, checkpoint = out.stdout.split()
    assert Path(module_file).is_relative_to(site)
    assert Path(config) == share / 'config' / 'fastdds_shm.xml'
    # a bare model.checkpoint name
    assert Path(checkpoint) == share / 'models' / 'packaging_test.pth'
