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
Node parameters for the offline tools.

A ROS 2 parameter YAML (`--params`) and `-p NAME:=VALUE` overrides, as flat `{name: value}` for
`NodeConfig.from_parameters`.

A parameter file is what `ros2 run ... --ros-args --params-file` reads: `{node: {ros__parameters:
{...}}}` with nested groups (`model: {preset: tiny}` is `model.preset`). Sections for `/**`, `**`,
the node name or `/<node name>` apply (in file order); others belong to other nodes and are
skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

NODE_NAME = 'bevformer'


class ParamsError(ValueError):
    """
    A parameter file or override that cannot be read.

    The message names it and the expected form.
    """


def flatten(tree: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
    """{'model': {'preset': 'tiny'}} -> {'model.preset': 'tiny'} (lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f'{prefix}{key}'
        if isinstance(value, Mapping):
            flat.update(flatten(value, f'{name}.'))
        else:
            flat[name] = value
    return flat


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{'model.preset': 'tiny'} -> {'model': {'preset': 'tiny'}}: the inverse of `flatten`."""
    tree: dict[str, Any] = {}
    for name, value in flat.items():
        *groups, leaf = name.split('.')
        node = tree
        for group in groups:
            node = node.setdefault(group, {})
        node[leaf] = value
    return tree


def write_params_file(path: str | Path, flat: Mapping[str, Any], node_name: str = '/**') -> Path:
    """
    Write flat parameters as a ROS 2 parameter YAML for `node_name`.

    The file `--ros-args --params-file PATH` reads.
    """
    path = Path(path)
    path.write_text(yaml.safe_dump({node_name: {'ros__parameters': nest(flat)}}))
    return path


def read_params_file(path: str | Path, node_name: str = NODE_NAME) -> dict[str, Any]:
    """Flat parameters of `node_name` in a ROS 2 parameter YAML file."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ParamsError(f'cannot read parameter file {path}: {exc}') from exc
    matching = {'/**', '**', node_name, f'/{node_name}'}
    sections = []
    for key, node in doc.items() if isinstance(doc, Mapping) else ():
        if (
            key in matching
            and isinstance(node, Mapping)
            and isinstance(node.get('ros__parameters'), Mapping)
        ):
            sections.append(node['ros__parameters'])
    if not sections:
        raise ParamsError(
            f'{path} holds no ros__parameters for the node {node_name!r}; expected '
            f'"/**: {{ros__parameters: {{model: {{preset: tiny}}, ...}}}}" (see config/*.yaml)'
        )
    params: dict[str, Any] = {}
    for section in sections:
        params.update(flatten(section))
    return params


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """
    Parse `-p NAME:=VALUE` overrides.

    ['model.seed:=3', 'cameras.compressed:=true'] -> {'model.seed': 3, 'cameras.compressed': True};
    the value is read as YAML, as `ros2 run ... -p` does.
    """
    params = {}
    for item in items:
        name, sep, text = item.partition(':=')
        if not sep or not name:
            raise ParamsError(f'parameter {item!r}: expected NAME:=VALUE, e.g. model.device:=cpu')
        try:
            params[name] = yaml.safe_load(text) if text else ''
        except yaml.YAMLError as exc:
            raise ParamsError(f'parameter {item!r}: the value is not valid YAML ({exc})') from exc
    return params
