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
`bevformer`: the six-camera BEVFormer ROS 2 node (rclpy lifecycle node with a plain-node mode).

Lifecycle: configure parses the parameters (`NodeConfig`), loads the rig and the model and creates
the publishers, the `~/reset` service and the diagnostics timer; activate subscribes (six cameras
through an approximate-time synchronizer, CameraInfo, odometry) and starts the worker; deactivate
stops both; cleanup frees the model and the GPU cache. `--autostart` (or the `autostart` parameter)
runs configure + activate.

Frames: the node only wires subscriptions, TF and QoS to a `FrameAssembler` (shared with bag
replay), which synchronizes the cameras, keeps the CameraInfo, the ego poses and the extrinsics,
and turns each set into the `FrameSet` that `Pipeline.run` takes.

Threads: the executor runs only cheap callbacks. The synchronizer callback puts the set into a
latest-wins slot; a worker thread takes the newest set, assembles its frame and runs
`Pipeline.run`; a publisher thread takes the newest result from a second slot and publishes it. A
slow model lowers the output rate (counted as dropped sets) and never stalls the subscriptions.

Bad input never stops the node: a set is formed by the synchronizer, or by `DropoutAssembler` from
the live cameras while some are silent; `SpreadGuard` and `OrderGuard` drop sets that spread too
wide, repeat a stamp or come out of order; a frame without an ego pose, CameraInfo or calibration
is skipped (`EgoMotionError`, `FrameError`). Each is counted in /diagnostics and logged once per
problem per LOG_THROTTLE_S (`LogThrottle`).

Topics (relative names follow the namespace; remap them like any other):
  in:  cameras.image_topics (sensor_msgs/Image, or CompressedImage on <topic>/compressed),
       cameras.info_topics (sensor_msgs/CameraInfo), ego_motion.odom_topic (nav_msgs/Odometry)
       or TF
  out: ~/markers (MarkerArray), ~/detections (vision_msgs/Detection3DArray, where installed),
       ~/bev_features (Image 32FC<C>: row r, column c is the BEV cell at
       y = (r + 0.5) / bev_h * 102.4 - 51.2, x = (c + 0.5) / bev_w * 102.4 - 51.2 in
       outputs.frame_id), ~/bev_image (rgb8, forward up), ~/overlay (rgb8,
       outputs.publish_overlay: the cameras with the boxes projected, the bird's-eye view),
       /diagnostics (DiagnosticArray); all stamped with the synchronized image stamp.
  srv: ~/reset (std_srvs/Trigger) drops the temporal history before the next frame.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
import signal
import socket
import threading
import time
from typing import Any

from bevformer_ros import optional_ros
from bevformer_ros.config import is_runtime_parameter, NodeConfig, NodeConfigError, PARAMETERS
from bevformer_ros.core.bev_image import bev_to_rgb
from bevformer_ros.core.calibration import (
    distortion_note,
    Extrinsics,
    extrinsics_from_transform,
)
from bevformer_ros.core.ego_motion import EgoMotionError, StalePoseError
from bevformer_ros.core.heap_trim import pin_malloc_thresholds
from bevformer_ros.core.markers import BoxMarker, build_box_markers
from bevformer_ros.core.rig import load_rig, Rig
from bevformer_ros.frontend.assembler import FrameAssembler, ODOMETRY_WAIT_S, skip_kind
from bevformer_ros.frontend.image_codec import numpy_to_imgmsg
from bevformer_ros.frontend.sync import select_backend, set_stamp_ns
from bevformer_ros.model.build import BuiltModel
from bevformer_ros.model.passing_thread import call_in_passing_thread
from bevformer_ros.pipeline import FrameError, FrameSet, Pipeline, PipelineResult
from bevformer_ros.resources import config_file
from bevformer_ros.ros import convert as ros_convert
from bevformer_ros.ros import marker_cdr
from bevformer_ros.ros.health import NodeHealth
from bevformer_ros.ros.latest_slot import LatestSlot, SlotClosedError
from bevformer_ros.ros.log_throttle import LogThrottle
from bevformer_ros.viz.overlay import render_frame
from bevformer_ros.viz.result_view import result_view
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry
import numpy as np
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
import rclpy
from rclpy.clock import Clock, ClockType, JumpThreshold, TimeJump
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
import rclpy.time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_srvs.srv import Trigger
import torch
from visualization_msgs.msg import MarkerArray

NODE_NAME = 'bevformer'
LOG_THROTTLE_S = 5.0
RESET_QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)


