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
Training end to end on tiny synthetic bags.

The loss goes down, checkpoints round-trip through the strict official-layout loader, a run resumes
where it stopped, and the temporal queue keeps the official semantics.
"""

from __future__ import annotations

import dataclasses
import json
import math
from types import SimpleNamespace

from bevformer_ros.core.rig import load_rig
from bevformer_ros.core.temporal import can_bus_from_pose, TemporalState
from bevformer_ros.data.static_tf import StaticTransforms
from bevformer_ros.eval.metrics import match_count, RecallCounter
from bevformer_ros.model.checkpoint import load_checkpoint
from bevformer_ros.model.detector import build_bevformer
from bevformer_ros.resources import config_file
from bevformer_ros.tools.synth import write_scene_bag
from bevformer_ros.tools.train import main as train_main
from bevformer_ros.train.dataset import (
    BagScene,
    collate,
    queue_can_bus,
    queue_indices,
    TemporalQueueDataset,
)
from bevformer_ros.train.presets import config_from_dict, smoke
from bevformer_ros.train.trainer import obtain_history_bev, train_state_path, Trainer
from bevformer_ros.train.weight_init import init_bevformer
import numpy as np
import pytest
import torch


@pytest.fixture(scope='module')
def bags(tmp_path_factory):
    """
    Two tiny scenes (160x90, 2 Hz, the smoke preset's input size).

    One to train on, one held out.
    """
    root = tmp_path_factory.mktemp('bags')
    train = root / 'train.mcap'
    val = root / 'val.mcap'
    write_scene_bag(train, seed=3, frames=4, rate=2.0, width=160, height=90, progress=False)
    write_scene_bag(val, seed=4, frames=3, rate=2.0, width=160, height=90, progress=False)
    return train, val


@pytest.fixture(scope='module')
def rig():
    return load_rig(config_file('nuscenes_rig.yaml'))


def test_bag_frames_carry_the_filtered_ground_truth(bags, rig):
    cfg = smoke().model
    scene = BagScene(bags[0], cfg, rig)
    doc = json.loads(bags[0].with_suffix('.ground_truth.json').read_text())
    assert len(scene) == len(doc['frames']) == 4
    frame = scene.frame(2)
    expected = np.asarray(doc['frames'][2]['boxes'], dtype=np.float64)
    inside = (np.abs(expected[:, 0]) < 51.2) & (np.abs(expected[:, 1]) < 51.2)
    assert frame.gt_boxes.shape == (int(inside.sum()), 9)
    np.testing.assert_allclose(frame.gt_boxes.numpy(), expected[inside], atol=1e-5)
    # padded to a multiple of 32
    assert frame.img.shape == (6, 3, 96, 160) and frame.img_shape == (96, 160)
    assert frame.lidar2img.shape == (6, 4, 4) and frame.lidar2img.dtype == torch.float64
    pose = doc['frames'][2]
    expected_can_bus = can_bus_from_pose(pose['ego_translation'], pose['ego_rotation_wxyz'])
    pose_dims = [
        0,
        1,
        2,
        16,
        17,
    ]  # translation, yaw (rad, deg): odometry and JSON describe one trajectory
    np.testing.assert_allclose(frame.can_bus[pose_dims], expected_can_bus[pose_dims], atol=1e-6)


def tf(parent, child, xyz, yaw):
    """
    Return a TransformStamped-like child -> parent transform.

    Rotation about z by yaw, then translation xyz.
    """
    rotation = SimpleNamespace(x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2))
    translation = SimpleNamespace(x=xyz[0], y=xyz[1], z=xyz[2])
    return SimpleNamespace(
        header=SimpleNamespace(frame_id=parent),
        child_frame_id=child,
        transform=SimpleNamespace(translation=translation, rotation=rotation),
    )


def test_static_transform_chain_between_sibling_frames():
    tree = StaticTransforms(
        [
            tf('base', 'A', (1.0, 0.0, 0.0), math.pi / 2),
            tf('base', 'B', (0.0, 2.0, 0.0), 0.0),
            tf('other_root', 'C', (0.0, 0.0, 0.0), 0.0),
        ]
    )
    b_to_a = tree.lookup('A', 'B')
    # B's origin is base (0, 2, 0): relative to A's origin (1, 0, 0) that is (-1, 2, 0) in base
    # axes, which A (turned +90 deg about z) sees as (2, 1, 0).
    np.testing.assert_allclose(b_to_a.translation, [2.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(b_to_a.rotation @ [1.0, 0.0, 0.0], [0.0, -1.0, 0.0], atol=1e-12)
    assert tree.lookup('A', 'C') is None and tree.lookup('A', 'unknown') is None


def test_bag_extrinsics_from_tf_static_equal_the_rig(bags, rig):
    from_tf = BagScene(bags[0], smoke().model, rig)
    assert from_tf.extrinsics_source == '/tf_static'
    for got, cam in zip(from_tf.sensor2lidar, rig.cameras):
        np.testing.assert_allclose(got.rotation, cam.sensor2lidar.rotation, atol=1e-9)
        np.testing.assert_allclose(got.translation, cam.sensor2lidar.translation, atol=1e-9)


def test_queue_indices_follow_the_official_sampling():
    rng = np.random.default_rng(0)
    for index in (0, 1, 5, 9):
        for _ in range(20):
            queue = queue_indices(index, 3, rng)
            assert len(queue) == 3 and queue[-1] == index
            assert queue[:-1] == sorted(queue[:-1])
            window = [max(0, i) for i in range(index - 3, index)]
            assert all(i in window for i in queue[:-1])


def test_queue_can_bus_equals_the_test_time_bookkeeping():
    """union2one (training) and TemporalState (inference) must give the model the same can_bus."""
    rng = np.random.default_rng(1)
    poses = []
    for k in range(4):
        # the last one crosses 0/360 deg
        yaw = 0.3 * k + rng.uniform(-0.1, 0.1) + (6.2 if k == 3 else 0.0)
        poses.append(
            can_bus_from_pose(rng.normal(size=3) * 5, (np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)))
        )
    used, exists = queue_can_bus(np.stack(poses), ['a', 'a', 'a', 'a'])
    state = TemporalState()
    for k, can_bus in enumerate(poses):
        step = state.step(can_bus, 'a')
        np.testing.assert_array_equal(used[k], step.can_bus)
        assert exists[k] == step.use_prev_bev
        state.update(torch.zeros(1))
    _, exists = queue_can_bus(np.stack(poses), ['a', 'b', 'b', 'b'])
    assert exists.tolist() == [False, False, True, True]


def test_history_bev_equals_running_the_frames_one_by_one(bags, rig):
    cfg = smoke().model
    torch.manual_seed(0)
    model = init_bevformer(build_bevformer(cfg)).train()
    dataset = TemporalQueueDataset([BagScene(bags[0], cfg, rig)], queue_length=3)
    batch = collate([dataset.sample(3, np.random.default_rng(0))])
    history = obtain_history_bev(model, batch)
    assert model.training  # back in train mode afterwards
    model.eval()
    prev = None
    with torch.no_grad():
        for t in range(2):
            out = model(
                batch.img[:, t], batch.lidar2img[:, t], batch.img_shape, batch.can_bus[:, t], prev
            )
            prev = out['bev_embed']
    torch.testing.assert_close(history, prev)
    assert not history.requires_grad


def test_training_reduces_the_loss_and_resumes_from_its_checkpoint(bags, rig, tmp_path):
    preset = smoke()
    cfg = preset.model
    train_cfg = dataclasses.replace(
        preset.train,
        iters=30,
        lr=1e-3,
        warmup_iters=1,
        val_interval=1000,
        checkpoint_interval=1000,
    )
    dataset = TemporalQueueDataset([BagScene(bags[0], cfg, rig)], train_cfg.queue_length)
    torch.manual_seed(0)
    trainer = Trainer(init_bevformer(build_bevformer(cfg)), cfg, train_cfg, dataset, tmp_path)
    history = trainer.fit()
    losses = [r['loss'] for r in history]
    assert len(losses) == 30 and all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5]), losses

    final = tmp_path / 'final.pth'
    fresh = build_bevformer(cfg)
    info = load_checkpoint(fresh, final)  # strict: every key of the official layout, nothing else
    for key, value in trainer.model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value, rtol=0, atol=0)
    assert info['meta']['iter'] == 30
    # the checkpoint names its architecture
    assert config_from_dict(info['meta']['config']).model == cfg
    assert all(
        k.split('.')[0] in ('img_backbone', 'img_neck', 'pts_bbox_head')
        for k in torch.load(final, weights_only=True)['state_dict']
    )

    resumed = Trainer(
        build_bevformer(cfg), cfg, dataclasses.replace(train_cfg, iters=31), dataset, tmp_path
    )
    resumed.resume(final)
    assert resumed.step == 30
    saved = torch.load(train_state_path(final), weights_only=True)['optimizer']
    for a, b in zip(resumed.optimizer.state_dict()['state'].values(), saved['state'].values()):
        torch.testing.assert_close(a['exp_avg'], b['exp_avg'])
    resumed.fit()
    assert resumed.step == 31


def test_command_line_trains_validates_and_resumes(bags, tmp_path, capsys):
    out = tmp_path / 'run'
    assert (
        train_main(
            [
                str(bags[0]),
                '--preset',
                'smoke',
                '--out',
                str(out),
                '--iters',
                '2',
                '--val-bags',
                str(bags[1]),
                '--threads',
                '2',
            ]
        )
        == 0
    )
    records = [json.loads(line) for line in (out / 'log.jsonl').read_text().splitlines()]
    assert any('val_recall' in r for r in records) and records[-1]['iter'] == 2
    assert json.loads((out / 'config.json').read_text())['train']['iters'] == 2
    load_checkpoint(build_bevformer(smoke().model), out / 'final.pth')
    assert (
        train_main(
            [
                str(bags[0]),
                '--config-json',
                str(out / 'config.json'),
                '--out',
                str(out),
                '--iters',
                '3',
                '--resume',
                str(out / 'latest.pth'),
            ]
        )
        == 0
    )
    records = [json.loads(line) for line in (out / 'log.jsonl').read_text().splitlines()]
    assert [r['iter'] for r in records if 'loss' in r] == [1, 2, 3]
    # a validation bag that is also a training bag is refused with a message naming it
    assert (
        train_main(
            [str(bags[0]), '--preset', 'smoke', '--out', str(out), '--val-bags', str(bags[0])]
        )
        == 2
    )
    assert 'held out' in capsys.readouterr().err


def test_resume_keeps_the_iterations_of_the_run_it_continues(bags, tmp_path, capsys):
    out = tmp_path / 'run'
    first = [str(bags[0]), '--preset', 'smoke', '--out', str(out), '--threads', '2']
    assert train_main([*first, '--iters', '2', '--seed', '5']) == 0
    # no --iters: the run's own 2, not the preset's 20 (and its seed 5, so the same data order)
    assert train_main([*first, '--resume', str(out / 'latest.pth')]) == 0
    assert 'iterations 2 -> 2' in capsys.readouterr().err
    records = [json.loads(line) for line in (out / 'log.jsonl').read_text().splitlines()]
    assert [r['iter'] for r in records if 'loss' in r] == [1, 2]
    assert json.loads((out / 'config.json').read_text())['train']['seed'] == 5


def test_recall_matches_one_to_one_per_class_within_the_distance():
    gt = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 1.5]])
    gt_labels = np.array([0, 0, 1])
    # two detections near gt 0 (only one may count), one of the wrong class near gt 1, one too far
    # from gt 2
    dets = np.array([[0.5, 0.0], [-0.5, 0.3], [10.2, 0.0], [0.0, 4.0]])
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    labels = np.array([0, 0, 1, 1])
    assert match_count(dets, scores, labels, gt, gt_labels, 2.0) == 1
    # the far one reaches gt 2 at 2.5 m
    assert match_count(dets, scores, labels, gt, gt_labels, 3.0) == 2
    counter = RecallCounter(2.0)
    counter.add(dets, scores, labels, gt, gt_labels)
    counter.add(np.zeros((0, 2)), np.zeros(0), np.zeros(0, dtype=int), gt, gt_labels)
    assert (counter.matched, counter.total) == (1, 6) and counter.recall == pytest.approx(1 / 6)
