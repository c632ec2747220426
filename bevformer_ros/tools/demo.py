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

r"""
`make demo`: the node end to end on a synthetic scene, over real DDS, with pictures and a summary.

1. Render a short synthetic six-camera scene into a bag (bevformer_synth; cached in the output
   folder).
2. Start `bevformer_node` as its own process on a private ROS graph (own domain, this host only,
   the shared-memory Fast DDS profile for large images), with the chosen model and weights.
3. Replay the bag into it frame by frame (bevformer_replay's player, raw CDR over DDS): each
   frame's odometry, CameraInfo and six images go out, then the demo waits for the node's ~/markers
   for that frame before the next one, so a slow CPU costs time but never frames.
4. Record what the node publishes (~/markers, ~/bev_features, ~/bev_image) into `outputs.mcap`,
   draw one picture per frame (cameras with projected boxes, BEV with detections, ground truth and
   the BEV feature heat map) and print frames, latency and detections.

Model. When the package ships models/bevformer_demo_small.pth (the demo_small model trained on
synthetic scenes, config/bevformer_demo_small.yaml), the default is that model on a scene it never
saw in training (seed 1000: training used seeds 0-5, validation 100-101), rendered as it was
trained: 400x225 at 2 Hz. Without that file, or with --preset tiny|small|base and no --checkpoint,
the node runs with seeded RANDOM weights: its boxes show that the pipeline works, not what is on
the road, and the demo says so.

    python -m bevformer_ros.tools.demo                # demo_small weights if shipped, else
                                                      # random tiny
    python -m bevformer_ros.tools.demo --preset tiny  # tiny preset, random weights, 6 frames
                                                      # of 1600x900
    python -m bevformer_ros.tools.demo --preset tiny --checkpoint bevformer_tiny_epoch_24.pth \
        --device cuda
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
import os
from pathlib import Path
import statistics
import sys
import time
from typing import Any

from bevformer_ros.config import ENGINE_BACKENDS, ENGINE_PRECISIONS
from bevformer_ros.data.bag_io import (
    BagError,
    BagWriter,
    first_element_stamp_ns,
    header_stamp_ns,
)
from bevformer_ros.data.params_file import write_params_file
from bevformer_ros.eval.metrics import RecallCounter
from bevformer_ros.model.small_model import small_model_parameters
from bevformer_ros.resources import (
    checkpoint_path,
    config_file,
    model_file,
    ResourceNotFoundError,
)
from bevformer_ros.synth.ground_truth_file import ground_truth_path, read_ground_truth
from bevformer_ros.tools.synth import write_scene_bag
from bevformer_ros.viz.marker_boxes import boxes_from_marker_array
from bevformer_ros.viz.overlay import write_frame_png
import numpy as np

NODE = '/bevformer'
MARKERS, BEV_FEATURES, BEV_IMAGE = f'{NODE}/markers', f'{NODE}/bev_features', f'{NODE}/bev_image'
OUTPUT_TYPES = {
    MARKERS: 'visualization_msgs/msg/MarkerArray',
    BEV_FEATURES: 'sensor_msgs/msg/Image',
    BEV_IMAGE: 'sensor_msgs/msg/Image',
}
PRESETS = ('demo_small', 'tiny', 'small', 'base', 'toy')
RANDOM_WEIGHTS_NOTE = (
    'RANDOM WEIGHTS (no --checkpoint): the boxes are meaningless; real detections need a '
    'trained checkpoint (--checkpoint FILE.pth)'
)
TRAINED_NOTE = 'trained demo_small weights (synthetic scenes, see README)'
TRAINED_MODEL = 'bevformer_demo_small.pth'  # in the package's models/ folder
RECALL_DISTANCE_M = 2.0
BEV_HALF_RANGE_M = 51.2  # the official pc_range in x and y, which every preset shares
SCENE_RATE_HZ = (
    2.0  # nuScenes keyframe rate, the frame spacing BEVFormer's temporal model was trained on
)


@dataclass(frozen=True)
class SceneDefaults:
    frames: int
    width: int
    height: int
    seed: int


# demo_small: the size it was trained at (presets.demo_small) and a held-out seed (training 0-5,
# validation 100-101); the official presets: nuScenes-size images.
SCENE_DEFAULTS = {'demo_small': SceneDefaults(frames=12, width=400, height=225, seed=1000)}
NUSCENES_SCENE = SceneDefaults(frames=6, width=1600, height=900, seed=0)


def shipped_checkpoint() -> Path | None:
    """models/bevformer_demo_small.pth of the install or checkout, None when it does not ship."""
    try:
        return model_file(TRAINED_MODEL)
    except ResourceNotFoundError:
        return None


@dataclass
class Outputs:
    """Raw messages the node published, keyed by topic and stamp, with their wall receive times."""

    raw: dict[str, dict[int, bytes]] = field(default_factory=dict)
    received: dict[str, dict[int, float]] = field(default_factory=dict)

    def add(self, topic: str, stamp_ns: int, raw: bytes) -> None:
        self.raw.setdefault(topic, {})[stamp_ns] = raw
        self.received.setdefault(topic, {})[stamp_ns] = time.perf_counter()

    def has(self, topic: str, stamp_ns: int) -> bool:
        return stamp_ns in self.raw.get(topic, {})


def _checkpoint_exists(value: str) -> bool:
    """Whether a --checkpoint value names a file, looked up as the node does model.checkpoint."""
    try:
        return checkpoint_path(value).is_file()
    except ResourceNotFoundError:
        return False


def apply_defaults(args: argparse.Namespace, shipped: Path | None) -> None:
    """
    Fill the model and scene options left out (None) in place.

    Raise ValueError for an unusable combination.

    `shipped`: the packaged demo_small checkpoint, or None when it does not ship.
    """
    if args.preset is None:
        args.preset = 'demo_small' if shipped is not None else 'tiny'
    if args.preset == 'demo_small' and not args.checkpoint and shipped is None:
        raise ValueError(
            f'--preset demo_small needs its weights: models/{TRAINED_MODEL} does not ship with '
            'this checkout or install; pass --checkpoint FILE.pth (a bevformer_train final.pth)'
        )
    if args.checkpoint and not _checkpoint_exists(args.checkpoint):
        raise ValueError(f'--checkpoint {args.checkpoint}: no such file')
    scene = SCENE_DEFAULTS.get(args.preset, NUSCENES_SCENE)
    for name in ('frames', 'width', 'height', 'seed'):
        if getattr(args, name) is None:
            setattr(args, name, getattr(scene, name))
    if args.frames < 1:
        raise ValueError('--frames must be at least 1')
    args.shipped = shipped


def trained(args: argparse.Namespace) -> bool:
    """Whether the node runs the demo_small weights (shipped, or given with --checkpoint)."""
    return args.preset == 'demo_small'


def weights_label(args: argparse.Namespace) -> str:
    if args.checkpoint:
        return args.checkpoint
    return str(args.shipped) if trained(args) else 'random'


def engine_arguments(args: argparse.Namespace) -> list[str]:
    """
    Return the node's `-p` arguments of the inference engine (--backend, --precision).

    An exported-graph engine is built at configure for the scene's image size, when known.
    """
    arguments = ['-p', f'model.backend:={args.backend}']
    arguments += ['-p', f'model.precision:={args.precision}']
    if args.backend != 'torch' and args.width and args.height:
        arguments += ['-p', f'model.engine_image_size:=[{args.width}, {args.height}]']
    return arguments


def node_parameters_file(preset: str, out: Path) -> Path:
    """
    Return the shipped parameter file of a preset.

    'toy' writes the seconds-fast test model's parameters.
    """
    if preset != 'toy':
        return config_file(f'bevformer_{preset}.yaml')
    path = out / 'params_toy.yaml'
    write_params_file(path, small_model_parameters())
    return path


def ensure_scene(out: Path, frames: int, width: int, height: int, seed: int) -> Path:
    bag = out / f'scene_seed{seed}_{width}x{height}_{frames}f.mcap'
    if bag.exists() and ground_truth_path(bag).exists():
        print(f'[demo] scene: {bag} (cached)')
        return bag
    print(
        f'[demo] rendering a synthetic scene: {frames} frames of 6 x {width}x{height} '
        f'at {SCENE_RATE_HZ:g} Hz'
    )
    summary = write_scene_bag(
        bag,
        seed=seed,
        frames=frames,
        rate=SCENE_RATE_HZ,
        width=width,
        height=height,
        overwrite=True,
    )
    print(f'[demo] scene: {bag} ({summary.render_s_per_frame:.2f} s per frame to render)')
    return bag


def _subscribe_outputs(probe: Any, outputs: Outputs) -> None:
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from visualization_msgs.msg import MarkerArray

    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)

    def keep(topic: str) -> Any:
        def callback(raw: bytes) -> None:
            stamp = first_element_stamp_ns(raw) if topic == MARKERS else header_stamp_ns(raw)
            if stamp is not None:
                outputs.add(topic, stamp, raw)

        return callback

    for topic, msg_type in ((MARKERS, MarkerArray), (BEV_FEATURES, Image), (BEV_IMAGE, Image)):
        probe.node.create_subscription(msg_type, topic, keep(topic), qos, raw=True)


def _frames_of(player: Any, stamps: Sequence[int]) -> list[list[tuple[str, bytes]]]:
    """
    Return the bag's messages grouped per camera frame.

    A frame holds everything recorded up to its images (+ 10 ms).
    """
    groups: list[list[tuple[str, bytes]]] = [[] for _ in stamps]
    k = 0
    for topic, record_ns, raw in player.messages():
        while k < len(stamps) - 1 and record_ns > stamps[k] + 10_000_000:
            k += 1
        groups[k].append((topic, raw))
    return groups


def replay_lockstep(
    probe: Any,
    node: Any,
    player: Any,
    stamps: Sequence[int],
    outputs: Outputs,
    first_timeout: float,
    timeout: float,
) -> list[float | None]:
    """
    Publish frame by frame, each time waiting for the node's markers.

    Return the latency (s) per frame, or None.
    """
    latencies: list[float | None] = []
    for k, group in enumerate(_frames_of(player, stamps)):
        for topic, raw in group:
            player.publish(topic, raw)
        sent = time.perf_counter()
        try:
            probe.spin_until(
                lambda s=stamps[k]: outputs.has(MARKERS, s),
                first_timeout if k == 0 else timeout,
                f'markers of frame {k}',
                watch=[node],
            )
            latencies.append(outputs.received[MARKERS][stamps[k]] - sent)
            print(
                f'[demo] frame {k + 1}/{len(stamps)}: output after {latencies[-1]:.2f} s',
                flush=True,
            )
        except TimeoutError:
            latencies.append(None)
            print(f'[demo] frame {k + 1}/{len(stamps)}: no output within the timeout', flush=True)
    try:  # the BEV messages leave right after the markers; give the last ones a moment
        probe.spin_until(
            lambda: all(outputs.has(BEV_FEATURES, s) for s in stamps if outputs.has(MARKERS, s)),
            5.0,
            'BEV features',
        )
    except TimeoutError:
        pass  # pictures then show no heat map for those frames
    return latencies


def write_outputs_bag(path: Path, outputs: Outputs) -> None:
    with BagWriter(path, 'mcap', overwrite=True) as bag:
        records = sorted(
            (stamp, topic, raw)
            for topic, by_stamp in outputs.raw.items()
            for stamp, raw in by_stamp.items()
        )
        for stamp, topic, raw in records:
            bag.write(topic, OUTPUT_TYPES[topic], stamp, raw)


def render_pictures(bag: Path, outputs: Outputs, out: Path, notes: Sequence[str]) -> list[Path]:
    """
    Render one PNG per frame.

    Each shows the bag's cameras and ground truth with the node's (in-memory) outputs.
    """
    from bevformer_ros.viz.bag_frames import BagFrames, bev_features_array
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image
    from visualization_msgs.msg import MarkerArray

    frames = BagFrames([bag])
    paths = []
    for index, view in enumerate(frames.frames()):
        raw = outputs.raw.get(MARKERS, {}).get(view.stamp_ns)
        view.detections = (
            boxes_from_marker_array(deserialize_message(raw, MarkerArray)) if raw else None
        )
        bev_raw = outputs.raw.get(BEV_FEATURES, {}).get(view.stamp_ns)
        view.bev = bev_features_array(deserialize_message(bev_raw, Image)) if bev_raw else None
        view.title = f'bevformer_ros demo, frame {index}'
        view.notes = list(notes)
        paths.append(write_frame_png(view, out / f'frame_{index:04d}.png'))
    return paths


def run(args: argparse.Namespace) -> int:
    from bevformer_ros.model.build import node_checkpoint_arguments
    from bevformer_ros.ros.process import (
        GraphProbe,
        isolation_env,
        reserved_domain_id,
        RosProcess,
    )
    from bevformer_ros.tools.replay import BagPlayer

    started = time.perf_counter()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    bag = ensure_scene(out, args.frames, args.width, args.height, args.seed)
    gt_frames, _ = read_ground_truth(ground_truth_path(bag))
    stamps = [f.stamp_ns for f in gt_frames]
    weights = weights_label(args)
    params = node_parameters_file(args.preset, out)
    node_args = [
        '-m',
        'bevformer_ros.node',
        '--autostart',
        '--ros-args',
        '--params-file',
        str(params),
        '-p',
        f'model.device:={args.device}',
    ]
    node_args += node_checkpoint_arguments(args.checkpoint)
    node_args += engine_arguments(args)
    if args.preset == 'toy':
        node_args += ['-p', 'outputs.score_threshold:=0.0']
    print(
        f'[demo] starting bevformer_node: preset {args.preset}, device {args.device}, '
        f'{args.backend} {args.precision}, '
        f'weights {weights}; '
        f'log: {out / "bevformer_node.log"}'
    )
    outputs = Outputs()
    with reserved_domain_id() as domain:
        # this process joins the same private graph
        os.environ.update(isolation_env(domain, out / 'ros_log'))
        with (
            RosProcess(node_args, dict(os.environ), log_dir=out, name='bevformer_node') as node,
            GraphProbe('bevformer_demo') as probe,
        ):
            _subscribe_outputs(probe, outputs)
            player = BagPlayer(probe.node, bag, image_reliable=False)
            try:
                inputs = player.image_topics() + ['/odom']
                probe.spin_until(
                    lambda: not player.wait_for_subscribers(inputs, 0.0),
                    args.startup_timeout,
                    'the node to load its model and subscribe',
                    watch=[node],
                )
                probe.wait_for_topics([MARKERS, BEV_FEATURES], timeout=30.0, watch=[node])
                _settle(probe, 1.0)
                print(
                    f'[demo] node ready after {time.perf_counter() - started:.1f} s; replaying '
                    f'{len(stamps)} frames over DDS',
                    flush=True,
                )
                latencies = replay_lockstep(
                    probe,
                    node,
                    player,
                    stamps,
                    outputs,
                    args.frame_timeout * 2,
                    args.frame_timeout,
                )
            finally:
                player.close()
    return _finish(args, out, bag, stamps, gt_frames, outputs, latencies, started)


def ground_truth_recall(
    detections: dict[int, Any], gt_frames: Sequence[Any]
) -> RecallCounter | None:
    """
    Return the recall of the frames the node answered.

    Ground truth inside the official BEV range (the training filter), matched one-to-one by
    same-class detections within RECALL_DISTANCE_M (the trainer's metric).
    """
    counter = RecallCounter(distance_m=RECALL_DISTANCE_M)
    for frame in gt_frames:
        found = detections.get(frame.stamp_ns)
        if found is None:
            continue
        x, y = frame.boxes[:, 0], frame.boxes[:, 1]  # [K]
        inside = (np.abs(x) < BEV_HALF_RANGE_M) & (np.abs(y) < BEV_HALF_RANGE_M)
        scores = found.scores if found.scores is not None else np.ones(len(found))
        counter.add(found.boxes, scores, found.labels, frame.boxes[inside], frame.labels[inside])
    return counter if counter.total else None


def _settle(probe: Any, seconds: float) -> None:
    """Spin a moment so that the node's publishers also match this process's subscriptions."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        probe.executor.spin_once(timeout_sec=0.05)


def _finish(
    args: argparse.Namespace,
    out: Path,
    bag: Path,
    stamps: Sequence[int],
    gt_frames: Sequence[Any],
    outputs: Outputs,
    latencies: Sequence[float | None],
    started: float,
) -> int:
    from rclpy.serialization import deserialize_message
    from visualization_msgs.msg import MarkerArray

    write_outputs_bag(out / 'outputs.mcap', outputs)
    notes = [TRAINED_NOTE] if trained(args) else [] if args.checkpoint else [RANDOM_WEIGHTS_NOTE]
    engine = f'{args.backend} {args.precision}'
    notes.append(
        f'preset {args.preset}, device {args.device}, {engine}, weights {weights_label(args)}'
    )
    pictures = render_pictures(bag, outputs, out, notes)
    done = [x for x in latencies if x is not None]
    detections = {
        stamp: boxes_from_marker_array(deserialize_message(raw, MarkerArray))
        for stamp, raw in outputs.raw.get(MARKERS, {}).items()
    }
    counts = [len(boxes) for boxes in detections.values()]
    gt_counts = [len(f.boxes) for f in gt_frames]
    print('\n[demo] summary')
    print(
        f'  frames in: {len(stamps)} (6 x {args.width}x{args.height} rgb8 each), '
        f'frames out: {len(done)}'
    )
    if done:
        print(
            '  latency (frame published -> markers received): '
            f'median {statistics.median(done):.2f} s, '
            f'max {max(done):.2f} s  [{args.preset} on {args.device}]'
        )
    if counts:
        print(
            f'  detections per frame: {statistics.mean(counts):.1f} '
            '(score >= the node threshold); '
            f'ground-truth boxes per frame: {statistics.mean(gt_counts):.1f}'
        )
    recall = ground_truth_recall(detections, gt_frames)
    if recall is not None:
        print(
            f'  recall within {RECALL_DISTANCE_M:g} m: {recall.recall:.3f} '
            f'({recall.matched}/{recall.total} ground-truth objects inside the BEV range '
            'matched by a '
            'same-class detection)'
        )
    if trained(args):
        print(f'  weights: {TRAINED_NOTE}: {weights_label(args)}')
    elif not args.checkpoint:
        print(f'  NOTE: {RANDOM_WEIGHTS_NOTE}')
    print(
        f'  pictures: {pictures[0].parent}/frame_0000.png .. {pictures[-1].name}'
        if pictures
        else '  pictures: none'
    )
    results = out / 'outputs.mcap'
    print(f'  node outputs: {results}  (re-draw: bevformer_render {bag} {results} --out DIR)')
    print(f'  input bag: {bag}  (bevformer_replay {bag})')
    print(f'  wall time: {time.perf_counter() - started:.1f} s')
    return 0 if done else 1


def build_parser() -> argparse.ArgumentParser:
    """Build the command line; options left out stay None until `apply_defaults` fills them."""
    parser = argparse.ArgumentParser(
        prog='bevformer_demo',
        description=__doc__.strip().split('\n')[0],
        epilog=__doc__.strip().split('\n\n', 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        '--preset',
        choices=PRESETS,
        help='model (default: demo_small when models/bevformer_demo_small.pth ships, else '
        'tiny); demo_small = the model trained on synthetic scenes; toy = tiny at toy '
        'sizes, a second per frame',
    )
    parser.add_argument(
        '--checkpoint',
        default='',
        help='.pth of the preset (default: the shipped weights for demo_small, none = random '
        'weights for the others)',
    )
    parser.add_argument(
        '--frames',
        type=int,
        help='frames of the synthetic scene (default 12 for demo_small, else 6)',
    )
    parser.add_argument('--device', default='auto', help='auto (default), cpu, cuda or cuda:N')
    parser.add_argument(
        '--backend',
        default='torch',
        choices=ENGINE_BACKENDS,
        help='model.backend of the node (default torch; the others export and compile the '
        'engine at configure for the scene image size, cached in '
        '~/.cache/bevformer_ros/engines)',
    )
    parser.add_argument(
        '--precision',
        default='fp32',
        choices=ENGINE_PRECISIONS,
        help='model.precision of the node (default fp32)',
    )
    parser.add_argument(
        '--width', type=int, help='camera image width (default 400 for demo_small, else 1600)'
    )
    parser.add_argument(
        '--height', type=int, help='camera image height (default 225 for demo_small, else 900)'
    )
    parser.add_argument(
        '--seed',
        type=int,
        help='scene seed (default 1000 for demo_small, a scene it never trained on; else 0)',
    )
    parser.add_argument(
        '--out', type=Path, default=Path('out/demo'), help='output folder (default out/demo)'
    )
    parser.add_argument(
        '--frame-timeout',
        type=float,
        default=60.0,
        help="seconds to wait for one frame's output (default 60; twice that for the first)",
    )
    parser.add_argument(
        '--startup-timeout',
        type=float,
        default=180.0,
        help='seconds for the node to load its model (default 180)',
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        apply_defaults(args, shipped_checkpoint())
    except ValueError as exc:
        parser.error(str(exc))
    try:
        return run(args)
    except (BagError, TimeoutError, RuntimeError) as exc:
        print(f'[demo] error: {exc}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('[demo] interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    raise SystemExit(main())
