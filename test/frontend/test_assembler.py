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
FrameAssembler: messages in, model-ready FrameSets out, through the real synchronizer chain.

Images and CameraInfo are `plain_msgs`, odometry is the real nav_msgs/Odometry class; the
synchronizer is `sync`'s ApproximateTimeSynchronizer (what bag replay and a node without
message_filters use) and the arrival clock is set by the test.
"""

from __future__ import annotations

from bevformer_ros.config import NodeConfig
from bevformer_ros.core.calibration import Extrinsics
from bevformer_ros.core.ego_motion import EgoMotionError
from bevformer_ros.core.rig import load_rig
from bevformer_ros.frontend.assembler import FrameAssembler, skip_kind, UNUSED_EXTRINSICS
from bevformer_ros.frontend.plain_msgs import camera_info_msg, image_msg, Stamp
from bevformer_ros.frontend.sync import ApproximateTimeSynchronizer, SimpleFilter
from bevformer_ros.pipeline import camera_lidar2img, FrameError
from bevformer_ros.resources import config_file
from nav_msgs.msg import Odometry
import numpy as np
import pytest

NS = 1_000_000_000
WIDTH, HEIGHT = 32, 18
K = np.array([[20.0, 0.0, 16.0], [0.0, 20.0, 9.0], [0.0, 0.0, 1.0]])


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Feed:
    """A FrameAssembler connected to six plain inputs; what it signals lands in `sets`."""

    def __init__(self, calibration=None, on_info=None, **params) -> None:
        self.config = NodeConfig.from_parameters(params)
        self.names = self.config.cameras.names
        self.assembler = FrameAssembler(
            self.config,
            load_rig(config_file('nuscenes_rig.yaml')),
            calibration=calibration,
            on_info=on_info,
        )
        self.clock = Clock()
        self.inputs = [SimpleFilter() for _ in self.names]
        self.sets = []
        self.dropped = []
        self.assembler.connect(
            self.inputs,
            ApproximateTimeSynchronizer,
            lambda *images: self.sets.append(images),
            on_set_dropped=lambda kind, detail: self.dropped.append(kind),
            clock=self.clock,
        )

    def image(self, index: int, t: float) -> None:
        msg = image_msg(np.zeros((HEIGHT, WIDTH, 3), np.uint8), 'rgb8', self.names[index])
        msg.header.stamp = Stamp(*divmod(round(t * NS), NS))
        self.inputs[index].signalMessage(msg)

    def images(self, t: float, cameras=None) -> None:
        for i in range(len(self.names)) if cameras is None else cameras:
            self.image(i, t)

    def camera_infos(self, cameras=None) -> None:
        for i in range(len(self.names)) if cameras is None else cameras:
            change = self.assembler.camera_info(
                i, camera_info_msg(K, WIDTH, HEIGHT, self.names[i])
            )
            assert change is None

    def odometry(self, t: float, x: float) -> None:
        msg = Odometry()
        msg.header.frame_id = 'odom'
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(round(t * NS), NS)
        msg.pose.pose.position.x = x
        msg.pose.pose.orientation.w = 1.0
        self.assembler.add_odometry(msg)


def model_lidar2img(frame):
    """Return the pipeline's lidar2img of a FrameSet [N, 4, 4]; FrameError when it cannot."""
    present = [cam.image is not None for cam in frame.cameras]
    return camera_lidar2img(frame.cameras, [(WIDTH, HEIGHT)] * len(present), 1.0, present)


def test_a_frame_forms_once_six_cameras_camera_info_and_a_pose_exist():
    feed = Feed()
    feed.camera_infos()
    feed.odometry(9.9, 0.0)
    feed.odometry(10.1, 2.0)
    feed.images(10.0, cameras=range(5))
    assert feed.sets == []  # the synchronizer waits for the sixth camera
    feed.image(5, 10.0)
    assert len(feed.sets) == 1
    frame = feed.assembler.frame(feed.sets[0])
    assert frame.stamp_ns == 10 * NS
    np.testing.assert_allclose(frame.ego_pose.translation, [1.0, 0.0, 0.0])  # interpolated
    rig = feed.assembler.rig
    for name, cam in zip(feed.names, frame.cameras):
        assert cam.image.header.frame_id == name and cam.info.k[0] == K[0, 0]
        np.testing.assert_array_equal(
            cam.sensor2lidar.rotation, rig.camera(name).sensor2lidar.rotation
        )
    assert np.isfinite(model_lidar2img(frame)).all()
    assert set(feed.assembler.extrinsics_sources.values()) == {
        f'rig nuscenes_rig.yaml ({name})' for name in feed.names
    }


