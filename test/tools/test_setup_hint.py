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

"""A tool run by an interpreter that lacks a module ends with a hint naming `make setup`."""

from __future__ import annotations

import subprocess
import sys

# The demo's first import of a ROS helper, made to fail as in a Python without the venv's packages
# (None in sys.modules makes `import domain_coordinator` raise ModuleNotFoundError).
NO_DOMAIN_COORDINATOR = (
    'import runpy, sys\n'
    "sys.modules['domain_coordinator'] = None\n"
    "runpy.run_module('bevformer_ros.tools.demo', run_name='__main__', alter_sys=True)\n"
)


def test_missing_module_names_make_setup(tmp_path):
    out = subprocess.run(
        [sys.executable, '-c', NO_DOMAIN_COORDINATOR, '--frames', '1', '--out', str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert "module 'domain_coordinator' is missing" in last
    assert 'make setup' in last and sys.executable in last
