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
Load and save official BEVFormer checkpoints (mmcv layout), strictly, never running pickled code.

An official ``bevformer_*.pth`` is what mmcv's ``save_checkpoint`` writes: ``{'meta': ...,
'state_dict': ..., 'optimizer': ...}`` with keys ``img_backbone.*``, ``img_neck.*``,
``pts_bbox_head.*`` (fixture README §8). mmcv's own loader is lenient (a mismatch is only logged,
so a wrong preset silently runs on random weights); this one is strict and says which preset the
file was trained for.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
import os
from pathlib import Path
import pickle
import re
from typing import Any

import torch
from torch import nn

# Official preset signatures, read from official_keys_{tiny,small,base}.json (fixture README §8).
PRESET_SIGNATURES: dict[str, dict[str, Any]] = {
    'tiny': {'backbone': 'ResNet-50', 'encoder_layers': 3, 'bev': '50x50', 'neck_levels': 1},
    'small': {
        'backbone': 'ResNet-101-DCN',
        'encoder_layers': 3,
        'bev': '150x150',
        'neck_levels': 1,
    },
    'base': {
        'backbone': 'ResNet-101-DCN',
        'encoder_layers': 6,
        'bev': '200x200',
        'neck_levels': 4,
    },
}
_RESNET_DEPTH_BY_LAYER3_BLOCKS = {
    2: 18,
    6: 50,
    23: 101,
    36: 152,
}  # 18/34 share 2/6 blocks: informative only
_FEW = 5  # keys listed per category in an error message
_SAFE_META_TYPES = (str, int, float, bool, type(None), torch.Tensor)


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded into the model; the message says why and what to do."""


def load_checkpoint(
    model: nn.Module, path: str | os.PathLike, map_location: Any = 'cpu'
) -> dict[str, Any]:
    """
    Fill every parameter and buffer of ``model`` from an official checkpoint file, strictly.

    Accepts ``{'state_dict': ..., 'meta': ..., ...}`` (extra top-level entries such as
    ``optimizer`` are ignored) or a bare state dict. A leading ``module.`` is stripped, mmcv's
    legacy DCN names ``X_offset.weight/bias`` become ``X.conv_offset.weight/bias``, and
    floating-point tensors are cast to the model's dtype (the fixtures store float16). BatchNorm
    ``num_batches_tracked`` counters may be absent, as torch itself allows; they are unused at
    inference.

    Returns ``{'meta': dict, 'num_tensors': int, 'renamed': list[(old, new)], 'source_dtypes':
    list[str]}``. Raises FileNotFoundError for a missing file and CheckpointError (a ValueError)
    for everything else.
    """
    path = Path(path)
    return load_state(model, read_checkpoint(path, map_location), path)


def load_state(model: nn.Module, raw: Any, path: str | os.PathLike) -> dict[str, Any]:
    """
    Fill ``model`` strictly from ``raw``, the object ``read_checkpoint`` returned for ``path``.

    For a caller that has read the file already (``model.build`` reads it once for the architecture
    and the weights); ``path`` only names the file in messages. Returns and raises like
    ``load_checkpoint``.
    """
    path = Path(path)
    state_dict, meta = _unwrap(raw, path)
    state_dict, metadata = _strip_module_prefix(state_dict)
    expected = model.state_dict()
    state_dict, renamed = _rename_legacy_dcn(state_dict, metadata, expected)
    problem = _mismatch_message(state_dict, expected)
    if problem:
        raise CheckpointError(f'checkpoint {path} does not fit the model: {problem}')
    cast = OrderedDict((k, v.to(expected[k].dtype)) for k, v in state_dict.items())
    # only BN counters can be absent here; torch fills them with 0
    for key in expected.keys() - cast.keys():
        cast[key] = torch.zeros_like(expected[key], device='cpu')
    on_meta = any(t.is_meta for t in expected.values())
    model.load_state_dict(cast, strict=False, assign=on_meta)  # strictness was checked above
    return {
        'meta': meta,
        'num_tensors': len(cast),
        'renamed': renamed,
        'source_dtypes': sorted(
            {str(v.dtype).removeprefix('torch.') for v in state_dict.values()}
        ),
    }


def save_checkpoint(
    model: nn.Module, path: str | os.PathLike, meta: Mapping[str, Any] | None = None
) -> None:
    """
    Write ``{'meta': meta, 'state_dict': ...}`` like mmcv ``save_checkpoint`` (CPU, no optimizer).

    ``meta`` may only hold dicts, lists, tuples, strings, numbers, None and tensors, so the file
    loads with ``weights_only=True``. The file is written to a temporary name first, so a crash
    leaves no torn file.
    """
    meta = dict(meta or {})
    _check_meta(meta, 'meta')
    source = model.state_dict()
    state_dict = OrderedDict((k, v.detach().cpu()) for k, v in source.items())
    # module versions, as mmcv keeps them
    state_dict._metadata = getattr(source, '_metadata', None)
    path = Path(path)
    tmp = path.with_name(path.name + '.tmp')
    torch.save({'meta': meta, 'state_dict': state_dict}, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: str | os.PathLike, map_location: Any = 'cpu') -> Any:
    """
    Return the object stored in a checkpoint file, read with ``weights_only=True``.

    The file is opened once: its first bytes are checked, then the same handle is unpickled.
    Raises FileNotFoundError for a missing file and CheckpointError, with what to do, for a
    directory, a non-checkpoint, a corrupt file or pickled code.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f'checkpoint not found: {path}. Download the official weights '
            '(bevformer_tiny/small/base *.pth, '
            'from the fundamentalvision/BEVFormer releases) and point the checkpoint setting at '
            'the file.'
        )
    if path.is_dir():
        raise CheckpointError(
            f'checkpoint path {path} is a directory; give the .pth file inside it'
        )
    with path.open('rb') as f:
        _sniff(f.read(64), path)
        f.seek(0)
        return _load(f, path, map_location)


