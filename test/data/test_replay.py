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
bevformer_replay over real DDS.

The replay runs as its own process, this test subscribes like a node would. Expected stamps and
times come from reading the bag with rosbags directly.
"""

from __future__ import annotations

import re
import time

from bevformer_ros.data.bag_io import header_stamp_ns
from bevformer_ros.ros.process import GraphProbe, RosProcess
from bevformer_ros.tools import replay
from bevformer_ros.tools.synth import write_scene_bag
from optional_deps import lazy, requires
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image

Reader = lazy('rosbags.rosbag2', 'Reader')
_rosbags = requires('rosbags')

FRONT = '/CAM_FRONT/image_raw'
SENSOR_QOS = QoSProfile(depth=50, reliability=ReliabilityPolicy.BEST_EFFORT)


@pytest.fixture(scope='module')
def bag(tmp_path_factory):
    """6 frames at 12 Hz of 64x36 images."""
    return write_scene_bag(
        tmp_path_factory.mktemp('replay') / 'scene.mcap',
        seed=1,
        frames=6,
        rate=12.0,
        width=64,
        height=36,
        progress=False,
    ).path


def _bag_images(path, start=None, stop=None):
    """(record time, header stamp) of the CAM_FRONT images in [start, stop)."""
    with Reader(path) as reader:
        connections = [c for c in reader.connections if c.topic == FRONT]
        messages = reader.messages(connections, start=start, stop=stop)
        return [(t, header_stamp_ns(raw)) for _, t, raw in messages]


def _play(env, tmp_path, bag, args, subscriptions):
    """
    Run the replay process with `args`.

    Meanwhile a probe collects [(receive time, msg)] per topic.
    """
    received = {topic: [] for topic, _ in subscriptions}
    with GraphProbe('replay_test') as probe:
        for topic, msg_type in subscriptions:
            probe.node.create_subscription(
                msg_type,
                topic,
                lambda m, t=topic: received[t].append((time.perf_counter(), m)),
                SENSOR_QOS,
            )
        command = [
            '-m',
            'bevformer_ros.tools.replay',
            str(bag),
            '--quiet',
            '--wait-timeout',
            '20',
            *args,
        ]
        with RosProcess(command, env, log_dir=tmp_path, name='replay') as process:
            deadline = time.monotonic() + 40
            while process.poll() is None and time.monotonic() < deadline:
                probe.executor.spin_once(timeout_sec=0.01)
            end = time.monotonic() + 0.3
            while time.monotonic() < end:
                probe.executor.spin_once(timeout_sec=0.01)
            assert process.poll() == 0, process.describe()
            output = process.output()
    return received, output


def _stamp(msg):
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def test_replay_keeps_stamps_scales_time_and_publishes_clock(ros_env, tmp_path, bag):
    received, output = _play(
        ros_env,
        tmp_path,
        bag,
        ['--rate', '0.5', '--clock', '100', '--wait-for-subscribers', FRONT, '/clock'],
        [(FRONT, Image), ('/clock', Clock)],
    )
    expected = _bag_images(bag)
    images = received[FRONT]
    assert [_stamp(m) for _, m in images] == [stamp for _, stamp in expected], output
    # The player's own figures, not a wall-clock window: a loaded machine can only make it late,
    # and publishing early (wall < bag / rate) is the pacing bug.
    played = re.search(r'played (\d+) messages, ([\d.]+) bag s in ([\d.]+) s', output)
    assert played, output
    bag_span = (expected[-1][0] - expected[0][0]) * 1e-9  # 5 frames at 12 Hz
    bag_s, wall_s = float(played[2]), float(played[3])  # all topics, printed with 2 decimals
    assert bag_s >= bag_span - 0.01 and wall_s >= bag_s / 0.5 - 0.01

    with Reader(bag) as reader:
        start, end = reader.start_time, reader.end_time
    clock = [m.clock.sec * 1_000_000_000 + m.clock.nanosec for _, m in received['/clock']]
    # one tick per message, plus the 100 Hz ticks while waiting between them (any speed)
    record_times = {t for t, _ in expected}
    assert len(clock) > len(expected) and any(tick not in record_times for tick in clock)
    assert clock == sorted(clock)
    assert start <= clock[0] and clock[-1] <= end


def test_replay_start_duration_and_remap(ros_env, tmp_path, bag):
    with Reader(bag) as reader:
        bag_start = reader.start_time
    start, stop = bag_start + 100_000_000, bag_start + 300_000_000
    received, output = _play(
        ros_env,
        tmp_path,
        bag,
        [
            '--rate',
            '4',
            '--start',
            '0.1',
            '--duration',
            '0.2',
            '--remap',
            f'{FRONT}:=/front',
            '--wait-for-subscribers',
            '/front',
        ],
        [('/front', Image), (FRONT, Image)],
    )
    expected = [stamp for _, stamp in _bag_images(bag, start, stop)]
    assert 2 <= len(expected) <= 3  # of 6 frames 83 ms apart
    assert [_stamp(m) for _, m in received['/front']] == expected, output
    assert received[FRONT] == []


def test_replay_plays_sqlite3_bag_directories(ros_env, tmp_path):
    bag = write_scene_bag(
        tmp_path / 'scene_db',
        seed=2,
        frames=4,
        rate=12.0,
        width=64,
        height=36,
        storage='sqlite3',
        progress=False,
    ).path
    assert (bag / 'metadata.yaml').is_file()
    received, output = _play(
        ros_env, tmp_path, bag, ['--rate', '4', '--wait-for-subscribers', FRONT], [(FRONT, Image)]
    )
    assert [_stamp(m) for _, m in received[FRONT]] == [stamp for _, stamp in _bag_images(bag)], (
        output
    )


def test_bad_paths_and_unreadable_bags_are_reported(tmp_path, capsys):
    assert replay.main([str(tmp_path / 'missing.mcap')]) == 2
    assert 'bag not found' in capsys.readouterr().err
    assert replay.main([str(tmp_path)]) == 2
    assert 'without metadata.yaml' in capsys.readouterr().err
    junk = tmp_path / 'junk.mcap'
    junk.write_bytes(b'not an mcap file')
    assert replay.main([str(junk)]) == 2
    assert f'cannot read bag {junk}' in capsys.readouterr().err


def test_remap_arguments_are_checked():
    assert replay.parse_remaps(['a:=/b', '/c:=d']) == {'/a': '/b', '/c': '/d'}
    with pytest.raises(ValueError, match='FROM:=TO'):
        replay.parse_remaps(['/a=/b'])
