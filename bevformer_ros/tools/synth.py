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
`bevformer_synth OUT.mcap`: a synthetic six-camera driving scene written as a rosbag2.

The nuScenes camera rig (config/nuscenes_rig.yaml) rides on an ego vehicle that drives a winding
road past cars, trucks, buses, bicycles, pedestrians, parked vehicles and a construction zone
(bevformer_ros.synth); every frame is rendered into the six cameras by exact pinhole ray casting.
The bag holds the node's topic layout (bevformer_ros.data.scene_messages): six rgb8 images with
CameraInfo, /odom, /tf, /tf_static and the ground truth as a MarkerArray; the ground truth is also
written as plain JSON (`<OUT>.ground_truth.json` beside a .mcap file, `ground_truth.json` inside a
bag directory). Same seed, same bag.

    bevformer_synth scene.mcap --frames 24 --rate 12             # 1600x900, ~26 MB per frame
    bevformer_synth small.mcap --width 320 --height 180 --seed 3
    bevformer_synth scene_db --storage sqlite3                    # a rosbag2 directory with
                                                                  # sqlite3 storage
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
import sys
import time

from bevformer_ros.core.progress import Progress
from bevformer_ros.core.rig import load_rig, Rig, RigError
from bevformer_ros.core.rotation import matrix_to_quat_wxyz
from bevformer_ros.core.stamps import NS_PER_S
from bevformer_ros.data import scene_messages as sm
from bevformer_ros.data.bag_io import BagError, BagWriter, serialize, STORAGES
from bevformer_ros.data.output_messages import MARKERS_TYPE
from bevformer_ros.resources import config_file
from bevformer_ros.synth.ground_truth_file import (
    ground_truth_path,
    GroundTruthFrame,
    write_ground_truth,
)
from bevformer_ros.synth.renderer import Renderer, rig_cameras
from bevformer_ros.synth.scene import Scene

START_NS = 1_700_000_000 * NS_PER_S  # stamp of the first frame (2023-11-14), far from 0 on purpose
ODOM_RATE_HZ = 50.0
# Record-time offsets after a frame's stamp: odometry and TF first, then CameraInfo, images, ground
# truth, the order in which a node wants them (ties in record time have no defined order in a bag).
INFO_DELAY_NS, IMAGE_DELAY_NS, GT_DELAY_NS = 1_000, 2_000, 3_000


@dataclass(frozen=True)
class SynthSummary:
    path: Path
    ground_truth: Path
    frames: int
    messages: int
    render_s_per_frame: float
    wall_s: float


def frame_stamps(frames: int, rate: float) -> list[int]:
    return [START_NS + round(k * 1e9 / rate) for k in range(frames)]


def odometry_stamps(frame_ns: Sequence[int]) -> list[int]:
    """
    Return a 50 Hz grid over the scene plus every frame stamp.

    So each image has a pose at its own stamp.
    """
    step = round(1e9 / ODOM_RATE_HZ)
    grid = range(frame_ns[0] - step, frame_ns[-1] + 2 * step, step)
    return sorted(set(grid) | set(frame_ns))


