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
Compute nuScenes detection metrics of results on synthetic scenes (`bevformer_eval`).

The ground truth of each bag is the JSON `bevformer_synth` writes beside it
(`<bag>.ground_truth.json`; see `synth.ground_truth_file`), its reference-frame calibration
(lidar2ego) the bag's /tf_static (base_link -> LIDAR_TOP), else the rig YAML. The results are
nuScenes results JSON files as `bevformer_infer_bag --results-json` writes them (samples named by
bag and image stamp, so give the bags the detector ran on). The official nuscenes-devkit evaluates
them (`eval.detection_eval`): mAP, NDS, mATE, mASE, mAOE, mAVE, mAAE, per-class AP, plus the recall
of objects within 2 m. Tables, the completed results and metrics_summary.json stay in --out.

    bevformer_eval val.results.json --bags val.mcap
    bevformer_eval a.json b.json --bags a.mcap b.mcap --out eval_ab/
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
import sys

from bevformer_ros.core.calibration import Extrinsics
from bevformer_ros.core.rig import load_rig, RigError
from bevformer_ros.data.bag_io import BagError, deserialize, open_bag
from bevformer_ros.data.static_tf import StaticTransforms
from bevformer_ros.eval.detection_eval import evaluate, format_report
from bevformer_ros.eval.nusc_results import read_results, ResultsError
from bevformer_ros.eval.nusc_tables import SceneTruth
from bevformer_ros.eval.tokens import scene_name
from bevformer_ros.resources import config_file
from bevformer_ros.synth.ground_truth_file import ground_truth_path, read_ground_truth

TF_STATIC_TOPIC, TF_TYPE = '/tf_static', 'tf2_msgs/msg/TFMessage'


def rig_file(name: str) -> Path:
    """
    Return a rig YAML as the node finds `calibration.rig_yaml`.

    A bare name is looked up in the package config/ folder.
    """
    return config_file(name) if '/' not in name else Path(name)


def bag_lidar2ego(
    bag: str | Path, base_frame: str = 'base_link', frame_id: str = 'LIDAR_TOP'
) -> Extrinsics | None:
    """`frame_id` -> `base_frame` from the bag's /tf_static; None when it does not link them."""
    reader = open_bag(bag)
    try:
        connections = [
            c for c in reader.connections if c.topic == TF_STATIC_TOPIC and c.msgtype == TF_TYPE
        ]
        static = StaticTransforms()
        for _, _, raw in reader.messages(connections) if connections else ():
            for transform in deserialize(raw, TF_TYPE).transforms:
                static.add(transform)
    finally:
        reader.close()
    return static.lookup(base_frame, frame_id)


def scene_truth(
    bag: str | Path,
    lidar2ego: Extrinsics | None = None,
    rig_yaml: str = 'nuscenes_rig.yaml',
    base_frame: str = 'base_link',
    frame_id: str = 'LIDAR_TOP',
) -> SceneTruth:
    """
    Return the ground truth of a synthetic bag.

    lidar2ego as given, else from its /tf_static, else the rig's.
    """
    path = ground_truth_path(bag)
    if not path.exists():
        raise BagError(
            f'no ground truth for {bag}: {path} does not exist (bevformer_synth writes it beside '
            'the bag; other recordings need one in the same format)'
        )
    frames, _ = read_ground_truth(path)
    if lidar2ego is None:
        lidar2ego = bag_lidar2ego(bag, base_frame, frame_id)
    if lidar2ego is None:
        lidar2ego = load_rig(rig_file(rig_yaml)).lidar2ego
    if lidar2ego is None:
        raise BagError(
            f'{bag}: no {base_frame} <- {frame_id} in /tf_static and no lidar2ego in the rig '
            f'{rig_yaml}; add one of them (the boxes must be placed on the vehicle)'
        )
    return SceneTruth(scene_name(bag), frames, lidar2ego)


def default_out_dir(results: Path) -> Path:
    return results.with_name(f'{results.with_suffix("").name}_eval')


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='bevformer_eval',
        description=__doc__.strip().split('\n')[0],
        epilog=__doc__.strip().split('\n\n', 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument('results', type=Path, nargs='+', help='nuScenes results JSON file(s)')
    parser.add_argument(
        '--bags',
        type=Path,
        nargs='+',
        required=True,
        help='the bags the results were computed on, each with its ground-truth JSON',
    )
    parser.add_argument(
        '--out', type=Path, help='folder for tables and metrics (default: <results>_eval)'
    )
    parser.add_argument(
        '--score-threshold',
        type=float,
        default=0.3,
        help='score threshold of the 2 m recall (default 0.3; the nuScenes metrics sweep it)',
    )
    parser.add_argument(
        '--rig',
        default='nuscenes_rig.yaml',
        help='rig YAML giving lidar2ego when a bag has no /tf_static (default nuscenes_rig.yaml)',
    )
    parser.add_argument('--base-frame', default='base_link', help='ego frame (default base_link)')
    parser.add_argument(
        '--frame-id', default='LIDAR_TOP', help='reference frame of the boxes (default LIDAR_TOP)'
    )
    args = parser.parse_args(argv)
    try:
        results = read_results(args.results)
        scenes = [
            scene_truth(bag, None, args.rig, args.base_frame, args.frame_id) for bag in args.bags
        ]
        report = evaluate(
            results,
            scenes,
            args.out or default_out_dir(args.results[0]),
            score_threshold=args.score_threshold,
        )
    except (BagError, ResultsError, RigError, ValueError, OSError) as exc:
        print(f'bevformer_eval: error: {exc}', file=sys.stderr)
        return 2
    print(format_report(report))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