def test_no_ego_pose_skips_the_frame_as_ego_pose():
    feed = Feed()
    feed.camera_infos()
    feed.images(10.0)
    with pytest.raises(EgoMotionError) as no_pose:
        feed.assembler.frame(feed.sets[0])
    assert skip_kind(no_pose.value) == 'ego_pose'
    feed.odometry(10.0, 3.0)  # odometry that trails the images is used once it is there
    assert feed.assembler.frame(feed.sets[0]).ego_pose.translation[0] == 3.0


def test_a_clock_jump_empties_the_pose_buffer():
    feed = Feed()
    feed.odometry(10.0, 0.0)
    feed.images(10.0)
    feed.assembler.clear_poses()
    with pytest.raises(EgoMotionError):
        feed.assembler.frame(feed.sets[0])


def test_without_odometry_source_the_ego_stays_at_the_origin():
    feed = Feed(**{'ego_motion.source': 'none'})
    feed.images(10.0)
    pose = feed.assembler.frame(feed.sets[0]).ego_pose
    assert pose.stamp_ns == 10 * NS
    np.testing.assert_array_equal(pose.translation, np.zeros(3))


def test_no_camera_info_skips_the_frame_as_camera_info_and_a_late_one_counts():
    feed = Feed()
    feed.camera_infos(cameras=[0, 1, 3, 4, 5])
    feed.odometry(10.0, 0.0)
    feed.images(10.0)
    frame = feed.assembler.frame(feed.sets[0])
    assert frame.cameras[2].info is None
    with pytest.raises(FrameError) as no_info:
        model_lidar2img(frame)
    assert skip_kind(no_info.value) == 'camera_info'
    feed.camera_infos(cameras=[2])  # CameraInfo as of frame time, not as of sync time
    assert np.isfinite(model_lidar2img(feed.assembler.frame(feed.sets[0]))).all()


def test_a_silent_camera_is_left_out_of_the_sets():
    feed = Feed()
    feed.camera_infos()
    feed.odometry(10.0, 0.0)
    feed.images(10.0)
    t = 10.0
    while len(feed.sets) == 1:
        assert t < 12.0, 'no degraded set formed'
        t += 0.1
        feed.clock.now += 0.1
        feed.odometry(t, 0.0)
        feed.images(t, cameras=range(5))  # camera 5 went silent
    assert feed.assembler.liveness().silent == (False,) * 5 + (True,)
    frame = feed.assembler.frame(feed.sets[-1])
    assert frame.stamp_ns == round(t * NS)
    assert frame.cameras[5].image is None and frame.cameras[5].sensor2lidar is UNUSED_EXTRINSICS
    assert all(cam.image is not None for cam in frame.cameras[:5])
    assert np.isfinite(model_lidar2img(frame)).all()
    sets = len(feed.sets)
    feed.image(5, t)  # camera 5 is back: the synchronizer's complete set of that stamp repeats it
    assert feed.dropped == ['duplicate_stamp'] and len(feed.sets) == sets


def test_extrinsics_come_from_tf_when_it_knows_them_else_from_the_rig():
    mounted = Extrinsics(np.eye(3), np.array([1.0, 2.0, 3.0]))
    lines = []

    def tf(target, source):
        if source == 'CAM_BACK':
            raise LookupError('frame CAM_BACK does not exist')  # as tf2 lookups raise
        return mounted

    feed = Feed(calibration=tf, on_info=lines.append)
    feed.camera_infos()
    feed.odometry(10.0, 0.0)
    feed.images(10.0)
    frame = feed.assembler.frame(feed.sets[0])
    back = feed.names.index('CAM_BACK')
    for i, cam in enumerate(frame.cameras):
        expected = feed.assembler.rig.camera('CAM_BACK').sensor2lidar if i == back else mounted
        np.testing.assert_array_equal(cam.sensor2lidar.translation, expected.translation)
    assert feed.assembler.extrinsics_sources['CAM_FRONT'] == 'TF LIDAR_TOP <- CAM_FRONT'
    assert feed.assembler.extrinsics_sources['CAM_BACK'] == 'rig nuscenes_rig.yaml (CAM_BACK)'
    assert [line for line in lines if line.startswith('no TF')] == [
        'no TF for CAM_BACK (frame CAM_BACK does not exist); using the rig YAML'
    ]


