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
Official optimiser and learning-rate schedule, by iteration.

AdamW (lr 2e-4, weight decay 0.01 on every parameter, as mmcv's default constructor) with the image
backbone at ``lr_mult`` 0.1 (``paramwise_cfg=dict(custom_keys={'img_backbone':
dict(lr_mult=0.1)})``). Schedule: mmcv ``CosineAnnealing`` with ``min_lr_ratio`` 1e-3 and a linear
warm-up over ``warmup_iters`` starting at ``warmup_ratio`` (1/3) of the regular rate; the official
runs anneal per epoch, here per iteration.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def build_optimizer(
    model: nn.Module, lr: float, weight_decay: float, backbone_lr_mult: float
) -> torch.optim.AdamW:
    """
    Build AdamW over the trainable parameters.

    Group 'img_backbone' runs at ``lr * backbone_lr_mult``.
    """
    backbone, rest = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (backbone if name.startswith('img_backbone.') else rest).append(param)
    groups = [{'params': rest, 'lr_mult': 1.0, 'name': 'default'}]
    if backbone:
        groups.append({'params': backbone, 'lr_mult': backbone_lr_mult, 'name': 'img_backbone'})
    for group in groups:
        group['lr'] = lr * group['lr_mult']
    return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)


def learning_rate(
    step: int,
    base_lr: float,
    total_iters: int,
    warmup_iters: int,
    warmup_ratio: float,
    min_lr_ratio: float,
) -> float:
    """
    Return the rate of iteration ``step`` (0-based).

    Cosine from base_lr to base_lr * min_lr_ratio, warm-up on top.
    """
    min_lr = base_lr * min_lr_ratio
    progress = min(step / max(total_iters, 1), 1.0)
    regular = min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * progress)) / 2
    if step < warmup_iters:
        k = (1 - step / warmup_iters) * (1 - warmup_ratio)  # mmcv 'linear' warm-up
        return regular * (1 - k)
    return regular


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group['lr'] = lr * group.get('lr_mult', 1.0)
