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
Self-test of cv_bridge against the project's numpy decoder; run as a child process.

A cv_bridge compiled against NumPy 1 segfaults under NumPy 2 (mono8, rgba8, bgra8 among others)
when distro packages and pip mix, and a segfault would take the node down. `optional_ros` runs
`python -m bevformer_ros.frontend.cv_bridge_check` once per process: a crash kills only this
child. Every supported encoding (passthrough and each conversion) is decoded both ways from a
small odd-sized image. Before each case a `case <encoding> <desired>` line is printed (flushed),
so the parent can name the case that crashed; exit status 0 when all agree, 1 with a `disagree ...`
line otherwise.
"""

from __future__ import annotations

import sys

from bevformer_ros.frontend.image_codec import (
    CONVERSIONS,
    ENCODINGS,
    numpy_decode,
    numpy_to_imgmsg,
)
import numpy as np

CASES = [(encoding, 'passthrough') for encoding in ENCODINGS] + sorted(CONVERSIONS)


def sample(encoding: str) -> np.ndarray:
    """Return a 3 x 5 test image of `encoding`: every value distinct, so swaps show."""
    layout = ENCODINGS[encoding]
    shape = (3, 5) if layout.channels == 1 else (3, 5, layout.channels)
    values = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) * 3 + 1
    return values.astype(np.dtype(layout.dtype))  # [3, 5] or [3, 5, C]


def main() -> int:
    from cv_bridge import CvBridge

    bridge = CvBridge()
    for encoding, desired in CASES:
        print(f'case {encoding} {desired}', flush=True)
        msg = numpy_to_imgmsg(sample(encoding), encoding)
        ours = numpy_decode(msg, desired)
        theirs = np.asarray(bridge.imgmsg_to_cv2(msg, desired_encoding=desired))
        if theirs.shape != ours.shape or not np.array_equal(theirs, ours):
            print(f'disagree {encoding} -> {desired}', flush=True)
            return 1
    print('ok', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