class BevformerNode(LifecycleNode):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        for p in PARAMETERS:
            self.declare_parameter(
                p.name,
                p.default,
                ParameterDescriptor(
                    description=p.description,
                    # typed by NodeConfig, so that a bad value gets its message naming the
                    # allowed values (and an int is accepted where a float is expected)
                    dynamic_typing=True,
                    additional_constraints=p.constraints,
                ),
            )
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.config: NodeConfig | None = None
        self.pipeline: Pipeline | None = None
        self.health: NodeHealth | None = None
        self._rig: Rig | None = None
        self._pubs: dict[str, Any] = {}
        self._subs: list[Any] = []
        self._assembler: FrameAssembler | None = None  # messages -> frames, from configure on
        self._missing_logged: tuple[str, ...] = ()
        self._throttle = LogThrottle(LOG_THROTTLE_S)
        self._slot: LatestSlot | None = None  # synchronized sets -> inference thread
        self._out_slot: LatestSlot | None = None  # results -> publishing thread
        self._threads: list[threading.Thread] = []
        self._tf_buffer: Any = None
        # service, timer, jump handle: destroyed at cleanup
        self._configured_extras: list[Any] = []
        self._published_once = False
        self._marker_encoder: marker_cdr.MarkerArrayEncoder | None = None  # else rclpy messages
        self._last_reset_kind = ''
        self.shut_down = False  # the lifecycle shutdown transition happened
        self._distortion_warned: set[str] = set()  # cameras warned about distortion

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.config = NodeConfig.from_parameters(self._parameter_values())
            self._rig = self._load_rig(self.config)
            # Torch computes on the inference thread only: see model/passing_thread.
            call_in_passing_thread(self._load_pipeline, self.config, name='bevformer_load')
            self._assembler = self._make_assembler(self.config)
        except Exception as exc:
            # every configure problem is the user's to fix: say what, stay unconfigured
            self.get_logger().error(f'configure failed: {exc}')
            self._release()
            return TransitionCallbackReturn.FAILURE
        self._create_outputs(self.config)
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        # publishers first, so that the worker's first output goes out
        result = super().on_activate(state)
        cfg = self.config
        try:
            self._slot, self._out_slot = LatestSlot(), LatestSlot()
            self._subscribe(cfg)
        except Exception as exc:
            self.get_logger().error(f'activate failed: {exc}')
            self._stop_inputs()
            return TransitionCallbackReturn.FAILURE
        # Two threads, so that building and serializing messages overlaps the next forward pass.
        self._threads = [
            threading.Thread(
                target=self._drain,
                args=(self._slot, self._process),
                name='bevformer_infer',
                daemon=True,
            ),
            threading.Thread(
                target=self._drain,
                args=(self._out_slot, self._emit),
                name='bevformer_publish',
                daemon=True,
            ),
        ]
        for thread in self._threads:
            thread.start()
        topics = ', '.join(
            self.resolve_topic_name(t) for t in cfg.cameras.subscribed_image_topics()
        )
        count = len(cfg.cameras.names)
        self.get_logger().info(f'active: waiting for {count} synchronized cameras on {topics}')
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_inputs()
        if self.pipeline is not None:
            self.pipeline.release_buffers()  # the history would be stale on reactivation anyway
        _empty_gpu_cache()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_inputs()
        self._release()
        self.shut_down = True  # main() leaves its spin loop and the process exits
        return super().on_shutdown(state)

    # ------------------------------------------------------------------ configure helpers
    def _parameter_values(self) -> dict[str, Any]:
        return {p.name: self.get_parameter(p.name).value for p in PARAMETERS}

    def _load_rig(self, cfg: NodeConfig) -> Rig:
        name = cfg.calibration.rig_yaml
        rig = load_rig(config_file(name) if '/' not in name else Path(name))
        missing = [c for c in cfg.cameras.names if c not in rig.camera_names]
        if missing and not self._tf_possible(cfg):
            raise ValueError(
                f'rig {name} has no camera {missing}; add them or name the rig cameras in '
                'cameras.names'
            )
        if rig.reference_frame != cfg.outputs.frame_id and not self._tf_possible(cfg):
            raise ValueError(
                f'outputs.frame_id={cfg.outputs.frame_id!r} but the rig {name} gives extrinsics '
                f'relative to {rig.reference_frame!r}; set '
                f'outputs.frame_id:={rig.reference_frame} or provide TF'
            )
        return rig

    def _tf_possible(self, cfg: NodeConfig) -> bool:
        return cfg.calibration.use_tf and optional_ros.available('tf2_ros')

    def _load_pipeline(self, cfg: NodeConfig) -> None:
        if cfg.ego_motion.source == 'tf' and not optional_ros.available('tf2_ros'):
            raise ValueError(
                'ego_motion.source is tf but tf2_ros is not importable; install '
                'ros-$ROS_DISTRO-tf2-ros or use ego_motion.source:=odom'
            )
        started = time.perf_counter()
        self.pipeline = Pipeline.from_settings(cfg)
        choice, device = self.pipeline.built, self.pipeline.device
        if choice.from_checkpoint:
            ignored = f'; {", ".join(choice.ignored)} ignored' if choice.ignored else ''
            self.get_logger().info(
                f'model architecture: the one stored in {choice.checkpoint} (trained by '
                f'bevformer_train){ignored}'
            )
        self.health = NodeHealth(
            self.get_name(),
            cfg.cameras.names,
            min_cameras=cfg.sync.min_cameras,
            camera_timeout_s=cfg.sync.camera_timeout_s,
        )
        weights = (
            str(choice.checkpoint)
            if choice.checkpoint
            else f'RANDOM weights (seed {cfg.model.seed})'
        )
        precision = f'{cfg.model.backend} {cfg.model.precision}'
        self.get_logger().info(
            f'model {_architecture_name(cfg, choice)} on {device} ({precision}), BEV '
            f'{self.pipeline.bev_shape}, weights: {weights}, '
            f'loaded in {time.perf_counter() - started:.1f} s'
        )
        if not cfg.model.checkpoint:
            self.get_logger().warning(
                'no model.checkpoint: running with seeded RANDOM weights. The '
                'detections and BEV features MEAN NOTHING; pass '
                '-p model.checkpoint:=<file.pth>'
            )
            self.health.warnings['weights'] = (
                'random weights (no model.checkpoint): detections mean nothing'
            )
        if self._tf_possible(cfg) or cfg.ego_motion.source == 'tf':
            import tf2_ros

            self._tf_buffer = tf2_ros.Buffer()
            self._configured_extras.append(tf2_ros.TransformListener(self._tf_buffer, self))

    def _make_assembler(self, cfg: NodeConfig) -> FrameAssembler:
        tf = self._tf_buffer is not None
        return FrameAssembler(
            cfg,
            self._rig,
            calibration=self._tf_extrinsics if tf else None,
            ego_transform=self._tf_transform if tf else None,
            on_info=self.get_logger().info,
        )

    def _create_outputs(self, cfg: NodeConfig) -> None:
        reliable = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        self._pubs = {
            'markers': self.create_lifecycle_publisher(MarkerArray, '~/markers', 5),
            'bev_features': self.create_lifecycle_publisher(Image, '~/bev_features', reliable),
            'bev_image': self.create_lifecycle_publisher(Image, '~/bev_image', reliable),
            'overlay': self.create_lifecycle_publisher(Image, '~/overlay', reliable),
            'diagnostics': self.create_publisher(DiagnosticArray, '/diagnostics', 10),
        }
        self._marker_encoder, why_not = marker_cdr.checked_encoder()
        if self._marker_encoder is None:
            self.get_logger().info(f'{why_not}; markers go through rclpy messages')
        if optional_ros.available('vision_msgs'):
            from vision_msgs.msg import Detection3DArray

            self._pubs['detections'] = self.create_lifecycle_publisher(
                Detection3DArray, '~/detections', 5
            )
        self._configured_extras += [
            # deep request queue: a burst of resets must all be answered (the default keeps 10)
            self.create_service(Trigger, '~/reset', self._on_reset, qos_profile=RESET_QOS),
            # wall time: under use_sim_time the node clock stops with the bag, status must not
            self.create_timer(
                cfg.diagnostics.period_s,
                self._publish_diagnostics,
                clock=Clock(clock_type=ClockType.STEADY_TIME),
            ),
            self.get_clock().create_jump_callback(
                JumpThreshold(min_forward=None, min_backward=Duration(nanoseconds=-1)),
                post_callback=self._on_clock_jump,
            ),
        ]

    def _release(self) -> None:
        for name, pub in self._pubs.items():
            if name == 'diagnostics':
                self.destroy_publisher(pub)
            else:
                self.destroy_lifecycle_publisher(pub)
        self._pubs = {}
        for extra in self._configured_extras:
            destroy = {'Service': self.destroy_service, 'Timer': self.destroy_timer}.get(
                type(extra).__name__
            )
            if destroy is not None:
                destroy(extra)
            elif hasattr(extra, 'unregister'):  # JumpHandle
                extra.unregister()
        self._configured_extras = []
        self._tf_buffer = None
        self.pipeline = None
        self._assembler = None
        _empty_gpu_cache()

    # ------------------------------------------------------------------ activate helpers
    def _subscribe(self, cfg: NodeConfig) -> None:
        qos = QoSProfile(
            depth=cfg.qos.depth,
            history=HistoryPolicy.KEEP_LAST,
            reliability=ReliabilityPolicy.BEST_EFFORT
            if cfg.qos.reliability == 'best_effort'
            else ReliabilityPolicy.RELIABLE,
        )
        # CameraInfo and odometry first: the executor serves ready subscriptions in creation order,
        # so a set
        # finds the CameraInfo and odometry published just before it.
        self._subs = [
            self.create_subscription(CameraInfo, topic, self._info_callback(i), qos)
            for i, topic in enumerate(cfg.cameras.info_topics)
        ]
        if cfg.ego_motion.source == 'odom':
            odom_qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
            self._subs.append(
                self.create_subscription(
                    Odometry, cfg.ego_motion.odom_topic, self._on_odometry, odom_qos
                )
            )
        backend = select_backend()
        image_type = CompressedImage if cfg.cameras.compressed else Image
        filters = [
            backend.Subscriber(self, image_type, topic, qos_profile=qos)
            for topic in cfg.cameras.subscribed_image_topics()
        ]
        self._assembler.connect(
            filters,
            backend.ApproximateTimeSynchronizer,
            self._on_synchronized,
            on_spread_rejected=self._on_spread_rejected,
            on_set_dropped=self._on_set_dropped,
            on_time_jump=self._on_stamp_jump,
        )
        self._subs += [f.sub for f in filters]
        self.get_logger().info(
            f'synchronizer: {backend.name}, slop {cfg.sync.slop} s, max spread '
            f'{cfg.sync.max_spread} s, {cfg.qos.reliability} QoS depth {cfg.qos.depth}; '
            f'a camera silent for {cfg.sync.camera_timeout_s} s is left out (at least '
            f'{cfg.sync.min_cameras} cameras)'
        )

    def _stop_inputs(self) -> None:
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        if self._assembler is not None:
            self._assembler.disconnect()
        self._missing_logged = ()
        for slot in (self._slot, self._out_slot):
            if slot is not None:
                slot.close()
        for thread in self._threads:
            thread.join(timeout=30.0)
        self._threads = []

    # ------------------------------------------------------------------ callbacks (executor
    # thread, cheap)
    def _info_callback(self, index: int) -> Any:
        name = self.config.cameras.names[index]

        def store(msg: CameraInfo) -> None:
            note = None if self.config.cameras.rectified else distortion_note(msg)
            if note is not None and name not in self._distortion_warned:
                self._distortion_warned.add(name)  # once per camera, not per message
                self.get_logger().warning(f'CameraInfo of {name}: {note}')
            change = self._assembler.camera_info(index, msg)
            if change is not None:
                self.health.camera_info_changed(name, change)
                self._log_problem(
                    f'CameraInfo of {name} changed mid-run ({change}); using the new one'
                )

        return store

    def _on_synchronized(self, *images: Any) -> None:
        self._slot.put((time.monotonic(), images))  # arrival: processing latency starts here

    def _on_spread_rejected(self, detail: str) -> None:
        self._log_problem(f'camera stamps too far apart: {detail}')

    def _on_set_dropped(self, reason: str, detail: str) -> None:
        self.health.set_dropped(reason, detail)
        self._log_problem(f'{reason}: {detail}')

    def _on_odometry(self, msg: Odometry) -> None:
        note = self._assembler.odometry_frames_note(msg)
        if note is not None:
            self._log_problem(note)  # throttled: one line per 5 s, not one per message
        try:
            self._assembler.add_odometry(msg)
        except StalePoseError as exc:  # the history stays; a bag loop confirms itself
            self.health.odometry_out_of_order()
            self._log_problem(f'odometry ignored: {exc}')
        except EgoMotionError as exc:
            self.health.odometry_rejected()
            self._log_problem(f'odometry rejected: {exc}')

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self.pipeline is None:
            response.success, response.message = False, 'not configured'
            return response
        self.pipeline.request_reset('~/reset service')
        if self._assembler is not None:
            self._assembler.restart()  # the sets waiting in the queues belong to the old sequence
        response.success, response.message = (
            True,
            'temporal history is dropped before the next frame',
        )
        return response

    def _on_clock_jump(self, jump: TimeJump) -> None:
        if self.pipeline is not None and jump.delta.nanoseconds < 0:
            self.pipeline.request_reset('ROS clock jumped back')
            self._assembler.clear_queues()

    def _on_stamp_jump(self, text: str) -> None:
        # the pipeline's reset rules see the stamp going back and reset as time_backwards
        self.get_logger().info(text)

    def _on_set_parameters(self, params: list[Any]) -> SetParametersResult:
        values = self._parameter_values()
        values.update({p.name: p.value for p in params if p.name in values})
        try:
            new = NodeConfig.from_parameters(values)
        except NodeConfigError as exc:
            return self._reject_parameters(str(exc))
        fixed = [p.name for p in params if p.name in values and not is_runtime_parameter(p.name)]
        if fixed and self.pipeline is not None:
            return self._reject_parameters(
                f'{", ".join(fixed)} apply at configure: deactivate and clean up the node first'
            )
        if self.pipeline is not None:
            self._apply_runtime_parameters(new)
        return SetParametersResult(successful=True)

    def _apply_runtime_parameters(self, new: NodeConfig) -> None:
        """Hand a validated config to the objects that hold the runtime parameters."""
        self.config = new  # outputs.*: read from self.config for every frame
        self.pipeline.set_temporal(new.temporal)  # temporal.*
        if self._assembler is not None:
            self._assembler.set_max_spread(new.sync.max_spread)  # sync.max_spread

    def _reject_parameters(self, reason: str) -> SetParametersResult:
        self.get_logger().warning(f'parameter change rejected, old value kept: {reason}')
        return SetParametersResult(successful=False, reason=reason)

    def _publish_diagnostics(self) -> None:
        if self.health is None:
            return
        liveness = self._assembler.liveness() if self._assembler is not None else None
        if liveness is not None:
            self._log_camera_changes(
                [n for n, s in zip(self.health.camera_names, liveness.silent) if s]
            )
        stats = self._assembler.sync_stats() if self._assembler is not None else None
        reports = self.health.report(
            received=stats.received if stats else [0] * len(self.health.camera_names),
            dropped_sets=self._slot.stats().dropped if self._slot is not None else 0,
            dropped_outputs=self._out_slot.stats().dropped if self._out_slot is not None else 0,
            rejected_spread=stats.rejected_spread if stats else 0,
            last_spread_s=stats.last_spread_s if stats else None,
            temporal_enabled=self.config.temporal.enabled,
            liveness=liveness,
        )
        statuses = [
            ros_convert.diagnostic_status(
                r.name, r.level, r.message, r.values, hardware_id=self._hardware_id()
            )
            for r in reports
        ]
        self._pubs['diagnostics'].publish(
            ros_convert.diagnostic_array(statuses, self.get_clock().now())
        )

    def _hardware_id(self) -> str:
        """Return host/device the model runs on (diagnostic aggregators group by it)."""
        device = getattr(self.pipeline, 'device', None)
        return f'{socket.gethostname()}/{device if device is not None else "unconfigured"}'

    def _log_camera_changes(self, missing: Sequence[str]) -> None:
        """One line when the set of silent cameras changes (not once per frame)."""
        missing = tuple(missing)
        if missing == self._missing_logged:
            return
        if missing:
            live = len(self.health.camera_names) - len(missing)
            outcome = (
                f'DEGRADED: detecting with the {live} others'
                if live >= self.config.sync.min_cameras
                else f'no output: fewer than sync.min_cameras={self.config.sync.min_cameras} left'
            )
            self.get_logger().warning(
                f'cameras silent for over {self.config.sync.camera_timeout_s} s: '
                f'{", ".join(missing)}; {outcome}'
            )
        else:
            self.get_logger().info(
                f'cameras back: {", ".join(self._missing_logged)}; all '
                f'{len(self.health.camera_names)} cameras in use again'
            )
        self._missing_logged = missing

    def _log_problem(self, text: str, error: bool = False) -> None:
        line = self._throttle.allow(text)
        if line is not None:
            (self.get_logger().error if error else self.get_logger().warning)(line)

    # ------------------------------------------------------------------ worker threads
    @staticmethod
    def _drain(slot: LatestSlot, handle: Any) -> None:
        while True:
            try:
                item = slot.get(timeout=0.5)
            except SlotClosedError:
                return
            if item is not None:
                handle(item)

    def _process(self, item: tuple[float, Sequence[Any]]) -> None:
        received, images = item
        stamp = set_stamp_ns(images)  # the reference camera's (or the first present one's) stamp
        try:
            frame = self._assembler.frame(images, wait_s=ODOMETRY_WAIT_S)
            want_bev = (
                self._wants('bev_features') or self._wants('bev_image') or self._wants('overlay')
            )
            result = self.pipeline.run(frame, want_bev=want_bev)
        except (FrameError, EgoMotionError) as exc:
            kind = skip_kind(exc)
            self.health.frame_skipped(kind, str(exc))
            self._log_problem(f'frame {stamp * 1e-9:.3f} skipped ({kind}): {exc}')
            return
        except Exception as exc:
            # a bug or an exhausted GPU must not kill the node: report it, go on
            self.health.frame_skipped('internal_error', repr(exc))
            self._log_problem(f'frame {stamp * 1e-9:.3f} failed: {exc!r}', error=True)
            return
        self._log_reset(result.reset)
        self._out_slot.put((frame, result, received))

    def _emit(self, item: tuple[FrameSet, PipelineResult, float]) -> None:
        frame, result, received = item
        started = time.perf_counter()
        try:
            self._publish(frame, result)
        except Exception as exc:  # e.g. a message field out of range: report, keep going
            self.health.frame_skipped('internal_error', repr(exc))
            self._log_problem(f'publishing failed: {exc!r}', error=True)
            return
        timings = dict(result.timings, publish=time.perf_counter() - started)
        end_to_end = (self.get_clock().now().nanoseconds - result.stamp_ns) * 1e-9
        self.health.frame_processed(
            timings,
            end_to_end,
            result.missing_cameras,
            processing_s=time.monotonic() - received,
        )
        if not self._published_once:
            self._published_once = True
            self.get_logger().info(
                f'first output published (model {timings["model"] * 1e3:.0f} ms)'
            )

    # ------------------------------------------------------------------ TF for the assembler
    def _tf_extrinsics(self, target: str, source: str) -> Extrinsics:
        """Camera extrinsics from the latest TF (static mounting); raises when TF has none."""
        transform = self._tf_buffer.lookup_transform(target, source, rclpy.time.Time())
        return extrinsics_from_transform(transform)

    def _tf_transform(self, target: str, source: str, stamp_ns: int, timeout_s: float) -> Any:
        """Return the TransformStamped source -> target at `stamp_ns`; raise when TF has none."""
        return self._tf_buffer.lookup_transform(
            target,
            source,
            rclpy.time.Time(nanoseconds=stamp_ns),
            timeout=Duration(seconds=timeout_s),
        )

    def _log_reset(self, reset: Any) -> None:
        if reset is None:
            self._last_reset_kind = ''
            return
        self.health.temporal_reset(reset.kind)
        if not (reset.kind == 'disabled' and self._last_reset_kind == 'disabled'):
            self.get_logger().info(f'temporal history reset: {reset}')
        self._last_reset_kind = reset.kind

    # ------------------------------------------------------------------ outputs
    def _wants(self, name: str) -> bool:
        pub = self._pubs.get(name)
        enabled = getattr(self.config.outputs, f'publish_{name}', True)
        return pub is not None and enabled and pub.get_subscription_count() > 0

    def _publish_markers(self, boxes: list[BoxMarker], frame_id: str, stamp_ns: int) -> None:
        if self._marker_encoder is not None:
            try:  # serialized bytes: 3x cheaper than building and converting Marker objects
                self._pubs['markers'].publish(
                    self._marker_encoder.encode(boxes, frame_id, stamp_ns)
                )
                return
            except TypeError:  # an rclpy without publish(bytes)
                self._marker_encoder = None
                self.get_logger().info('rclpy cannot publish bytes; markers go through messages')
        self._pubs['markers'].publish(ros_convert.marker_array(boxes, frame_id, stamp_ns))

    def _publish(self, frame: FrameSet, result: PipelineResult) -> None:
        out = self.config.outputs
        header = ros_convert.header_msg(out.frame_id, result.stamp_ns)
        if self._wants('markers') or self._wants('detections'):
            boxes = build_box_markers(
                result.boxes,
                result.scores,
                result.labels,
                out.score_threshold,
                out.max_markers,
                self.pipeline.cfg.class_names,
            )
            if self._wants('markers'):
                self._publish_markers(boxes, out.frame_id, result.stamp_ns)
            if self._wants('detections'):
                self._pubs['detections'].publish(
                    ros_convert.detection3d_array(boxes, out.frame_id, result.stamp_ns)
                )
        if result.bev is not None and self._wants('bev_features'):
            self._pubs['bev_features'].publish(bev_features_msg(result.bev, header))
        if result.bev is not None and self._wants('bev_image'):
            picture = bev_to_rgb(result.bev, out.bev_image_mode)  # [H, W, 3] uint8, forward up
            self._pubs['bev_image'].publish(numpy_to_imgmsg(picture, 'rgb8', header))
        if self._wants('overlay'):
            notes = (
                [] if self.config.model.checkpoint else ['RANDOM weights: the boxes mean nothing']
            )
            view = result_view(
                frame,
                result,
                out.score_threshold,
                out.max_markers,
                self.get_fully_qualified_name(),
                notes,
            )
            # [2 tile_h, 3 tile_w + 2 tile_h, 3] uint8
            picture = render_frame(view, out.overlay_tile_width)
            self._pubs['overlay'].publish(numpy_to_imgmsg(picture, 'rgb8', header))


