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
The package's import structure: layers, no cycles, no library -> tools, a ROS-free core.

The import graph is read from the source with `ast` (every Import/ImportFrom node, so imports
inside functions count too) rather than by importing, so a lazy import cannot hide a dependency.

Layer order, lowest first; a module may import its own layer and the layers below it:

  foundation  bevformer_ros/__init__, config (the typed node parameters and the official camera
              order), optional_ros, resources, setup_hint: no package imports above them
  core        plain content: stamps, frames, rotation, calibration, rig, ego motion, temporal
              state (owns the 18-value can_bus layout), markers, BEV image, PNG, progress
  model       the network (imports CAN_BUS_DIMS from core.temporal, not the reverse)
  synth       the synthetic scene and its renderer
  frontend    messages -> model-ready frames (sync, camera dropout, CameraInfo watch, assembler)
  pipeline    frames -> detections (bevformer_ros/pipeline.py)
  eval        metrics and nuScenes result files
  data        bags and nuScenes files (offline replay writes eval result files)
  train       the training loop (reads bags through data)
  viz         pictures of frames and results
  ros         rclpy conversions, health, process helpers
  node        the ROS node (bevformer_ros/node.py)
  tools       command-line programs, one per file; nothing imports them but other tools
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = 'bevformer_ros'
SOURCE = Path(__file__).resolve().parents[2] / PACKAGE
LAYERS = (
    ('bevformer_ros', 'config', 'optional_ros', 'resources', 'setup_hint', 'launch_spec'),
    ('core',),
    ('model',),
    ('synth',),
    ('frontend',),
    ('pipeline',),
    ('eval',),
    ('data',),
    ('train',),
    ('viz',),
    ('ros',),
    ('node',),
    ('tools',),
)
ROS_FREE = ('core', 'frontend', 'model', 'data', 'viz')
MAX_ROOT_MODULES = 10


def module_files(root: Path = SOURCE) -> dict[str, Path]:
    """Map every module's dotted name under `root` to its file."""
    modules = {}
    for path in sorted(root.rglob('*.py')):
        parts = list(path.relative_to(root.parent).with_suffix('').parts)
        if parts[-1] == '__init__':
            parts.pop()
        modules['.'.join(parts)] = path
    return modules


def imported_names(module: str, path: Path) -> set[str]:
    """Return every absolute dotted name `module` imports, at top level or inside functions."""
    package = module if path.name == '__init__.py' else module.rpartition('.')[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:  # relative: climb level - 1 packages up from this module's package
                anchor = package.split('.')[: len(package.split('.')) - node.level + 1]
                base = '.'.join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f'{base}.{alias.name}' for alias in node.names)
    return names


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Edges module -> package modules it imports (`from a import b`: a.b if that is a module)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for name in imported_names(module, path):
            if name != PACKAGE and not name.startswith(PACKAGE + '.'):
                continue
            while name and name not in modules:  # a.b.Symbol -> a.b
                name = name.rpartition('.')[0]
            if name and name != module:
                graph[module].add(name)
    return graph


def unit(module: str) -> str:
    """Return the layer unit of a module: its sub-package, or its own name at the root."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else parts[0]


def layer_of(module: str) -> int:
    """Return the index of the layer `module` belongs to; KeyError for an undeclared unit."""
    for index, units in enumerate(LAYERS):
        if unit(module) in units:
            return index
    raise KeyError(module)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_libraries_do_not_import_tools():
    modules = module_files()
    graph = import_graph(modules)
    offenders = sorted(
        f'{a} -> {b}'
        for a, targets in graph.items()
        for b in targets
        if unit(b) == 'tools' and unit(a) != 'tools'
    )
    assert offenders == []


def test_no_import_cycles():
    assert find_cycle(import_graph(module_files())) is None


def test_at_most_ten_modules_at_the_package_root():
    root_modules = sorted(p.name for p in SOURCE.glob('*.py'))
    assert len(root_modules) <= MAX_ROOT_MODULES, root_modules


def test_every_unit_has_a_declared_layer():
    undeclared = set()
    for module in module_files():
        try:
            layer_of(module)
        except KeyError:
            undeclared.add(unit(module))
    assert undeclared == set(), 'add them to LAYERS (and to the docstring) in their place'


def test_no_lower_layer_imports_a_higher_one():
    graph = import_graph(module_files())
    offenders = sorted(
        f'{a} -> {b}'
        for a, targets in graph.items()
        for b in targets
        if layer_of(b) > layer_of(a)
    )
    assert offenders == []


def test_ros_free_folders_do_not_import_rclpy():
    offenders = sorted(
        module
        for module, path in module_files().items()
        if unit(module) in ROS_FREE
        and any(n == 'rclpy' or n.startswith('rclpy.') for n in imported_names(module, path))
    )
    assert offenders == []


def test_the_checks_catch_what_they_look_for(tmp_path):
    """Each check finds its fault in a small package that has it, lazy imports included."""
    pkg = tmp_path / PACKAGE
    for folder in ('core', 'tools', 'viz'):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / '__init__.py').write_text('')
    (pkg / '__init__.py').write_text('')
    (pkg / 'core' / 'a.py').write_text(
        'def f():\n    import rclpy\n    from bevformer_ros.viz import b\n'
    )
    (pkg / 'viz' / 'b.py').write_text(
        'def g():\n    from ..tools.c import h\nfrom bevformer_ros.core import a\n'
    )
    (pkg / 'tools' / 'c.py').write_text('def h():\n    pass\n')
    modules = module_files(pkg)
    graph = import_graph(modules)
    # `from package import module` runs the package's __init__ as well: both are edges
    assert graph['bevformer_ros.core.a'] == {'bevformer_ros.viz', 'bevformer_ros.viz.b'}
    assert graph['bevformer_ros.viz.b'] == {
        'bevformer_ros.tools.c',
        'bevformer_ros.core',
        'bevformer_ros.core.a',
    }
    assert find_cycle(graph) == [
        'bevformer_ros.core.a',
        'bevformer_ros.viz.b',
        'bevformer_ros.core.a',
    ]
    assert layer_of('bevformer_ros.viz.b') > layer_of('bevformer_ros.core.a')
    assert 'rclpy' in imported_names('bevformer_ros.core.a', modules['bevformer_ros.core.a'])
