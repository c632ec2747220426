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

"""One-line progress bar on stderr (rewritten in place on a terminal, one line per update otherwise)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f'{h}:{m:02d}:{s:02d}' if h else f'{m:02d}:{s:02d}'


class ProgressBar:
    """``[=====>    ] 120/3000  loss 3.21  1.02 s/it  ETA 48:57``."""

    def __init__(
        self, total: int, start: int = 0, stream: TextIO | None = None, width: int = 24
    ) -> None:
        self.total, self.start, self.width = total, start, width
        self.stream = stream or sys.stderr
        self.interactive = bool(getattr(self.stream, 'isatty', lambda: False)())
        self._t0 = time.perf_counter()

    def seconds_per_iter(self, step: int) -> float:
        done = step - self.start
        return (time.perf_counter() - self._t0) / done if done > 0 else float('nan')

    def update(self, step: int, text: str = '') -> None:
        """Show progress after ``step`` iterations (1-based count of finished ones)."""
        frac = step / self.total if self.total else 1.0
        filled = int(frac * self.width)
        bar = (
            '=' * filled
            + ('>' if filled < self.width else '')
            + ' ' * max(self.width - filled - 1, 0)
        )
        rate = self.seconds_per_iter(step)
        eta = _duration(rate * (self.total - step)) if rate == rate else '?'
        line = f'[{bar}] {step}/{self.total}  {text}  {rate:.2f} s/it  ETA {eta}'
        self.stream.write(('\r' + line + '\x1b[K') if self.interactive else line + '\n')
        self.stream.flush()

    def message(self, text: str) -> None:
        """Print a line of its own (validation, checkpoints) that the bar does not overwrite."""
        self.stream.write(('\r\x1b[K' if self.interactive else '') + text + '\n')
        self.stream.flush()

    def close(self) -> None:
        if self.interactive:
            self.stream.write('\n')
            self.stream.flush()
