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

"""The suite leaves the dev venv as `make setup` made it; this test runs last (conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path
import re
import subprocess
import sys

import pytest
from venv_state import in_made_venv, VENV_AT_START, venv_state

ROOT = Path(__file__).resolve().parents[2]
# Loads every console script of the package the way its bin/ wrapper does.
LOAD_SCRIPTS = (
    'from importlib.metadata import entry_points\n'
    "eps = [ep for ep in entry_points(group='console_scripts')\n"
    "       if ep.value.startswith('bevformer_ros')]\n"
    'for ep in eps:\n'
    '    ep.load()\n'
    'print(sorted(ep.name for ep in eps))\n'
)


def test_the_suite_leaves_the_installed_distributions_as_they_were(request):
    before = request.config.stash[VENV_AT_START]
    after = venv_state()
    removed = sorted(set(before.distributions) - set(after.distributions))
    assert after == before, f'the tests changed the venv (removed: {removed}); run make setup'


@pytest.mark.skipif(not in_made_venv(), reason='not running in a venv made by make setup')
def test_console_scripts_resolve_in_the_venv(tmp_path):
    setup_py = (ROOT / 'setup.py').read_text()
    declared = sorted(re.findall(r"'(\w+) = bevformer_ros[\w.]*:\w+'", setup_py))
    assert declared, 'setup.py declares no console script'
    bin_dir = Path(sys.prefix) / 'bin'
    missing = [name for name in declared if not (bin_dir / name).is_file()]
    assert not missing, f'{missing} missing from {bin_dir}; run make setup'
    # From a folder outside the checkout and without PYTHONPATH: the installed package must answer.
    env = {key: value for key, value in os.environ.items() if key != 'PYTHONPATH'}
    out = subprocess.run([sys.executable, '-c', LOAD_SCRIPTS], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(declared)
