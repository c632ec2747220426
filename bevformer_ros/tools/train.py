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
`bevformer_train BAG... --preset demo_small --out DIR`: train BEVFormer on rosbag2 recordings.

Each bag needs the node's topic layout (six cameras with CameraInfo, /odom) and a ground-truth JSON
as `bevformer_synth` writes it (`<bag>.ground_truth.json` beside a .mcap file, `ground_truth.json`
inside a bag directory). Camera extrinsics come from the bag's /tf_static, else from the rig YAML.
The run writes DIR/latest.pth (official checkpoint layout, loadable by the node) plus
DIR/latest.train_state.pth (optimizer, iteration, length and seed of the run) every
checkpoint_interval iterations, DIR/final.pth at the end, DIR/config.json (the full configuration:
`--config-json DIR/config.json` repeats the run) and DIR/log.jsonl (losses, validation). `--resume`
continues to the iterations the run was started with unless `--iters` is given again. The `smoke`
preset trains a tiny model in seconds, for trying the commands.

    bevformer_synth out/data/train_0.mcap --seed 0 --frames 120 --rate 2 --width 400 --height 225
    bevformer_train out/data/train_*.mcap --preset demo_small --out out/runs/demo
    bevformer_train out/data/train_*.mcap --preset demo_small --out out/runs/demo \
        --resume out/runs/demo/latest.pth
    bevformer_train my_*.mcap --preset tiny --load-from bevformer_tiny_epoch_24.pth \
        --iters 2000 --out out/runs/ft
    bevformer_train out/data/train_0.mcap --preset smoke --out out/runs/smoke
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import dataclasses
import json
from pathlib import Path
import sys

from bevformer_ros.core.progress import Progress
from bevformer_ros.core.rig import load_rig, RigError
from bevformer_ros.model.build import load_weights, resolve_device
from bevformer_ros.model.checkpoint import CheckpointError
from bevformer_ros.model.detector import build_bevformer
from bevformer_ros.resources import config_file
from bevformer_ros.train.dataset import BagScene, DatasetError, TemporalQueueDataset
from bevformer_ros.train.presets import (
    config_to_dict,
    load_config_json,
    train_preset,
    TRAIN_PRESETS,
)
from bevformer_ros.train.trainer import stored_schedule, trainable_summary, Trainer
from bevformer_ros.train.weight_init import init_bevformer
import torch


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='bevformer_train',
        description=__doc__.strip().split('\n')[0],
        epilog=__doc__.strip().split('\n\n', 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        'bags', nargs='+', type=Path, help='training bags (.mcap / .db3 files or bag directories)'
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        '--preset', help=f'training preset: {", ".join(sorted(TRAIN_PRESETS))}, or tiny/small/base'
    )
    source.add_argument(
        '--config-json',
        type=Path,
        help='JSON {"preset": ..., "model": {...}, "train": {...}} '
        '(e.g. a previous DIR/config.json)',
    )
    parser.add_argument('--out', type=Path, required=True, help='output directory')
    parser.add_argument('--iters', type=int, help="training iterations (default: the preset's)")
    parser.add_argument(
        '--val-bags', nargs='*', type=Path, default=[], help='held-out bags for validation'
    )
    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        '--resume',
        type=Path,
        help='continue a run from DIR/latest.pth (weights, optimizer, iteration)',
    )
    start.add_argument(
        '--load-from',
        '--checkpoint',
        dest='load_from',
        help='start from these weights (an official checkpoint, a .pth path or a shipped name), '
        'fresh optimizer at iteration 0',
    )
    parser.add_argument(
        '--rig',
        type=Path,
        help='camera rig YAML, used where /tf_static lacks the cameras '
        '(default: config/nuscenes_rig.yaml)',
    )
    parser.add_argument(
        '--extrinsics',
        choices=('auto', 'tf', 'rig'),
        default='auto',
        help="camera extrinsics from the bag's /tf_static, the rig, or auto (TF, else rig)",
    )
    parser.add_argument(
        '--frame-step', type=int, default=1, help='use every k-th frame of the bags (default 1)'
    )
    parser.add_argument('--device', default='auto', help='cpu, cuda, cuda:1 or auto (default)')
    parser.add_argument('--threads', type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        '--seed', type=int, help='seed of the initial weights and of the data order'
    )
    return parser


def run(args: argparse.Namespace) -> Path:
    chosen = load_config_json(args.config_json) if args.config_json else train_preset(args.preset)
    overrides = {k: v for k, v in (('iters', args.iters), ('seed', args.seed)) if v is not None}
    if args.resume:  # the interrupted run's length and seed unless given again
        overrides = {**stored_schedule(args.resume), **overrides}
    train_cfg = dataclasses.replace(chosen.train, **overrides)
    cfg = chosen.model
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device, option='--device')
    overlap = {p.resolve() for p in args.bags} & {p.resolve() for p in args.val_bags}
    if overlap:
        raise ValueError(
            f'validation bags must be held out, but {sorted(map(str, overlap))} '
            'are also training bags'
        )
    rig = load_rig(args.rig or config_file('nuscenes_rig.yaml'))
    options = {'frame_step': args.frame_step, 'extrinsics': args.extrinsics}
    scenes = [BagScene(p, cfg, rig, **options) for p in args.bags]
    val_scenes = [BagScene(p, cfg, rig, **options) for p in args.val_bags]
    dataset = TemporalQueueDataset(scenes, train_cfg.queue_length)
    torch.manual_seed(train_cfg.seed)
    model = init_bevformer(build_bevformer(cfg))
    if args.load_from:
        load_weights(model, args.load_from)
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {'model': config_to_dict(cfg), 'train': config_to_dict(train_cfg)}
    (args.out / 'config.json').write_text(json.dumps(doc, indent=1))
    trainer = Trainer(model, cfg, train_cfg, dataset, args.out, val_scenes, device)
    if args.resume:
        trainer.resume(args.resume)
    # made after a resume so that its rate counts only the iterations of this run
    trainer.progress = progress = Progress(train_cfg.iters, 'train', 'it', start=trainer.step)
    progress.message(
        f'bevformer_train: {len(dataset)} training samples from {len(scenes)} bag(s), '
        f'{sum(len(s) for s in val_scenes)} validation frames; {trainable_summary(model)}; '
        f'{device}; iterations {trainer.step} -> {train_cfg.iters}'
    )
    trainer.fit()
    return args.out / 'final.pth'


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        final = run(args)
    except (DatasetError, RigError, CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f'bevformer_train: error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            '\nbevformer_train: interrupted; continue with --resume <out>/latest.pth',
            file=sys.stderr,
        )
        return 130
    print(f'bevformer_train: wrote {final}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
