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

"""What the dev venv holds (distributions, console scripts), noted before and after the suite."""

from __future__ import annotations

from dataclasses import dataclass
import importlib.metadata
from pathlib import Path
import sys
import sysconfig

import pytest

SETUP_STAMP = '.bevformer-setup-stamp'  # written by `make setup` once the venv is complete


@dataclass(frozen=True)
class VenvState:
    distributions: dict[str, str]  # name -> version, as installed in site-packages
    scripts: tuple[str, ...]  # bevformer_* programs present in the environment's bin/


VENV_AT_START = pytest.StashKey[VenvState]()


def in_made_venv() -> bool:
    """Tell whether the running Python is a venv that `make setup` completed."""
    return sys.prefix != sys.base_prefix and (Path(sys.prefix) / SETUP_STAMP).is_file()


def venv_state() -> VenvState:
    """Note what the running environment has installed."""
    # Only site-packages: the repository root on sys.path (pytest.ini) holds a stale egg-info.
    site = sysconfig.get_paths()['purelib']
    distributions = {
        dist.metadata['Name']: dist.version
        for dist in importlib.metadata.distributions(path=[site])
    }
    scripts = tuple(sorted(path.name for path in (Path(sys.prefix) / 'bin').glob('bevformer_*')))
    return VenvState(distributions, scripts)
