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

"""The README's parameter table is the one config.py generates from the parameter declarations."""

from __future__ import annotations

from pathlib import Path

from bevformer_ros.config import (
    parameter_table,
    PARAMETERS,
    TABLE_BEGIN,
    TABLE_END,
    with_parameter_table,
)
import pytest

README = Path(__file__).resolve().parents[2] / 'README.md'
REGENERATE = (
    '.venv/bin/python -c "import pathlib, bevformer_ros.config as c; '
    "p = pathlib.Path('README.md'); p.write_text(c.with_parameter_table(p.read_text()))\""
)


def test_readme_parameter_table_is_the_generated_one():
    text = README.read_text()
    assert text.count(TABLE_BEGIN) == 1 and text.count(TABLE_END) == 1
    assert with_parameter_table(text) == text, f'README parameter table is stale; run {REGENERATE}'


def test_table_has_one_row_per_parameter_with_its_default_and_run_time_flag():
    rows = parameter_table().splitlines()[2:]
    assert [r.split(' | ')[0] for r in rows] == [f'| `{p.name}`' for p in PARAMETERS]
    score = next(r for r in rows if r.startswith('| `outputs.score_threshold`'))
    assert ' | float | `0.3` | a finite number in [0.0, 1.0] | yes | ' in score
    names = next(r for r in rows if r.startswith('| `cameras.names`'))
    assert (
        '`[CAM_FRONT, CAM_FRONT_RIGHT, CAM_FRONT_LEFT, CAM_BACK, CAM_BACK_LEFT, CAM_BACK_RIGHT]`'
        in names
    )


def test_splicing_replaces_only_the_marked_block():
    text = f'intro\n{TABLE_BEGIN}\nold rows\n{TABLE_END}\noutro\n'
    assert (
        with_parameter_table(text)
        == f'intro\n{TABLE_BEGIN}\n{parameter_table()}\n{TABLE_END}\noutro\n'
    )
    with pytest.raises(ValueError, match='parameters:begin'):
        with_parameter_table('no markers here')
