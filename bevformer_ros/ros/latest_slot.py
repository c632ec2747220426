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
A one-item, latest-wins hand-off between the sync callback and the inference worker.

The callback must never wait on the model: `put` replaces whatever the worker has not taken yet
(counting it as dropped), so the worker always runs on the newest synchronised set and a slow model
lowers the output rate instead of building a backlog of stale frames.
"""

from __future__ import annotations

from dataclasses import dataclass
import threading
from typing import Generic, TypeVar

T = TypeVar('T')


class SlotClosedError(Exception):
    """Raised by `get` once the slot is closed and empty: the worker should exit."""


@dataclass(frozen=True)
class SlotStats:
    put: int  # items offered
    taken: int  # items handed to the consumer
    dropped: int  # items replaced before anyone took them


class LatestSlot(Generic[T]):
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._full = False
        self._closed = False
        self._put = self._taken = self._dropped = 0

    def put(self, item: T) -> bool:
        """
        Store `item`; return True if it replaced one nobody had taken (that one counts as dropped).

        After `close` the item is discarded (and counted as dropped) so late callbacks cannot block
        shutdown.
        """
        with self._cond:
            self._put += 1
            if self._closed:
                self._dropped += 1
                return True
            replaced = self._full
            if replaced:
                self._dropped += 1
            self._item, self._full = item, True
            self._cond.notify()
            return replaced

    def get(self, timeout: float | None = None) -> T | None:
        """
        Take the newest item, waiting up to `timeout` s (None: forever); None on timeout.

        Raises SlotClosedError once the slot is closed; an item put before `close` is still
        delivered first.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._full or self._closed, timeout):
                return None
            if not self._full:
                raise SlotClosedError('LatestSlot closed')
            item, self._item, self._full = self._item, None, False
            self._taken += 1
            return item

    def close(self) -> None:
        """Wake every waiting `get`; later `put`s are discarded."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    def stats(self) -> SlotStats:
        with self._cond:
            return SlotStats(put=self._put, taken=self._taken, dropped=self._dropped)
