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
A hint naming `make setup` when a command-line tool misses a Python module.

Run with the system Python before `make setup` (or with a venv that lacks a piece), a tool
would end in a bare ModuleNotFoundError; the hint says which interpreter ran and how to get one
that has everything.
"""

from __future__ import annotations

import sys
from types import TracebackType

HINT = (
    "bevformer_ros: Python module '{module}' is missing from the interpreter that ran this "
    '({python}). Run `make setup` in the repository root, then run the tools with '
    '.venv/bin/python (or `. .venv/bin/activate` first).'
)


def missing_module_hint(exc: BaseException) -> str | None:
    """Return the hint for a ModuleNotFoundError, else None."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    return HINT.format(module=exc.name.split('.')[0], python=sys.executable)


def install_missing_module_hint() -> None:
    """Print the hint after the traceback of an uncaught ModuleNotFoundError."""
    previous = sys.excepthook
    if getattr(previous, 'bevformer_hint', False):
        return

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        previous(kind, exc, tb)
        hint = missing_module_hint(exc)
        if hint is not None:
            print(hint, file=sys.stderr)

    hook.bevformer_hint = True
    sys.excepthook = hook
