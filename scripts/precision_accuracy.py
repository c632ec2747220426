#!/usr/bin/env python3
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
Detection accuracy of reduced precision vs fp32 on a held-out synthetic scene (no ROS, no bags).

    PYTHONPATH=. python3 scripts/precision_accuracy.py --device cuda eager:fp32 torch:fp16
    PYTHONPATH=. python3 scripts/precision_accuracy.py --device cpu torch:fp32 torch:bf16:bf16
    PYTHONPATH=. python3 scripts/precision_accuracy.py --evaluate out/gpu/precision_accuracy

Renders the ``make demo`` scene (seed 1000, never seen in training) in memory and runs each entry
(``BACKEND[:PRECISION[:HEAD_PRECISION]]``, as in ``bench_model --compare``) through the node's
``Pipeline`` with the demo_small checkpoint. Per entry: recall of the ground-truth objects (same
class within 2 m, score >= 0.3); nuScenes NDS and mAP when nuscenes-devkit is installed; against
the first entry, the max abs difference of the BEV features and the share of its detections
(score >= 0.3) that the entry reproduces (same class within 0.5 m). Results JSON per entry and
summary.json go to --out. Where the devkit is missing (the GPU image), ``--evaluate OUT`` on a
machine that has it regenerates the ground truth (no rendering) and adds NDS / mAP.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
import time
from typing import Any

from bevformer_ros.config import NodeConfig
from bevformer_ros.core.calibration import Extrinsics
from bevformer_ros.core.ego_motion import EgoPose
from bevformer_ros.core.rig import load_rig
from bevformer_ros.core.rotation import matrix_to_quat_wxyz
from bevformer_ros.eval.nusc_results import read_results, sample_results, write_results
from bevformer_ros.eval.nusc_tables import SceneTruth
from bevformer_ros.eval.tokens import sample_token
from bevformer_ros.frontend.plain_msgs import camera_info_msg, image_msg
from bevformer_ros.model.build import build_detector
from bevformer_ros.model.config import preset
from bevformer_ros.pipeline import CameraInput, FrameSet, Pipeline
from bevformer_ros.resources import config_file
from bevformer_ros.synth.ground_truth_file import GroundTruthFrame
from bevformer_ros.synth.renderer import Renderer, rig_cameras
from bevformer_ros.synth.scene import Scene
from bevformer_ros.tools.bench_compare import make_engine, parse_entry
import numpy as np
import torch

START_NS = 1_700_000_000 * 1_000_000_000
SCORE_MIN, RECALL_M, AGREE_M = 0.3, 2.0, 0.5


def _stamps(frames: int, rate: float) -> list[tuple[float, int]]:
    return [(k / rate, START_NS + round(k * 1e9 / rate)) for k in range(frames)]


def scene_truth(seed: int, frames: int, rate: float) -> SceneTruth:
    """Ground truth of the scene's frames (LIDAR_TOP boxes, ego poses); nothing is rendered."""
    rig = load_rig(config_file('nuscenes_rig.yaml'))
    scene = Scene.create(seed, duration=frames / rate)
    truth = []
    for t, stamp in _stamps(frames, rate):
        ego = scene.ego_pose(t)
        gt = scene.ground_truth(t, rig.lidar2ego)
        quat = tuple(matrix_to_quat_wxyz(ego.matrix()[:3, :3]))
        truth.append(GroundTruthFrame(stamp, (ego.x, ego.y, 0.0), quat, gt.boxes, gt.labels,
                                      gt.instance_ids))
    return SceneTruth(f'scene_seed{seed}', truth, rig.lidar2ego)


def render_frames(seed: int, frames: int, rate: float, width: int, height: int) -> list[FrameSet]:
    """Render frame sets: six rgb8 images with CameraInfo, and the ego pose with its twist."""
    rig = load_rig(config_file('nuscenes_rig.yaml'))
    scene = Scene.create(seed, duration=frames / rate)
    cameras = rig_cameras(rig, width, height)
    renderer = Renderer(scene.road, cameras)
    sets = []
    for t, stamp in _stamps(frames, rate):
        views = renderer.render(scene.world_from_lidar(t, rig.lidar2ego), scene.world_boxes(t))
        inputs = [CameraInput(image_msg(v.image, 'rgb8', c.frame_id),
                              camera_info_msg(c.K, width, height, c.frame_id),
                              rig.camera(c.name).sensor2lidar) for c, v in zip(cameras, views)]
        ego = scene.ego_pose(t)
        R = ego.matrix()[:3, :3]  # world <- base_link; the twist is in base_link, as odometry's
        pose = EgoPose(stamp, np.array([ego.x, ego.y, 0.0]), matrix_to_quat_wxyz(R),
                       velocity=R.T @ np.array([*ego.velocity_world, 0.0]),
                       rotation_rate=np.array([0.0, 0.0, ego.yaw_rate]))
        sets.append(FrameSet(stamp, inputs, pose))
    return sets


