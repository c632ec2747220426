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

r"""
`bevformer_infer_bag IN OUT.mcap`: run the detector over a recorded bag offline, without DDS.

Every camera set of IN goes through what the node does to it (approximate-time sync, CameraInfo,
ego pose from /odom, extrinsics from /tf_static or the rig YAML, then Pipeline.run: preprocessing,
temporal history, model, decoding; see bevformer_ros.data.bag_inference), at the model's own pace
and without dropping sets. OUT gets the node's output topics, stamped with the image stamp and
recorded at it:
  /bevformer/markers       visualization_msgs/MarkerArray (detections >= outputs.score_threshold)
  /bevformer/bev_features  sensor_msgs/Image 32FC<C> (the BEV features)
  /bevformer/bev_image     sensor_msgs/Image rgb8 (the BEV features as a picture)
outputs.publish_bev_features / publish_bev_image false leave those out. The node's ~/detections
(vision_msgs/Detection3DArray) is not written: the rosbags type store for ROS 2 Kilted has no
vision_msgs. Draw the outputs with `bevformer_render IN OUT --out DIR` (or `bevformer_render OUT`
after --copy-inputs).

--results-json writes the detections as a nuScenes detection results JSON (global frame, samples
named by the bag and the image stamp); --eval evaluates them with the nuscenes-devkit against the
synthetic ground truth beside IN (as bevformer_eval does). --no-history runs every frame without
the previous BEV (prev_bev None, as at a scene start), which shows what the temporal history adds.

Parameters are the node's: a ROS 2 parameter file (--params, e.g. config/bevformer_tiny.yaml), -p
NAME:=VALUE, and the shortcuts --preset, --checkpoint, --device, --backend, --precision, --seed.
Without a checkpoint the weights are seeded RANDOM and the detections mean nothing.

    bevformer_infer_bag scene.mcap out.mcap --results-json scene.results.json --eval
    bevformer_infer_bag scene.mcap out.mcap --params config/bevformer_tiny.yaml \
        --checkpoint tiny.pth --device cuda
    bevformer_infer_bag scene.mcap nohist.mcap --no-history --results-json nohist.results.json \
        --eval
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import dataclasses
from pathlib import Path
import statistics
import sys
import time
from typing import Any

from bevformer_ros.config import ENGINE_BACKENDS, ENGINE_PRECISIONS, NodeConfig, NodeConfigError
from bevformer_ros.core.progress import Progress
from bevformer_ros.core.rig import load_rig, Rig, RigError
from bevformer_ros.data.bag_inference import BagInference
from bevformer_ros.data.bag_io import BagError, BagWriter, open_bag
from bevformer_ros.data.inference_outputs import input_copier, OUTPUT_TOPICS, OutputWriter
from bevformer_ros.data.params_file import ParamsError, parse_overrides, read_params_file
from bevformer_ros.eval.detection_eval import evaluate, format_report
from bevformer_ros.eval.nusc_results import check_class_names, ResultsError, write_results
from bevformer_ros.eval.tokens import scene_name
from bevformer_ros.pipeline import Pipeline
from bevformer_ros.synth.ground_truth_file import ground_truth_path
from bevformer_ros.tools.evaluate import default_out_dir, rig_file, scene_truth


def node_config(args: argparse.Namespace) -> NodeConfig:
    """
    Return the node configuration of the command line.

    From --params, the shortcuts, -p overrides and --no-history.
    """
    params: dict[str, Any] = read_params_file(args.params) if args.params else {}
    shortcuts = {
        'model.preset': args.preset,
        'model.checkpoint': args.checkpoint,
        'model.device': args.device,
        'model.seed': args.seed,
        'model.backend': args.backend,
        'model.precision': args.precision,
    }
    params.update({name: value for name, value in shortcuts.items() if value is not None})
    params.update(parse_overrides(args.param))
    config = NodeConfig.from_parameters(params)
    if args.no_history:
        config = dataclasses.replace(
            config, temporal=dataclasses.replace(config.temporal, enabled=False)
        )
    return config


def load_pipeline(config: NodeConfig) -> tuple[Pipeline, str]:
    """Return the node's pipeline for `config` and a one-line description of the model."""
    pipeline = Pipeline.from_settings(config)
    choice, device = pipeline.built, pipeline.device
    weights = str(choice.checkpoint) if choice.checkpoint else f'RANDOM (seed {config.model.seed})'
    source = (
        'architecture of the checkpoint'
        if choice.from_checkpoint
        else f'preset {config.model.preset}'
    )
    ignored = f'; ignored: {", ".join(choice.ignored)}' if choice.ignored else ''
    precision = config.model.precision
    if config.model.backend != 'torch':
        precision = f'{config.model.backend} {precision}'
    return (
        pipeline,
        f'{source}, BEV {pipeline.bev_shape}, {device} {precision}, weights {weights}{ignored}',
    )


