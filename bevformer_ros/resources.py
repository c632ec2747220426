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
Find the package's data files (config/, launch/, models/) in a colcon install or the source tree.

A colcon (or `pip install .`) install puts them under `<prefix>/share/bevformer_ros/`, found
through the ament index. An editable install (`pip install -e .`, what `make setup` does) installs
no data files, so the source tree next to this package is the second place to look.
"""

from __future__ import annotations

import os
from pathlib import Path

from bevformer_ros import optional_ros

PACKAGE_NAME = 'bevformer_ros'
SOURCE_ROOT = Path(__file__).resolve().parents[1]  # the folder holding package.xml in a checkout


class ResourceNotFoundError(FileNotFoundError):
    """A data file that is neither in the installed share directory nor in the source tree."""


def share_dir() -> Path | None:
    """Return `<prefix>/share/bevformer_ros` from the ament index, or None when not installed."""
    if not optional_ros.available('ament_index_python'):
        return None
    from ament_index_python.packages import get_package_share_directory

    try:
        return Path(get_package_share_directory(PACKAGE_NAME))
    except (LookupError, OSError):  # not in the index, or AMENT_PREFIX_PATH unset (a plain venv)
        return None


def _roots(share: Path | None) -> list[Path]:
    """Where data files are looked for: the installed share directory, then the source tree."""
    return ([share] if share is not None else []) + [SOURCE_ROOT]


def package_file(*parts: str) -> Path:
    """Return the path of a data file, e.g. ('config', 'fastdds_shm.xml'): install, then source."""
    share = share_dir()
    candidates = [root.joinpath(*parts) for root in _roots(share)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = '\n  '.join(str(c) for c in candidates)
    where = (
        ''
        if share is not None
        else ' (not installed: no ament index entry or AMENT_PREFIX_PATH unset)'
    )
    raise ResourceNotFoundError(
        f'{"/".join(parts)} not found{where}; looked in:\n  {looked}\n'
        'In a colcon workspace run `colcon build` and `source install/setup.bash`; in a checkout '
        'the file belongs in the repository folder of that name.'
    )


def config_file(name: str) -> Path:
    """Return the path of config/<name> (see package_file)."""
    return package_file('config', name)


def model_file(name: str) -> Path:
    """Return the path of models/<name>, a checkpoint shipped in the package (see package_file)."""
    return package_file('models', name)


def shipped_checkpoints() -> list[str]:
    """Return the file names of the checkpoints in models/ (installed, then source)."""
    roots = _roots(share_dir())
    return sorted({path.name for root in roots for path in (root / 'models').glob('*.pth')})


def checkpoint_path(value: str) -> Path:
    """
    Resolve the file a `model.checkpoint` value names.

    A path with a directory part (`/data/x.pth`, `./x.pth`, `~/x.pth`) is taken as given. A bare
    file name (`bevformer_demo_small.pth`) names a checkpoint shipped in the package's models/
    folder, or, when none of that name ships, a file in the working directory.
    ResourceNotFoundError when a bare name is neither.
    """
    if '/' in value or os.sep in value:
        return Path(value).expanduser()
    try:
        return model_file(value)
    except ResourceNotFoundError as exc:
        if Path(value).is_file():
            return Path(value)
        shipped = ', '.join(shipped_checkpoints()) or 'none'
        raise ResourceNotFoundError(
            f'checkpoint {value!r}: a bare file name is looked up in the package models/ folder '
            f'(shipped: {shipped}), then in the working directory ({Path.cwd()}); it is in '
            f'neither. Give the full path of the .pth file. {exc}'
        ) from None
