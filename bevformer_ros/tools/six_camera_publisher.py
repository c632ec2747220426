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
Six synthetic cameras + CameraInfo + Odometry over DDS, for tests, benchmarks and trying the node.

Two modes:
- free-running: `python -m bevformer_ros.tools.six_camera_publisher --rate 12 --seconds 30`
  publishes one synchronized set per period (default 1600x900 rgb8), stamped with the wall clock.
- scripted (`--stdin`): one command per input line, so a test decides every stamp and every fault:
    `frame <stamp_s> [<camera>:<fault> ...] [odom:<fault>]`
    `burst <count> <first_stamp_s> <step_s> [<camera>:<fault> ...]`   count sets back to back
    `quit`
  Each command answers `sent <stamp_s>` (the last stamp) on stdout once published; `ready` comes
  once subscribers match.

Faults (one per camera per set; FAULT_HELP says what each does): image faults truncated, encoding
(mono16), yuv (yuv422), size (half size), padded (rows padded: valid, must decode), zero (0x0),
drop (camera sends nothing this set), late (stamped LATE_S after the others); CameraInfo faults
k_nan, k_inf, noinfo (image but no CameraInfo), info_size (CameraInfo says twice the size),
info_changed (K scaled by 1.1); odometry faults nan, none (no message), jump (JUMP_M metres off the
trajectory), frames (frame ids WRONG_ODOM_FRAMES instead of odom -> base_link).

Every set is CameraInfo first, then Odometry, then the six images, all with one stamp, so a node
that caches CameraInfo and buffers odometry has both before the images arrive. The ego vehicle
drives a gentle left curve (5 m/s, 0.05 rad/s), so the pose is a function of the stamp and a
backwards stamp gives a backwards pose.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import math
import sys
import time

from bevformer_ros.config import OFFICIAL_CAMERAS
from nav_msgs.msg import Odometry
import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

SPEED_MPS, YAW_RATE = 5.0, 0.05
NUSCENES_FOCAL_PX = 1266.0  # nuScenes front camera fx at 1600 px width; scaled with the width
LATE_S = 0.07  # within the default sync slop (0.08 s), beyond the default max spread (0.06 s)
JUMP_M = 100.0
PAD_BYTES = 7  # odd on purpose: nothing may assume aligned rows
FAULT_HELP = {
    'truncated': 'image data cut to half its length',
    'encoding': 'mono16 image (not a colour image)',
    'yuv': 'yuv422 image (an encoding the node does not read)',
    'size': 'image of half the width and height (CameraInfo unchanged)',
    'padded': f'rows padded with {PAD_BYTES} bytes (step > width * 3): valid, must work',
    'zero': '0x0 image with no data',
    'drop': 'no image and no CameraInfo from this camera',
    'late': f'image stamped {LATE_S} s after the others',
    'k_nan': 'CameraInfo K with NaN focal length',
    'k_inf': 'CameraInfo K with inf principal point',
    'noinfo': 'image but no CameraInfo',
    'info_size': 'CameraInfo says twice the image size',
    'info_changed': 'CameraInfo K focal lengths scaled by 1.1',
    'pp_outside': 'CameraInfo principal point 10 image widths to the right (impossible)',
    'distorted': 'CameraInfo rational_polynomial with large distortion coefficients',
}
IMAGE_FAULTS = ('truncated', 'encoding', 'yuv', 'size', 'padded', 'zero')
INFO_FAULTS = ('k_nan', 'k_inf', 'info_size', 'info_changed', 'pp_outside', 'distorted')
FAULTS = tuple(FAULT_HELP)
ODOM_FAULTS = ('nan', 'none', 'jump', 'frames')
WRONG_ODOM_FRAMES = ('map', 'imu_link')  # the 'frames' odometry fault


def ego_pose(
    stamp_s: float,
) -> tuple[tuple[float, float, float], tuple[float, float, float, float]]:
    """
    Return the pose of base_link in odom at `stamp_s` on the synthetic trajectory.

    As (translation, quaternion x, y, z, w).
    """
    yaw = YAW_RATE * stamp_s
    radius = SPEED_MPS / YAW_RATE
    translation = (radius * math.sin(yaw), radius * (1.0 - math.cos(yaw)), 0.0)
    return translation, (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2))


