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
Fixtures of the robustness catalogue: one private ROS graph per module, and the table of cases.

Every case records one row (`catalogue.record`); at the end of the run the table is written to
`<pytest basetemp>/robustness_catalogue.txt` and printed in the terminal summary.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path

from bevformer_ros.ros.process import isolation_env
from domain_coordinator import domain_id
import pytest

COLUMNS = ('case', 'fault injected', 'reported as', 'next good frame', 'outcome', 's')
WIDTH = 110  # widest cell printed


@dataclass(frozen=True)
class CaseResult:
    case: str
    injected: str
    reported: str
    next_frame: str
    outcome: str
    seconds: float

    def cells(self) -> tuple[str, ...]:
        return (
            self.case,
            self.injected,
            self.reported,
            self.next_frame,
            self.outcome,
            f'{self.seconds:.1f}',
        )


class Catalogue:
    def __init__(self) -> None:
        self.rows: list[CaseResult] = []
        self.path: Path | None = None

    def record(
        self,
        case: str,
        injected: str,
        reported: str,
        next_frame: str,
        outcome: str,
        seconds: float,
    ) -> None:
        self.rows.append(CaseResult(case, injected, reported, next_frame, outcome, seconds))

    def table(self) -> str:
        rows = [COLUMNS, *(r.cells() for r in self.rows)]
        widths = [min(max(len(r[i]) for r in rows), WIDTH) for i in range(len(COLUMNS))]
        lines = []
        for n, row in enumerate(rows):
            lines.append(' | '.join(_clip(cell).ljust(w) for cell, w in zip(row, widths)))
            if n == 0:
                lines.append('-+-'.join('-' * w for w in widths))
        passed = sum(r.outcome == 'PASS' for r in self.rows)
        lines.append(f'{passed}/{len(self.rows)} cases passed')
        return '\n'.join(lines)


def _clip(cell: str) -> str:
    return cell if len(cell) <= WIDTH else cell[: WIDTH - 3] + '...'


CATALOGUE = Catalogue()


@pytest.fixture(scope='session')
def catalogue(tmp_path_factory):
    yield CATALOGUE
    if CATALOGUE.rows:
        CATALOGUE.path = tmp_path_factory.getbasetemp() / 'robustness_catalogue.txt'
        CATALOGUE.path.write_text(CATALOGUE.table() + '\n')


@pytest.fixture(scope='module')
def module_ros_env(tmp_path_factory):
    """Provide the `ros_env` of test/conftest.py per module (one node serves many cases)."""
    log_dir = tmp_path_factory.mktemp('ros_log')
    with domain_id() as domain, pytest.MonkeyPatch.context() as patch:
        for key, value in isolation_env(domain, log_dir).items():
            patch.setenv(key, value)
        yield dict(os.environ)


def pytest_terminal_summary(terminalreporter):
    if not CATALOGUE.rows:
        return
    terminalreporter.section('robustness catalogue')
    terminalreporter.write_line(CATALOGUE.table())
    if CATALOGUE.path is not None:
        terminalreporter.write_line(f'(written to {CATALOGUE.path})')