def test_a_camera_neither_tf_nor_the_rig_knows_skips_the_frame_as_calibration():
    names = [
        'CAM_FRONT',
        'CAM_FRONT_RIGHT',
        'CAM_FRONT_LEFT',
        'CAM_BACK',
        'CAM_BACK_LEFT',
        'CAM_X',
    ]
    feed = Feed(**{'cameras.names': names})
    feed.camera_infos()
    feed.odometry(10.0, 0.0)
    feed.images(10.0)
    with pytest.raises(FrameError) as unknown:
        feed.assembler.frame(feed.sets[0])
    assert skip_kind(unknown.value) == 'calibration'


def run_rig(feed, start, count, cameras=None, skip=()):
    """Publish `count` sets at 10 Hz from stamp `start` (arrival clock advancing); sets out."""
    before = len(feed.sets)
    for k in range(count):
        t = start + 0.1 * k
        feed.clock.now += 0.1
        try:
            feed.odometry(t, t)
        except EgoMotionError:  # a pose from before the history, until the images jump too
            pass
        picked = range(6) if cameras is None else cameras
        feed.images(t, cameras=[i for i in picked if (k, i) not in skip])
    return len(feed.sets) - before


def test_a_bag_loop_after_a_camera_missed_sets_clears_the_queues():
    feed = Feed()
    feed.camera_infos()
    assert run_rig(feed, 200.0, 10) == 10
    # camera 2 misses 12 sets (1.2 s: silent, the others form degraded sets)
    run_rig(feed, 201.0, 12, skip={(k, 2) for k in range(12)})
    jumps = []
    feed.assembler._on_time_jump = jumps.append
    out = run_rig(feed, 101.0, 16)  # every stamp 100 s back: ros2 bag play --loop
    assert out >= 14, f'{out} of 16 sets after the jump'
    assert len(jumps) == 1 and feed.assembler.jumps.jumps == 1
    frame = feed.assembler.frame(feed.sets[-1])  # the pose buffer follows the new timeline
    np.testing.assert_allclose(frame.ego_pose.translation, [102.5, 0, 0], atol=1e-9)


def test_a_bag_loop_with_a_camera_silent_keeps_forming_degraded_sets():
    feed = Feed()
    feed.camera_infos()
    assert run_rig(feed, 200.0, 5) == 5
    # camera 5 goes silent 0.3 s before the loop, for good: its silence is judged on arrival
    # time, across the jump, while the queues hold the pre-loop stamps of the others
    run_rig(feed, 200.5, 3, cameras=range(5))
    out = run_rig(feed, 100.8, 12, cameras=range(5))
    assert out >= 10, f'{out} of 12 five-camera sets after the jump'
    assert all(images[5] is None for images in feed.sets[-out:])


def test_a_camera_lagging_behind_the_others_is_no_time_jump():
    feed = Feed()
    feed.camera_infos()
    run_rig(feed, 200.0, 5)
    run_rig(feed, 200.5, 5, cameras=range(5))
    feed.images(200.5, cameras=[5])  # camera 5 delivers its backlog, 0.5 s behind: no reset
    assert feed.assembler.jumps.jumps == 0


def test_a_restart_starts_a_new_sequence():
    feed = Feed()
    feed.camera_infos()
    run_rig(feed, 200.0, 3)
    feed.images(200.3, cameras=range(3))  # half a set waits in the queues
    feed.assembler.restart()
    assert run_rig(feed, 200.3, 3) == 3
    assert len(feed.assembler.poses) == 3  # the poses before the reset are gone


def test_odometry_in_other_frames_is_named_with_the_configured_ones():
    feed = Feed()
    msg = Odometry()
    msg.header.frame_id, msg.child_frame_id = 'map', 'imu_link'
    note = feed.assembler.odometry_frames_note(msg)
    assert "'map' -> 'imu_link'" in note and "'odom' -> 'base_link'" in note
    msg.header.frame_id, msg.child_frame_id = '/odom', 'base_link'
    assert feed.assembler.odometry_frames_note(msg) is None
