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
Fold eval-mode batch norms into the convolutions that feed them (inference only).

The official checkpoints train with frozen BN (``requires_grad=False``, ``norm_eval``), so at
inference each BN is a fixed per-channel affine map:
``y = (conv(x) - mean) * gamma / sqrt(var + eps) + beta``. Scaling the conv weight and adding a
bias gives the same numbers (up to rounding) with one pass less over the activations. The DCNv2
conv is linear in its weight too, so it folds the same way.
"""

from __future__ import annotations

from bevformer_ros.model.dcn import ModulatedDeformConv2dPack
import torch
from torch import nn

FOLDABLE = (nn.Conv2d, ModulatedDeformConv2dPack)


def _fold(conv: nn.Module, bn: nn.BatchNorm2d) -> None:
    """Scale the conv weight per output channel and set its bias: conv then bn == folded conv."""
    # float64 so that folding adds no rounding beyond the final cast
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)  # [C_out]
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    weight = conv.weight.double() * scale[:, None, None, None]  # [C_out, C_in/g, kh, kw]
    with torch.no_grad():
        conv.weight.copy_(weight.to(conv.weight.dtype))
        new_bias = (bias - bn.running_mean.double()) * scale + bn.bias.double()
        conv.bias = nn.Parameter(new_bias.to(conv.weight.dtype), requires_grad=False)


def _pairs(module: nn.Module) -> list[tuple[nn.Module, str, str]]:
    """List (parent, conv name, bn name): mmdet's convK + bnK, Sequential(conv, bn) downsamples."""
    pairs = []
    for parent in module.modules():
        children = dict(parent.named_children())
        for name, child in children.items():
            if not isinstance(child, nn.BatchNorm2d):
                continue
            if name.startswith('bn'):
                conv_name = 'conv' + name[2:]
            elif isinstance(parent, nn.Sequential) and name.isdigit():
                conv_name = str(int(name) - 1)
            else:
                continue
            if isinstance(children.get(conv_name), FOLDABLE):
                pairs.append((parent, conv_name, name))
    return pairs


def fold_batch_norms(module: nn.Module) -> int:
    """
    Fold each BN that directly follows a conv into it, replace the BN by Identity; count them.

    Only for inference: raises if a BN to fold is in training mode (its batch statistics would be
    lost).
    """
    pairs = _pairs(module)
    for parent, conv_name, bn_name in pairs:
        bn = getattr(parent, bn_name)
        if bn.training or not bn.track_running_stats:
            raise ValueError(
                f'cannot fold {bn_name}: BatchNorm in training mode (call .eval() first)'
            )
        _fold(getattr(parent, conv_name), bn)
        setattr(parent, bn_name, nn.Identity())
    return len(pairs)
