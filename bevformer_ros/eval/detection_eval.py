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
Compute the official nuScenes detection metrics of a results JSON with the devkit.

The results are evaluated against ground-truth scenes.

`evaluate` writes the scenes as nuScenes tables (`nusc_tables`), completes the results with an
empty list for every ground-truth sample they lack (the devkit wants every sample; a frame the
detector skipped counts as one without detections), and runs
`nuscenes.eval.detection.evaluate.DetectionEval` with the `detection_cvpr_2019` configuration on
the custom split of those scenes: mAP (centre distance 0.5, 1, 2, 4 m), the true-positive errors
mATE, mASE, mAOE, mAVE, mAAE, NDS and the per-class figures. The devkit averages over all ten
classes, so a class the scenes do not contain has AP 0 and lowers mAP; the table lists the
ground-truth count per class to show it.

Beside it: the project's training-time figure, the recall of ground-truth objects by same-class
detections within 2 m (BEV centre distance, at one score threshold; `train.metrics`), over the
ground-truth boxes the devkit evaluates (within their class range of the ego).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
import json
import math
from pathlib import Path
from typing import Any

from bevformer_ros.core.markers import NUSCENES_CLASSES
from bevformer_ros.eval.metrics import RecallCounter
from bevformer_ros.eval.nusc_boxes import lidar_boxes_to_global
from bevformer_ros.eval.nusc_results import CLASS_RANGE, write_results
from bevformer_ros.eval.nusc_tables import ego2global, SceneTruth, SPLIT, VERSION, write_tables
from bevformer_ros.eval.tokens import sample_token
import numpy as np

DEVKIT_CONFIG = 'detection_cvpr_2019'
TP_NAMES = {
    'trans_err': 'mATE',
    'scale_err': 'mASE',
    'orient_err': 'mAOE',
    'vel_err': 'mAVE',
    'attr_err': 'mAAE',
}


@dataclass(frozen=True)
class EvalReport:
    # devkit DetectionMetrics.serialize(): mean_ap, nd_score, tp_errors, ...
    summary: dict[str, Any]
    # ground-truth boxes the devkit evaluated (after its range filter)
    gt_per_class: dict[str, int]
    recall: RecallCounter  # within recall.distance_m, detections scoring >= score_threshold
    score_threshold: float
    samples: int
    scenes: int
    missing_samples: (
        int  # ground-truth samples without results: evaluated as frames without detections
    )
    ignored_samples: int  # result samples of no ground-truth scene
    out_dir: Path


def evaluate(
    results: Mapping[str, list[dict[str, Any]]],
    scenes: Sequence[SceneTruth],
    out_dir: str | Path,
    score_threshold: float = 0.3,
    recall_distance_m: float = 2.0,
    verbose: bool = False,
) -> EvalReport:
    """
    Evaluate `results` (sample token -> boxes) against `scenes`.

    Files (tables, the completed results, metrics_summary.json) go to `out_dir`.
    """
    from nuscenes import NuScenes
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.detection.evaluate import DetectionEval

    out_dir = Path(out_dir)
    dataroot = out_dir / 'nuscenes'
    write_tables(dataroot, scenes)
    tokens = [sample_token(s.name, f.stamp_ns) for s in scenes for f in s.frames]
    complete = {t: list(results.get(t, [])) for t in tokens}
    results_path = out_dir / 'results_nusc.json'
    write_results(results_path, complete)
    nusc = NuScenes(version=VERSION, dataroot=str(dataroot), verbose=verbose)
    evaluation = DetectionEval(
        nusc,
        config_factory(DEVKIT_CONFIG),
        str(results_path),
        eval_set=SPLIT,
        output_dir=str(out_dir),
        verbose=verbose,
    )
    metrics, _ = evaluation.evaluate()
    summary = metrics.serialize()
    (out_dir / 'metrics_summary.json').write_text(json.dumps(summary, indent=2))
    gt_per_class = {name: 0 for name in NUSCENES_CLASSES}
    for box in evaluation.gt_boxes.all:
        gt_per_class[box.detection_name] += 1
    return EvalReport(
        summary=summary,
        gt_per_class=gt_per_class,
        recall=_recall(complete, scenes, score_threshold, recall_distance_m),
        score_threshold=score_threshold,
        samples=len(tokens),
        scenes=len(scenes),
        missing_samples=sum(t not in results for t in tokens),
        ignored_samples=len(set(results) - set(tokens)),
        out_dir=out_dir,
    )


