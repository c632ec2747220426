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
Convert one nuScenes scene into a rosbag2 for the node (`bevformer_nuscenes2bag`).

Read through the official nuscenes-devkit. The bag has the node's topic layout: the six cameras as
CompressedImage with the dataset's JPEG bytes on `/<CAM>/image_raw/compressed` (run the node with
`cameras.compressed:=true`), or rgb8 Image on `/<CAM>/image_raw` with `--raw`; `/<CAM>/camera_info`
(K of the calibrated sensor); `/odom` (nav_msgs/Odometry) and `/tf` (odom -> base_link: the
ego_pose of every camera sample_data, nuScenes' global frame); `/tf_static` (base_link -> LIDAR_TOP
and -> each camera). Keyframes (2 Hz) by default, every camera sweep (12 Hz) with `--sweeps`.
Beside the bag (inside a bag directory): the rig YAML (`<OUT>.rig.yaml`, the format of
config/nuscenes_rig.yaml, extrinsics relative to LIDAR_TOP) and, for annotated scenes, the keyframe
ground truth in LIDAR_TOP (`<OUT>.ground_truth.json`, the format `bevformer_synth` writes), so that
bevformer_train and bevformer_render take nuScenes bags too.

    bevformer_nuscenes2bag --dataroot /data/nuscenes --scene scene-0061 scene-0061.mcap
    bevformer_nuscenes2bag --dataroot /data/nuscenes --scene scene-0103 --sweeps --raw \
        scene-0103.mcap
    bevformer_nuscenes2bag --dataroot /data/nuscenes --version v1.0-trainval --scene scene-0001 \
        out_dir
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
import sys
import time
from typing import Any

from bevformer_ros.core.progress import Progress
from bevformer_ros.core.rig import parse_rig, RigError
from bevformer_ros.data import nuscenes_messages as nm
from bevformer_ros.data import scene_messages as sm
from bevformer_ros.data.bag_io import BagError, BagWriter, serialize, STORAGES
from bevformer_ros.data.nuscenes_convert import (
    camera_samples,
    CameraSample,
    ego_poses,
    EgoSample,
    find_scene,
    load_nuscenes,
    NuScenesDataError,
    NuScenesError,
    scene_samples,
)
from bevformer_ros.data.nuscenes_ground_truth import has_annotations, keyframe_ground_truth
from bevformer_ros.data.nuscenes_rig import rig_path, scene_rig, write_rig
from bevformer_ros.frontend.image_codec import compressed_to_numpy, ImageDecodeError
from bevformer_ros.synth.ground_truth_file import ground_truth_path, write_ground_truth
from bevformer_ros.tools.synth import (  # pose, then CameraInfo, then image
    IMAGE_DELAY_NS,
    INFO_DELAY_NS,
)
import numpy as np

TF_STATIC_LEAD_NS = 1_000_000
POSE, INFO, IMAGE = 0, 1, 2


@dataclass(frozen=True)
class ConvertSummary:
    path: Path
    rig: Path
    ground_truth: Path | None
    images: int
    keyframes: int
    messages: int
    wall_s: float


def _read_jpeg(sample: CameraSample) -> bytes:
    try:
        return sample.path.read_bytes()
    except OSError as exc:
        raise NuScenesDataError(
            f'cannot read the {sample.channel} image {sample.path}: {exc.strerror}; the '
            'dataroot needs samples/ (keyframes) and sweeps/ (for --sweeps)'
        ) from exc


def _image(sample: CameraSample, raw: bool) -> tuple[str, str, Any]:
    """(topic, type, message) of one camera image."""
    compressed = nm.compressed_image_message(sample.channel, sample.stamp_ns, _read_jpeg(sample))
    if not raw:
        return nm.compressed_topic(sample.channel), nm.COMPRESSED_TYPE, compressed
    try:
        rgb = compressed_to_numpy(compressed, 'rgb8')  # [H, W, 3] uint8
    except ImageDecodeError as exc:
        raise NuScenesDataError(
            f'{sample.path} is not a readable JPEG ({exc}); re-extract it'
        ) from exc
    image = nm.image_message(sample.channel, sample.stamp_ns, rgb)
    return sm.image_topic(sample.channel), sm.IMAGE_TYPE, image


@contextmanager
def _closing(bar: Progress) -> Iterator[Progress]:
    """
    Close the bar also when the conversion fails.

    The error message then starts on a line of its own.
    """
    try:
        yield bar
    finally:
        bar.close()


def _events(
    poses: Sequence[EgoSample], images: Sequence[CameraSample]
) -> list[tuple[int, int, int]]:
    """(record time, kind, index) of every pose and image, in the order they go into the bag."""
    events = [(p.stamp_ns, POSE, i) for i, p in enumerate(poses)]
    events += [(s.stamp_ns + INFO_DELAY_NS, INFO, i) for i, s in enumerate(images)]
    events += [(s.stamp_ns + IMAGE_DELAY_NS, IMAGE, i) for i, s in enumerate(images)]
    return sorted(events)


def _scene_metadata(
    nusc: Any, scene: dict[str, Any], images: Sequence[CameraSample]
) -> dict[str, Any]:
    log = nusc.get('log', scene['log_token'])
    return {
        'source': 'nuScenes',
        'version': nusc.version,
        'scene': scene['name'],
        'scene_token': scene['token'],
        'log': log['logfile'],
        'location': log['location'],
        'sample_tokens': [s['token'] for s in scene_samples(nusc, scene)],
        'image_size': [images[0].width, images[0].height],
        'cameras': list(dict.fromkeys(s.channel for s in images)),
        'ego_pose': 'of the keyframe LIDAR_TOP sample_data; boxes in that LIDAR_TOP frame',
    }


