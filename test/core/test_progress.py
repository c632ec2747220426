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

"""The one progress bar: plain lines for logs, tqdm when asked, resumed counts and messages."""

from __future__ import annotations

import io

from bevformer_ros.core.progress import duration_text, Progress


def test_plain_bar_writes_counts_note_and_a_final_line_to_a_log():
    log = io.StringIO()  # not a terminal: one line per drawing, nothing overwritten
    bar = Progress(4, 'render', 'frames', stream=log, use_tqdm=False)
    bar.update(1, 'first')  # the first drawing is never held back
    bar.update(2)  # within LOG_REFRESH_S of the first: not drawn
    bar.message('between')
    bar.update(1)  # the last one is always drawn
    bar.close()  # already drawn: no duplicate
    lines = log.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith('render [======') and '1/4 frames' in lines[0]
    assert lines[0].endswith('first')
    assert lines[1] == 'between'
    assert lines[2].startswith('render [' + '=' * 24 + '] 4/4 frames')


def test_moveto_sets_the_count_and_a_resumed_bar_starts_where_it_was():
    log = io.StringIO()
    bar = Progress(10, 'train', 'it', start=6, stream=log, use_tqdm=False)
    assert bar.line().startswith('train [==============          ] 6/10 it')
    assert 'ETA ?' in bar.line()  # no iteration of this run yet: no rate
    bar.moveto(8, 'loss 1.0')
    assert bar.done == 8 and '8/10 it' in log.getvalue() and 'ETA ?' not in log.getvalue()


def test_disabled_bar_counts_silently_but_prints_messages():
    log = io.StringIO()
    bar = Progress(3, 'x', stream=log, enabled=False)
    bar.update(3)
    bar.close()
    assert bar.done == 3 and log.getvalue() == ''
    bar.message('note')
    assert log.getvalue() == 'note\n'


def test_tqdm_bar_writes_to_the_given_stream():
    log = io.StringIO()
    bar = Progress(5, 'synth', 'frames', stream=log, start=2)
    bar.update(3)
    bar.message('done')
    bar.close()
    text = log.getvalue()
    assert 'synth' in text and '5/5' in text and 'done\n' in text


def test_duration_text():
    assert duration_text(0) == '0:00'
    assert duration_text(65.9) == '1:05'
    assert duration_text(3 * 3600 + 62) == '3:01:02'
