"""
Put the Apache-2.0 header that ament_copyright checks on every Python file that lacks one.

Run from the repository root: `python scripts/add_license_headers.py`. Idempotent.
"""

from __future__ import annotations

from pathlib import Path
import sys

HEADER = """# Copyright 2026 The bevformer_ros Authors
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
FOLDERS = ('bevformer_ros', 'test', 'launch', 'scripts')


def needs_header(text: str) -> bool:
    return bool(text.strip()) and 'Licensed under the Apache License' not in text[:2000]


def with_header(text: str) -> str:
    if text.startswith('#!'):
        shebang, _, rest = text.partition('\n')
        return f'{shebang}\n{HEADER}\n{rest}'
    return f'{HEADER}\n{text}'


def main() -> int:
    root = Path.cwd()
    paths = [root / 'setup.py'] + [
        p for folder in FOLDERS for p in sorted((root / folder).rglob('*.py'))
    ]
    changed = 0
    for path in paths:
        text = path.read_text()
        if needs_header(text):
            path.write_text(with_header(text))
            changed += 1
    print(f'{changed} of {len(paths)} files given the license header')
    return 0


if __name__ == '__main__':
    sys.exit(main())
