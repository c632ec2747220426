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

"""A progress bar on stderr for the tools: tqdm when it is installed, else one self-overwriting line."""

from __future__ import annotations

import sys
import time
from typing import Any

REFRESH_S = 0.25


class Progress:
    """`update(n)` advances by n of `total`; `note` is shown after the counts; `close()` ends the line."""

    def __init__(self, total: float, label: str, unit: str = '', enabled: bool = True) -> None:
        self.total = total
        self.label = label
        self.unit = unit
        self.enabled = enabled
        self.done = 0.0
        self._started = time.monotonic()
        self._shown = 0.0
        self._tqdm: Any = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self._tqdm = tqdm(
                total=total, desc=label, unit=unit or 'it', file=sys.stderr, leave=True
            )

    def update(self, n: float = 1, note: str = '') -> None:
        self.done += n
        if not self.enabled:
            return
        if self._tqdm is not None:
            self._tqdm.update(n)
            if note:
                self._tqdm.set_postfix_str(note, refresh=False)
            return
        now = time.monotonic()
        if now - self._shown >= REFRESH_S or self.done >= self.total:
            self._shown = now
            self._draw(note)

    def _draw(self, note: str) -> None:
        fraction = min(self.done / self.total, 1.0) if self.total else 1.0
        bar = ('=' * int(fraction * 24)).ljust(24)
        unit = f' {self.unit}' if self.unit else ''
        counts = f'{self.done:g}/{self.total:g}{unit}'
        sys.stderr.write(
            f'\r{self.label} [{bar}] {counts} {time.monotonic() - self._started:5.1f} s {note}'.ljust(
                100
            )[:140]
        )
        sys.stderr.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        if self._tqdm is not None:
            self._tqdm.close()
            return
        self._draw('')
        sys.stderr.write('\n')
        sys.stderr.flush()