def load_node_rig(config: NodeConfig) -> Rig:
    rig = load_rig(rig_file(config.calibration.rig_yaml))
    missing = [c for c in config.cameras.names if c not in rig.camera_names]
    if missing and not config.calibration.use_tf:
        raise RigError(
            f'rig {config.calibration.rig_yaml} has no camera {missing} and calibration.use_tf is '
            'false; add them or name the rig cameras in cameras.names'
        )
    return rig


def _print_summary(
    args: argparse.Namespace,
    inference: BagInference,
    writer: OutputWriter,
    model: str,
    wall_s: float,
) -> None:
    s = inference.stats
    print(
        f'[infer_bag] {args.input}: {s.messages} messages, {s.sets} synchronized sets, '
        f'{s.processed} '
        f'frames processed in {wall_s:.1f} s'
    )
    print(f'  model: {model}')
    if writer.model_s:
        print(f'  model time: median {statistics.median(writer.model_s) * 1e3:.0f} ms per frame')
    tables = (
        ('skipped frames', s.skipped),
        ('dropped sets', s.dropped),
        ('temporal resets', s.resets),
    )
    for title, table in tables:
        if table:
            print(f'  {title}: ' + ', '.join(f'{k} {v}' for k, v in sorted(table.items())))
    for kind, detail in s.problems.items():
        print(f'  first {kind}: {detail}')
    for camera, source in inference.extrinsics_sources.items():
        print(f'  extrinsics of {camera}: {source}')
    if writer.markers:
        print(
            f'  markers per frame (score >= {inference.config.outputs.score_threshold:g}): '
            f'{statistics.mean(writer.markers):.1f}'
        )
    copied = ' + the input messages' if args.copy_inputs else ''
    print(f'  wrote {args.output}: {", ".join(OUTPUT_TOPICS)}{copied}')
    if writer.not_copied:
        print(
            '  not copied (old node outputs, or types rosbags cannot write): '
            f'{sorted(writer.not_copied)}'
        )
    if not inference.config.model.checkpoint:
        print('  NOTE: RANDOM WEIGHTS (no model.checkpoint): the detections mean nothing')


def _results_path(args: argparse.Namespace) -> Path | None:
    if args.results_json is not None or not args.eval:
        return args.results_json
    return args.output.with_name(f'{args.output.with_suffix("").name}.results.json')


def _infer(
    args: argparse.Namespace, config: NodeConfig, reader: Any, with_results: bool
) -> tuple[BagInference, OutputWriter, str]:
    """Run the bag through the pipeline into OUT; (inference, writer, model description)."""
    rig = load_node_rig(config)
    pipeline, model = load_pipeline(config)
    if with_results:
        check_class_names(pipeline.cfg.class_names)
    outputs = config.outputs
    inference = BagInference(
        config, pipeline, rig, want_bev=outputs.publish_bev_features or outputs.publish_bev_image
    )
    frames = max(
        (c.msgcount for c in reader.connections if c.topic in inference.image_topics), default=0
    )
    bar = Progress(frames, 'infer', 'frames', enabled=not args.quiet)
    with BagWriter(args.output, 'mcap', overwrite=args.force) as bag:
        writer = OutputWriter(bag, config, pipeline, scene_name(args.input), with_results)
        copy = input_copier(bag, writer.not_copied) if args.copy_inputs else None
        for inferred in inference.run(reader, copy):
            writer.write(inferred, inference.lidar2ego())
            bar.update(1, f'{writer.markers[-1]} boxes')
    bar.close()
    return inference, writer, model


