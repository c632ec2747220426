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
Training loop: official temporal training step, validation, resumable checkpoints.

Step (official ``BEVFormer.forward_train``): the history frames of each queue run through backbone
and encoder in eval mode without gradient (``obtain_history_bev``), the last frame runs the full
model in train mode on that history, and ``BEVFormerLoss`` sums focal and L1 losses of every
decoder layer. AdamW, warm-up + cosine rate, gradient norm clipped at 35.

Files in ``out_dir``:
- ``latest.pth`` / ``final.pth``: the model in the official checkpoint layout (``save_checkpoint``;
  loads with ``load_checkpoint`` and in the node), ``meta`` = {'config': {'model', 'train'},
  'iter', 'val'};
- ``latest.train_state.pth``: optimizer state and iteration, for ``--resume`` (``weights_only``
  loadable);
- ``log.jsonl``: one JSON object per logged iteration and per validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
import json
import math
from pathlib import Path
import time
from typing import Any

from bevformer_ros.core.progress import Progress
from bevformer_ros.core.temporal import TemporalState
from bevformer_ros.eval.metrics import RecallCounter
from bevformer_ros.model.box_coder import decode_boxes
from bevformer_ros.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from bevformer_ros.model.config import BEVFormerConfig
from bevformer_ros.model.detector import BEVFormer
from bevformer_ros.train.dataset import Batch, collate, FrameSource, TemporalQueueDataset
from bevformer_ros.train.losses import BEVFormerLoss
from bevformer_ros.train.optim import build_optimizer, learning_rate, set_learning_rate
from bevformer_ros.train.presets import config_to_dict, TrainConfig
import numpy as np
import torch
from torch import nn

TRAIN_STATE_SUFFIX = '.train_state.pth'


