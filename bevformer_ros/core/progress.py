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
The package's one progress bar: tqdm when it is installed, else a plain line on a stream.

The tools advance it by a count (`update`), the trainer moves it to its iteration (`moveto`).
The plain line is redrawn in place on a terminal and written as a new line otherwise, so a log
file gets readable lines; `message` prints a line of its own that the bar does not overwrite.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

REFRESH_S = 0.25  # the fastest a terminal line is redrawn
LOG_REFRESH_S = 5.0  # the fastest a new line is written to a stream that is not a terminal
BAR_WIDTH = 24


def duration_text(seconds: float) -> str:
    """Return `m:ss` or `h:mm:ss` for a duration in seconds."""
    minutes, secs = divmod(int(max(seconds, 0.0)), 60)
    hours, minutes = divmod(minutes, 60)
    return f'{hours}:{minutes:02d}:{secs:02d}' if hours else f'{minutes}:{secs:02d}'


class Progress:
    """`update(n)` advances by n of `total`, `moveto(done)` sets the count; `close()` ends it."""

    def __init__(
        self,
        total: float,
        label: str = '',
        unit: str = '',
        enabled: bool = True,
        start: float = 0,
        stream: TextIO | None = None,
        use_tqdm: bool = True,
    ) -> None:
        self.total, self.label, self.unit, self.enabled = total, label, unit, enabled
        self.start = start  # done before this bar was made (a resumed run): not in the rate
        self.done = start  # kept an int for int counts: tqdm shows 5/5, not 5.0/5
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = bool(getattr(self.stream, 'isatty', lambda: False)())
        self._started = time.monotonic()
        self._shown = -math.inf
        self._drawn: float | None = None  # the count last drawn
        self._tqdm: Any = None
        if enabled and use_tqdm:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self._tqdm = tqdm(
                total=total, initial=start, desc=label, unit=unit or 'it', file=self.stream
            )

    def update(self, n: float = 1, note: str = '') -> None:
        """Advance by `n`; `note` is shown after the counts."""
        self.moveto(self.done + n, note)

    def moveto(self, done: float, note: str = '') -> None:
        """Set the count to `done` (e.g. the iteration a trainer has finished)."""
        step, self.done = done - self.done, done
        if not self.enabled:
            return
        if self._tqdm is not None:
            self._tqdm.update(step)
            if note:
                self._tqdm.set_postfix_str(note, refresh=False)
            return
        now = time.monotonic()
        wait = REFRESH_S if self.interactive else LOG_REFRESH_S
        if now - self._shown >= wait or self.done >= self.total:
            self._shown = now
            self._draw(note)

    def line(self, note: str = '') -> str:
        """Return the plain progress line: label, bar, counts, elapsed time, ETA, note."""
        fraction = min(self.done / self.total, 1.0) if self.total else 1.0
        bar = ('=' * int(fraction * BAR_WIDTH)).ljust(BAR_WIDTH)
        unit = f' {self.unit}' if self.unit else ''
        elapsed = time.monotonic() - self._started
        per_item = elapsed / (self.done - self.start) if self.done > self.start else math.nan
        eta = duration_text(per_item * (self.total - self.done)) if per_item == per_item else '?'
        counts = f'{self.done:g}/{self.total:g}{unit}'
        text = f'{self.label} [{bar}] {counts} {duration_text(elapsed)} ETA {eta} {note}'
        return text.strip()

    def message(self, text: str) -> None:
        """Print `text` on a line of its own, whether or not the bar is enabled."""
        if self._tqdm is not None:
            self._tqdm.write(text, file=self.stream)
            return
        self.stream.write(('\r\x1b[K' if self.interactive else '') + text + '\n')
        self.stream.flush()

    def write(self, line: str) -> None:
        """Print `line` to stdout (a table row) without the bar on its stream breaking it."""
        if self._tqdm is not None:
            self._tqdm.write(line, file=sys.stdout)  # clears the bar, prints, redraws it
            return
        if self.enabled and self.interactive:
            self.stream.write('\r\x1b[K')  # the bar's line, emptied
            self.stream.flush()
        print(line, flush=True)

    def _draw(self, note: str) -> None:
        self._drawn = self.done
        line = self.line(note)
        self.stream.write(f'\r{line}\x1b[K' if self.interactive else line + '\n')
        self.stream.flush()

    def close(self) -> None:
        """End the bar: tqdm's own close, or the final counts on their line."""
        if not self.enabled:
            return
        if self._tqdm is not None:
            self._tqdm.close()
            return
        if self.interactive or self._drawn != self.done:
            self._draw('')
        if self.interactive:
            self.stream.write('\n')
            self.stream.flush()