def camera_info(name: str, width: int, height: int) -> CameraInfo:
    f = NUSCENES_FOCAL_PX * width / 1600.0
    info = CameraInfo()
    info.header.frame_id = name
    info.width, info.height = width, height
    info.distortion_model = 'plumb_bob'
    info.d = [0.0] * 5
    info.k = [f, 0.0, width / 2.0, 0.0, f, height / 2.0, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [f, 0.0, width / 2.0, 0.0, 0.0, f, height / 2.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def synthetic_image(name: str, index: int, width: int, height: int, encoding: str) -> Image:
    """
    Return a smooth, camera-specific colour pattern plus noise.

    Built once, restamped per frame.
    """
    rng = np.random.default_rng(index)
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    cols = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    phase = index * 0.7
    rgb = np.stack(
        [
            128 + 100 * np.sin(6.0 * cols + phase) * np.ones_like(rows),
            128 + 100 * np.cos(4.0 * rows + phase) * np.ones_like(cols),
            128 + 60 * np.sin(9.0 * (rows + cols) + phase),
        ],
        axis=-1,
    )  # [H, W, 3]
    rgb += rng.normal(0.0, 8.0, size=rgb.shape).astype(np.float32)
    pixels = np.clip(rgb, 0, 255).astype(np.uint8)
    if encoding == 'bgr8':
        pixels = np.ascontiguousarray(pixels[..., ::-1])
    msg = Image()
    msg.header.frame_id = name
    msg.height, msg.width = height, width
    msg.encoding = encoding
    msg.step = width * 3
    msg.data = pixels.tobytes()  # never assign the ndarray: rclpy would copy it element by element
    return msg


def faulty_image(good: Image, fault: str) -> Image:
    bad = Image()
    bad.header = good.header
    bad.height, bad.width, bad.step, bad.encoding = (
        good.height,
        good.width,
        good.step,
        good.encoding,
    )
    if fault == 'truncated':
        bad.data = bytes(good.data)[: len(good.data) // 2]
    elif fault in ('encoding', 'yuv'):
        bad.encoding = 'mono16' if fault == 'encoding' else 'yuv422'
        bad.step = good.width * 2
        bad.data = bytes(good.width * good.height * 2)
    elif fault == 'size':
        bad.height, bad.width, bad.step = good.height // 2, good.width // 2, (good.width // 2) * 3
        bad.data = bytes(bad.height * bad.step)
    elif fault == 'padded':
        rows = np.frombuffer(bytes(good.data), np.uint8).reshape(good.height, good.step)
        padding = np.full((good.height, PAD_BYTES), 0xAB, np.uint8)
        bad.step = good.step + PAD_BYTES
        bad.data = np.concatenate([rows, padding], axis=1).tobytes()
    elif fault == 'zero':
        bad.height = bad.width = bad.step = 0
        bad.data = b''
    else:
        raise ValueError(
            f'unknown image fault {fault!r}: expected one of {", ".join(IMAGE_FAULTS)}'
        )
    return bad


def faulty_info(good: CameraInfo, fault: str) -> CameraInfo:
    bad = camera_info(good.header.frame_id, good.width, good.height)
    bad.header.stamp = good.header.stamp
    k = list(bad.k)
    if fault == 'k_nan':
        k[0] = math.nan
    elif fault == 'k_inf':
        k[2] = math.inf
    elif fault == 'info_size':
        bad.width, bad.height = 2 * good.width, 2 * good.height
    elif fault == 'info_changed':
        k[0], k[4] = 1.1 * k[0], 1.1 * k[4]
    elif fault == 'pp_outside':
        k[2] = 10.0 * good.width
    elif fault == 'distorted':
        bad.distortion_model, bad.d = 'rational_polynomial', [0.4, -0.2, 0.0, 0.0, 0.1, 0, 0, 0]
    else:
        raise ValueError(
            f'unknown CameraInfo fault {fault!r}: expected one of {", ".join(INFO_FAULTS)}'
        )
    bad.k = k
    return bad


class SixCameraPublisher:
    """
    Publishers for one rig.

    `publish_set(stamp_ns)` sends CameraInfo, Odometry and the six images.
    """

    def __init__(
        self,
        node: Node,
        width: int,
        height: int,
        encoding: str = 'rgb8',
        cameras: Sequence[str] = OFFICIAL_CAMERAS,
        namespace: str = '',
        odom_topic: str = '/odom',
        reliable: bool = False,
        depth: int = 5,
    ) -> None:
        qos = QoSProfile(
            depth=depth,
            reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        )
        prefix = namespace.rstrip('/') + '/' if namespace else ''
        self.node = node
        self.cameras = tuple(cameras)
        self.image_pubs = [
            node.create_publisher(Image, f'{prefix}{c}/image_raw', qos) for c in self.cameras
        ]
        self.info_pubs = [
            node.create_publisher(CameraInfo, f'{prefix}{c}/camera_info', qos)
            for c in self.cameras
        ]
        self.odom_pub = node.create_publisher(Odometry, odom_topic, QoSProfile(depth=50))
        self.images = [
            synthetic_image(c, i, width, height, encoding) for i, c in enumerate(self.cameras)
        ]
        self.infos = [camera_info(c, width, height) for c in self.cameras]

    def subscribers_matched(self) -> bool:
        pubs = self.image_pubs + self.info_pubs + [self.odom_pub]
        return all(p.get_subscription_count() > 0 for p in pubs)

    def publish_set(self, stamp_ns: int, faults: dict[str, str] | None = None) -> None:
        """
        Publish CameraInfo, Odometry, then the six images, all stamped `stamp_ns`.

        `faults` maps a camera name (or 'odom') to one fault of FAULT_HELP (or ODOM_FAULTS).
        """
        faults = faults or {}
        unknown = {
            f'{k}:{v}'
            for k, v in faults.items()
            if (k != 'odom' and (k not in self.cameras or v not in FAULTS))
            or (k == 'odom' and v not in ODOM_FAULTS)
        }
        if unknown:
            raise ValueError(
                f'unknown faults {sorted(unknown)}: cameras {self.cameras} take {FAULTS}, '
                f'odom takes {ODOM_FAULTS}'
            )
        stamp = rclpy.time.Time(nanoseconds=stamp_ns).to_msg()
        for pub, name, info in zip(self.info_pubs, self.cameras, self.infos):
            fault = faults.get(name)
            if fault in ('drop', 'noinfo'):
                continue
            info.header.stamp = stamp
            pub.publish(faulty_info(info, fault) if fault in INFO_FAULTS else info)
        if faults.get('odom') != 'none':
            self.odom_pub.publish(self._odometry(stamp_ns, stamp, faults.get('odom')))
        late = rclpy.time.Time(nanoseconds=stamp_ns + round(LATE_S * 1e9)).to_msg()
        for pub, name, image in zip(self.image_pubs, self.cameras, self.images):
            fault = faults.get(name)
            if fault == 'drop':
                continue
            image.header.stamp = late if fault == 'late' else stamp
            pub.publish(faulty_image(image, fault) if fault in IMAGE_FAULTS else image)

    def _odometry(self, stamp_ns: int, stamp: object, fault: str | None = None) -> Odometry:
        (x, y, z), (qx, qy, qz, qw) = ego_pose(stamp_ns * 1e-9)
        if fault == 'nan':
            x = y = z = math.nan
        elif fault == 'jump':
            x += JUMP_M
        odom = Odometry()
        odom.header.stamp = stamp
        odom.header.frame_id = 'odom'
        odom.child_frame_id = 'base_link'
        if fault == 'frames':  # right pose, frames named differently from the node's defaults
            odom.header.frame_id, odom.child_frame_id = WRONG_ODOM_FRAMES
        pose = odom.pose.pose
        pose.position.x, pose.position.y, pose.position.z = x, y, z
        pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (
            qx,
            qy,
            qz,
            qw,
        )
        odom.twist.twist.linear.x = SPEED_MPS
        odom.twist.twist.angular.z = YAW_RATE
        return odom


def wait_for_subscribers(node: Node, rig: SixCameraPublisher, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if rig.subscribers_matched():
            return True
        rclpy.spin_once(node, timeout_sec=0.05)
    return False


def _parse_command(line: str) -> tuple[list[int], dict[str, str]]:
    """Return the stamps (ns) and faults of a `frame` or `burst` command."""
    words = line.split()
    if words[0] == 'burst':
        count, first, step = int(words[1]), float(words[2]), float(words[3])
        stamps, fault_words = [round((first + i * step) * 1e9) for i in range(count)], words[4:]
    else:
        stamps, fault_words = [round(float(words[1]) * 1e9)], words[2:]
    return stamps, dict(w.split(':', 1) for w in fault_words)


def _run_scripted(node: Node, rig: SixCameraPublisher) -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        if line.strip() == 'quit':
            break
        try:
            stamps, faults = _parse_command(line)
            for stamp_ns in stamps:
                rig.publish_set(stamp_ns, faults)
        except (ValueError, IndexError) as exc:
            print(f'error {exc}', flush=True)
            continue
        rclpy.spin_once(node, timeout_sec=0.0)
        print(f'sent {stamps[-1] * 1e-9:.9f}', flush=True)


def _run_free(node: Node, rig: SixCameraPublisher, rate: float, seconds: float) -> int:
    period = 1.0 / rate
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < seconds:
        rig.publish_set(time.time_ns())
        sent += 1
        next_at = start + sent * period
        while (remaining := next_at - time.monotonic()) > 0:
            rclpy.spin_once(node, timeout_sec=remaining)
    return sent


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    parser.add_argument('--width', type=int, default=1600)
    parser.add_argument('--height', type=int, default=900)
    parser.add_argument('--encoding', choices=('rgb8', 'bgr8'), default='rgb8')
    parser.add_argument('--namespace', default='', help='prefix of the camera topics, e.g. /test')
    parser.add_argument('--odom-topic', default='/odom')
    parser.add_argument(
        '--reliable', action='store_true', help='reliable instead of best-effort QoS'
    )
    parser.add_argument('--rate', type=float, default=12.0)
    parser.add_argument('--seconds', type=float, default=10.0)
    parser.add_argument(
        '--stdin', action='store_true', help='scripted mode: read commands from stdin'
    )
    parser.add_argument('--discovery-timeout', type=float, default=20.0)
    args = parser.parse_args(argv)
    rclpy.init()
    node = rclpy.create_node('six_camera_publisher')
    try:
        rig = SixCameraPublisher(
            node,
            args.width,
            args.height,
            args.encoding,
            namespace=args.namespace,
            odom_topic=args.odom_topic,
            reliable=args.reliable,
        )
        if not wait_for_subscribers(node, rig, args.discovery_timeout):
            print(
                'warning: not every topic has a subscriber yet; publishing anyway', file=sys.stderr
            )
        print('ready', flush=True)
        if args.stdin:
            _run_scripted(node, rig)
        else:
            sent = _run_free(node, rig, args.rate, args.seconds)
            print(f'published {sent} sets', flush=True)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
