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
Engine cache on disk, metadata checks and the optional runtimes' imports.

Files are named by ``ExportSpec.key`` (checkpoint sha256, architecture, preset, image size,
precision, SCA capacity, package version), under a folder per runtime version for compiled
engines. A file whose metadata does not match the model is refused with one message naming the fix.
"""

from __future__ import annotations

from collections.abc import Callable
import importlib
from pathlib import Path
from types import ModuleType

from bevformer_ros.model.export import export_onnx, ExportSpec, read_metadata
from torch import nn

DEFAULT_CACHE_DIR = Path('~/.cache/bevformer_ros/engines')
# backend: (Python module, pip package)
RUNTIME_PACKAGES = {
    'onnxruntime': ('onnxruntime', 'onnxruntime'),
    'openvino': ('openvino', 'openvino'),
    'tensorrt': ('tensorrt', 'tensorrt'),
}


class MissingRuntimeError(RuntimeError):
    """The optional runtime of a backend is not installed."""


class EngineCacheError(RuntimeError):
    """An engine file does not match the model it is meant to run."""


def require_runtime(backend: str) -> ModuleType:
    """Import the runtime of ``backend``; MissingRuntimeError naming the pip package if absent."""
    module, package = RUNTIME_PACKAGES[backend]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingRuntimeError(
            f'model.backend={backend} needs the optional Python package {package!r}, which is '
            f'not installed ({exc}): pip install {package}'
        ) from None


def cache_dir(path: str | Path | None = None) -> Path:
    """Return the cache folder (default ~/.cache/bevformer_ros/engines), expanded."""
    return Path(path or DEFAULT_CACHE_DIR).expanduser()


def check_metadata(path: Path, found: dict[str, str], spec: ExportSpec) -> None:
    """Refuse an engine file whose metadata differs from ``spec`` (EngineCacheError)."""
    expected = spec.metadata()
    wrong = {k: (found.get(k), v) for k, v in expected.items() if found.get(k) != v}
    if wrong:
        details = '; '.join(f'{k}: file {a!r}, model {b!r}' for k, (a, b) in sorted(wrong.items()))
        raise EngineCacheError(
            f'engine file {path} was not built for this model ({details}). Delete it '
            f'(rm {path}) so that it is rebuilt, or rebuild it with bevformer_export --force.'
        )


def ensure_onnx(
    model: nn.Module,
    spec: ExportSpec,
    folder: Path,
    onnx_file: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """
    Return the checked ONNX graph of ``model``: ``onnx_file`` if given, else the cached one.

    A cache miss exports it (minutes for the big presets; ``progress`` gets the steps).
    """
    path = Path(onnx_file) if onnx_file else folder / f'{spec.key()}.onnx'
    if not path.exists():
        if onnx_file:
            raise FileNotFoundError(
                f'ONNX file {path} does not exist (write it with bevformer_export)'
            )
        export_onnx(model, spec, path, progress)
    check_metadata(path, read_metadata(path), spec)
    return path
