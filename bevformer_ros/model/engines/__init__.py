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
Inference engines: the exported graph run by OpenVINO, ONNX Runtime or TensorRT.

Every engine is called like the torch detector (``BEVFormer.forward``) and returns the keys the
pipeline uses, so the pipeline does not care which backend runs. ``create_engine`` exports (or
finds in the cache) the ONNX graph of a built model and wraps it in the backend's runtime.
"""

from bevformer_ros.model.engines.base import ExportedEngine
from bevformer_ros.model.engines.cache import (
    DEFAULT_CACHE_DIR,
    EngineCacheError,
    MissingRuntimeError,
    RUNTIME_PACKAGES,
)
from bevformer_ros.model.engines.factory import (
    create_engine,
    DeferredEngine,
    EXPORTED_PRECISIONS,
)

__all__ = [
    'DEFAULT_CACHE_DIR',
    'EXPORTED_PRECISIONS',
    'EngineCacheError',
    'ExportedEngine',
    'MissingRuntimeError',
    'RUNTIME_PACKAGES',
    'create_engine',
    'DeferredEngine',
]