def _architecture_name(cfg: NodeConfig, choice: BuiltModel) -> str:
    if choice.from_checkpoint:
        b, h = choice.cfg.backbone, choice.cfg.head
        backbone = f'ResNet-{b.depth} width {b.base_channels}' if b is not None else 'no backbone'
        return (
            f'from the checkpoint ({backbone}, {h.num_encoder_layers} encoder / '
            f'{h.num_decoder_layers} decoder layers, {h.num_query} queries)'
        )
    if cfg.model.official_config_json:
        return f'from {cfg.model.official_config_json}'
    return cfg.model.preset + (' (overridden sizes)' if cfg.model.overrides.any() else '')


def _empty_gpu_cache() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def bev_features_msg(bev_hwc: np.ndarray, header: Any) -> Image:
    """
    Build the sensor_msgs/Image `32FC<C>` of the BEV [H, W, C] float32.

    Rows +y, columns +x (module docstring).
    """
    height, width, channels = bev_hwc.shape
    msg = Image(
        header=header,
        height=height,
        width=width,
        encoding=f'32FC{channels}',
        is_bigendian=int(np.little_endian is False),
        step=width * channels * 4,
    )
    msg.data = np.ascontiguousarray(bev_hwc, dtype=np.float32).tobytes()
    return msg