def _load(f: Any, path: Path, map_location: Any) -> Any:
    """Unpickle the open checkpoint file `f` with ``weights_only=True``; CheckpointError if not."""
    try:
        return torch.load(f, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if 'weights only' in str(err).lower() or 'weights_only' in str(err).lower():
            raise CheckpointError(_unsafe_message(path, err)) from None
        raise CheckpointError(_corrupt_message(path, err)) from None
    except Exception as err:
        # torch raises RuntimeError/EOFError/KeyError/IndexError... for broken files
        raise CheckpointError(_corrupt_message(path, err)) from None


def _sniff(head: bytes, path: Path) -> None:
    """
    Reject files that are plainly not PyTorch checkpoints, with a hint about what they are.

    `head` is the file's first bytes: torch writes a zip (torch >= 1.6) or a legacy pickle.
    """
    if not head:
        raise CheckpointError(
            f'checkpoint {path} is empty (0 bytes): the download or copy failed; fetch it again'
        )
    if head.startswith(b'PK\x03\x04') or head[:1] == b'\x80':
        return
    text = head.lstrip().lower()
    if text.startswith((b'<!doctype html', b'<html')):
        what = 'an HTML page (the download returned a web page, not the file)'
    elif text.startswith(b'version https://git-lfs'):
        what = 'a git-lfs pointer (run `git lfs pull` to fetch the real file)'
    else:
        what = f'unknown data starting with {head[:16]!r}'
    raise CheckpointError(f'{path} is not a PyTorch checkpoint: it is {what}')


def _unsafe_message(path: Path, err: Exception) -> str:
    found = re.search(r'GLOBAL ([\w.]+)', str(err))
    what = f' ({found.group(1)})' if found else ''
    return (
        f'refusing to load {path}: torch.load(weights_only=True) found pickled Python '
        f'objects{what} '
        'that need arbitrary code to rebuild. A checkpoint only needs tensors, dicts, lists, '
        'numbers and '
        'strings, and a file with other objects can run code when it is unpickled, so it is not '
        'loaded. '
        'If you trust its source, re-save only the weights on a trusted machine: '
        "torch.save({'state_dict': torch.load(f, weights_only=False)['state_dict']}, 'clean.pth')"
    )


def _corrupt_message(path: Path, err: Exception) -> str:
    text = str(err).strip()
    detail = text.splitlines()[0].split('. ')[0][:200] if text else ''
    return (
        f'checkpoint {path} ({path.stat().st_size} bytes) could not be read: the file is corrupt '
        'or '
        f'truncated ({type(err).__name__}: {detail}). Download it again and compare its '
        'size/checksum '
        'with the release.'
    )


def _unwrap(raw: Any, path: Path) -> tuple[Mapping[str, Any], dict[str, Any]]:
    """Split a checkpoint into (state dict, meta) like mmcv (``raw['state_dict']`` or raw)."""
    expected = (
        "an mmcv checkpoint {'meta': ..., 'state_dict': {name: tensor}} or a bare state dict"
    )
    if not isinstance(raw, Mapping):
        raise CheckpointError(
            f'checkpoint {path} holds a {type(raw).__name__}; expected {expected}'
        )
    state_dict = raw.get('state_dict', raw)
    meta = raw.get('meta') if 'state_dict' in raw else None
    if not isinstance(state_dict, Mapping) or not any(
        isinstance(v, torch.Tensor) for v in state_dict.values()
    ):
        nested = [
            k
            for k, v in raw.items()
            if isinstance(v, Mapping) and any(isinstance(t, torch.Tensor) for t in v.values())
        ]
        hint = (
            f"; tensors were found under {nested}: re-save that dict as 'state_dict'"
            if nested
            else ''
        )
        raise CheckpointError(
            f'checkpoint {path} contains no tensors (top-level keys: '
            f'{sorted(map(str, raw))[:8]}); '
            f'expected {expected}{hint}'
        )
    return state_dict, dict(meta) if isinstance(meta, Mapping) else {}


def _strip_module_prefix(
    state_dict: Mapping[str, Any],
) -> tuple[OrderedDict[str, Any], dict[str, Any]]:
    """Drop the ``module.`` that (Distributed)DataParallel adds, also from version metadata."""

    def strip(key: str) -> str:
        return key[len('module.'):] if key.startswith('module.') else key

    metadata = getattr(state_dict, '_metadata', None) or {}
    return OrderedDict((strip(k), v) for k, v in state_dict.items()), {
        strip(k): v for k, v in metadata.items()
    }


def _rename_legacy_dcn(
    state_dict: OrderedDict[str, Any],
    metadata: Mapping[str, Any],
    expected: Mapping[str, torch.Tensor],
) -> tuple[OrderedDict[str, Any], list[tuple[str, str]]]:
    """
    Rename legacy DCN offset keys ``X_offset.*`` to ``X.conv_offset.*``, as mmcv does.

    mmcv's ``ModulatedDeformConv2dPack._load_from_state_dict`` accepts ``conv2_offset.*`` for
    ``conv2.conv_offset.*`` when the module's saved version is missing or below 2.
    """
    renames = {}
    for key in expected:
        module, dot, leaf = key.rpartition('.conv_offset.')
        version = (metadata.get(module) or {}).get('version')
        legacy = f'{module}_offset.{leaf}'
        if (
            dot
            and key not in state_dict
            and legacy in state_dict
            and (version is None or version < 2)
        ):
            renames[legacy] = key
    renamed = OrderedDict((renames.get(k, k), v) for k, v in state_dict.items())
    return renamed, sorted(renames.items())


def _mismatch_message(state_dict: Mapping[str, Any], expected: Mapping[str, torch.Tensor]) -> str:
    """'' when every model entry is filled with an equal-shape tensor and nothing is left over."""
    missing = [
        k for k in expected if k not in state_dict and not k.endswith('num_batches_tracked')
    ]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        k
        for k, v in state_dict.items()
        if k in expected
        and (
            not isinstance(v, torch.Tensor)
            or v.shape != expected[k].shape
            or v.is_floating_point() != expected[k].is_floating_point()
        )
    ]
    if not (missing or unexpected or mismatched):
        return ''
    lines = [
        f'{len(missing)} missing, {len(unexpected)} unexpected, {len(mismatched)} with a '
        'different shape/type'
    ]
    if missing:
        lines.append(f'  missing ({_count(missing)}): {", ".join(missing[:_FEW])}')
    if unexpected:
        lines.append(f'  unexpected ({_count(unexpected)}): {", ".join(unexpected[:_FEW])}')
    for k in mismatched[:_FEW]:
        lines.append(
            f'  {k}: checkpoint {_describe_value(state_dict[k])} vs model '
            f'{_describe_value(expected[k])}'
        )
    lines.append(f'Likely cause: {_likely_cause(state_dict, expected, unexpected)}')
    return '\n'.join(lines)


