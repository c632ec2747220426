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
The architecture a project-trained checkpoint carries, so that it loads without naming a preset.

`bevformer_train` saves ``meta = {'config': {'model': <BEVFormerConfig dict>, 'train': ...},
'iter', ...}``
(``config_dict.config_to_dict``). Official mmcv checkpoints carry the config file's *text* under
``meta['config']`` (or no meta at all): for those the caller's preset decides the architecture.
"""

from __future__ import annotations

from collections.abc import Mapping
import os
from pathlib import Path

from bevformer_ros.model.checkpoint import CheckpointError, read_checkpoint
from bevformer_ros.model.config import BEVFormerConfig
from bevformer_ros.model.config_dict import bevformer_config_from_dict


def config_from_checkpoint(path: str | os.PathLike) -> BEVFormerConfig | None:
    """
    The BEVFormerConfig stored in ``meta['config']['model']`` of a checkpoint; None when it has none.

    Reads with ``weights_only=True`` and maps the tensors instead of loading them.
    FileNotFoundError for a
    missing file; CheckpointError for an unreadable file (see ``read_checkpoint``) or a stored
    config this
    version cannot build.
    """
    path = Path(path)
    raw = read_checkpoint(path, mmap=True)
    meta = raw.get('meta') if isinstance(raw, Mapping) and 'state_dict' in raw else None
    config = meta.get('config') if isinstance(meta, Mapping) else None
    model = (
        config.get('model') if isinstance(config, Mapping) else None
    )  # official meta: config is text
    if model is None:
        return None
    try:
        return bevformer_config_from_dict(model, "meta['config']['model']")
    except ValueError as exc:
        raise CheckpointError(
            f'checkpoint {path} names its architecture, but this version of bevformer_ros cannot build it: '
            f'{exc}. Use the bevformer_ros version that trained it, or re-save the checkpoint without '
            "meta['config'] and choose the architecture with the node parameters."
        ) from None
