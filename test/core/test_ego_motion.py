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

"""Ego pose at image stamps: interpolation, guards and message parsing, checked independently."""

from __future__ import annotations

import math

from bevformer_ros.core.calibration import Extrinsics
from bevformer_ros.core.ego_motion import (
    base_pose_from_frame_pose,
    EgoMotionError,
    EgoPose,
    pose_from_odometry,
    pose_from_transform,
    PoseBuffer,
    StalePoseError,
)
from bevformer_ros.core.rotation import slerp_wxyz, yaw_of_wxyz
import numpy as np
import pytest

NS = 1_000_000_000


def yaw_quat(yaw):
    """(w, x, y, z) of a rotation about +z, written out from the half-angle formula."""
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


def pose(t, xyz, yaw, **kw):
    return EgoPose(round(t * NS), np.array(xyz, dtype=float), yaw_quat(yaw), **kw)


def test_slerp_halfway_between_two_yaws_is_the_mid_yaw():
    q = slerp_wxyz(yaw_quat(math.radians(10)), yaw_quat(math.radians(50)), 0.5)
    assert math.degrees(yaw_of_wxyz(q)) == pytest.approx(30.0, abs=1e-9)
    # across +-180 deg the short way round: 170 deg and -170 deg meet at 180 deg, not 0
    q = slerp_wxyz(yaw_quat(math.radians(170)), yaw_quat(math.radians(-170)), 0.5)
    assert abs(math.degrees(yaw_of_wxyz(q))) == pytest.approx(180.0, abs=1e-9)


def test_buffer_interpolates_translation_linearly_and_rotation_by_slerp():
    buf = PoseBuffer()
    buf.add(pose(10.0, [0, 0, 0], math.radians(0)))
    buf.add(pose(10.1, [1.0, 2.0, 0.1], math.radians(20)))
    p = buf.at(round(10.025 * NS))  # a quarter of the way
    np.testing.assert_allclose(p.translation, [0.25, 0.5, 0.025], atol=1e-12)
    assert math.degrees(p.yaw) == pytest.approx(5.0, abs=1e-9)
    assert p.stamp_ns == round(10.025 * NS)


def test_velocity_and_rotation_rate_from_tf_poses_are_in_the_ego_frame():
    buf = PoseBuffer()
    heading = math.radians(90)  # ego faces world +y ...
    buf.add(pose(0.0, [0.0, 0.0, 0.0], heading))
    # ... while sliding along world +x at 10 m/s
    buf.add(pose(0.5, [5.0, 0.0, 0.0], heading + 0.1))
    p = buf.at(round(0.25 * NS))
    # world +x is the ego's right-hand side (-y); the ego turned left by 0.1 rad in 0.5 s
    heading_mid = heading + 0.05
    expected_v = [10 * math.cos(heading_mid), -10 * math.sin(heading_mid), 0.0]
    np.testing.assert_allclose(p.velocity, expected_v, atol=1e-9)
    np.testing.assert_allclose(p.rotation_rate, [0.0, 0.0, 0.2], atol=1e-9)
    assert buf.at(0).velocity is not None  # an exact hit borrows the rates from its neighbour


def test_odometry_twist_is_interpolated_not_recomputed():
    buf = PoseBuffer()
    buf.add(
        pose(
            0.0,
            [0, 0, 0],
            0.0,
            velocity=np.array([2.0, 0, 0]),
            rotation_rate=np.array([0, 0, 0.0]),
        )
    )
    buf.add(
        pose(
            0.1,
            [0.3, 0, 0],
            0.0,
            velocity=np.array([4.0, 0, 0]),
            rotation_rate=np.array([0, 0, 1.0]),
        )
    )
    p = buf.at(round(0.05 * NS))
    np.testing.assert_allclose(p.velocity, [3.0, 0, 0])
    np.testing.assert_allclose(p.rotation_rate, [0, 0, 0.5])


def test_extrapolation_guard():
    buf = PoseBuffer(max_extrapolation_s=0.1)
    with pytest.raises(EgoMotionError, match='no ego pose'):
        buf.at(0)
    buf.add(pose(1.0, [0, 0, 0], 0.0))
    buf.add(pose(1.1, [1.0, 0, 0], 0.0))
    ahead = buf.at(round(1.15 * NS))  # 50 ms past the newest pose: constant-velocity extrapolation
    np.testing.assert_allclose(ahead.translation, [1.5, 0, 0], atol=1e-9)
    with pytest.raises(EgoMotionError, match='newer than the newest'):
        buf.at(round(1.25 * NS))
    with pytest.raises(EgoMotionError, match='older than the oldest'):
        buf.at(round(0.85 * NS))


def test_gap_guard_refuses_to_bridge_an_odometry_dropout():
    buf = PoseBuffer(max_gap_s=0.5)
    buf.add(pose(0.0, [0, 0, 0], 0.0))
    buf.add(pose(2.0, [20, 0, 0], 0.0))
    with pytest.raises(EgoMotionError, match='odometry dropout'):
        buf.at(NS)


def test_out_of_order_poses_are_sorted_and_old_ones_age_out():
    buf = PoseBuffer(max_age_s=1.0)
    for t in (0.2, 0.0, 0.1, 0.4, 0.3):
        buf.add(pose(t, [t, 0, 0], 0.0))
    np.testing.assert_allclose(buf.at(round(0.15 * NS)).translation, [0.15, 0, 0], atol=1e-12)
    buf.add(pose(1.25, [1.25, 0, 0], 0.0))
    assert len(buf) == 3  # 0.0, 0.1 and 0.2 are older than newest - 1 s