def _recall(
    results: Mapping[str, list[dict[str, Any]]],
    scenes: Sequence[SceneTruth],
    score_threshold: float,
    distance_m: float,
) -> RecallCounter:
    counter = RecallCounter(distance_m=distance_m)
    for scene in scenes:
        class_index = np.array(
            [NUSCENES_CLASSES.index(n) for n in scene.class_names], dtype=np.int64
        )
        ranges = np.array([CLASS_RANGE[n] for n in scene.class_names])
        for frame in scene.frames:
            gt = lidar_boxes_to_global(frame.boxes, scene.lidar2ego, ego2global(frame))
            evaluated = gt.ego_distance < ranges[frame.labels]  # the devkit's range filter
            dets = [
                d
                for d in results[sample_token(scene.name, frame.stamp_ns)]
                if d['detection_score'] >= score_threshold
            ]
            counter.add(
                np.array([d['translation'][:2] for d in dets], dtype=np.float64).reshape(-1, 2),
                np.array([d['detection_score'] for d in dets], dtype=np.float64),
                np.array(
                    [NUSCENES_CLASSES.index(d['detection_name']) for d in dets], dtype=np.int64
                ),
                gt.translation[evaluated, :2],
                class_index[frame.labels[evaluated]],
            )
    return counter


def _number(value: float) -> str:
    return '   nan' if value is None or math.isnan(value) else f'{value:6.3f}'


def format_report(report: EvalReport) -> str:
    """
    Format the metrics as a text table.

    The devkit's layout, plus ground-truth counts and the 2 m recall.
    """
    s = report.summary
    lines = [
        f'nuScenes detection metrics (nuscenes-devkit, {DEVKIT_CONFIG}): '
        f'{report.samples} samples of {report.scenes} scene(s)'
    ]
    if report.missing_samples:
        lines.append(
            f'  NOTE: {report.missing_samples} ground-truth samples have no results (evaluated as '
            'frames without detections)'
        )
    if report.ignored_samples:
        lines.append(
            f'  NOTE: {report.ignored_samples} result samples belong to no given scene (ignored)'
        )
    lines.append(f'mAP:  {s["mean_ap"]:.4f}')
    lines += [f'{TP_NAMES[name]}: {value:.4f}' for name, value in s['tp_errors'].items()]
    lines.append(f'NDS:  {s["nd_score"]:.4f}')
    lines.append('')
    lines.append(
        f'{"class":<22}{"GT":>6}{"AP":>8}{"ATE":>8}{"ASE":>8}{"AOE":>8}{"AVE":>8}{"AAE":>8}'
    )
    for name, ap in s['mean_dist_aps'].items():
        tp = s['label_tp_errors'][name]
        errors = ''.join(f'  {_number(tp[k])}' for k in TP_NAMES)
        lines.append(f'{name:<22}{report.gt_per_class.get(name, 0):>6}  {_number(ap)}{errors}')
    r = report.recall
    lines.append('')
    lines.append(
        f'recall within {r.distance_m:g} m (score >= {report.score_threshold:g}): {r.recall:.4f} '
        f'({r.matched}/{r.total} ground-truth boxes)'
    )
    lines.append(
        f'files: {report.out_dir} (metrics_summary.json, results_nusc.json, nuscenes/ tables)'
    )
    return '\n'.join(lines)
