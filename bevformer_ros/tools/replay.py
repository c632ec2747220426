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
Play a rosbag2 (mcap or sqlite3) over DDS through rclpy, without a ROS install.

Messages go out as the raw CDR bytes stored in the bag (no deserialisation: six 1600x900 cameras
replay at tens of frames per second), at the recorded times scaled by `--rate`. `--clock` also
publishes /clock from the bag's time line, for nodes started with `use_sim_time:=true`. Images are
sent best-effort (sensor-data QoS, what camera drivers do; `--image-qos reliable` to change),
/tf_static reliable and transient-local, the rest reliable. On a machine with ROS 2, `ros2 bag play
BAG` does the same job.

    bevformer_replay scene.mcap                       # original timing
    bevformer_replay scene.mcap --rate 0.5 --loop --clock
    bevformer_replay bag_dir --start 2 --duration 5 --remap /CAM_FRONT/image_raw:=/cam0/image_raw
    bevformer_replay scene.mcap --wait-for-subscribers    # start once every image topic has a
                                                          # subscriber
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
import sys
import time
from typing import Any

from bevformer_ros.core.progress import Progress
from bevformer_ros.core.stamps import NS_PER_S, split_ns
from bevformer_ros.data.bag_io import BagError, open_bag, rclpy_message_class

IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
CLOCK_TOPIC = '/clock'


@dataclass(frozen=True)
class PlayOptions:
    rate: float = 1.0
    loop: bool = False
    start_s: float = 0.0  # offset from the bag's first message
    duration_s: float | None = None  # bag seconds to play; None: to the end
    clock_hz: float = 0.0  # 0: no /clock
    progress: bool = True


@dataclass
class PlayStats:
    messages: int = 0
    bag_s: float = 0.0  # span of bag time played
    wall_s: float = 0.0
    per_topic: dict[str, int] = field(default_factory=dict)

    @property
    def speed(self) -> float:
        """Bag seconds per wall second."""
        return self.bag_s / self.wall_s if self.wall_s > 0 else 0.0


def parse_remaps(items: Sequence[str]) -> dict[str, str]:
    """['FROM:=TO', ...] -> {'/FROM': '/TO'}; ValueError for anything else."""
    remaps = {}
    for item in items:
        source, sep, target = item.partition(':=')
        if not sep or not source or not target:
            raise ValueError(
                f'remap {item!r}: expected FROM:=TO, e.g. /CAM_FRONT/image_raw:=/cam0/image_raw'
            )
        remaps[_absolute(source)] = _absolute(target)
    return remaps


def _absolute(topic: str) -> str:
    return topic if topic.startswith('/') else f'/{topic}'


def _qos(typename: str, topic: str, image_reliable: bool, depth: int) -> Any:
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    if topic == '/tf_static':
        return QoSProfile(
            depth=100,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
    if typename in IMAGE_TYPES and not image_reliable:
        return QoSProfile(depth=depth, reliability=ReliabilityPolicy.BEST_EFFORT)
    if typename in IMAGE_TYPES:
        return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)
    # small messages: keep a burst
    return QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


