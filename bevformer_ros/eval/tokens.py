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
Make deterministic nuScenes tokens for frames that come from bags.

Deterministic, so that a results JSON written by one tool and the tables written by another agree
on every sample without sharing state.

A sample is identified by its scene name (the bag's file or directory name without suffix) and its
frame stamp (the synchronized image stamp, ns); every other record is keyed by the parts that make
it unique.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def scene_name(bag: str | Path) -> str:
    """`val_0.mcap` -> `val_0`; a bag directory keeps its name."""
    path = Path(bag)
    return path.stem if path.suffix else path.name


def token(*parts: object) -> str:
    """32 hex digits, like nuScenes tokens, of the joined parts."""
    return hashlib.md5('/'.join(str(p) for p in parts).encode()).hexdigest()


def sample_token(scene: str, stamp_ns: int) -> str:
    """Return the token of the sample (frame) of `scene` at `stamp_ns`."""
    return token('sample', scene, int(stamp_ns))
