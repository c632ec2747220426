"""Six synthetic cameras + CameraInfo + Odometry over DDS, for tests, benchmarks and trying the node.

Two modes:
- free-running: `python -m bevformer_ros.tools.six_camera_publisher --rate 12 --seconds 30` publishes one
  synchronized set per period (default 1600x900 rgb8), stamped with the wall clock.
- scripted (`--stdin`): one command per input line, so a test decides every stamp and every fault:
    `frame <stamp_s> [<camera>:<fault> ...] [odom:nan]`   fault: truncated | encoding | size
    `quit`
  Each command answers `sent <stamp_s>` on stdout once published; `ready` comes once subscribers match.

Every set is CameraInfo first, then Odometry, then the six images, all with one stamp, so a node that caches
CameraInfo and buffers odometry has both before the images arrive. The ego vehicle drives a gentle left curve
(5 m/s, 0.05 rad/s), so the pose is a function of the stamp and a backwards stamp gives a backwards pose.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence

import numpy as np
import rclpy
from nav_msgs.msg import Odometry
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

CAMERAS = ('CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT', 'CAM_BACK_RIGHT')
SPEED_MPS, YAW_RATE = 5.0, 0.05
NUSCENES_FOCAL_PX = 1266.0  # nuScenes front camera fx at 1600 px width; scaled with the width
FAULTS = ('truncated', 'encoding', 'size')


def ego_pose(stamp_s: float) -> tuple[tuple[float, float, float], tuple[float, float, float, float]]:
    """(translation, quaternion x, y, z, w) of base_link in odom at `stamp_s` on the synthetic trajectory."""
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
    """A smooth, camera-specific colour pattern plus noise; built once, restamped per frame."""
    rng = np.random.default_rng(index)
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    cols = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    phase = index * 0.7
    rgb = np.stack([
        128 + 100 * np.sin(6.0 * cols + phase) * np.ones_like(rows),
        128 + 100 * np.cos(4.0 * rows + phase) * np.ones_like(cols),
        128 + 60 * np.sin(9.0 * (rows + cols) + phase),
    ], axis=-1)  # [H, W, 3]
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
    bad.height, bad.width, bad.step, bad.encoding = good.height, good.width, good.step, good.encoding
    if fault == 'truncated':
        bad.data = bytes(good.data)[: len(good.data) // 2]
    elif fault == 'encoding':
        bad.encoding = 'mono16'
        bad.step = good.width * 2
        bad.data = bytes(good.width * good.height * 2)
    elif fault == 'size':
        bad.height, bad.width, bad.step = good.height // 2, good.width // 2, (good.width // 2) * 3
        bad.data = bytes(bad.height * bad.step)
    else:
        raise ValueError(f'unknown fault {fault!r}: expected one of {", ".join(FAULTS)}')
    return bad


class SixCameraPublisher:
    """Publishers for one rig; `publish_set(stamp_ns)` sends CameraInfo, Odometry and the six images."""

    def __init__(self, node: Node, width: int, height: int, encoding: str = 'rgb8',
                 cameras: Sequence[str] = CAMERAS, namespace: str = '', odom_topic: str = '/odom',
                 reliable: bool = False, depth: int = 5) -> None:
        qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE if reliable
                         else ReliabilityPolicy.BEST_EFFORT)
        prefix = namespace.rstrip('/') + '/' if namespace else ''
        self.node = node
        self.cameras = tuple(cameras)
        self.image_pubs = [node.create_publisher(Image, f'{prefix}{c}/image_raw', qos) for c in self.cameras]
        self.info_pubs = [node.create_publisher(CameraInfo, f'{prefix}{c}/camera_info', qos)
                          for c in self.cameras]
        self.odom_pub = node.create_publisher(Odometry, odom_topic, QoSProfile(depth=50))
        self.images = [synthetic_image(c, i, width, height, encoding) for i, c in enumerate(self.cameras)]
        self.infos = [camera_info(c, width, height) for c in self.cameras]

    def subscribers_matched(self) -> bool:
        pubs = self.image_pubs + self.info_pubs + [self.odom_pub]
        return all(p.get_subscription_count() > 0 for p in pubs)

    def publish_set(self, stamp_ns: int, faults: dict[str, str] | None = None) -> None:
        faults = faults or {}
        stamp = rclpy.time.Time(nanoseconds=stamp_ns).to_msg()
        for pub, info in zip(self.info_pubs, self.infos):
            info.header.stamp = stamp
            pub.publish(info)
        self.odom_pub.publish(self._odometry(stamp_ns, stamp, broken=faults.get('odom') == 'nan'))
        for pub, name, image in zip(self.image_pubs, self.cameras, self.images):
            image.header.stamp = stamp
            pub.publish(faulty_image(image, faults[name]) if name in faults else image)

    def _odometry(self, stamp_ns: int, stamp: object, broken: bool = False) -> Odometry:
        (x, y, z), (qx, qy, qz, qw) = ego_pose(stamp_ns * 1e-9)
        if broken:
            x = y = z = math.nan
        odom = Odometry()
        odom.header.stamp = stamp
        odom.header.frame_id = 'odom'
        odom.child_frame_id = 'base_link'
        pose = odom.pose.pose
        pose.position.x, pose.position.y, pose.position.z = x, y, z
        pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = qx, qy, qz, qw
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


def _parse_command(line: str) -> tuple[int, dict[str, str]]:
    words = line.split()
    stamp_ns = round(float(words[1]) * 1e9)
    faults = dict(w.split(':', 1) for w in words[2:])
    return stamp_ns, faults


def _run_scripted(node: Node, rig: SixCameraPublisher) -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        if line.strip() == 'quit':
            break
        stamp_ns, faults = _parse_command(line)
        rig.publish_set(stamp_ns, faults)
        rclpy.spin_once(node, timeout_sec=0.0)
        print(f'sent {stamp_ns * 1e-9:.9f}', flush=True)


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
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--width', type=int, default=1600)
    parser.add_argument('--height', type=int, default=900)
    parser.add_argument('--encoding', choices=('rgb8', 'bgr8'), default='rgb8')
    parser.add_argument('--namespace', default='', help='prefix of the camera topics, e.g. /test')
    parser.add_argument('--odom-topic', default='/odom')
    parser.add_argument('--reliable', action='store_true', help='reliable instead of best-effort QoS')
    parser.add_argument('--rate', type=float, default=12.0)
    parser.add_argument('--seconds', type=float, default=10.0)
    parser.add_argument('--stdin', action='store_true', help='scripted mode: read commands from stdin')
    parser.add_argument('--discovery-timeout', type=float, default=20.0)
    args = parser.parse_args(argv)
    rclpy.init()
    node = rclpy.create_node('six_camera_publisher')
    try:
        rig = SixCameraPublisher(node, args.width, args.height, args.encoding, namespace=args.namespace,
                                 odom_topic=args.odom_topic, reliable=args.reliable)
        if not wait_for_subscribers(node, rig, args.discovery_timeout):
            print('warning: not every topic has a subscriber yet; publishing anyway', file=sys.stderr)
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