def write_scene_bag(
    out: str | Path,
    seed: int = 0,
    frames: int = 24,
    rate: float = 12.0,
    width: int = 1600,
    height: int = 900,
    storage: str = 'mcap',
    rig: Rig | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> SynthSummary:
    """Render the scene of `seed` and write it as a bag at `out` (+ the ground-truth JSON)."""
    if frames < 1 or rate <= 0 or width < 16 or height < 16:
        raise ValueError(
            f'need frames >= 1, rate > 0 and an image of at least 16x16; got frames={frames}, '
            f'rate={rate}, {width}x{height}'
        )
    started = time.perf_counter()
    rig = rig or load_rig(config_file('nuscenes_rig.yaml'))
    stamps = frame_stamps(frames, rate)
    scene = Scene.create(seed, duration=frames / rate)
    cameras = rig_cameras(rig, width, height)
    renderer = Renderer(scene.road, cameras)
    gt_frames: list[GroundTruthFrame] = []
    render_s = 0.0
    count = 0
    bar = Progress(frames, 'synth', 'frames', enabled=progress)
    with BagWriter(out, storage, overwrite=overwrite) as bag:

        def put(topic: str, typename: str, record_ns: int, msg: object) -> None:
            nonlocal count
            bag.write(topic, typename, record_ns, serialize(msg))
            count += 1

        put(
            sm.TF_STATIC_TOPIC,
            sm.TF_TYPE,
            stamps[0] - 1_000_000,
            sm.tf_static_message(rig, stamps[0]),
        )
        odom = odometry_stamps(stamps)
        for k, stamp in enumerate(stamps):
            previous = stamps[k - 1] if k else -1
            for odom_ns in (s for s in odom if previous < s <= stamp):
                ego = scene.ego_pose((odom_ns - START_NS) * 1e-9)
                put(sm.ODOM_TOPIC, sm.ODOM_TYPE, odom_ns, sm.odometry_message(ego, odom_ns))
                put(sm.TF_TOPIC, sm.TF_TYPE, odom_ns, sm.tf_message(ego, odom_ns))
            t = (stamp - START_NS) * 1e-9
            tic = time.perf_counter()
            views = renderer.render(scene.world_from_lidar(t, rig.lidar2ego), scene.world_boxes(t))
            render_s += time.perf_counter() - tic
            for cam in cameras:
                put(
                    sm.info_topic(cam.name),
                    sm.INFO_TYPE,
                    stamp + INFO_DELAY_NS,
                    sm.camera_info_message(cam, stamp),
                )
            for cam, view in zip(cameras, views):
                put(
                    sm.image_topic(cam.name),
                    sm.IMAGE_TYPE,
                    stamp + IMAGE_DELAY_NS,
                    sm.image_message(cam, stamp, view.image),
                )
            gt = scene.ground_truth(t, rig.lidar2ego)
            put(
                sm.GT_TOPIC,
                MARKERS_TYPE,
                stamp + GT_DELAY_NS,
                sm.ground_truth_markers(gt, rig.reference_frame, stamp),
            )
            ego = scene.ego_pose(t)
            gt_frames.append(
                GroundTruthFrame(
                    stamp,
                    (ego.x, ego.y, 0.0),
                    tuple(matrix_to_quat_wxyz(ego.matrix()[:3, :3])),
                    gt.boxes,
                    gt.labels,
                    gt.instance_ids,
                )
            )
            bar.update(1, f'{len(gt.boxes)} boxes')
        for odom_ns in (
            s for s in odom if s > stamps[-1]
        ):  # a pose after the last frame to interpolate to
            ego = scene.ego_pose((odom_ns - START_NS) * 1e-9)
            put(sm.ODOM_TOPIC, sm.ODOM_TYPE, odom_ns, sm.odometry_message(ego, odom_ns))
    bar.close()
    gt_path = ground_truth_path(out)
    write_ground_truth(
        gt_path,
        gt_frames,
        {
            'seed': seed,
            'frames': frames,
            'rate_hz': rate,
            'image_size': [width, height],
            'start_ns': START_NS,
            'cameras': [c.name for c in cameras],
        },
    )
    return SynthSummary(
        Path(out), gt_path, frames, count, render_s / frames, time.perf_counter() - started
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='bevformer_synth',
        description=__doc__.strip().split('\n')[0],
        epilog=__doc__.strip().split('\n\n', 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        'out', type=Path, help='output: a .mcap file, or a bag directory (no suffix)'
    )
    parser.add_argument('--seed', type=int, default=0, help='scene seed (default 0)')
    parser.add_argument('--frames', type=int, default=24, help='camera frames (default 24)')
    parser.add_argument(
        '--rate', type=float, default=12.0, help='camera rate in Hz (default 12, nuScenes)'
    )
    parser.add_argument('--width', type=int, default=1600, help='image width (default 1600)')
    parser.add_argument('--height', type=int, default=900, help='image height (default 900)')
    parser.add_argument(
        '--storage', choices=STORAGES, default='mcap', help='bag storage (default mcap)'
    )
    parser.add_argument(
        '--rig', type=Path, help='camera rig YAML (default: config/nuscenes_rig.yaml)'
    )
    parser.add_argument('--force', action='store_true', help='replace an existing OUT')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    try:
        rig = load_rig(args.rig) if args.rig else None
        summary = write_scene_bag(
            args.out,
            args.seed,
            args.frames,
            args.rate,
            args.width,
            args.height,
            args.storage,
            rig,
            overwrite=args.force,
            progress=not args.quiet,
        )
    except (BagError, RigError, ValueError) as exc:
        print(f'bevformer_synth: error: {exc}', file=sys.stderr)
        return 2
    print(
        f'wrote {summary.path}: {summary.frames} frames, {summary.messages} messages, '
        f'{args.width}x{args.height}, '
        f'render {summary.render_s_per_frame:.2f} s/frame (6 cameras), '
        f'{summary.wall_s:.1f} s in all'
    )
    print(f'ground truth: {summary.ground_truth}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