def test_time_going_back_past_the_history_clears_it():
    buf = PoseBuffer(max_age_s=2.0)
    for t in (100.0, 100.1, 100.2):
        buf.add(pose(t, [t, 0, 0], 0.0))
    for t in (3.0, 3.1):  # bag loop: the clock restarted; unconfirmed yet
        with pytest.raises(EgoMotionError, match='stale'):
            buf.add(pose(t, [0, 0, 0], 0.0))
    buf.add(pose(3.2, [0, 0, 0], 0.0))  # the third in a row confirms the new timeline
    assert buf.time_jumps == 1 and len(buf) == 3
    with pytest.raises(EgoMotionError):
        buf.at(round(100.1 * NS))
    buf.at(round(3.05 * NS))


def test_one_stale_odometry_message_keeps_the_history():
    buf = PoseBuffer(max_age_s=2.0)
    for t in (100.0, 100.1, 100.2):
        buf.add(pose(t, [t, 0, 0], 0.0))
    with pytest.raises(StalePoseError, match='older than the newest pose'):
        buf.add(pose(97.2, [0, 0, 0], 0.0))  # 3 s older than the newest: a stale message
    buf.add(pose(100.3, [100.3, 0, 0], 0.0))
    assert buf.time_jumps == 0 and buf.rejected_stale == 1 and len(buf) == 4
    np.testing.assert_allclose(buf.at(round(100.25 * NS)).translation, [100.25, 0, 0])


def test_interpolated_quaternion_keeps_the_sign_of_the_nearer_source():
    # q and -q are one rotation, but can_bus feeds w itself to the network: keep the recorded sign
    q0, q1 = yaw_quat(math.radians(10)), -yaw_quat(math.radians(20))
    buf = PoseBuffer()
    buf.add(EgoPose(0, np.zeros(3), q0))
    buf.add(EgoPose(NS // 10, np.zeros(3), q1))
    near_q0, near_q1 = buf.at(NS // 40), buf.at(3 * NS // 40)
    np.testing.assert_allclose(near_q0.rotation, yaw_quat(math.radians(12.5)), atol=1e-12)
    np.testing.assert_allclose(near_q1.rotation, -yaw_quat(math.radians(17.5)), atol=1e-12)


class V:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def test_pose_from_a_real_odometry_message():
    from nav_msgs.msg import Odometry

    msg = Odometry()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 12, 500_000_000
    msg.header.frame_id = 'odom'
    msg.pose.pose.position.x, msg.pose.pose.position.y = 3.0, -1.0
    q = yaw_quat(math.radians(30))
    msg.pose.pose.orientation.w, msg.pose.pose.orientation.z = q[0], q[3]
    msg.twist.twist.linear.x, msg.twist.twist.angular.z = 8.0, 0.3
    p = pose_from_odometry(msg)
    assert p.stamp_ns == 12_500_000_000 and p.frame_id == 'odom'
    np.testing.assert_allclose(p.translation, [3.0, -1.0, 0.0])
    np.testing.assert_allclose(p.rotation, q)  # (w, x, y, z)
    np.testing.assert_allclose(p.velocity, [8.0, 0, 0])
    np.testing.assert_allclose(p.rotation_rate, [0, 0, 0.3])
    msg.pose.pose.position.x = float('nan')
    with pytest.raises(EgoMotionError, match='position is not finite'):
        pose_from_odometry(msg)


def test_pose_from_transform_rejects_a_zero_quaternion():
    stamp = V(sec=1, nanosec=0)
    tf = V(
        header=V(stamp=stamp, frame_id='odom'),
        transform=V(translation=V(x=1.0, y=2.0, z=0.0), rotation=V(x=0.0, y=0.0, z=0.0, w=1.0)),
    )
    p = pose_from_transform(tf)
    assert p.stamp_ns == NS and p.velocity is None
    tf.transform.rotation.w = 0.0
    with pytest.raises(EgoMotionError, match='unit quaternion'):
        pose_from_transform(tf)


def test_base_pose_from_a_lidar_pose():
    # LIDAR_TOP sits 1 m ahead of base_link, rotated -90 deg (its x points to the vehicle's right)
    lidar2ego = Extrinsics(
        np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), np.array([1.0, 0, 2.0])
    )
    # vehicle at world (10, 5) facing world +y: the LiDAR is then at (10, 6, 2) with yaw 0
    lidar_pose = EgoPose(0, np.array([10.0, 6.0, 2.0]), yaw_quat(0.0))
    base = base_pose_from_frame_pose(lidar_pose, lidar2ego)
    np.testing.assert_allclose(base.translation, [10.0, 5.0, 0.0], atol=1e-12)
    assert math.degrees(base.yaw) == pytest.approx(90.0)


def test_clearing_for_a_time_jump_keeps_the_poses_of_the_new_timeline():
    buf = PoseBuffer(max_age_s=2.0)
    for t in (100.0, 100.1):
        buf.add(pose(t, [t, 0, 0], 0.0))
    with pytest.raises(EgoMotionError):
        buf.add(pose(3.0, [3, 0, 0], 0.0))  # odometry of the loop, before its images
    buf.clear()  # the images jumped back too
    assert len(buf) == 1
    np.testing.assert_allclose(buf.at(round(3.0 * NS)).translation, [3, 0, 0])