class BagPlayer:
    """
    Publishers for the playable topics of one bag on an existing rclpy `node`.

    Plays or steps through the bag.

    Topics whose message package is not importable are skipped with a note in `skipped` (topic ->
    reason).
    """

    def __init__(
        self,
        node: Any,
        bag: str | Path,
        remap: Mapping[str, str] | None = None,
        topics: Sequence[str] | None = None,
        image_reliable: bool = False,
        depth: int = 5,
        clock: bool = False,
    ) -> None:
        self.node = node
        self.path = Path(bag)
        self.reader = open_bag(self.path)
        remap = dict(remap or {})
        wanted = {_absolute(t) for t in topics} if topics else None
        self.publishers: dict[str, Any] = {}  # bag topic -> publisher (on the remapped name)
        self.out_topic: dict[str, str] = {}
        self.types: dict[str, str] = {}
        self.skipped: dict[str, str] = {}
        for conn in self.reader.connections:
            topic = conn.topic
            seen = topic in self.publishers or topic in self.skipped
            if seen or (wanted is not None and topic not in wanted):
                continue
            try:
                msg_class = rclpy_message_class(conn.msgtype)
            except (ImportError, AttributeError, ValueError) as exc:
                self.skipped[topic] = f'{conn.msgtype} is not importable ({exc})'
                continue
            out = remap.get(topic, topic)
            self.publishers[topic] = node.create_publisher(
                msg_class, out, _qos(conn.msgtype, topic, image_reliable, depth)
            )
            self.out_topic[topic] = out
            self.types[topic] = conn.msgtype
        if wanted is not None and not self.publishers:
            raise BagError(
                f'none of the topics {sorted(wanted)} is in {self.path}; it has '
                f'{sorted({c.topic for c in self.reader.connections})}'
            )
        self._clock_pub = None
        if clock:
            from rclpy.qos import QoSProfile, ReliabilityPolicy
            from rosgraph_msgs.msg import Clock

            self._clock_class = Clock
            # heard by best-effort too
            qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
            self._clock_pub = node.create_publisher(Clock, CLOCK_TOPIC, qos)

    def close(self) -> None:
        for pub in self.publishers.values():
            self.node.destroy_publisher(pub)
        if self._clock_pub is not None:
            self.node.destroy_publisher(self._clock_pub)
        self.reader.close()

    @property
    def start_ns(self) -> int:
        return self.reader.start_time

    @property
    def end_ns(self) -> int:
        return self.reader.end_time

    def image_topics(self) -> list[str]:
        """Return the published (remapped) names of the image topics."""
        return [self.out_topic[t] for t, typename in self.types.items() if typename in IMAGE_TYPES]

    def messages(
        self, start_ns: int | None = None, stop_ns: int | None = None
    ) -> Iterator[tuple[str, int, bytes]]:
        """
        Yield (bag topic, record time ns, raw CDR) of the playable topics.

        Only those in [start_ns, stop_ns), in time order.
        """
        connections = [c for c in self.reader.connections if c.topic in self.publishers]
        for conn, stamp, raw in self.reader.messages(connections, start=start_ns, stop=stop_ns):
            yield conn.topic, stamp, raw

    def publish(self, topic: str, raw: bytes) -> None:
        # rclpy publishes bytes as an already serialised message
        self.publishers[topic].publish(raw)

    def publish_clock(self, bag_ns: int) -> None:
        """
        Publish /clock = bag_ns.

        The play loop only moves it forward; a new --loop pass starts over.
        """
        if self._clock_pub is None:
            return
        msg = self._clock_class()
        msg.clock.sec, msg.clock.nanosec = split_ns(bag_ns)
        self._clock_pub.publish(msg)

    def wait_for_subscribers(self, topics: Sequence[str], timeout_s: float) -> list[str]:
        """
        Wait until each (published, remapped) topic has a subscriber.

        Return those still without one.
        """
        pubs = {out: self.publishers[t] for t, out in self.out_topic.items() if out in set(topics)}
        if self._clock_pub is not None and CLOCK_TOPIC in topics:
            pubs[CLOCK_TOPIC] = self._clock_pub
        unknown = sorted(set(topics) - set(pubs))
        if unknown:
            raise BagError(
                f'cannot wait for {unknown}: not played from {self.path}; played topics are '
                f'{sorted(self.out_topic.values())}'
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            missing = [t for t, pub in pubs.items() if pub.get_subscription_count() == 0]
            if not missing:
                return []
            time.sleep(0.05)
        return [t for t, pub in pubs.items() if pub.get_subscription_count() == 0]

    def play(self, options: PlayOptions) -> PlayStats:
        """
        Play once (or until interrupted with --loop).

        The recorded timing is scaled by options.rate.
        """
        if options.rate <= 0:
            raise ValueError(f'rate must be > 0, got {options.rate}')
        start = self.start_ns + round(options.start_s * NS_PER_S)
        stop = None if options.duration_s is None else start + round(options.duration_s * NS_PER_S)
        span_s = ((stop if stop is not None else self.end_ns) - start) / NS_PER_S
        stats = PlayStats()
        started = time.perf_counter()
        while True:
            bar = Progress(
                round(max(span_s, 0.0), 2), f'replay x{options.rate:g}', 'bag s', options.progress
            )
            self._play_once(start, stop, options, stats, bar)
            bar.close()
            if not options.loop:
                break
        stats.wall_s = time.perf_counter() - started
        return stats

    def _play_once(
        self, start: int, stop: int | None, options: PlayOptions, stats: PlayStats, bar: Progress
    ) -> None:
        clock_period = 1.0 / options.clock_hz if options.clock_hz > 0 and self._clock_pub else None
        wall0 = None
        first = None
        next_clock = 0.0
        shown = 0.0
        for topic, stamp, raw in self.messages(start, stop):
            if wall0 is None:
                wall0, first = time.perf_counter(), stamp
                next_clock = wall0
            target = wall0 + (stamp - first) / NS_PER_S / options.rate
            while (now := time.perf_counter()) < target:
                if clock_period is not None and now >= next_clock:
                    self.publish_clock(first + round((now - wall0) * options.rate * NS_PER_S))
                    next_clock = now + clock_period
                wake = min(target, next_clock) if clock_period is not None else target
                time.sleep(max(wake - time.perf_counter(), 0.0))
            if clock_period is not None:
                self.publish_clock(stamp)
            self.publish(topic, raw)
            stats.messages += 1
            stats.per_topic[topic] = stats.per_topic.get(topic, 0) + 1
            played = (stamp - first) / NS_PER_S
            stats.bag_s = max(stats.bag_s, played)
            bar.update(played - shown, f'{stats.messages} msgs')
            shown = played


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='bevformer_replay',
        description=__doc__.strip().split('\n')[0],
        epilog=__doc__.strip().split('\n\n', 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument('bag', type=Path, help='rosbag2 directory, or a .mcap / .db3 file')
    parser.add_argument(
        '--rate', type=float, default=1.0, help='playback speed factor (default 1)'
    )
    parser.add_argument('--loop', action='store_true', help='play again and again until Ctrl-C')
    parser.add_argument(
        '--start', type=float, default=0.0, metavar='S', help='skip the first S bag seconds'
    )
    parser.add_argument('--duration', type=float, metavar='D', help='play D bag seconds')
    parser.add_argument(
        '--remap', nargs='+', default=[], metavar='FROM:=TO', help='publish topic FROM as TO'
    )
    parser.add_argument('--topics', nargs='+', metavar='TOPIC', help='play only these topics')
    parser.add_argument(
        '--clock',
        nargs='?',
        type=float,
        const=40.0,
        default=0.0,
        metavar='HZ',
        help='publish /clock from the bag time (default 40 Hz) for use_sim_time',
    )
    parser.add_argument(
        '--image-qos',
        choices=('best_effort', 'reliable'),
        default='best_effort',
        help='reliability of the image publishers (default best_effort)',
    )
    parser.add_argument(
        '--depth', type=int, default=5, help='history depth of the image publishers'
    )
    parser.add_argument(
        '--wait-for-subscribers',
        nargs='*',
        metavar='TOPIC',
        help='before playing, wait until these topics (default: every image topic) have a '
        'subscriber',
    )
    parser.add_argument(
        '--wait-timeout', type=float, default=30.0, help='seconds to wait (default 30)'
    )
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    try:
        remap = parse_remaps(args.remap)
        options = PlayOptions(
            rate=args.rate,
            loop=args.loop,
            start_s=args.start,
            duration_s=args.duration,
            clock_hz=args.clock,
            progress=not args.quiet,
        )
        if args.rate <= 0 or args.start < 0 or (args.duration is not None and args.duration <= 0):
            raise ValueError('need --rate > 0, --start >= 0 and --duration > 0')
        return _run(args, remap, options)
    except (BagError, ValueError) as exc:
        print(f'bevformer_replay: error: {exc}', file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, remap: dict[str, str], options: PlayOptions) -> int:
    open_bag(args.bag).close()  # fail on a bad path before paying for rclpy and DDS discovery
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)  # Ctrl-C stays a KeyboardInterrupt
    node = rclpy.create_node('bevformer_replay')
    player = None
    try:
        player = BagPlayer(
            node,
            args.bag,
            remap,
            args.topics,
            args.image_qos == 'reliable',
            args.depth,
            clock=options.clock_hz > 0,
        )
        for topic, reason in player.skipped.items():
            print(f'bevformer_replay: skipping {topic}: {reason}', file=sys.stderr)
        if args.wait_for_subscribers is not None:
            topics = args.wait_for_subscribers or player.image_topics()
            missing = player.wait_for_subscribers(topics, args.wait_timeout)
            if missing:
                print(
                    f'bevformer_replay: no subscriber after {args.wait_timeout:g} s on '
                    f'{missing}; playing '
                    'anyway',
                    file=sys.stderr,
                )
        stats = player.play(options)
        print(
            f'played {stats.messages} messages, {stats.bag_s:.2f} bag s in {stats.wall_s:.2f} s '
            f'(x{stats.speed:.2f})'
        )
    except KeyboardInterrupt:
        print('bevformer_replay: interrupted', file=sys.stderr)
    finally:
        time.sleep(0.2)  # let the last best-effort samples leave before the participant goes
        if player is not None:
            player.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