def main(argv: Sequence[str] | None = None) -> int:
    args = rclpy.utilities.remove_ros_args(argv)
    parser = argparse.ArgumentParser(prog='bevformer_node', description=__doc__.split('\n')[0])
    parser.add_argument('--autostart', action='store_true', help='configure and activate at start')
    options = parser.parse_args(args[1:])
    pin_malloc_thresholds()  # RSS after an image size change independent of history
    rclpy.init(args=argv)
    _interrupt_once()
    node = BevformerNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    code = 0
    try:
        if options.autostart or node.get_parameter('autostart').value:
            # A configure/activate failure was logged with its reason: exit non-zero so that a
            # launch system or a supervisor sees it, instead of idling unconfigured.
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                return 1
            if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                return 1
        _spin(executor, node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node._stop_inputs()
        node.destroy_node()
        rclpy.try_shutdown()
    return code


def _interrupt_once() -> None:
    """
    Turn the first SIGINT or SIGTERM into KeyboardInterrupt and ignore the ones after it.

    Ctrl-C under `ros2 launch` reaches the node twice (the terminal's process group, then launch
    forwarding it); a second one inside the shutdown (joining the workers, destroying the node,
    the interpreter exiting) would end the process with a traceback or exit code -2 instead of 0.
    """
    interrupted = []

    def handler(signum: int, frame: Any) -> None:
        if not interrupted:  # handlers run one at a time in the main thread: no race here
            interrupted.append(signum)
            # ignored, not handled, from now on: Python puts handled signals back to their
            # default (terminate) while the interpreter shuts down, ignored ones it leaves
            for other in (signal.SIGINT, signal.SIGTERM):
                signal.signal(other, signal.SIG_IGN)
            raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)


def _spin(executor: SingleThreadedExecutor, node: BevformerNode) -> None:
    """
    Spin like `executor.spin()`, but log an exception escaping a callback and go on.

    One malformed message or a bug in a rarely used path must not take the detector down.
    """
    while rclpy.ok() and not node.shut_down:
        try:
            executor.spin_once(timeout_sec=0.5)
        except (KeyboardInterrupt, ExternalShutdownException):
            raise
        except Exception as exc:
            node._log_problem(f'callback failed: {exc!r}', error=True)


if __name__ == '__main__':
    raise SystemExit(main())
