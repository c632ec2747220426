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

"""Official test-time temporal semantics: can_bus quirks, history reset, prev_bev rotation."""

from __future__ import annotations

import math

from bevformer_ros.core.temporal import can_bus_from_pose, TemporalState
from bevformer_ros.model.transformer import rotate_bev
import numpy as np
import pytest
from reference_fixtures import CASE_SMALL, require
import torch

FIXTURE = CASE_SMALL


@pytest.fixture(scope='module')
def frames() -> list:
    return torch.load(require(FIXTURE), weights_only=True)['frames']


def yaw_quaternion(yaw: float) -> list[float]:
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


def test_can_bus_from_pose_matches_official(frames):
    for frame in frames:
        meta = frame['img_metas']
        expected = meta['can_bus_input'].numpy()
        can_bus = can_bus_from_pose(
            meta['ego2global_translation'],
            meta['ego2global_rotation'],
            expected[7:10],
            expected[10:13],
            expected[13:16],
        )
        np.testing.assert_allclose(can_bus, expected, rtol=0, atol=1e-12)
        # the quaternion's w, four times
        assert np.all(can_bus[3:7] == meta['ego2global_rotation'][0])


def test_temporal_state_reproduces_forward_test(frames):
    state = TemporalState()
    for frame in frames:
        meta = frame['img_metas']
        step = state.step(meta['can_bus_input'].numpy(), meta['scene_token'])
        np.testing.assert_allclose(step.can_bus, meta['can_bus_used'].numpy(), rtol=0, atol=1e-12)
        assert step.use_prev_bev == frame['prev_bev_used']
        assert (step.prev_bev is not None) == frame['prev_bev_used']
        state.update(frame['outputs']['bev_embed'])
    assert state.prev_bev is not None


def test_first_frame_and_scene_change_zero_the_deltas():
    state = TemporalState()
    a = can_bus_from_pose([10.0, 20.0, 1.0], yaw_quaternion(0.5))
    b = can_bus_from_pose([12.0, 21.0, 1.5], yaw_quaternion(0.6))
    first = state.step(a, 'scene-1')
    assert not first.use_prev_bev and first.prev_bev is None
    assert np.all(first.can_bus[:3] == 0) and first.can_bus[-1] == 0
    assert first.can_bus[-2] == pytest.approx(0.5)  # absolute yaw in radians is kept
    state.update(torch.ones(4, 1, 2))
    second = state.step(b, 'scene-1')
    assert second.use_prev_bev and torch.equal(second.prev_bev, torch.ones(4, 1, 2))
    np.testing.assert_allclose(second.can_bus[:3], [2.0, 1.0, 0.5])
    assert second.can_bus[-1] == pytest.approx(math.degrees(0.1))
    state.update(torch.zeros(4, 1, 2))
    other = state.step(a, 'scene-2')
    assert not other.use_prev_bev and np.all(other.can_bus[:3] == 0) and other.can_bus[-1] == 0
    # input not modified
    assert np.all(a == can_bus_from_pose([10.0, 20.0, 1.0], yaw_quaternion(0.5)))


def test_video_test_mode_off_never_uses_history():
    state = TemporalState(video_test_mode=False)
    for x in range(3):
        step = state.step(can_bus_from_pose([x, 0, 0], yaw_quaternion(0.1 * x)), 'scene')
        assert not step.use_prev_bev and step.can_bus[0] == 0
        state.update(torch.ones(1))


def test_yaw_quirks_are_kept():
    # negative yaw is moved to [0, 360)
    can_bus = can_bus_from_pose([0, 0, 0], yaw_quaternion(-math.pi / 2))
    assert can_bus[-1] == pytest.approx(270.0) and can_bus[-2] == pytest.approx(1.5 * math.pi)
    # the degree delta is not wrapped: 359 deg -> 1 deg gives -358, as the official forward_test
    state = TemporalState()
    state.step(can_bus_from_pose([0, 0, 0], yaw_quaternion(math.radians(359))), 's')
    state.update(torch.zeros(1))
    step = state.step(can_bus_from_pose([0, 0, 0], yaw_quaternion(math.radians(1))), 's')
    assert step.can_bus[-1] == pytest.approx(-358.0)


def test_update_needs_a_step_and_reset_forgets():
    state = TemporalState()
    with pytest.raises(RuntimeError, match='step'):
        state.update(torch.zeros(1))
    state.step(np.zeros(18), 's')
    state.update(torch.zeros(1))
    state.reset()
    assert not state.step(np.zeros(18), 's').use_prev_bev
    with pytest.raises(ValueError, match='18'):
        state.step(np.zeros(17), 's')


def test_rotation_matches_official_history(frames):
    for prev, frame in zip(frames[:-1], frames[1:]):
        angle = frame['img_metas']['can_bus_used'][-1:].double()
        rotated = rotate_bev(prev['outputs']['bev_embed'].transpose(0, 1), angle, (20, 20))
        assert torch.equal(rotated, frame['intermediates']['encoder_prev_bev'].transpose(0, 1))


@pytest.mark.parametrize('angle', [3.2, -7.5, 41.0, 180.0, -358.0])
@pytest.mark.parametrize('size', [20, 50])
def test_rotation_matches_nearest_neighbour_formula(angle, size):
    """README §4: out[r, c] = in[rint(sv), rint(su)], (su, sv) - 99.5 = R (c - 99.5, r - 99.5)."""
    # value = index + 1
    bev = torch.arange(size * size, dtype=torch.float32).view(1, size * size, 1) + 1
    out = rotate_bev(bev, torch.tensor([angle], dtype=torch.float64), (size, size)).view(
        size, size
    )
    t = math.radians(angle)
    checked = 0
    for r in range(size):
        for c in range(size):
            su = math.cos(t) * (c - 99.5) - math.sin(t) * (r - 99.5) + 99.5
            sv = math.sin(t) * (c - 99.5) + math.cos(t) * (r - 99.5) + 99.5
            if min(abs(su % 1 - 0.5), abs(sv % 1 - 0.5)) < 1e-3:
                continue  # too close to a rounding boundary for a float64 reference
            i, j = round(sv), round(su)
            expected = i * size + j + 1 if 0 <= i < size and 0 <= j < size else 0
            assert out[r, c].item() == expected, (r, c)
            checked += 1
    assert checked > 0.95 * size * size
