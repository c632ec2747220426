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

"""The soak tool shows progress between its report rows (here the in-process `--no-ros` loop)."""

from __future__ import annotations

from bevformer_ros.tools import soak


def test_no_ros_soak_shows_a_progress_bar_and_its_rows(capsys):
    assert soak.main(['--no-ros', '--frames', '3', '--report-every', '2', '--device', 'cpu']) == 0
    out, err = capsys.readouterr()
    assert 'soak' in err and '3/3' in err  # the bar, on stderr
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [row[0] for row in rows] == ['2', '3']  # the table, on stdout, one row per report