def _matches(boxes: np.ndarray, labels: np.ndarray, ref_boxes: np.ndarray,
             ref_labels: np.ndarray, radius: float) -> int:
    """Count greedy one-to-one matches (best first) to same-class ref boxes within radius."""
    used = np.zeros(len(ref_boxes), dtype=bool)
    count = 0
    for box, label in zip(boxes, labels):
        if not len(ref_boxes):
            break
        dist = np.hypot(*(ref_boxes[:, :2] - box[:2]).T)
        dist = np.where(used | (ref_labels != label), np.inf, dist)
        if dist.min() <= radius:
            used[int(dist.argmin())] = True
            count += 1
    return count


def run_entry(spec: str, built: Any, sets: list, scene: SceneTruth, temporal: Any) -> dict:
    """Run all frames through one entry; detections, BEVs and nuScenes results."""
    entry = parse_entry(spec)
    img_shape = Pipeline(built.model, built.cfg, built.device, temporal).prepare(sets[0]).img_shape
    make_engine(entry, built, tuple(img_shape), lambda msg: print(f'  {msg}', flush=True))
    if entry.engine is None:
        return {'entry': spec, 'available': False, 'reason': entry.reason}
    pipeline = Pipeline(entry.engine, built.cfg, built.device, temporal)
    started, frames, results = time.perf_counter(), [], {}
    for frame in sets:
        r = pipeline.run(frame, want_bev=True)
        keep = r.scores >= SCORE_MIN
        frames.append({'boxes': r.boxes[keep], 'labels': r.labels[keep], 'bev': r.bev})
        token = sample_token(scene.name, r.stamp_ns)
        pose = Extrinsics(frame.ego_pose.rotation_matrix, frame.ego_pose.translation)
        results[token] = sample_results(token, r.boxes, r.scores, r.labels,
                                        built.cfg.class_names, scene.lidar2ego, pose)
    found = sum(_matches(f['boxes'], f['labels'], np.asarray(t.boxes), np.asarray(t.labels),
                         RECALL_M) for f, t in zip(frames, scene.frames))
    total = sum(len(t.labels) for t in scene.frames)
    return {'entry': spec, 'available': True, 'engine': entry.description, 'frames': frames,
            'results': results, 'recall': found / max(total, 1), 'found': found,
            'objects': total, 's_per_frame': (time.perf_counter() - started) / len(sets)}


def nuscenes_metrics(results: dict, scene: SceneTruth, out: Path) -> dict[str, Any]:
    """Return NDS and mAP through the official devkit, or why not."""
    try:
        from bevformer_ros.eval.detection_eval import evaluate

        report = evaluate(results, [scene], out)
    except ImportError as err:
        return {'nds': None, 'map': None, 'note': f'no NDS/mAP here ({err}): use --evaluate'}
    return {'nds': report.summary['nd_score'], 'map': report.summary['mean_ap'], 'note': ''}


def compare(entry: dict, ref: dict) -> dict[str, Any]:
    """Return the max abs BEV difference and the share of ref's detections the entry reproduces."""
    pairs = list(zip(entry['frames'], ref['frames']))
    bev = max(float(np.abs(a['bev'] - b['bev']).max()) for a, b in pairs)
    kept = sum(_matches(a['boxes'], a['labels'], b['boxes'], b['labels'], AGREE_M)
               for a, b in pairs)
    ref_total = sum(len(b['labels']) for _, b in pairs)
    return {'max_abs_bev': bev, 'reference_detections': ref_total,
            'agreement': kept / max(ref_total, 1)}


def evaluate_saved(folder: Path) -> list[dict]:
    """Add NDS / mAP to the summary of an earlier run (its results JSON files, same scene)."""
    rows = json.loads((folder / 'summary.json').read_text())
    setup = json.loads((folder / 'setup.json').read_text())
    scene = scene_truth(setup['seed'], setup['frames'], setup['rate'])
    for row in rows:
        if row['available']:
            results = read_results([folder / row['entry'].replace(':', '_') / 'results_nusc.json'])
            out = folder / row['entry'].replace(':', '_')
            row.update(nuscenes_metrics(results, scene, out))
    (folder / 'summary.json').write_text(json.dumps(rows, indent=2))
    return rows


