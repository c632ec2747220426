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

"""What users read (README, help, console output, pictures) carries no developer shorthand."""

from __future__ import annotations

from pathlib import Path
import re

ROOT = Path(__file__).resolve().parents[2]
# Tracker references mean nothing to a user; say what the thing is instead.
TRACKER_REFERENCE = re.compile(r'\bissues? #?\d+', re.IGNORECASE)
USER_FACING = ('README.md', 'models/README.md', 'setup.py', 'package.xml')
USER_FACING_FOLDERS = ('bevformer_ros', 'config', 'launch')


def _files() -> list[Path]:
    files = [ROOT / name for name in USER_FACING if (ROOT / name).is_file()]
    for folder in USER_FACING_FOLDERS:
        found = sorted((ROOT / folder).rglob('*'))
        files += [p for p in found if p.suffix in ('.py', '.yaml', '.md')]
    return files


def test_no_tracker_references_in_what_users_read():
    found = [
        f'{path.relative_to(ROOT)}:{number}: {line.strip()}'
        for path in _files()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if TRACKER_REFERENCE.search(line)
    ]
    assert not found, '\n'.join(found)
