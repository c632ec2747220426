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
Config dataclasses <-> plain dicts: the form kept in JSON files and in project checkpoint meta.

`config_to_dict` gives nested dicts and lists of plain values (JSON- and `weights_only`-safe);
`bevformer_config_from_dict` rebuilds a `BEVFormerConfig` from such a dict. Keys a dict leaves out
take the dataclass defaults; a key the dataclass does not have is an error naming the valid keys.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
import json
from typing import Any

from bevformer_ros.model.config import (
    BackboneConfig,
    BEVFormerConfig,
    HeadConfig,
    ImageConfig,
    NeckConfig,
)

# Fields holding a nested config dataclass (or None).
NESTED: dict[tuple[type, str], type] = {
    (BEVFormerConfig, 'backbone'): BackboneConfig,
    (BEVFormerConfig, 'neck'): NeckConfig,
    (BEVFormerConfig, 'image'): ImageConfig,
    (BEVFormerConfig, 'head'): HeadConfig,
}


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Convert a (nested) config dataclass to plain dicts/lists (JSON/``weights_only``-safe)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def dataclass_from_dict(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """
    Instantiate dataclass ``cls`` from a mapping; lists become tuples, nested configs recurse.

    ValueError names ``where`` (e.g. ``config.model.head``) for unknown keys and for values the
    dataclass rejects.
    """
    if not isinstance(values, Mapping):
        raise ValueError(
            f'{where}: expected a mapping of {cls.__name__} fields, got {type(values).__name__}'
        )
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f'{where}: unknown keys {unknown}; valid keys are {sorted(names)}')
    kwargs = {}
    for key, value in values.items():
        nested = NESTED.get((cls, key))
        if nested is not None and value is not None:
            kwargs[key] = dataclass_from_dict(nested, value, f'{where}.{key}')
        else:
            kwargs[key] = _tuples(value)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f'{where}: {exc}') from exc


def bevformer_config_from_dict(values: Mapping[str, Any], where: str = 'model') -> BEVFormerConfig:
    """Read the BEVFormerConfig of a dict from `config_to_dict` (ValueError names `where`)."""
    return dataclass_from_dict(BEVFormerConfig, values, where)


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value