def run_all(args: argparse.Namespace, say: Any) -> list[dict]:
    """Render, run every entry, save results and the summary."""
    say(f'rendering scene seed {args.seed}: {args.frames} frames at {args.size[0]}x{args.size[1]}')
    sets = render_frames(args.seed, args.frames, args.rate, *args.size)
    scene = scene_truth(args.seed, args.frames, args.rate)
    built = build_detector(preset('small'), torch.device(args.device), args.checkpoint)
    say(f'model {built.checkpoint} on {built.device}')
    temporal = NodeConfig.from_parameters({}).temporal
    args.out.mkdir(parents=True, exist_ok=True)
    setup = {'seed': args.seed, 'frames': args.frames, 'rate': args.rate, 'size': args.size,
             'device': args.device, 'checkpoint': str(built.checkpoint)}
    (args.out / 'setup.json').write_text(json.dumps(setup))
    rows, ref = [], None
    for spec in args.entries:
        say(f'running {spec}')
        entry = run_entry(spec, built, sets, scene, temporal)
        if not entry['available']:
            say(f'  not available: {entry["reason"]}')
            rows.append({'entry': spec, 'available': False, 'reason': entry['reason']})
            continue
        out = args.out / spec.replace(':', '_')
        out.mkdir(parents=True, exist_ok=True)
        write_results(out / 'results_nusc.json', entry['results'])
        row = {k: entry[k] for k in ('entry', 'available', 'engine', 'recall', 'found',
                                     'objects', 's_per_frame')}
        row.update(nuscenes_metrics(entry['results'], scene, out))
        ref = ref or entry
        row.update(compare(entry, ref))
        rows.append(row)
        say(f'  recall {row["recall"]:.3f} ({row["found"]}/{row["objects"]}), NDS {row["nds"]}, '
            f'mAP {row["map"]}, agreement {row["agreement"]:.3f} {row["note"]}')
    (args.out / 'summary.json').write_text(json.dumps(rows, indent=2))
    return rows


def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) else '-'


def format_rows(rows: list[dict], title: str) -> str:
    """Render the summary table."""
    lines = [title, f'  {"entry":<18}{"recall":>8}{"NDS":>8}{"mAP":>8}{"max|d bev|":>12}'
                    f'{"agree":>8}{"s/frame":>9}']
    for r in rows:
        if not r['available']:
            lines.append(f'  {r["entry"]:<18}not available: {r["reason"]}')
            continue
        lines.append(f'  {r["entry"]:<18}{r["recall"]:>8.3f}{_fmt(r["nds"], ".4f"):>8}'
                     f'{_fmt(r["map"], ".4f"):>8}{r["max_abs_bev"]:>12.2e}'
                     f'{r["agreement"]:>8.3f}{r["s_per_frame"]:>9.3f}')
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    parser.add_argument('entries', nargs='*',
                        help='BACKEND[:PRECISION[:HEAD]]; the first is the reference')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--checkpoint', default='bevformer_demo_small.pth')
    parser.add_argument('--seed', type=int, default=1000, help='scene seed (1000: held out)')
    parser.add_argument('--frames', type=int, default=12)
    parser.add_argument('--rate', type=float, default=2.0, help='frames per second of the scene')
    parser.add_argument('--size', type=int, nargs=2, default=(400, 225), metavar=('W', 'H'))
    parser.add_argument('--out', type=Path, default=Path('out/precision_accuracy'))
    parser.add_argument('--evaluate', type=Path, default=None, metavar='OUT',
                        help='only add NDS / mAP to the saved results of an earlier run')
    args = parser.parse_args(argv)
    if args.evaluate:
        rows = evaluate_saved(args.evaluate)
        print(format_rows(rows, f'precision_accuracy (evaluated {args.evaluate})'))
        return 0
    if not args.entries:
        parser.error('name at least one entry, e.g. eager:fp32 eager:fp16')
    started = time.perf_counter()

    def say(msg: str) -> None:
        print(f'[{time.perf_counter() - started:6.1f} s] {msg}', flush=True)

    rows = run_all(args, say)
    print(format_rows(rows, f'precision_accuracy: scene seed {args.seed}, {args.frames} frames '
                            f'{args.size[0]}x{args.size[1]}, {args.device}, {args.checkpoint}; '
                            f'vs {args.entries[0]}'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
