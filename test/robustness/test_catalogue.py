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
Runtime faults against ONE running node over real DDS, each followed by a good frame.

The node (`python -m bevformer_ros.node --autostart`, small random model, 160x90 images) runs as a
separate process for the whole module; this test publishes the six cameras, CameraInfo and odometry
itself (`SixCameraPublisher` on the probe's node) and decides every stamp and fault. For every case
it asserts that the node is alive, that the fault is reported (a /diagnostics entry seen since the
case began and, where the node logs one, the log line in the node's output) and that the next good
set is processed and published (its markers arrive). The cases run in order on one node: the first
one needs a camera whose CameraInfo never arrived.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import time

from bevformer_ros.data.params_file import write_params_file
from bevformer_ros.model.small_model import (
    SMALL_IMAGE_HEIGHT,
    SMALL_IMAGE_WIDTH,
    small_model_parameters,
)
from bevformer_ros.node import LOG_THROTTLE_S
from bevformer_ros.ros.process import GraphProbe, node_arguments, process_rss_mib, RosProcess
from bevformer_ros.tools.six_camera_publisher import (
    JUMP_M,
    SixCameraPublisher,
    WRONG_ODOM_FRAMES,
)
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from nav_msgs.msg import Odometry
import pytest
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

NS = '/robust'
NODE = f'{NS}/bevformer'
T0 = 1000.0  # seconds; far from 0 so that going back 100 s stays positive
STEP = 0.5  # stamp step of good frames (BEVFormer's 2 Hz keyframes)
CAMERA_TIMEOUT_S = 1.0  # well above scheduler stalls of a loaded 2-core CI machine
WARN = int.from_bytes(DiagnosticStatus.WARN, 'little')  # byte constants in rclpy
ERROR = int.from_bytes(DiagnosticStatus.ERROR, 'little')


def _stamp_s(msg):
    stamp = msg.markers[0].header.stamp
    return stamp.sec + stamp.nanosec * 1e-9


class Harness:
    """Publishes sets, watches the node's markers, /diagnostics and log."""

    def __init__(self, probe, node, rig):
        self.probe, self.node, self.rig = probe, node, rig
        self.stamp = T0
        self.markers = probe.subscribe(
            MarkerArray,
            f'{NODE}/markers',
            QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE),
        )
        self.diagnostics = probe.subscribe(DiagnosticArray, '/diagnostics', 50)
        self._diag_mark = 0
        self._log_mark = 0

    # -- inputs
    def next_stamp(self, step=STEP):
        self.stamp = round(self.stamp + step, 6)
        return self.stamp

    def publish(self, stamp, faults=None):
        self.rig.publish_set(round(stamp * 1e9), faults)
        self.probe.executor.spin_once(timeout_sec=0.0)

    def spin(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.probe.executor.spin_once(timeout_sec=max(0.0, min(0.02, end - time.monotonic())))

    # -- outputs
    def has_output(self, stamp):
        return any(abs(_stamp_s(m) - stamp) < 1e-6 for m in self.markers)

    def wait_output(self, stamp, timeout=15.0):
        self.probe.spin_until(
            lambda: self.has_output(stamp),
            timeout,
            f'markers stamped {stamp:.3f}',
            watch=[self.node],
        )

    def good_frame(self, step=STEP, attempts=1):
        """Publish a good set and wait for its markers; returns its stamp."""
        for attempt in range(attempts):
            stamp = self.next_stamp(step)
            self.publish(stamp)
            try:
                self.wait_output(stamp, timeout=15.0 if attempts == 1 else 3.0)
                return stamp
            except TimeoutError:
                if attempt == attempts - 1:
                    raise
        raise AssertionError('unreachable')

    # -- reports
    def mark(self):
        """Count reports from here on for the current case."""
        self._diag_mark = len(self.diagnostics)
        self._log_mark = len(self.log())

    def _statuses(self, suffix):
        for array in self.diagnostics[self._diag_mark:]:
            for status in array.status:
                if status.name.endswith(f': {suffix}'):
                    yield status

    def value(self, suffix, key):
        """Return the newest value of `key` in status `suffix` (any time), or None."""
        for array in reversed(self.diagnostics):
            for status in array.status:
                if status.name.endswith(f': {suffix}'):
                    return {kv.key: kv.value for kv in status.values}.get(key)
        return None

    def count(self, suffix, key):
        return int(self.value(suffix, key) or 0)

    def wait_status(self, suffix, predicate, what, timeout=10.0):
        """Return the first status `suffix` since `mark()` that satisfies `predicate`."""
        found = []

        def seen():
            for status in self._statuses(suffix):
                values = {kv.key: kv.value for kv in status.values}
                if predicate(
                    int.from_bytes(status.level, 'little')
                    if isinstance(status.level, bytes)
                    else int(status.level),
                    status.message,
                    values,
                ):
                    found.append(status)
                    return True
            return False

        try:
            self.probe.spin_until(
                seen, timeout, f'/diagnostics {suffix}: {what}', watch=[self.node]
            )
        except TimeoutError as exc:
            messages = sorted(
                {f'{status.level!r} {status.message}' for status in self._statuses(suffix)}
            )
            raise TimeoutError(f'{exc}\nstatuses seen: {messages}') from None
        return found[0]

    def wait_value(self, suffix, key, predicate, timeout=10.0):
        status = self.wait_status(
            suffix, lambda level, message, values: predicate(values.get(key)), f'{key!r}', timeout
        )
        return {kv.key: kv.value for kv in status.values}[key]

    def log(self):
        return self.node.log_path.read_text(errors='replace')

    def wait_log(self, text, timeout=5.0):
        """Return the node log line containing `text`, written since `mark()`."""

        def line():
            return next(
                (ln for ln in self.log()[self._log_mark:].splitlines() if text in ln), None
            )

        self.probe.spin_until(
            lambda: line() is not None, timeout, f'log line with {text!r}', watch=[self.node]
        )
        return line()


@pytest.fixture(scope='module')
def harness(module_ros_env, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('catalogue')
    params = small_model_parameters(
        outputs__score_threshold=0.0,
        diagnostics__period_s=0.5,
        sync__camera_timeout_s=CAMERA_TIMEOUT_S,
    )
    params_file = tmp / 'params.yaml'
    write_params_file(params_file, params)
    args = node_arguments(params_file, NS)
    with (
        RosProcess(args, module_ros_env, log_dir=tmp, name='bevformer') as node,
        GraphProbe('catalogue_probe') as probe,
    ):
        rig = SixCameraPublisher(probe.node, SMALL_IMAGE_WIDTH, SMALL_IMAGE_HEIGHT, namespace=NS)
        h = Harness(probe, node, rig)
        probe.spin_until(
            rig.subscribers_matched, 60.0, 'the node subscribing to the cameras', watch=[node]
        )
        probe.wait_for_topics([f'{NODE}/markers'], timeout=30.0, watch=[node])
        yield h
        assert node.poll() is None, node.describe()
    assert node.stop() == 0, node.describe()


# ------------------------------------------------------------------------------------------------
# cases
@dataclass(frozen=True)
class Case:
    name: str
    injected: str
    run: Callable[[Harness], str]  # returns how the fault was reported

    def __str__(self):
        return self.name


def skipped_frame(faults, kind, text, log_text=None):
    """
    Publish one set with `faults`: skipped as `kind`, reported with `text`, no output for it.

    `log_text` False: the log line may be held back by the throttle (the previous case logged the
    same problem).
    """

    def run(h):
        before = h.count('inference', f'skipped: {kind}')
        stamp = h.next_stamp()
        h.publish(stamp, faults)
        value = h.wait_value(
            'inference', 'last skipped frame', lambda v: v is not None and text in v
        )
        h.wait_value('inference', f'skipped: {kind}', lambda v: int(v or 0) > before)
        assert value.startswith(f'{kind}:'), value
        assert not h.has_output(stamp)
        if log_text is False:
            return f'diag inference "{value[:70]}"; log line throttled (same problem as before)'
        line = h.wait_log(log_text or text)
        return f'diag inference "{value[:70]}"; log "{_tail(line)}"'

    return run


def camera_info_missing(h):
    """Publish the first sets: CAM_BACK_LEFT has never published CameraInfo."""
    for _ in range(20):  # until the node hears this probe
        h.publish(h.next_stamp(), {'CAM_BACK_LEFT': 'noinfo'})
        try:
            value = h.wait_value(
                'inference',
                'last skipped frame',
                lambda v: v is not None and 'no CameraInfo yet' in v,
                timeout=2.0,
            )
            break
        except TimeoutError:
            continue
    else:
        raise AssertionError(f'no skip reported for the missing CameraInfo\n{h.node.describe()}')
    assert 'CAM_BACK_LEFT' in value and value.startswith('camera_info:')
    line = h.wait_log('no CameraInfo yet')
    h.good_frame(attempts=20)  # also waits until the node's publishers have discovered this probe
    return f'diag inference "{value}"; log "{_tail(line)}"'


def padded_rows(h):
    before = h.count('inference', 'frames skipped')
    stamp = h.next_stamp()
    h.publish(stamp, {'CAM_BACK': 'padded'})
    h.wait_output(stamp)
    assert h.count('inference', 'frames skipped') == before
    return 'works: the padded set itself is processed and published'


def camera_info_changes(h):
    before = h.count('cameras', 'camera_info changes')
    stamp = h.next_stamp()
    h.publish(stamp, {'CAM_FRONT': 'info_changed'})
    h.wait_output(stamp)  # a changed CameraInfo is used, not refused
    status = h.wait_status(
        'cameras',
        lambda level, message, values: (
            int(values['camera_info changes']) > before
            and values['last camera_info change'].startswith('CAM_FRONT: K')
        ),
        'the change',
    )
    value = {kv.key: kv.value for kv in status.values}['last camera_info change']
    line = h.wait_log('CameraInfo of CAM_FRONT changed mid-run')
    return f'used; diag cameras "{value[:60]}"; log "{_tail(line)}"'


def spread_too_wide(h):
    before = h.count('inputs', 'sets rejected for spread')
    stamp = h.next_stamp()
    h.publish(stamp, {'CAM_BACK': 'late'})
    status = h.wait_status(
        'inputs',
        lambda level, message, values: level == WARN and 'spread' in message,
        'spread warning',
    )
    assert h.count('inputs', 'sets rejected for spread') > before
    line = h.wait_log('camera stamps too far apart')
    assert not h.has_output(stamp)
    return f'diag inputs "{status.message}"; log "{_tail(line)}"'


def dropped_set(kind, offset):
    """Publish a good set, then one at its stamp + offset: dropped as `kind`."""

    def run(h):
        first = h.good_frame()
        before = h.count('inputs', f'sets dropped: {kind}')
        h.publish(round(first + offset, 6), None)
        value = h.wait_value('inputs', f'sets dropped: {kind}', lambda v: int(v or 0) > before)
        line = h.wait_log(f'{kind}: set')
        return f'diag inputs "sets dropped: {kind}" = {value}; log "{_tail(line)}"'

    return run


def history_reset(kind, step, faults=None):
    """Publish a set after a time or ego jump: processed, with the history reset as `kind`."""

    def run(h):
        before = h.count('temporal', f'resets: {kind}')
        stamp = h.next_stamp(step)
        h.publish(stamp, faults)
        h.wait_output(stamp)
        value = h.wait_value('temporal', f'resets: {kind}', lambda v: int(v or 0) > before)
        line = h.wait_log(f'temporal history reset: {kind}')
        return (
            f'processed, history reset; diag temporal "resets: {kind}" = {value}; '
            f'log "{_tail(line)}"'
        )

    return run


def nan_odometry(h):
    before = h.count('inputs', 'odometry messages rejected')
    report = skipped_frame({'odom': 'nan'}, 'ego_pose', 'ego pose', log_text='odometry rejected')(
        h
    )
    assert h.count('inputs', 'odometry messages rejected') > before
    return report + '; odometry rejected counted'


def camera_stops(h):
    camera = 'CAM_BACK_RIGHT'
    dropped = []
    deadline = time.monotonic() + 20.0
    # sets without the camera until three are processed
    while sum(h.has_output(s) for s in dropped) < 3:
        assert time.monotonic() < deadline, f'no output without {camera}\n{h.node.describe()}'
        dropped.append(h.next_stamp(0.1))
        h.publish(dropped[-1], {camera: 'drop'})
        h.spin(0.1)
    degraded = h.wait_status(
        'cameras',
        lambda level, message, values: (
            level == WARN and 'DEGRADED' in message and camera in message
        ),
        'DEGRADED naming the camera',
    )
    line = h.wait_log(f'cameras silent for over {CAMERA_TIMEOUT_S} s: {camera}')
    processed = sum(h.has_output(s) for s in dropped)
    h.mark()  # recovery: the camera publishes again
    deadline = time.monotonic() + 20.0
    recovered = []
    while True:
        assert time.monotonic() < deadline, (
            f'no recovery after {camera} returned\n{h.node.describe()}'
        )
        recovered.append(h.next_stamp(0.1))
        h.publish(recovered[-1])
        h.spin(0.1)
        ok = [s for s in h._statuses('cameras') if s.message == 'all 6 cameras in use']
        if ok and any(h.has_output(s) for s in recovered):
            break
    back = h.wait_log(f'cameras back: {camera}')
    return (
        f'{processed}/{len(dropped)} sets without it processed; '
        f'diag cameras "{degraded.message}"; log "{_tail(line)}"; '
        f'recovered: "{ok[0].message}", log "{_tail(back)}"'
    )


def camera_half_rate(h):
    camera = 'CAM_FRONT_LEFT'
    full, partial = [], []
    for i in range(40):  # stamps 0.1 s apart (more than the slop), sent every 0.04 s
        stamp = h.next_stamp(0.1)
        (full if i % 2 == 0 else partial).append(stamp)
        h.publish(stamp, None if i % 2 == 0 else {camera: 'drop'})
        h.spin(0.04)
    status = h.wait_status(
        'inputs',
        lambda level, message, values: level == WARN and camera in message and 'slower' in message,
        'slow camera warning',
    )
    h.spin(0.5)
    done = sum(h.has_output(s) for s in full)
    assert done > 0 and not any(h.has_output(s) for s in partial)
    return (
        f'{done}/{len(full)} complete sets processed, none without it; '
        f'diag inputs "{status.message}"'
    )


def burst(h):
    rss_before = process_rss_mib(h.node.pid)
    dropped_before = h.count('inputs', 'sets dropped (worker busy)')
    stamps = [h.next_stamp(0.1) for _ in range(60)]
    for stamp in stamps:  # back to back, far above the model's rate
        h.rig.publish_set(round(stamp * 1e9))
    h.wait_output(stamps[-1], timeout=20.0)  # latest wins
    h.spin(0.5)
    processed = sum(h.has_output(s) for s in stamps)
    h.mark()  # a status published after the newest output counts every drop of the burst
    value = h.wait_value('inputs', 'sets dropped (worker busy)', lambda v: v is not None)
    rss_after = process_rss_mib(h.node.pid)
    # Whatever the speed (a fast node keeps up, a slow one drops): a set is either processed or
    # counted as dropped, never both; sets lost before the sync are in neither.
    assert 0 <= int(value) - dropped_before <= len(stamps) - processed
    if rss_before is not None and rss_after is not None:
        assert rss_after - rss_before < 100.0, (rss_before, rss_after)
    return (
        f'newest of {len(stamps)} processed ({processed} in all); '
        f'diag inputs "sets dropped (worker busy)" = {value}; '
        f'node RSS {rss_before:.0f} -> {rss_after:.0f} MiB'
    )


def invalid_runtime_parameter(h):
    name = 'temporal.max_gap_s'
    setter = h.probe.node.create_client(SetParameters, f'{NODE}/set_parameters')
    getter = h.probe.node.create_client(GetParameters, f'{NODE}/get_parameters')
    reasons = []
    for value in (
        ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=-1.0),
        ParameterValue(type=ParameterType.PARAMETER_STRING, string_value='soon'),
    ):
        result = _call(
            h, setter, SetParameters.Request(parameters=[Parameter(name=name, value=value)])
        )
        assert not result.results[0].successful and name in result.results[0].reason
        reasons.append(result.results[0].reason)
    kept = _call(h, getter, GetParameters.Request(names=[name])).values[0]
    assert kept.type == ParameterType.PARAMETER_DOUBLE and kept.double_value == 1.5
    line = h.wait_log('parameter change rejected, old value kept')
    return f'rejected ("{reasons[0][:60]}"), {name} still {kept.double_value}; log "{_tail(line)}"'


def _outputs_after_jump(h, sets, faults=None):
    """Publish `sets` sets from 100 s back, each waited for; how many came out."""
    out = 0
    for k in range(sets):
        stamp = h.next_stamp(-100.0 if k == 0 else 0.1)
        h.publish(stamp, faults)
        try:
            h.wait_output(stamp, timeout=8.0)
            out += 1
        except TimeoutError:
            pass
    return out


def bag_loop_after_dropout(h):
    camera = 'CAM_FRONT_RIGHT'
    deadline = time.monotonic() + 20.0
    dropped = []
    while len(dropped) < 12 or sum(h.has_output(s) for s in dropped) < 1:
        assert time.monotonic() < deadline, f'no output without {camera}\n{h.node.describe()}'
        dropped.append(h.next_stamp(0.1))
        h.publish(dropped[-1], {camera: 'drop'})
        h.spin(0.1)
    out = _outputs_after_jump(h, 16)
    assert out >= 14, f'{out} of 16 sets after the jump\n{h.node.describe()}'
    line = h.wait_log('stamp went back in time')
    return f'{camera} missed {len(dropped)} sets, then -100 s: {out}/16 out; log "{_tail(line)}"'


def bag_loop_with_a_camera_silent(h):
    camera = 'CAM_BACK'
    deadline = time.monotonic() + 20.0
    dropped = []
    while sum(h.has_output(s) for s in dropped) < 3:
        assert time.monotonic() < deadline, f'no output without {camera}\n{h.node.describe()}'
        dropped.append(h.next_stamp(0.1))
        h.publish(dropped[-1], {camera: 'drop'})
        h.spin(0.1)
    out = _outputs_after_jump(h, 12, {camera: 'drop'})
    assert out >= 11, f'{out} of 12 five-camera sets after the jump\n{h.node.describe()}'
    return f'{camera} silent across a -100 s loop: {out}/12 five-camera sets out'


def stale_odometry(h):
    h.good_frame(step=0.1)
    newest = h.good_frame(step=0.1)
    key = 'odometry messages out of order (ignored)'
    before = h.count('inputs', key)
    stale = Odometry()
    stale.header.frame_id, stale.child_frame_id = 'odom', 'base_link'
    stale.header.stamp.sec, stale.header.stamp.nanosec = divmod(round((newest - 3.5) * 1e9), 10**9)
    stale.pose.pose.orientation.w = 1.0
    # The bag-loop cases before may have logged the same problem: the node logs it once per
    # LOG_THROTTLE_S, so repeat the stale message until the window has passed.
    deadline = time.monotonic() + LOG_THROTTLE_S + 10.0
    while True:
        h.rig.odom_pub.publish(stale)
        h.wait_value('inputs', key, lambda v: int(v or 0) > before)
        try:
            line = h.wait_log('older than the newest pose', timeout=1.0)
            break
        except TimeoutError:
            if time.monotonic() > deadline:
                raise
    # no odometry for the next set: its pose is extrapolated from the history, which must be there
    stamp = h.next_stamp(0.05)
    h.publish(stamp, {'odom': 'none'})
    h.wait_output(stamp)
    return f'rejected, history kept: {stamp:.2f} processed; log "{_tail(line)}"'


def odometry_wrong_frames(h):
    """Odometry named map -> imu_link, not odom -> base_link: used (README), warned once."""
    h.good_frame(attempts=20)  # when run alone (-k): until the node hears this probe
    h.mark()
    stamps = []
    for _ in range(3):
        stamps.append(h.next_stamp())
        h.publish(stamps[-1], {'odom': 'frames'})
        h.wait_output(stamps[-1])  # processed: the pose is used as the ego pose anyway
    frame_id, child = WRONG_ODOM_FRAMES
    line = h.wait_log(f'odometry is {frame_id!r} -> {child!r}')
    assert "'odom' -> 'base_link'" in line, line  # names the configured frames too
    assert h.log()[h._log_mark:].count('odometry is ') == 1  # throttled: one line, 3 messages
    return f'{len(stamps)}/3 sets processed; log once "{_tail(line, 90)}"'


def _rss_samples(h, rig, frames, step=STEP):
    """Publish `frames` good sets through `rig`, waiting for each; the node's RSS after each."""
    samples = []
    for _ in range(frames):
        stamp = h.next_stamp(step)
        rig.publish_set(round(stamp * 1e9))
        h.wait_output(stamp, timeout=30.0)
        samples.append(_private_rss_mib(h.node.pid))
    return samples


def _private_rss_mib(pid):
    """
    RSS less its shared pages (RssShmem) in MiB, or None.

    Fast DDS's shared-memory transport maps each publisher's fixed segment; bigger messages touch
    more of its pages, which stay mapped (bounded by the segment, shared with the publisher).
    """
    fields = {}
    try:
        with open(f'/proc/{pid}/status') as status:
            for line in status:
                key, _, rest = line.partition(':')
                if key in ('RssAnon', 'RssFile'):
                    fields[key] = int(rest.split()[0]) / 1024.0  # the kernel reports kB
    except OSError:
        return None
    return sum(fields.values()) if len(fields) == 2 else None


def image_size_change(h):
    """All cameras switch to 4x the size, then back: the node's RSS comes back."""
    big = SixCameraPublisher(
        h.probe.node, 4 * SMALL_IMAGE_WIDTH, 4 * SMALL_IMAGE_HEIGHT, namespace=NS
    )
    h.probe.spin_until(big.subscribers_matched, 30.0, 'the node hearing the big rig')
    warm = _rss_samples(h, h.rig, 12)
    if None in warm:
        pytest.skip('no RSS figures on this platform')
    before = warm[-6:]  # the last of the warm-up: the noise of an unchanged size
    noise = max(before) - min(before)
    bigger = _rss_samples(h, big, 6)
    after = _rss_samples(h, h.rig, 12)[-6:]
    grown = min(after) - max(before)
    margin = 5.0 + 2.0 * noise  # the 5 MiB on top of what the node moves by itself
    figures = (
        f'private RSS MiB at {SMALL_IMAGE_WIDTH}x{SMALL_IMAGE_HEIGHT} '
        f'{min(before):.1f}..{max(before):.1f} (noise {noise:.1f}), at 4x size peak '
        f'{max(bigger):.1f}, back {min(after):.1f}..{max(after):.1f}: {grown:+.1f} '
        f'(margin {margin:.1f})'
    )
    print(figures)
    assert grown <= margin, figures
    return figures


def reset_burst(h):
    client = h.probe.node.create_client(
        Trigger, f'{NODE}/reset', qos_profile=QoSProfile(depth=1000)
    )
    assert client.wait_for_service(timeout_sec=20.0), h.node.describe()
    futures = [client.call_async(Trigger.Request()) for _ in range(100)]
    try:
        h.probe.spin_until(
            lambda: all(f.done() for f in futures), 60.0, '100 reset answers', watch=[h.node]
        )
    except TimeoutError:
        pass
    answered = sum(f.done() and f.result().success for f in futures)
    h.probe.node.destroy_client(client)
    assert answered == 100, f'{answered} of 100 resets answered'
    return f'{answered}/100 answered'


def implausible_calibration(h):
    stamp = h.next_stamp()
    h.publish(stamp, {'CAM_FRONT': 'pp_outside'})
    status = h.wait_status(
        'inference',
        lambda level, message, values: level == ERROR and 'principal point' in message,
        'ERROR naming the principal point',
    )
    assert 'CAM_FRONT' in status.message and not h.has_output(stamp)
    return f'no inference; diag inference ERROR "{status.message[:70]}"'


def distortion_present(h):
    for _ in range(3):  # warned once, however many CameraInfo messages come
        stamp = h.next_stamp()
        h.publish(stamp, {'CAM_BACK': 'distorted'})
        h.wait_output(stamp)  # used: the images may well be rectified already
    line = h.wait_log('CameraInfo of CAM_BACK: rational_polynomial distortion')
    assert h.log()[h._log_mark:].count('CameraInfo of CAM_BACK: rational_polynomial') == 1
    return f'processed; log once "{_tail(line)}"'


def _call(h, client, request):
    assert client.wait_for_service(timeout_sec=20.0), h.node.describe()
    future = client.call_async(request)
    h.probe.spin_until(future.done, 20.0, type(request).__name__, watch=[h.node])
    return future.result()


def _tail(line, width=70):
    text = line.split(']: ', 1)[-1] if line else ''
    return text if len(text) <= width else text[: width - 3] + '...'


CASES = [
    Case('camera_info_missing', 'CAM_BACK_LEFT never sent CameraInfo', camera_info_missing),
    Case(
        'unsupported_encoding',
        'CAM_FRONT_LEFT mono16',
        skipped_frame({'CAM_FRONT_LEFT': 'encoding'}, 'image', 'mono16'),
    ),
    Case(
        'unknown_encoding',
        'CAM_FRONT yuv422',
        skipped_frame({'CAM_FRONT': 'yuv'}, 'image', 'yuv422'),
    ),
    Case(
        'image_vs_camera_info_size',
        'CAM_FRONT CameraInfo 320x180, image 160x90',
        skipped_frame({'CAM_FRONT': 'info_size'}, 'image', 'CameraInfo says 320x180'),
    ),
    Case(
        'cameras_disagree_on_size',
        'CAM_BACK_RIGHT image 80x45',
        skipped_frame(
            {'CAM_BACK_RIGHT': 'size'}, 'image', 'is 80x45 but the other cameras are 160x90'
        ),
    ),
    Case('padded_step', 'CAM_BACK rows padded by 7 bytes', padded_rows),
    Case(
        'truncated_data',
        'CAM_BACK data cut in half',
        skipped_frame({'CAM_BACK': 'truncated'}, 'image', 'image data is truncated'),
    ),
    Case(
        'zero_size_image',
        'CAM_FRONT_RIGHT 0x0',
        skipped_frame({'CAM_FRONT_RIGHT': 'zero'}, 'image', 'zero size'),
    ),
    Case(
        'nan_in_K',
        'CAM_BACK_LEFT K fx = NaN',
        skipped_frame(
            {'CAM_BACK_LEFT': 'k_nan'}, 'camera_info', 'NaN or inf', 'CAM_BACK_LEFT): CameraInfo.k'
        ),
    ),
    Case(
        'inf_in_K',
        'CAM_FRONT K cx = inf',
        skipped_frame(
            {'CAM_FRONT': 'k_inf'}, 'camera_info', 'NaN or inf', 'CAM_FRONT): CameraInfo.k'
        ),
    ),
    Case('camera_info_changes', 'CAM_FRONT K x1.1, then back', camera_info_changes),
    Case('stamps_spread_too_wide', 'CAM_BACK stamped 70 ms late', spread_too_wide),
    Case(
        'duplicated_stamp', 'a set repeats the previous stamp', dropped_set('duplicate_stamp', 0.0)
    ),
    Case(
        'out_of_order_stamps',
        'a set 0.1 s older than the previous',
        dropped_set('out_of_order', -0.1),
    ),
    Case(
        'backwards_time_jump',
        'stamps jump back 100 s (bag loop)',
        history_reset('time_backwards', -100.0),
    ),
    Case('forward_gap_minutes', 'stamps jump ahead 180 s', history_reset('gap', 180.0)),
    Case(
        'implausible_ego_jump',
        f'odometry {JUMP_M:.0f} m off the trajectory',
        history_reset('ego_jump', STEP, {'odom': 'jump'}),
    ),
    Case('nan_odometry', 'odometry position NaN', nan_odometry),
    Case(
        'odometry_missing',
        'no odometry for a set',
        skipped_frame(
            {'odom': 'none'}, 'ego_pose', 'newer than the newest ego pose', log_text=False
        ),
    ),
    Case('camera_stops', 'CAM_BACK_RIGHT stops, then returns', camera_stops),
    Case('camera_half_rate', 'CAM_FRONT_LEFT in every other set', camera_half_rate),
    Case('burst_above_processing_rate', '60 sets back to back', burst),
    Case(
        'bag_loop_after_dropout',
        'CAM_FRONT_RIGHT misses 12 sets, then stamps jump back 100 s',
        bag_loop_after_dropout,
    ),
    Case(
        'bag_loop_with_a_camera_silent',
        'CAM_BACK silent, stamps jump back 100 s',
        bag_loop_with_a_camera_silent,
    ),
    Case('stale_odometry', 'one odometry message 3.5 s older than the newest', stale_odometry),
    Case('reset_burst', '100 ~/reset requests at once', reset_burst),
    Case(
        'odometry_wrong_frames',
        "odometry 'map' -> 'imu_link', configured 'odom' -> 'base_link'",
        odometry_wrong_frames,
    ),
    Case('image_size_change', 'all cameras 4x the size for 6 sets, then back', image_size_change),
    Case('principal_point_outside', 'CAM_FRONT cx = 10 widths', implausible_calibration),
    Case('distortion_present', 'CAM_BACK rational_polynomial, d != 0', distortion_present),
    Case(
        'invalid_runtime_parameter',
        'set temporal.max_gap_s to -1.0 and to a string',
        invalid_runtime_parameter,
    ),
]


@pytest.mark.parametrize('case', CASES, ids=str)
def test_fault_is_survived_reported_and_followed_by_output(harness, catalogue, case):
    started = time.monotonic()
    reported, next_frame, outcome = '-', '-', 'FAIL'
    try:
        harness.mark()
        reported = case.run(harness)
        assert harness.node.poll() is None, harness.node.describe()
        next_frame = f'{harness.good_frame():.1f} published'
        outcome = 'PASS'
    except BaseException as exc:
        reported = (
            reported
            if reported != '-'
            else f'{type(exc).__name__}: {str(exc).splitlines()[0][:80]}'
        )
        raise
    finally:
        catalogue.record(
            case.name, case.injected, reported, next_frame, outcome, time.monotonic() - started
        )
