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
The README's command blocks run as written, at small sizes, so the README cannot go stale.

The blocks tagged `<!-- readme-test -->` (on the line before their ```bash fence) run in README
order in one bash shell with `set -euo pipefail`, as a user following the README would: in a
folder laid out like a fresh clone after `make setup` (config/ linked, an empty models/, .venv
linked to the venv running the tests), so everything they write lands in that folder. SIZES shrinks
what would take minutes or hours; each (pattern, replacement) applies to every tagged block, and
whatever no pattern matches runs as written. The tagged blocks use the offline tools only (no DDS).
"""

from __future__ import annotations

from pathlib import Path
import re
import subprocess
import sys

import pytest
from venv_state import in_made_venv

ROOT = Path(__file__).resolve().parents[2]
TAG = '<!-- readme-test -->'
SIZES = (
    (r'--frames \d+', '--frames 3'),  # 3-frame scenes: one training sample (a queue of 3) each
    (r'for s in 0 1 2 3 4 5;', 'for s in 0 1;'),  # two training scenes instead of six
    (r'--iters \d+', '--iters 2'),  # explicit run lengths ...
    (r'\bbevformer_train ', 'bevformer_train --iters 2 '),  # ... and the presets' (later wins)
)
MIN_BLOCKS = 5  # activate, scenes, training, resume, scoring: a tag lost by an edit shows here


def tagged_blocks(readme: str) -> list[tuple[int, str]]:
    """Return (line number, text) of every ```bash block right after a TAG line."""
    lines = readme.splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if line.strip() != TAG:
            continue
        assert lines[i + 1].strip() == '```bash', f'README.md:{i + 1}: {TAG} not before ```bash'
        end = lines.index('```', i + 2)
        blocks.append((i + 3, '\n'.join(lines[i + 2:end])))
    return blocks


def shrink(block: str) -> str:
    """Apply SIZES to a block."""
    for pattern, replacement in SIZES:
        block = re.sub(pattern, replacement, block)
    return block


@pytest.mark.skipif(not in_made_venv(), reason='the README commands need the venv make setup made')
def test_tagged_readme_blocks_run_as_written_at_small_sizes(tmp_path):
    blocks = tagged_blocks((ROOT / 'README.md').read_text())
    assert len(blocks) >= MIN_BLOCKS
    clone = tmp_path / 'clone'
    clone.mkdir()
    (clone / 'config').symlink_to(ROOT / 'config')
    (clone / 'models').mkdir()
    (clone / '.venv').symlink_to(sys.prefix)
    script = ['set -euo pipefail']
    for line, block in blocks:
        script += [f'echo "== README.md line {line}"', shrink(block)]
    run = subprocess.run(
        ['bash', '-c', '\n'.join(script)],
        cwd=clone,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    # everything written went to out/, except the weights the training block copies into models/
    assert sorted(p.name for p in clone.iterdir()) == ['.venv', 'config', 'models', 'out']
    assert (clone / 'models' / 'bevformer_demo_small.pth').is_file()
    assert (clone / 'out' / 'eval' / 'no_history' / 'metrics_summary.json').is_file()
    assert 'NDS' in run.stdout
