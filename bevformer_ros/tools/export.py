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
Export BEVFormer to a plugin-free ONNX graph, and optionally build a backend's engine from it.

    bevformer_export --preset tiny --checkpoint bevformer_tiny_epoch_24.pth --image-size 1600x900
        [--cameras 6] [--precision fp32|bf16|fp16] [--sca-capacity K] [--output FILE.onnx]
        [--backend onnxruntime|openvino|tensorrt] [--cache-dir DIR] [--force]

Without --output the graph goes into the engine cache (default ~/.cache/bevformer_ros/engines),
where the node (model.backend) finds it; --backend then also compiles that backend's engine, so
that the node starts without the wait. The file's metadata_props name the preset, the checkpoint
sha256, the image and BEV sizes, the precision, the SCA capacity, the opset and the package
version.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
import sys

from bevformer_ros.config import ENGINE_PRECISIONS
from bevformer_ros.model.build import build_detector
from bevformer_ros.model.config import preset, PRESETS
from bevformer_ros.model.engines import create_engine, EngineCacheError, MissingRuntimeError
from bevformer_ros.model.engines.cache import cache_dir
from bevformer_ros.model.export import export_onnx, make_spec
from bevformer_ros.pipeline import network_input_hw
import torch


def parse_size(text: str) -> tuple[int, int]:
    """Parse 'WIDTHxHEIGHT' -> (width, height)."""
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected WIDTHxHEIGHT, got {text!r}') from None
    return width, height


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[1].strip())
    parser.add_argument('--preset', default='tiny', choices=sorted(PRESETS))
    parser.add_argument('--checkpoint', default='', help='weights (.pth); none: random weights')
    parser.add_argument(
        '--image-size', type=parse_size, default=(1600, 900), help='camera images, WIDTHxHEIGHT'
    )
    parser.add_argument('--cameras', type=int, default=6)
    parser.add_argument('--precision', default='fp32', choices=ENGINE_PRECISIONS)
    parser.add_argument(
        '--sca-capacity',
        type=int,
        default=None,
        help='most BEV queries one camera may see (default a quarter of the BEV grid)',
    )
    parser.add_argument('--output', default='', help='write the ONNX here instead of the cache')
    parser.add_argument('--backend', choices=('onnxruntime', 'openvino', 'tensorrt'))
    parser.add_argument('--cache-dir', default=None, help='engine cache folder')
    parser.add_argument('--device', default='cpu', help='device of the tensorrt engine: cuda')
    parser.add_argument('--force', action='store_true', help='replace an existing file')
    args = parser.parse_args(argv)
    if args.output and args.backend:
        parser.error('--backend compiles from the cache; leave out --output')
    say = print
    say(f'building {args.preset} ({args.checkpoint or "random weights"})')
    built = build_detector(preset(args.preset), torch.device('cpu'), args.checkpoint)
    img_shape = network_input_hw(built.cfg.image, *args.image_size)
    spec = make_spec(
        built.model,
        built.cfg,
        img_shape,
        args.cameras,
        args.preset,
        built.checkpoint,
        args.precision,
        args.sca_capacity,
    )
    path = Path(args.output) if args.output else cache_dir(args.cache_dir) / 'onnx'
    if not args.output:
        path = path / f'{spec.key()}.onnx'
    if path.exists() and args.force:
        path.unlink()
    if args.backend:
        try:
            create_engine(
                args.backend,
                built.model,
                built.cfg,
                img_shape,
                args.cameras,
                args.device,
                args.precision,
                built.checkpoint,
                args.preset,
                args.cache_dir,
                sca_capacity=args.sca_capacity,
                progress=say,
            )
        except (MissingRuntimeError, EngineCacheError, ValueError) as exc:
            print(f'bevformer_export: {exc}', file=sys.stderr)
            return 2
    elif path.exists():
        say(f'{path} exists (use --force to replace it)')
    else:
        export_onnx(built.model, spec, path, say)
    say(str(path))
    return 0


if __name__ == '__main__':
    sys.exit(main())
