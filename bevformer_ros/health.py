"""What the node reports on /diagnostics, accumulated without ROS types.

The node calls `frame_processed`, `frame_skipped` and `temporal_reset` from its worker and `report` from its
diagnostics timer; `report` turns the counters since the previous report into a few `StatusReport`s (one per
`diagnostic_msgs/DiagnosticStatus`), with rates over the period and latency statistics of the period's frames.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels


@dataclass(frozen=True)
class StatusReport:
    name: str
    level: int
    message: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class _Period:
    processed: int = 0
    skipped: Counter = field(default_factory=Counter)
    stage_s: dict[str, list[float]] = field(default_factory=dict)
    end_to_end_s: list[float] = field(default_factory=list)


class NodeHealth:
    """Thread-safe counters for /diagnostics; `clock` is monotonic seconds (injectable for tests)."""

    def __init__(self, node_name: str, camera_names: Sequence[str],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.node_name = node_name
        self.camera_names = tuple(camera_names)
        self._clock = clock
        self._lock = threading.Lock()
        self._period = _Period()
        self._period_start = clock()
        self._last_received = [0] * len(self.camera_names)
        self._last_dropped = 0
        self._last_rejected = 0
        self.processed = 0
        self.skipped: Counter = Counter()
        self.last_skip = ''
        self.resets: Counter = Counter()
        self.last_reset = ''
        self.bad_odometry = 0
        self.warnings: dict[str, str] = {}  # standing conditions, e.g. random weights

    def frame_processed(self, stage_s: Mapping[str, float], end_to_end_s: float | None) -> None:
        with self._lock:
            self.processed += 1
            self._period.processed += 1
            for stage, seconds in stage_s.items():
                self._period.stage_s.setdefault(stage, []).append(seconds)
            if end_to_end_s is not None:
                self._period.end_to_end_s.append(end_to_end_s)

    def frame_skipped(self, reason: str, detail: str) -> None:
        with self._lock:
            self.skipped[reason] += 1
            self._period.skipped[reason] += 1
            self.last_skip = f'{reason}: {detail}'

    def temporal_reset(self, reason: str) -> None:
        with self._lock:
            self.resets[reason] += 1
            self.last_reset = reason

    def odometry_rejected(self) -> None:
        with self._lock:
            self.bad_odometry += 1

    def report(self, received: Sequence[int], dropped_sets: int, rejected_spread: int,
               last_spread_s: float | None, temporal_enabled: bool, dropped_outputs: int = 0
               ) -> list[StatusReport]:
        """Reports for the period since the last call; `received` counts images per camera so far."""
        with self._lock:
            now = self._clock()
            elapsed = max(now - self._period_start, 1e-9)
            period, self._period, self._period_start = self._period, _Period(), now
            rates = [(r - last) / elapsed for r, last in zip(received, self._last_received)]
            new_dropped = dropped_sets - self._last_dropped
            new_rejected = rejected_spread - self._last_rejected
            self._last_received = list(received)
            self._last_dropped, self._last_rejected = dropped_sets, rejected_spread
            return [
                self._inputs(rates, new_dropped, new_rejected, dropped_sets, rejected_spread, last_spread_s),
                self._inference(period, elapsed, dropped_outputs),
                self._temporal(temporal_enabled),
            ]

    def _inputs(self, rates: list[float], new_dropped: int, new_rejected: int, dropped: int, rejected: int,
                last_spread_s: float | None) -> StatusReport:
        silent = [name for name, rate in zip(self.camera_names, rates) if rate == 0.0]
        values = {f'{name} rate (Hz)': f'{rate:.2f}' for name, rate in zip(self.camera_names, rates)}
        values.update({
            'sync spread last (ms)': '-' if last_spread_s is None else f'{last_spread_s * 1e3:.1f}',
            'sets rejected for spread': str(rejected),
            'sets dropped (worker busy)': str(dropped),
            'odometry messages rejected': str(self.bad_odometry),
        })
        if silent:
            level, message = WARN, f'no images from {", ".join(silent)}'
        elif new_rejected:
            level, message = WARN, f'{new_rejected} sets rejected: camera stamps spread too wide'
        else:
            level, message = OK, f'{min(rates):.1f}-{max(rates):.1f} Hz per camera'
        if new_dropped and level == OK:
            message += f', {new_dropped} sets dropped while the model was busy'
        return StatusReport(f'{self.node_name}: inputs', level, message, values)

    def _inference(self, period: _Period, elapsed: float, dropped_outputs: int) -> StatusReport:
        values = {'output rate (Hz)': f'{period.processed / elapsed:.2f}',
                  'frames processed': str(self.processed),
                  'frames skipped': str(sum(self.skipped.values())),
                  'outputs dropped (publisher busy)': str(dropped_outputs)}
        for reason, count in sorted(self.skipped.items()):
            values[f'skipped: {reason}'] = str(count)
        values['last skipped frame'] = self.last_skip or '-'
        for stage, seconds in period.stage_s.items():
            values[f'{stage} latency mean/max (ms)'] = _mean_max_ms(seconds)
        values['end-to-end latency mean/max (ms)'] = _mean_max_ms(period.end_to_end_s)
        values.update(self.warnings)
        degraded = bool(period.skipped) or bool(self.warnings)
        values['degraded'] = str(degraded).lower()
        if period.skipped:
            level = WARN
            message = f'skipped {sum(period.skipped.values())} frames ({self.last_skip})'
        elif self.warnings:
            level, message = WARN, '; '.join(self.warnings.values())
        else:
            level = OK
            model = period.stage_s.get('model')
            message = f'{period.processed / elapsed:.1f} Hz' + (
                f', model {np.mean(model) * 1e3:.0f} ms' if model else '')
        return StatusReport(f'{self.node_name}: inference', level, message, values)

    def _temporal(self, enabled: bool) -> StatusReport:
        total = sum(self.resets.values())
        values = {'enabled': str(enabled).lower(), 'resets': str(total),
                  'last reset reason': self.last_reset or '-'}
        for reason, count in sorted(self.resets.items()):
            values[f'resets: {reason}'] = str(count)
        message = f'{total} resets' + (f' (last: {self.last_reset})' if self.last_reset else '')
        return StatusReport(f'{self.node_name}: temporal', OK, message if enabled else 'disabled', values)


def _mean_max_ms(seconds: Sequence[float]) -> str:
    if not seconds:
        return '-'
    return f'{np.mean(seconds) * 1e3:.1f} / {np.max(seconds) * 1e3:.1f}'
