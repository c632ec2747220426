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
cv_bridge is used only after its self-test in a child process agrees with the numpy decoder.

A planted cv_bridge package stands in for the real one: one that segfaults on mono8 (what a
NumPy-1 build does under NumPy 2), one that decodes bgra8 wrongly, one that agrees. The crash
happens for real (a NULL read through ctypes) in the self-test's child; this process must go on
decoding with numpy and say so once.
"""

from __future__ import annotations

import importlib.machinery
import logging
import sys

from bevformer_ros import optional_ros
from bevformer_ros.frontend import image_codec
from bevformer_ros.frontend.image_codec import imgmsg_to_numpy, numpy_to_imgmsg
import numpy as np
import pytest

BRIDGE = """
import ctypes

from bevformer_ros.frontend.image_codec import numpy_decode

CALLS = []


class CvBridgeError(Exception):
    pass


class CvBridge:
    def imgmsg_to_cv2(self, msg, desired_encoding='passthrough'):
        CALLS.append(msg.encoding)
        if msg.encoding == {crash!r}:
            ctypes.string_at(0)  # SIGSEGV
        image = numpy_decode(msg, desired_encoding)
        return image * 0 if msg.encoding == {wrong!r} else image
"""


@pytest.fixture
def plant(monkeypatch, tmp_path):
    """Return a function that puts a cv_bridge package on sys.path; forget cached answers."""

    def forget():
        for name in [m for m in sys.modules if m == 'cv_bridge' or m.startswith('cv_bridge.')]:
            monkeypatch.delitem(sys.modules, name)
        optional_ros.available.cache_clear()
        optional_ros.cv_bridge_refusal.cache_clear()
        image_codec._cv_bridge.cache_clear()

    def planted(crash: str | None = None, wrong: str | None = None):
        package = tmp_path / 'cv_bridge'
        (package / 'boost').mkdir(parents=True)
        (package / '__init__.py').write_text(BRIDGE.format(crash=crash, wrong=wrong))
        (package / 'boost' / '__init__.py').write_text('')
        # The compiled module a ROS build ships: only its name is looked at, it is never loaded.
        suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
        (package / 'boost' / f'cv_bridge_boost{suffix}').write_bytes(b'')
        monkeypatch.syspath_prepend(str(tmp_path))
        forget()

    yield planted
    forget()


def mono8():
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)  # [H, W]
    return image, numpy_to_imgmsg(image, 'mono8')


def test_a_crashing_cv_bridge_is_not_used_and_this_process_decodes_with_numpy(
    plant, caplog, monkeypatch
):
    # In a ROS install the launch_testing / launch_pytest plugins import `launch`, whose logger
    # class makes every logger created later non-propagating: caplog, on the root logger, would
    # see nothing.
    monkeypatch.setattr(logging.getLogger('bevformer_ros.optional_ros'), 'propagate', True)
    plant(crash='mono8')
    image, msg = mono8()
    with caplog.at_level(logging.WARNING, logger='bevformer_ros.optional_ros'):
        assert np.array_equal(imgmsg_to_numpy(msg), image)
        assert np.array_equal(imgmsg_to_numpy(msg), image)
    assert not optional_ros.available('cv_bridge')
    reason = optional_ros.cv_bridge_refusal()
    assert 'SIGSEGV' in reason and 'mono8 passthrough' in reason
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f'cv_bridge not used, images are decoded with numpy: {reason}']
    assert sys.modules['cv_bridge'].CALLS == []  # this process never handed it an image


def test_a_cv_bridge_that_decodes_differently_is_not_used(plant):
    plant(wrong='bgra8')
    assert not optional_ros.available('cv_bridge')
    assert 'disagree bgra8 -> passthrough' in optional_ros.cv_bridge_refusal()


def test_a_cv_bridge_that_agrees_is_used(plant):
    plant()
    image, msg = mono8()
    assert optional_ros.available('cv_bridge')
    assert np.array_equal(imgmsg_to_numpy(msg), image)
    assert sys.modules['cv_bridge'].CALLS == ['mono8']  # decoded by the bridge in this process
