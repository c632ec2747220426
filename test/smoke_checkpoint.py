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
A project-trained checkpoint for tests: the real trainer, `smoke` preset, 2 iterations, tiny scene.

What `bevformer_train` writes (official key layout, meta = {'config': {'model', 'train'}, 'iter',
...}), in about three seconds. Its model takes 160x90 cameras unresized (smoke: input_hw 90x160,
scale 1.0), the size the six-camera test publisher sends.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bevformer_ros.core.rig import load_rig
from bevformer_ros.model.detector import build_bevformer
from bevformer_ros.resources import config_file
from bevformer_ros.tools.synth import write_scene_bag
from bevformer_ros.train.dataset import BagScene, TemporalQueueDataset
from bevformer_ros.train.presets import smoke
from bevformer_ros.train.trainer import Trainer
import torch

WIDTH, HEIGHT = 160, 90


def train_smoke_checkpoint(out_dir: Path, iters: int = 2) -> Path:
    """Train the smoke preset for `iters` iterations in `out_dir`; the path of its final.pth."""
    out_dir.mkdir(parents=True, exist_ok=True)
    bag = write_scene_bag(
        out_dir / 'scene.mcap',
        seed=3,
        frames=3,
        rate=2.0,
        width=WIDTH,
        height=HEIGHT,
        progress=False,
    ).path
    preset = smoke()
    train_cfg = dataclasses.replace(
        preset.train, iters=iters, warmup_iters=1, val_interval=1000, checkpoint_interval=1000
    )
    rig = load_rig(config_file('nuscenes_rig.yaml'))
    dataset = TemporalQueueDataset([BagScene(bag, preset.model, rig)], train_cfg.queue_length)
    torch.manual_seed(0)
    Trainer(build_bevformer(preset.model), preset.model, train_cfg, dataset, out_dir).fit()
    return out_dir / 'final.pth'
