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
Faults at start: the node is run once per fault with --autostart and must exit cleanly.

Exit code 1, no traceback, with one message that names the problem and the fix. The five runs
start together, so the module costs about one node start-up.
"""

from __future__ import annotations

import os
import time

from bevformer_ros.config import NodeConfig
from bevformer_ros.model.build import build_model
from bevformer_ros.model.checkpoint import save_checkpoint
from bevformer_ros.model.config import preset
from bevformer_ros.model.detector import build_bevformer
from bevformer_ros.model.small_model import small_model_parameters
from bevformer_ros.ros.process import RosProcess
import pytest
import torch
import yaml

EXIT_TIMEOUT_S = 90.0


class RunsCodeWhenUnpickled:
    """
    What a malicious checkpoint holds.

    Unpickling it calls os.system (here: creates a marker file).
    """

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def _small_checkpoint(path):
    model = build_model(
        NodeConfig.from_parameters(small_model_parameters()).model, torch.device('cpu')
    ).model
    save_checkpoint(model, path)
    return path


def _tiny_shaped_checkpoint(path):
    """
    Write the keys and shapes of an official bevformer_tiny checkpoint.

    Zero-stride tensors keep it ~200 kB.
    """
    with torch.device('meta'):
        model = build_bevformer(preset('tiny'))
    state_dict = {
        k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in model.state_dict().items()
    }
    torch.save({'meta': {}, 'state_dict': state_dict}, path)
    return path


def _truncated_checkpoint(path, tmp):
    data = _small_checkpoint(tmp / 'whole.pth').read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _pickle_checkpoint(path, marker):
    torch.save({'meta': RunsCodeWhenUnpickled(marker), 'state_dict': {'w': torch.zeros(1)}}, path)
    assert not marker.exists()
    return path


def _cases(tmp):  # name -> (fault injected, extra ROS parameters, texts the output must contain)
    marker = tmp / 'pickle_ran_code'
    return {
        'bad_parameter_at_start': (
            '-p sync.slop:=-1.0',
            {'sync.slop': -1.0},
            ["parameter 'sync.slop' = -1.0 is invalid", 'finite number'],
        ),
        'missing_checkpoint': (
            'model.checkpoint = a file that does not exist',
            {'model.checkpoint': str(tmp / 'missing.pth')},
            ['checkpoint not found', 'missing.pth'],
        ),
        'wrong_preset_checkpoint': (
            'bevformer_tiny checkpoint, model.preset small',
            {
                'model.checkpoint': str(_tiny_shaped_checkpoint(tmp / 'tiny.pth')),
                **{
                    k: 0
                    for k in small_model_parameters()
                    if k.startswith('model.') and k not in ('model.preset', 'model.device')
                },
                'model.image_scale': 0.0,
                'model.preset': 'small',
            },
            ['looks like a bevformer_tiny checkpoint', 'set preset: tiny'],
        ),
        'truncated_checkpoint': (
            'the first half of a valid checkpoint',
            {'model.checkpoint': str(_truncated_checkpoint(tmp / 'half.pth', tmp))},
            ['corrupt or truncated', 'Download it again'],
        ),
        'pickle_checkpoint': (
            'a pickle whose loading runs os.system',
            {'model.checkpoint': str(_pickle_checkpoint(tmp / 'evil.pth', marker))},
            ['refusing to load', 'weights_only=True', 'can run code'],
        ),
    }, marker


@pytest.fixture(scope='module')
def startup_runs(module_ros_env, tmp_path_factory):
    """
    Start every faulty node at once.

    Yield {name: (injected, process, expected texts, seconds)}.
    """
    tmp = tmp_path_factory.mktemp('startup')
    cases, marker = _cases(tmp)
    runs = {}
    started = time.monotonic()
    for name, (injected, overrides, texts) in cases.items():
        params = {**small_model_parameters(), **overrides}
        params_file = tmp / f'{name}.yaml'
        params_file.write_text(yaml.safe_dump({'/**': {'ros__parameters': params}}))
        args = [
            '-m',
            'bevformer_ros.node',
            '--autostart',
            '--ros-args',
            '--params-file',
            str(params_file),
            '-r',
            f'__ns:=/startup_{name}',
        ]
        process = RosProcess(args, module_ros_env, log_dir=tmp, name=name)
        process.start()
        runs[name] = (injected, process, texts)
    deadline = started + EXIT_TIMEOUT_S
    while time.monotonic() < deadline and any(p.poll() is None for _, p, _ in runs.values()):
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    yield {name: (*run, elapsed) for name, run in runs.items()}, marker
    for _, process, _ in runs.values():
        process.stop()


@pytest.mark.parametrize(
    'name',
    [
        'bad_parameter_at_start',
        'missing_checkpoint',
        'wrong_preset_checkpoint',
        'truncated_checkpoint',
        'pickle_checkpoint',
    ],
)
def test_start_fault_exits_cleanly_with_a_clear_message(startup_runs, catalogue, name):
    runs, marker = startup_runs
    injected, process, texts, elapsed = runs[name]
    reported, outcome = '-', 'FAIL'
    try:
        code = process.poll()
        output = process.output(20000)
        assert code == 1, f'expected exit code 1, got {code}\n{process.describe()}'
        assert 'Traceback' not in output, output
        line = next((ln for ln in output.splitlines() if 'configure failed' in ln), '')
        assert line, output
        for text in texts:
            assert text in output, f'{text!r} not in the output:\n{output}'
        assert not marker.exists(), 'the pickle ran code'
        said = next(ln for ln in output.splitlines() if texts[0] in ln).split(
            'configure failed: ', 1
        )[-1]
        said = said.replace(str(process.log_path.parent) + '/', '').replace('Likely cause: ', '')
        reported = f'exit 1; "{said}"'
        outcome = 'PASS'
    finally:
        catalogue.record(name, injected, reported, 'n/a (exits)', outcome, elapsed)
