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
Render PNG pictures of camera frames, detections and ground truth (`bevformer_render`).

One picture per frame (or the one chosen with `--frame N`): the six cameras in the nuScenes layout
(front row FRONT_LEFT, FRONT, FRONT_RIGHT; back row BACK_LEFT, BACK, BACK_RIGHT) with every 3D box
projected onto them, and beside them a bird's-eye view (forward up, +-51.2 m, the BEV grid of the
model) with the ego vehicle, the detections (class colours, thick), the ground truth (white, thin)
and the BEV feature heat map (L2 norm of the features, when the node's `~/bev_features` was
recorded) underneath. A picture is `3 * tile + 2 * tile_h` wide and `2 * tile_h` high, with `tile_h
= round(tile * H / W)` for W x H camera images (`--tile`, default 480).

Give the input bag (cameras) and the node's output bag (markers, BEV features) together; ground
truth comes from the synthetic scene's JSON beside the bag, or from a `/ground_truth/markers`
topic. The drawing itself is `bevformer_ros.viz.overlay` (`render_frame`, `render_cameras`,
`render_bev` of in-memory `FrameView`s), which the node's `~/overlay` topic and the demo use too.

    bevformer_render scene.mcap --out pictures/                       # ground truth only
    bevformer_render scene.mcap outputs.mcap --out pictures/ --frame 3  # with the node's
    detections
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
import sys


def main(argv: Sequence[str] | None = None) -> int:
    from bevformer_ros.data.bag_io import BagError
    from bevformer_ros.viz.bag_frames import BagFrames

    parser = argparse.ArgumentParser(
        prog='bevformer_render',
        description=__doc__.strip().split('\n')[0],
        epilog=__doc__.strip().split('\n\n', 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        'bags',
        type=Path,
        nargs='+',
        metavar='BAG_OR_RESULTS',
        help='bags to read together: the camera bag and optionally the node output bag',
    )
    parser.add_argument('--out', type=Path, required=True, help='folder for the PNG files')
    parser.add_argument('--frame', type=int, help='render only frame N (0-based, in stamp order)')
    parser.add_argument('--tile', type=int, default=480, help='width of one camera tile in pixels')
    parser.add_argument(
        '--detections-topic',
        help='MarkerArray of detections (default: a */markers topic '
        'other than /ground_truth/markers)',
    )
    parser.add_argument(
        '--rig', type=Path, help='camera rig YAML for the extrinsics (default nuScenes)'
    )
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    try:
        frames = BagFrames(args.bags, detections_topic=args.detections_topic, rig_path=args.rig)
        paths = frames.render_all(
            args.out, frame_index=args.frame, tile_width=args.tile, progress=not args.quiet
        )
    except (BagError, ValueError) as exc:
        print(f'bevformer_render: error: {exc}', file=sys.stderr)
        return 2
    print(
        f'wrote {len(paths)} picture(s) to {args.out}'
        + (f': {paths[0]}' if len(paths) == 1 else '')
    )
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