def run(args: argparse.Namespace) -> int:
    if args.input.resolve() == args.output.resolve():
        raise BagError('OUT must differ from IN')
    # IN first: a missing or unreadable bag is named before its outputs or its ground truth.
    open_bag(args.input).close()
    if args.output.exists() and not args.force:
        raise BagError(f'{args.output} exists already; remove it or pass --force')
    if args.eval and not ground_truth_path(args.input).exists():
        raise BagError(
            f'--eval needs the ground truth of {args.input}: {ground_truth_path(args.input)} does '
            'not exist (bevformer_synth writes it beside the bag)'
        )
    results_path = _results_path(args)
    config = node_config(args)
    reader = open_bag(args.input)
    started = time.perf_counter()
    try:
        inference, writer, model = _infer(args, config, reader, results_path is not None)
    finally:
        reader.close()
    _print_summary(args, inference, writer, model, time.perf_counter() - started)
    if inference.stats.processed == 0:
        print(
            'bevformer_infer_bag: error: no frame was processed (see the counts above)',
            file=sys.stderr,
        )
        return 1
    if results_path is not None:
        write_results(results_path, writer.results)
        print(f'  results: {results_path} ({len(writer.results)} samples)')
    if args.eval:
        scene = scene_truth(
            args.input,
            inference.lidar2ego(),
            config.calibration.rig_yaml,
            config.ego_motion.base_frame,
            config.outputs.frame_id,
        )
        report = evaluate(
            writer.results,
            [scene],
            args.eval_out or default_out_dir(results_path),
            score_threshold=config.outputs.score_threshold,
        )
        print(format_report(report))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='bevformer_infer_bag',
        description=__doc__.strip().split('\n')[0],
        epilog=__doc__.strip().split('\n\n', 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        'input', type=Path, metavar='IN', help='input bag: .mcap / .db3 file or directory'
    )
    parser.add_argument(
        'output', type=Path, metavar='OUT', help='output bag: a .mcap file (or a directory)'
    )
    parser.add_argument(
        '--params',
        type=Path,
        help='ROS 2 parameter YAML of the node (e.g. config/bevformer_tiny.yaml)',
    )
    parser.add_argument(
        '-p',
        '--param',
        action='append',
        default=[],
        metavar='NAME:=VALUE',
        help='a node parameter, e.g. -p model.image_scale:=0.25 (repeatable; wins over --params)',
    )
    parser.add_argument('--preset', help='model.preset: tiny, small or base')
    parser.add_argument(
        '--checkpoint', help='model.checkpoint: a .pth file (official or bevformer_train)'
    )
    parser.add_argument('--device', help='model.device: auto, cpu, cuda or cuda:N')
    parser.add_argument(
        '--backend',
        choices=ENGINE_BACKENDS,
        help='model.backend: the inference engine (exported and cached at the first frame)',
    )
    parser.add_argument(
        '--precision', choices=ENGINE_PRECISIONS, help='model.precision of the engine'
    )
    parser.add_argument('--seed', type=int, help='model.seed of the random weights')
    parser.add_argument(
        '--no-history',
        action='store_true',
        help='every frame without the previous BEV (temporal.enabled false)',
    )
    parser.add_argument(
        '--results-json', type=Path, help='also write a nuScenes detection results JSON'
    )
    parser.add_argument(
        '--eval',
        action='store_true',
        help='evaluate the results against the ground truth beside IN (nuscenes-devkit)',
    )
    parser.add_argument(
        '--eval-out', type=Path, help='folder of the evaluation (default <results>_eval)'
    )
    parser.add_argument(
        '--copy-inputs', action='store_true', help='also copy every input message into OUT'
    )
    parser.add_argument('--force', action='store_true', help='replace an existing OUT')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (
        BagError,
        ParamsError,
        NodeConfigError,
        RigError,
        ResultsError,
        ValueError,
        OSError,
    ) as exc:
        print(f'bevformer_infer_bag: error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('bevformer_infer_bag: interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    raise SystemExit(main())