def _count(keys: list[str]) -> str:
    return f'first {_FEW} of {len(keys)}' if len(keys) > _FEW else 'all'


def _describe_value(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f'{list(value.shape)} {str(value.dtype).removeprefix("torch.")}'
    return type(value).__name__


def summarize_keys(shapes: Mapping[str, Any]) -> dict[str, Any]:
    """Architecture facts read from a BEVFormer state dict's keys and shapes (or shape lists)."""

    def indices(pattern: str) -> set[int]:
        return {int(m.group(1)) for k in shapes if (m := re.match(pattern, k))}

    summary: dict[str, Any] = {}
    layer3 = indices(r'img_backbone\.layer3\.(\d+)\.')
    if layer3:
        depth = _RESNET_DEPTH_BY_LAYER3_BLOCKS.get(
            len(layer3), f'?({len(layer3)} blocks in layer3)'
        )
        dcn = any(k.startswith('img_backbone.') and 'offset' in k for k in shapes)
        summary['backbone'] = f'ResNet-{depth}' + ('-DCN' if dcn else '')
    if any(k.startswith('pts_bbox_head.') for k in shapes):
        summary['encoder_layers'] = len(
            indices(r'pts_bbox_head\.transformer\.encoder\.layers\.(\d+)\.')
        )
        summary['decoder_layers'] = len(
            indices(r'pts_bbox_head\.transformer\.decoder\.layers\.(\d+)\.')
        )
    bev = shapes.get('pts_bbox_head.bev_embedding.weight')
    if bev is not None:
        cells, dims = (int(n) for n in _shape(bev))
        side = round(cells**0.5)
        summary['bev'] = f'{side}x{side}' if side * side == cells else f'{cells} cells'
        summary['embed_dims'] = dims
    query = shapes.get('pts_bbox_head.query_embedding.weight')
    if query is not None:
        summary['num_query'] = int(_shape(query)[0])
    neck = indices(r'img_neck\.fpn_convs\.(\d+)\.')
    if neck:
        summary['neck_levels'] = len(neck)
    return summary


def guess_preset(summary: Mapping[str, Any]) -> str | None:
    """Return the official preset whose signature the summary matches, if any."""
    for name, signature in PRESET_SIGNATURES.items():
        if all(summary.get(k) == v for k, v in signature.items()):
            return name
    return None


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else tuple(value)


def _likely_cause(
    state_dict: Mapping[str, Any], expected: Mapping[str, torch.Tensor], unexpected: list[str]
) -> str:
    tensors = {k: v for k, v in state_dict.items() if isinstance(v, torch.Tensor)}
    legacy = [
        k
        for k in unexpected
        if re.sub(r'_offset\.(weight|bias)$', r'.conv_offset.\1', k) in expected
    ]
    if legacy:
        return (
            f'legacy DCN names such as {legacy[0]} in a file whose module version metadata is >= '
            '2, where '
            'mmcv does not rename them either; re-save the checkpoint with conv_offset names'
        )
    parts = ('img_backbone', 'img_neck', 'pts_bbox_head')
    absent = [p for p in parts if _has_part(expected, p) and not _has_part(tensors, p)]
    if 'pts_bbox_head' in absent:
        prefixes = sorted({k.split('.')[0] for k in tensors})[:6]
        return (
            'the file has no BEVFormer head weights (pts_bbox_head.*; its top-level names are '
            f'{prefixes}): '
            'it is not a BEVFormer detector checkpoint (perhaps a backbone pretraining file such '
            'as an '
            'ImageNet or FCOS3D ResNet); use an official bevformer_*.pth'
        )
    if absent:
        names = ' / '.join(p + '.*' for p in absent)
        return f'the file has no {names} weights (a partial or head-only file)'
    ours, theirs = summarize_keys(expected), summarize_keys(tensors)
    ours_preset, their_preset = guess_preset(ours), guess_preset(theirs)
    fields = list(dict.fromkeys([*theirs, *ours]))
    differences = ', '.join(
        f'{k} {theirs.get(k)} vs {ours.get(k)}' for k in fields if theirs.get(k) != ours.get(k)
    )
    if their_preset and their_preset != ours_preset:
        built = f'bevformer_{ours_preset}' if ours_preset else 'a non-official configuration'
        return (
            f'this looks like a bevformer_{their_preset} checkpoint but the model was built as '
            f'{built} '
            f'(checkpoint vs model: {differences}); set preset: {their_preset}'
        )
    if differences:
        return (
            'the checkpoint was trained with a different configuration '
            f'(checkpoint vs model: {differences})'
        )
    return (
        'the checkpoint and the model differ in the keys listed above '
        '(a different model version or config)'
    )


def _has_part(keys: Mapping[str, Any], part: str) -> bool:
    return any(k.startswith(part + '.') for k in keys)


def _check_meta(value: Any, where: str) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str | int):
                raise ValueError(f'{where} has a key of type {type(k).__name__}; use str keys')
            _check_meta(v, f'{where}[{k!r}]')
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_meta(v, f'{where}[{i}]')
    elif not isinstance(value, _SAFE_META_TYPES):
        raise ValueError(
            f'{where} is a {type(value).__name__}; meta may only hold dicts, lists, strings, '
            'numbers, None '
            'and tensors, so that the checkpoint loads with weights_only=True'
        )