def write_nuscenes_bag(
    out: str | Path,
    dataroot: str | Path,
    scene_name: str,
    version: str = 'v1.0-mini',
    sweeps: bool = False,
    raw: bool = False,
    storage: str = 'mcap',
    odom_frame: str = 'odom',
    overwrite: bool = False,
    progress: bool = True,
) -> ConvertSummary:
    """
    Convert scene `scene_name` of `dataroot/version` into a bag at `out`.

    The rig and the ground truth are written beside it.
    """
    started = time.perf_counter()
    nusc = load_nuscenes(dataroot, version)
    scene = find_scene(nusc, scene_name)
    rig = scene_rig(nusc, scene)
    # the document must load as the node and the tools load it
    parse_rig(rig, f'rig of {scene_name}')
    images = camera_samples(nusc, scene, sweeps)
    poses = ego_poses(nusc, scene)
    ground_truth = keyframe_ground_truth(nusc, scene) if has_annotations(nusc, scene) else None
    cameras = rig['cameras']
    count = 0
    bar = Progress(len(images), 'nuscenes2bag', 'images', enabled=progress)
    with BagWriter(out, storage, overwrite=overwrite) as bag, _closing(bar):

        def put(topic: str, typename: str, record_ns: int, msg: Any) -> None:
            nonlocal count
            bag.write(topic, typename, record_ns, serialize(msg))
            count += 1

        first = min(images[0].stamp_ns, poses[0].stamp_ns)
        put(
            sm.TF_STATIC_TOPIC,
            sm.TF_TYPE,
            first - TF_STATIC_LEAD_NS,
            nm.tf_static_message(rig, first),
        )
        for record_ns, kind, index in _events(poses, images):
            if kind == POSE:
                put(
                    sm.ODOM_TOPIC,
                    sm.ODOM_TYPE,
                    record_ns,
                    nm.odometry_message(poses[index], odom_frame),
                )
                put(sm.TF_TOPIC, sm.TF_TYPE, record_ns, nm.tf_message(poses[index], odom_frame))
                continue
            sample = images[index]
            if kind == INFO:
                K = np.asarray(cameras[sample.channel]['K'])  # [3, 3]
                info = nm.camera_info_message(
                    sample.channel, sample.stamp_ns, K, sample.width, sample.height
                )
                put(sm.info_topic(sample.channel), sm.INFO_TYPE, record_ns, info)
            else:
                topic, typename, msg = _image(sample, raw)
                put(topic, typename, record_ns, msg)
                bar.update(1, sample.channel)
    write_rig(rig_path(out), rig, f'nuScenes {version} {scene_name}')
    gt_path: Path | None = ground_truth_path(out)
    if ground_truth is not None:
        write_ground_truth(gt_path, ground_truth, _scene_metadata(nusc, scene, images))
    else:
        # a stale file of a replaced bag must not describe this one
        gt_path.unlink(missing_ok=True)
        gt_path = None
    keyframes = sum(s.is_key_frame for s in images) // len(cameras)
    return ConvertSummary(
        Path(out),
        rig_path(out),
        gt_path,
        len(images),
        keyframes,
        count,
        time.perf_counter() - started,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='bevformer_nuscenes2bag',
        description=__doc__.strip().split('\n')[0],
        epilog=__doc__.strip().split('\n\n', 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        'out', type=Path, help='output: a .mcap file, or a bag directory (no suffix)'
    )
    parser.add_argument(
        '--dataroot',
        type=Path,
        required=True,
        help='nuScenes folder holding the version folder, samples/, sweeps/ and maps/',
    )
    parser.add_argument('--version', default='v1.0-mini', help='table version (default v1.0-mini)')
    parser.add_argument('--scene', required=True, help='scene name, e.g. scene-0061')
    parser.add_argument(
        '--sweeps',
        action='store_true',
        help='every camera sweep (12 Hz), not only the keyframes (2 Hz)',
    )
    parser.add_argument(
        '--raw',
        action='store_true',
        help='decoded rgb8 sensor_msgs/Image on /<CAM>/image_raw instead of the JPEG bytes',
    )
    parser.add_argument(
        '--storage', choices=STORAGES, default='mcap', help='bag storage (default mcap)'
    )
    parser.add_argument(
        '--odom-frame',
        default='odom',
        help="frame_id of /odom and /tf (default odom, the node's ego_motion.odom_frame)",
    )
    parser.add_argument('--force', action='store_true', help='replace an existing OUT')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    try:
        summary = write_nuscenes_bag(
            args.out,
            args.dataroot,
            args.scene,
            args.version,
            args.sweeps,
            args.raw,
            args.storage,
            args.odom_frame,
            overwrite=args.force,
            progress=not args.quiet,
        )
    except NuScenesDataError as exc:
        print(f'bevformer_nuscenes2bag: error: {exc}', file=sys.stderr)
        return 1
    except (NuScenesError, BagError, RigError) as exc:
        print(f'bevformer_nuscenes2bag: error: {exc}', file=sys.stderr)
        return 2
    print(
        f'wrote {summary.path}: {summary.keyframes} keyframes, {summary.images} images, '
        f'{summary.messages} messages in {summary.wall_s:.1f} s'
    )
    print(f'rig: {summary.rig}')
    print(
        f'ground truth: {summary.ground_truth}'
        if summary.ground_truth
        else 'ground truth: none (the scene has no annotations)'
    )
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
