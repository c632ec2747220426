"""ament_copyright license-header check, the ros2/examples way; skipped where ament is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ament_copyright = pytest.importorskip(
    'ament_copyright.main', reason='ament_copyright is not installed (a ROS 2 install has it)')


@pytest.mark.copyright
@pytest.mark.linter
def test_copyright():
    paths = [str(ROOT / name) for name in ('bevformer_ros', 'test', 'launch', 'setup.py')]
    rc = ament_copyright.main(argv=paths)
    assert rc == 0, 'Found errors'
