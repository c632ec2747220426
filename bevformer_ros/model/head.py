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

"""BEVFormerHead: learned BEV/object queries, PerceptionTransformer, per-layer cls/box branches."""

from __future__ import annotations

from collections.abc import Sequence
import copy

from bevformer_ros.model.config import HeadConfig
from bevformer_ros.model.decoder import DetectionTransformerDecoder, inverse_sigmoid
from bevformer_ros.model.encoder import BEVFormerEncoder
from bevformer_ros.model.positional_encoding import LearnedPositionalEncoding
from bevformer_ros.model.transformer import PerceptionTransformer, StaticHistory
import torch
from torch import nn


def _cls_branch(embed_dims: int, num_classes: int, num_reg_fcs: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(num_reg_fcs):
        layers += [
            nn.Linear(embed_dims, embed_dims),
            nn.LayerNorm(embed_dims),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers, nn.Linear(embed_dims, num_classes))


def _reg_branch(embed_dims: int, code_size: int, num_reg_fcs: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(num_reg_fcs):
        layers += [nn.Linear(embed_dims, embed_dims), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(embed_dims, code_size))


class BEVFormerHead(nn.Module):
    """
    BEV queries, transformer and per-decoder-layer class and box branches.

    Outputs per decoder layer: class logits and boxes ``[cx, cy, log w, log l, cz, log h, sin, cos,
    vx, vy]`` with cx, cy, cz in metres (sigmoid of reference + offset, scaled to pc_range).
    """

    def __init__(
        self,
        transformer: PerceptionTransformer,
        num_classes: int = 10,
        embed_dims: int = 256,
        bev_h: int = 50,
        bev_w: int = 50,
        num_query: int = 900,
        pc_range: Sequence[float] = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0),
        num_layers: int = 6,
        with_box_refine: bool = True,
        code_size: int = 10,
        code_weights: Sequence[float] = (1.0,) * 8 + (0.2, 0.2),
        num_reg_fcs: int = 2,
        row_num_embed: int | None = None,
        col_num_embed: int | None = None,
    ) -> None:
        super().__init__()
        # Used by the training loss only; an official state-dict entry, so it is a (frozen)
        # parameter.
        self.code_weights = nn.Parameter(
            torch.tensor(code_weights, dtype=torch.float32), requires_grad=False
        )
        self.positional_encoding = LearnedPositionalEncoding(
            embed_dims // 2, row_num_embed or bev_h, col_num_embed or bev_w
        )
        self.transformer = transformer
        cls_branch = _cls_branch(embed_dims, num_classes, num_reg_fcs)
        reg_branch = _reg_branch(embed_dims, code_size, num_reg_fcs)
        if with_box_refine:  # one independent branch per decoder layer
            self.cls_branches = nn.ModuleList(
                [copy.deepcopy(cls_branch) for _ in range(num_layers)]
            )
            self.reg_branches = nn.ModuleList(
                [copy.deepcopy(reg_branch) for _ in range(num_layers)]
            )
        else:  # one branch shared by all layers
            self.cls_branches = nn.ModuleList([cls_branch for _ in range(num_layers)])
            self.reg_branches = nn.ModuleList([reg_branch for _ in range(num_layers)])
        self.bev_embedding = nn.Embedding(bev_h * bev_w, embed_dims)
        self.query_embedding = nn.Embedding(num_query, embed_dims * 2)
        self.bev_hw = (bev_h, bev_w)
        self.pc_range = tuple(float(v) for v in pc_range)
        self.with_box_refine = with_box_refine

    def forward(
        self,
        mlvl_feats: Sequence[torch.Tensor],
        lidar2img: torch.Tensor,
        img_shape: tuple[int, int],
        can_bus: torch.Tensor,
        prev_bev: torch.Tensor | None = None,
        camera_mask: torch.Tensor | None = None,
        static: StaticHistory | None = None,
    ) -> dict[str, torch.Tensor]:
        """
        Build the BEV and decode the object queries of one frame.

        Parameters
        ----------
        mlvl_feats
            per FPN level [B, N, C, h, w].
        lidar2img
            [B, N, 4, 4] to pixels of the padded input.
        img_shape
            (H, W) of the padded input.
        can_bus
            [B, 18] used can_bus (see bevformer_ros.core.temporal).
        prev_bev
            previous frame's bev_embed [HW, B, C] or None.
        camera_mask
            optional [B, N] bool, False for cameras without a usable image (left out of SCA).
        static
            history inputs of an exported graph, passed on to the transformer.

        Returns
        -------
            dict(bev_embed [HW, B, C], all_cls_scores [L, B, Q, num_classes] (logits),
            all_bbox_preds [L, B, Q, 10] (float32), init_reference [B, Q, 3], inter_references [L,
            B, Q, 3]).

        """
        dtype = mlvl_feats[0].dtype
        bev_pos = self.positional_encoding(*self.bev_hw).to(dtype)  # [HW, C]
        out = self.transformer(
            mlvl_feats,
            self.bev_embedding.weight.to(dtype),
            self.query_embedding.weight.to(dtype),
            bev_pos,
            self.bev_hw,
            lidar2img,
            img_shape,
            can_bus,
            prev_bev,
            self.reg_branches if self.with_box_refine else None,
            camera_mask=camera_mask,
            static=static,
        )
        states, init_reference, references = (
            out['states'],
            out['init_reference'],
            out['references'],
        )
        all_cls, all_boxes = [], []
        for lvl in range(states.shape[0]):
            # [B, Q, 3]
            reference = inverse_sigmoid(init_reference if lvl == 0 else references[lvl - 1])
            all_cls.append(self.cls_branches[lvl](states[lvl]))
            all_boxes.append(self._boxes(self.reg_branches[lvl](states[lvl]), reference))
        return {
            'bev_embed': out['bev_embed'].transpose(0, 1),  # [HW, B, C], the next frame's prev_bev
            'all_cls_scores': torch.stack(all_cls),
            'all_bbox_preds': torch.stack(all_boxes),
            'init_reference': init_reference,
            'inter_references': references,
        }

    def _boxes(self, reg: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """
        Raw regression [B, Q, 10] + reference (inverse-sigmoid space) -> boxes with metric centres.

        Computed in float32 even for a half-precision model: float16 would round the centres to 3-6
        cm.
        """
        pc = self.pc_range
        reg, reference = reg.float(), reference.float()
        xy = (reg[..., 0:2] + reference[..., 0:2]).sigmoid()
        z = (reg[..., 4:5] + reference[..., 2:3]).sigmoid()
        cx = xy[..., 0:1] * (pc[3] - pc[0]) + pc[0]
        cy = xy[..., 1:2] * (pc[4] - pc[1]) + pc[1]
        cz = z * (pc[5] - pc[2]) + pc[2]
        return torch.cat([cx, cy, reg[..., 2:4], cz, reg[..., 5:]], -1)  # [B, Q, 10]


def build_head(cfg: HeadConfig, dropout: float = 0.1) -> BEVFormerHead:
    """Build the BEVFormerHead (with its transformer) from the typed config."""
    encoder = BEVFormerEncoder(
        cfg.num_encoder_layers,
        cfg.embed_dims,
        cfg.num_heads,
        cfg.ffn_dims,
        cfg.pc_range,
        num_points_in_pillar=cfg.num_points_in_pillar,
        tsa_num_points=cfg.tsa_num_points,
        sca_num_levels=cfg.sca_num_levels,
        sca_num_points=cfg.sca_num_points,
        dropout=dropout,
    )
    decoder = DetectionTransformerDecoder(
        cfg.num_decoder_layers,
        cfg.embed_dims,
        cfg.num_heads,
        cfg.ffn_dims,
        num_points=cfg.decoder_num_points,
        dropout=dropout,
    )
    transformer = PerceptionTransformer(
        encoder,
        decoder,
        embed_dims=cfg.embed_dims,
        num_feature_levels=cfg.num_feature_levels,
        num_cams=cfg.num_cams,
        rotate_prev_bev=cfg.rotate_prev_bev,
        use_shift=cfg.use_shift,
        use_can_bus=cfg.use_can_bus,
        can_bus_norm=cfg.can_bus_norm,
        use_cams_embeds=cfg.use_cams_embeds,
        rotate_center=cfg.rotate_center,
    )
    return BEVFormerHead(
        transformer,
        num_classes=cfg.num_classes,
        embed_dims=cfg.embed_dims,
        bev_h=cfg.bev_h,
        bev_w=cfg.bev_w,
        num_query=cfg.num_query,
        pc_range=cfg.pc_range,
        num_layers=cfg.num_decoder_layers,
        with_box_refine=cfg.with_box_refine,
        code_size=cfg.code_size,
        code_weights=cfg.code_weights,
        num_reg_fcs=cfg.num_reg_fcs,
        row_num_embed=cfg.row_num_embed,
        col_num_embed=cfg.col_num_embed,
    )