def train_state_path(checkpoint: str | Path) -> Path:
    """``out/latest.pth`` -> ``out/latest.train_state.pth``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + TRAIN_STATE_SUFFIX)


def stored_schedule(checkpoint: str | Path) -> dict[str, int]:
    """
    Return the ``iters`` and ``seed`` of the run that saved ``checkpoint``.

    A resumed run continues that run's schedule (length, data order) rather than its preset's.
    Empty when the train state is missing (``Trainer.resume`` says so) or predates these keys.
    """
    state_file = train_state_path(checkpoint)
    if not state_file.exists():
        return {}
    state = torch.load(state_file, map_location='cpu', weights_only=True)
    return {key: int(state[key]) for key in ('iters', 'seed') if key in state}


def bev_features(
    model: BEVFormer,
    img: torch.Tensor,
    lidar2img: torch.Tensor,
    img_shape: tuple[int, int],
    can_bus: torch.Tensor,
    prev_bev: torch.Tensor | None,
) -> torch.Tensor:
    """Backbone + BEV encoder only (official ``only_bev=True``) -> bev_embed [HW, B, C]."""
    head = model.pts_bbox_head
    feats = model.extract_img_feat(img)
    dtype = feats[0].dtype
    bev_pos = head.positional_encoding(*head.bev_hw).to(dtype)  # [HW, C]
    bev = head.transformer.get_bev_features(
        feats,
        head.bev_embedding.weight.to(dtype),
        bev_pos,
        head.bev_hw,
        lidar2img,
        img_shape,
        can_bus,
        prev_bev,
    )  # [B, HW, C]
    return bev.transpose(0, 1)


def obtain_history_bev(model: BEVFormer, batch: Batch) -> torch.Tensor | None:
    """
    Return the BEV of the queue's history frames -> [HW, B, C] or None.

    Oldest first, eval mode, no gradient.
    """
    num_history = batch.img.shape[1] - 1
    if num_history == 0:
        return None
    was_training = model.training
    model.eval()
    prev_bev = None
    with torch.no_grad():
        for t in range(num_history):
            if not batch.prev_bev_exists[t]:
                prev_bev = None
            prev_bev = bev_features(
                model,
                batch.img[:, t],
                batch.lidar2img[:, t],
                batch.img_shape,
                batch.can_bus[:, t],
                prev_bev,
            )
    model.train(was_training)
    return prev_bev


def forward_train(
    model: BEVFormer, batch: Batch, criterion: BEVFormerLoss
) -> dict[str, torch.Tensor]:
    """Official ``forward_train``: history without gradient, then the last frame with loss."""
    prev_bev = obtain_history_bev(model, batch)
    if not batch.prev_bev_exists[-1]:
        prev_bev = None
    out = model(
        batch.img[:, -1], batch.lidar2img[:, -1], batch.img_shape, batch.can_bus[:, -1], prev_bev
    )
    return criterion(out, batch.gt_boxes, batch.gt_labels)


def _to(batch: Batch, device: torch.device) -> Batch:
    return Batch(
        batch.img.to(device),
        batch.img_shape,
        batch.lidar2img.to(device),
        batch.can_bus.to(device),
        batch.prev_bev_exists,
        [b.to(device) for b in batch.gt_boxes],
        [lab.to(device) for lab in batch.gt_labels],
    )


@dataclass
class ValidationResult:
    loss: float
    recall: float
    matched: int
    total: int
    frames: int
    losses: dict[str, float] = field(default_factory=dict)


@torch.no_grad()
def validate(
    model: BEVFormer,
    cfg: BEVFormerConfig,
    scenes: Sequence[FrameSource],
    criterion: BEVFormerLoss,
    device: torch.device,
    max_frames: int = 200,
    score_threshold: float = 0.3,
    distance_m: float = 2.0,
    temporal: bool = True,
) -> ValidationResult:
    """
    Run scenes frame by frame as the node does (``TemporalState``).

    Returns the mean loss and the recall within distance_m.

    At most ``max_frames`` frames in all, the first ones of each scene in equal shares (history
    stays valid).
    """
    was_training = model.training
    model.eval()
    recall = RecallCounter(distance_m)
    sums: dict[str, float] = {}
    frames = 0
    per_scene = max(max_frames // max(len(scenes), 1), 1)
    for scene in scenes:
        state = TemporalState(video_test_mode=temporal)
        for i in range(min(len(scene), per_scene)):
            f = scene.frame(i)
            step = state.step(f.can_bus, scene.name)
            out = model(
                f.img[None].to(device),
                f.lidar2img[None].to(device),
                f.img_shape,
                torch.from_numpy(step.can_bus)[None].to(device),
                step.prev_bev,
            )
            state.update(out['bev_embed'])
            losses = criterion(out, [f.gt_boxes], [f.gt_labels])
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            det = decode_boxes(
                out['all_cls_scores'][-1, 0].float(), out['all_bbox_preds'][-1, 0].float(), cfg
            )
            keep = det.scores >= score_threshold
            recall.add(
                det.boxes[keep].cpu().numpy(),
                det.scores[keep].cpu().numpy(),
                det.labels[keep].cpu().numpy(),
                f.gt_boxes.numpy(),
                f.gt_labels.numpy(),
            )
            frames += 1
    model.train(was_training)
    means = {k: v / max(frames, 1) for k, v in sums.items()}
    return ValidationResult(
        loss=means.get('loss', float('nan')),
        recall=recall.recall,
        matched=recall.matched,
        total=recall.total,
        frames=frames,
        losses=means,
    )


class Trainer:
    """Trains ``model`` on a TemporalQueueDataset; call ``fit()``."""

    def __init__(
        self,
        model: BEVFormer,
        cfg: BEVFormerConfig,
        train_cfg: TrainConfig,
        dataset: TemporalQueueDataset,
        out_dir: str | Path,
        val_scenes: Sequence[FrameSource] = (),
        device: torch.device | str = 'cpu',
        progress: Progress | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).train()
        self.cfg, self.train_cfg = cfg, train_cfg
        self.dataset, self.val_scenes = dataset, list(val_scenes)
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        h = cfg.head
        self.criterion = BEVFormerLoss(h.num_classes, h.code_weights)
        t = train_cfg
        self.optimizer = build_optimizer(self.model, t.lr, t.weight_decay, t.backbone_lr_mult)
        self.step = 0
        self.progress = progress
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ checkpoints
    def meta(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            'config': {'model': config_to_dict(self.cfg), 'train': config_to_dict(self.train_cfg)},
            'iter': self.step,
            **(extra or {}),
        }

    def save(self, name: str = 'latest.pth', extra: dict[str, Any] | None = None) -> Path:
        """
        Save the model (official layout) and ``<name>.train_state.pth``.

        The train state holds the optimizer and iteration.
        """
        path = self.out_dir / name
        save_checkpoint(self.model, path, self.meta(extra))
        t = self.train_cfg
        state = {
            'optimizer': self.optimizer.state_dict(),
            'iter': self.step,
            'iters': t.iters,
            'seed': t.seed,
        }
        tmp = train_state_path(path).with_suffix('.tmp')
        torch.save(state, tmp)
        tmp.replace(train_state_path(path))
        return path

    def resume(self, checkpoint: str | Path) -> None:
        """Load weights, optimizer state and iteration written by ``save``."""
        load_checkpoint(self.model, checkpoint, map_location=self.device)
        state_file = train_state_path(checkpoint)
        if not state_file.exists():
            raise CheckpointError(
                f'{checkpoint} has no {state_file.name} beside it, so there is no optimizer '
                'state to resume; use --load-from to start a new run from its weights'
            )
        state = torch.load(state_file, map_location=self.device, weights_only=True)
        self.optimizer.load_state_dict(state['optimizer'])
        self.step = int(state['iter'])

    # ------------------------------------------------------------------ training
    def _batch(self, step: int) -> Batch:
        """
        Build the batch of iteration ``step`` from (seed, step) alone.

        So a resumed run sees the same data.
        """
        t, n = self.train_cfg, len(self.dataset)
        per_epoch = max(n // t.batch_size, 1)
        epoch, pos = divmod(step, per_epoch)
        order = np.random.default_rng([t.seed, epoch]).permutation(n)
        rng = np.random.default_rng([t.seed, epoch, pos, 1])
        indices = [order[(pos * t.batch_size + k) % n] for k in range(t.batch_size)]
        return collate([self.dataset.sample(int(i), rng) for i in indices])

    def train_step(self, batch: Batch) -> dict[str, float]:
        """
        Run one optimisation step.

        Returns the loss terms, the gradient norm and the rate as floats.
        """
        t = self.train_cfg
        lr = learning_rate(
            self.step, t.lr, t.iters, t.warmup_iters, t.warmup_ratio, t.min_lr_ratio
        )
        set_learning_rate(self.optimizer, lr)
        losses = forward_train(self.model, _to(batch, self.device), self.criterion)
        self.optimizer.zero_grad(set_to_none=True)
        losses['loss'].backward()
        params = [p for g in self.optimizer.param_groups for p in g['params']]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, t.max_grad_norm)
        self.optimizer.step()
        self.step += 1
        return {
            **{k: float(v.detach()) for k, v in losses.items()},
            'grad_norm': float(grad_norm),
            'lr': lr,
        }

    def _log(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        with (self.out_dir / 'log.jsonl').open('a') as f:
            f.write(json.dumps(record) + '\n')

    def run_validation(self) -> ValidationResult | None:
        if not self.val_scenes:
            return None
        t = self.train_cfg
        result = validate(
            self.model,
            self.cfg,
            self.val_scenes,
            self.criterion,
            self.device,
            t.val_max_frames,
            t.val_score_threshold,
            t.recall_distance_m,
        )
        self._log(
            {
                'iter': self.step,
                'val_loss': result.loss,
                'val_recall': result.recall,
                'val_matched': result.matched,
                'val_total': result.total,
                'val_frames': result.frames,
            }
        )
        if self.progress:
            self.progress.message(
                f'validation @ {self.step}: loss {result.loss:.3f}, '
                f'recall@{t.recall_distance_m:g}m '
                f'{result.recall:.3f} ({result.matched}/{result.total}, score >= '
                f'{t.val_score_threshold}) over {result.frames} frames'
            )
        return result

    def fit(self) -> list[dict[str, Any]]:
        """
        Train until ``train_cfg.iters``, validating and saving on schedule.

        Returns the log records.
        """
        t = self.train_cfg
        window: list[dict[str, float]] = []
        start = time.perf_counter()
        while self.step < t.iters:
            stats = self.train_step(self._batch(self.step))
            if not math.isfinite(stats['loss']):
                raise FloatingPointError(
                    f'loss became {stats["loss"]} at iteration {self.step}; lower the '
                    'learning rate or check the ground truth for degenerate boxes'
                )
            window.append(stats)
            if self.step % t.log_interval == 0 or self.step == t.iters:
                mean = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
                mean['lr'] = stats['lr']
                self._log(
                    {'iter': self.step, 'time_s': round(time.perf_counter() - start, 3), **mean}
                )
                window = []
                if self.progress:
                    self.progress.moveto(
                        self.step,
                        f'loss {mean["loss"]:.3f} (cls {mean["loss_cls"]:.3f} '
                        f'bbox {mean["loss_bbox"]:.3f})  lr {stats["lr"]:.2e}',
                    )
            if self.step % t.val_interval == 0 or self.step == t.iters:
                val = self.run_validation()
                extra = {'val': {'loss': val.loss, 'recall': val.recall}} if val else None
            else:
                extra = None
            if self.step % t.checkpoint_interval == 0 or self.step == t.iters:
                self.save('latest.pth', extra)
        self.save('final.pth')
        if self.progress:
            self.progress.close()
        return self.history


def trainable_summary(model: nn.Module) -> str:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return f'{trainable / 1e6:.2f} M trainable of {total / 1e6:.2f} M parameters'
