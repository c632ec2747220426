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
A project-trained checkpoint in the node over real DDS, with the ~/overlay picture on.

The checkpoint comes from the real trainer (`smoke` preset, an architecture no official preset
has); the node is told `model.preset: base` and must build the checkpoint's architecture instead,
or configure would fail on the strict load. The six-camera publisher (--stdin) sends 160x90 sets;
the overlay must show each of those images in its layout position and the detections in the
bird's-eye view.
"""

from __future__ import annotations

import time

from bevformer_ros.config import OFFICIAL_CAMERAS
from bevformer_ros.core.markers import CLASS_COLORS
from bevformer_ros.data.params_file import write_params_file
from bevformer_ros.ros.process import GraphProbe, node_arguments, RosProcess
from bevformer_ros.tools.six_camera_publisher import synthetic_image
import numpy as np
import pytest
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_helpers.scripted_publisher import ScriptedPublisher
from sensor_msgs.msg import Image
from smoke_checkpoint import train_smoke_checkpoint
from visualization_msgs.msg import MarkerArray

NS = '/test'
NODE = f'{NS}/bevformer'
WIDTH, HEIGHT = 160, 90
T0 = 1000.0


# overlay.CAMERA_LAYOUT, written out: (row, column) of each camera tile
TILE_POSITIONS = {
    'CAM_FRONT_LEFT': (0, 0),
    'CAM_FRONT': (0, 1),
    'CAM_FRONT_RIGHT': (0, 2),
    'CAM_BACK_LEFT': (1, 0),
    'CAM_BACK': (1, 1),
    'CAM_BACK_RIGHT': (1, 2),
}


def test_node_runs_a_trained_checkpoint_with_its_own_architecture_and_draws_the_overlay(
    ros_env, tmp_path
):
    # smoke: ResNet-18 width 8, no official preset
    checkpoint = train_smoke_checkpoint(tmp_path / 'run')
    tile_w = WIDTH  # 160x90 images: 160x90 tiles, drawn unresized
    params = {
        'autostart': True,
        'model.preset': 'base',
        'model.checkpoint': str(checkpoint),
        'model.device': 'cpu',
        'outputs.score_threshold': 0.0,
        'outputs.publish_overlay': True,
        'outputs.overlay_tile_width': tile_w,
    }
    params_file = tmp_path / 'params.yaml'
    write_params_file(params_file, params)
    node_args = node_arguments(params_file, NS, autostart=False)
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    publisher = None
    with (
        RosProcess(node_args, ros_env, log_dir=tmp_path, name='bevformer') as node,
        GraphProbe('overlay_test_probe') as probe,
    ):
        try:
            overlays = probe.subscribe(Image, f'{NODE}/overlay', reliable)
            markers = probe.subscribe(MarkerArray, f'{NODE}/markers', reliable)
            probe.wait_for_topics([f'{NODE}/overlay'], timeout=30, watch=[node])
            publisher = ScriptedPublisher(ros_env, tmp_path, NS, WIDTH, HEIGHT)
            publisher.expect('ready')
            stamp = T0
            for _ in range(20):  # resend until the node's publisher has discovered this probe
                publisher.send(stamp)
                try:
                    probe.spin_until(
                        lambda s=stamp: any(abs(stamp_s(m) - s) < 1e-6 for m in overlays),
                        3.0,
                        'overlay',
                        watch=[node],
                    )
                    break
                except TimeoutError:
                    stamp += 0.5
            else:
                pytest.fail(f'no overlay for any frame\n{node.describe()}')

            assert _disable_overlay(probe, node).successful  # a runtime parameter
            quiet = stamp + 0.5
            publisher.send(quiet)
            probe.spin_until(
                lambda: any(abs(stamp_s(m.markers[0]) - quiet) < 1e-6 for m in markers),
                10.0,
                'markers',
                watch=[node],
            )
            # the overlay would follow the markers within milliseconds
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                probe.executor.spin_once(timeout_sec=0.05)
            assert not any(abs(stamp_s(m) - quiet) < 1e-6 for m in overlays)
        finally:
            if publisher is not None:
                publisher.close()
        assert node.stop() == 0, node.describe()
    log = node.log_path.read_text()
    assert (
        f'model architecture: the one stored in {checkpoint}' in log
        and 'model.preset=base ignored' in log
    )

    picture = next(m for m in overlays if abs(stamp_s(m) - stamp) < 1e-6)
    tile_h = tile_w * HEIGHT // WIDTH
    assert (picture.encoding, picture.header.frame_id) == ('rgb8', 'LIDAR_TOP')
    # cameras, then the BEV
    assert (picture.height, picture.width) == (2 * tile_h, 3 * tile_w + 2 * tile_h)
    assert picture.step == picture.width * 3 and len(picture.data) == picture.height * picture.step
    pixels = np.frombuffer(picture.data, np.uint8).reshape(picture.height, picture.width, 3)
    # each camera where the layout puts it, boxes drawn over parts
    for index, name in enumerate(OFFICIAL_CAMERAS):
        sent = np.frombuffer(
            synthetic_image(name, index, WIDTH, HEIGHT, 'rgb8').data, np.uint8
        ).reshape(HEIGHT, WIDTH, 3)
        row, col = TILE_POSITIONS[name]
        tile = pixels[row * tile_h:(row + 1) * tile_h, col * tile_w:(col + 1) * tile_w]
        assert np.all(tile == sent, axis=-1).mean() > 0.5, name
    bev = pixels[:, 3 * tile_w:]
    colours = {tuple(round(255 * c) for c in rgb) for rgb in CLASS_COLORS.values()}
    # detections at threshold 0
    assert any(np.all(bev == colour, axis=-1).any() for colour in colours)


def stamp_s(msg):
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def _disable_overlay(probe, node):
    client = probe.node.create_client(SetParameters, f'{NODE}/set_parameters')
    assert client.wait_for_service(timeout_sec=20.0), node.describe()
    value = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=False)
    future = client.call_async(
        SetParameters.Request(parameters=[Parameter(name='outputs.publish_overlay', value=value)])
    )
    probe.spin_until(future.done, 20.0, 'set outputs.publish_overlay', watch=[node])
    return future.result().results[0]
