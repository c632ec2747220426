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
bevformer_nuscenes2bag on a tiny nuScenes-layout dataset written here.

Real devkit, real bags, independent expectations (pyquaternion and plain numpy straight from the
tables, and the shipped rig file).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from bevformer_ros.config import OFFICIAL_CAMERAS
from bevformer_ros.core.markers import NUSCENES_CLASSES
from bevformer_ros.core.rig import load_rig
from bevformer_ros.data.bag_io import deserialize, header_stamp_ns, open_bag
from bevformer_ros.eval.nusc_tables import TABLES
from bevformer_ros.resources import config_file
from bevformer_ros.tools.nuscenes2bag import main
from bevformer_ros.train.dataset import BagScene
from bevformer_ros.train.presets import smoke
from bevformer_ros.viz.bag_frames import BagFrames
import numpy as np
from optional_deps import lazy, requires
from PIL import Image
import pytest
import yaml

Quaternion = lazy('pyquaternion', 'Quaternion')
_packages = requires('rosbags', 'pyquaternion')

VERSION = 'v1.0-mini'
W, H, SCALE = 160, 90, 0.1  # a tenth of nuScenes' 1600x900; camera_intrinsic scaled alike
KEYFRAMES, SWEEPS_BETWEEN = 3, 2
T0_US = 1_533_151_603_547_590
# after the lidar
CAMERA_OFFSET_US = dict(zip(OFFICIAL_CAMERAS, (12_000, 20_000, 4_000, 45_000, 54_000, 37_000)))
SHIPPED = yaml.safe_load(config_file('nuscenes_rig.yaml').read_text())


def _token(*parts: object) -> str:
    return '_'.join(str(p) for p in parts)


def _ego(t_us: int) -> dict:
    """Return a gently turning, slightly pitched drive in Singapore-like global coordinates."""
    t = (t_us - T0_US) * 1e-6
    yaw = 0.6 + 0.15 * t
    q = Quaternion(axis=[0, 0, 1], angle=yaw) * Quaternion(axis=[0, 1, 0], angle=0.01)
    return {
        'token': _token('ego', t_us),
        'timestamp': t_us,
        'translation': [411.3 + 7.0 * t, 1180.9 + 2.0 * t * t, 0.02],
        'rotation': list(q.elements),
    }


class Tables:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.t = {name: [] for name in TABLES}  # every table the devkit loads
        for name in ('vehicle.car', 'human.pedestrian.adult', 'animal'):
            self.t['category'].append(
                {'token': _token('cat', name), 'name': name, 'description': ''}
            )
        self.t['visibility'].append({'token': '4', 'level': 'v80-100', 'description': ''})
        self.t['log'].append(
            {
                'token': 'log0',
                'logfile': 'n015-2018-07-24-11-22-45+0800',
                'vehicle': 'n015',
                'date_captured': '2018-07-24',
                'location': 'singapore-onenorth',
            }
        )
        self.t['map'].append(
            {
                'token': 'map0',
                'log_tokens': ['log0'],
                'category': 'semantic_prior',
                'filename': 'maps/map0.png',
            }
        )
        self.last: dict[str, dict] = {}  # channel -> its latest sample_data record
        (root / 'maps').mkdir(parents=True)
        Image.new('L', (8, 8)).save(root / 'maps' / 'map0.png')
        self._sensor('LIDAR_TOP', 'lidar', SHIPPED['lidar2ego'], [])
        for cam in OFFICIAL_CAMERAS:
            K = np.array(SHIPPED['cameras'][cam]['K']) * [[SCALE], [SCALE], [1.0]]
            self._sensor(cam, 'camera', SHIPPED['cameras'][cam]['sensor2ego'], K.tolist())

    def _sensor(self, channel: str, modality: str, mount: dict, K: list) -> None:
        sensor = _token('sensor', channel)
        self.t['sensor'].append({'token': sensor, 'channel': channel, 'modality': modality})
        self.t['calibrated_sensor'].append(
            {
                'token': _token('cs', channel),
                'sensor_token': sensor,
                'translation': mount['translation'],
                'rotation': mount['rotation_wxyz'],
                'camera_intrinsic': K,
            }
        )

    def _sample_data(
        self, scene: str, channel: str, sample: str, t_us: int, key: bool, index: int
    ) -> dict:
        folder = 'samples' if key else 'sweeps'
        is_camera = channel != 'LIDAR_TOP'
        filename = f'{folder}/{channel}/{scene}_{channel}_{t_us}.' + (
            'jpg' if is_camera else 'pcd.bin'
        )
        if is_camera:
            path = self.root / filename
            path.parent.mkdir(parents=True, exist_ok=True)
            rng = np.random.default_rng(index)
            blocks = rng.integers(0, 255, (H // 10, W // 10, 3)).astype(np.uint8)  # [9, 16, 3]
            pixels = blocks.repeat(10, 0).repeat(10, 1)  # [H, W, 3]
            Image.fromarray(pixels).save(path, quality=90)
        ego = _ego(t_us)
        self.t['ego_pose'].append(ego)
        record = {
            'token': _token('sd', scene, channel, t_us),
            'sample_token': sample,
            'ego_pose_token': ego['token'],
            'calibrated_sensor_token': _token('cs', channel),
            'timestamp': t_us,
            'fileformat': 'jpg' if is_camera else 'pcd',
            'is_key_frame': key,
            'height': H if is_camera else 0,
            'width': W if is_camera else 0,
            'filename': filename,
            'prev': '',
            'next': '',
        }
        self.t['sample_data'].append(record)
        return record

    def add_scene(self, name: str, start_us: int, keyframes: int) -> list[str]:
        samples = [_token('sample', name, k) for k in range(keyframes)]
        self.t['scene'].append(
            {
                'token': _token('scene', name),
                'log_token': 'log0',
                'nbr_samples': keyframes,
                'first_sample_token': samples[0],
                'last_sample_token': samples[-1],
                'name': name,
                'description': 'test drive',
            }
        )
        for k, token in enumerate(samples):
            self.t['sample'].append(
                {
                    'token': token,
                    'timestamp': start_us + k * 500_000,
                    'prev': samples[k - 1] if k else '',
                    'next': samples[k + 1] if k + 1 < keyframes else '',
                    'scene_token': _token('scene', name),
                }
            )
        for channel in ('LIDAR_TOP', *OFFICIAL_CAMERAS):
            # one log: the sensor chains run on from the previous scene, the converter has to cut
            # them
            chain = [self.last[channel]] if channel in self.last else []
            for k, token in enumerate(samples):
                t_us = start_us + k * 500_000 + CAMERA_OFFSET_US.get(channel, 0)
                chain.append(
                    self._sample_data(name, channel, token, t_us, True, len(self.t['sample_data']))
                )
                if channel != 'LIDAR_TOP' and k + 1 < keyframes:
                    # 12 Hz sweeps, owned by the next sample
                    for j in range(1, SWEEPS_BETWEEN + 1):
                        chain.append(
                            self._sample_data(
                                name,
                                channel,
                                samples[k + 1],
                                t_us + j * 83_333,
                                False,
                                len(self.t['sample_data']),
                            )
                        )
            for a, b in zip(chain, chain[1:]):
                a['next'], b['prev'] = b['token'], a['token']
            self.last[channel] = chain[-1]
        return samples

    def annotate(
        self,
        instance: str,
        category: str,
        samples: list[str],
        centers: list,
        yaw: float,
        lidar_pts: int = 40,
        radar_pts: int = 0,
    ) -> None:
        tokens = [_token('ann', instance, s) for s in samples]
        self.t['instance'].append(
            {
                'token': instance,
                'category_token': _token('cat', category),
                'nbr_annotations': len(tokens),
                'first_annotation_token': tokens[0],
                'last_annotation_token': tokens[-1],
            }
        )
        for i, (token, sample, center) in enumerate(zip(tokens, samples, centers)):
            self.t['sample_annotation'].append(
                {
                    'token': token,
                    'sample_token': sample,
                    'instance_token': instance,
                    'visibility_token': '4',
                    'attribute_tokens': [],
                    'translation': list(center),
                    'size': [1.9, 4.6, 1.7],
                    'rotation': list(Quaternion(axis=[0, 0, 1], angle=yaw).elements),
                    'prev': tokens[i - 1] if i else '',
                    'next': tokens[i + 1] if i + 1 < len(tokens) else '',
                    'num_lidar_pts': lidar_pts,
                    'num_radar_pts': radar_pts,
                }
            )

    def write(self) -> None:
        folder = self.root / VERSION
        folder.mkdir()
        for name, rows in self.t.items():
            (folder / f'{name}.json').write_text(json.dumps(rows))


CAR_CENTERS = [(425.0, 1190.0, 1.0), (428.0, 1191.5, 1.05), (431.0, 1193.0, 1.1)]


@pytest.fixture(scope='module')
def dataroot(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('nuscenes')
    tables = Tables(root)
    samples = tables.add_scene('scene-0001', T0_US, KEYFRAMES)
    tables.add_scene('scene-0002', T0_US + 60_000_000, 1)  # a test-split scene: no annotations
    tables.annotate('car0', 'vehicle.car', samples, CAR_CENTERS, yaw=0.9)
    tables.annotate(
        'ped0', 'human.pedestrian.adult', samples[1:2], [(420.0, 1186.0, 0.9)], yaw=-2.0
    )
    # no detection class
    tables.annotate('dog0', 'animal', samples[1:2], [(421.0, 1187.0, 0.3)], yaw=0.0)
    tables.annotate(
        'car1', 'vehicle.car', samples[1:2], [(440.0, 1190.0, 1.0)], yaw=0.0, lidar_pts=0
    )  # no lidar or radar points: not a valid box
    tables.write()
    return root


@pytest.fixture(scope='module')
def tables(dataroot) -> dict:
    return {
        p.stem: {r['token']: r for r in json.loads(p.read_text())}
        for p in (dataroot / VERSION).glob('*.json')
    }


def _convert(dataroot: Path, out: Path, *extra: str) -> int:
    return main(
        ['--dataroot', str(dataroot), '--scene', 'scene-0001', '--quiet', str(out), *extra]
    )


@pytest.fixture(scope='module')
def keyframe_bag(dataroot, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('bags') / 'keyframes.mcap'
    assert _convert(dataroot, out) == 0
    return out


@pytest.fixture(scope='module')
def sweep_bag(dataroot, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('bags') / 'sweeps.mcap'
    assert _convert(dataroot, out, '--sweeps', '--raw') == 0
    return out


def _messages(bag: Path) -> dict[str, list]:
    """Topic -> [(record ns, type, raw CDR)] read with rosbags."""
    out: dict[str, list] = {}
    reader = open_bag(bag)
    try:
        for conn, record_ns, raw in reader.messages():
            out.setdefault(conn.topic, []).append((record_ns, conn.msgtype, bytes(raw)))
    finally:
        reader.close()
    return out


def _camera_records(tables: dict, channel: str, key_only: bool) -> list[dict]:
    scene_samples = {
        t for t, s in tables['sample'].items() if s['scene_token'] == 'scene_scene-0001'
    }
    rows = [
        r
        for r in tables['sample_data'].values()
        if r['sample_token'] in scene_samples
        and r['filename'].split('/')[1] == channel
        and (r['is_key_frame'] or not key_only)
    ]
    return sorted(rows, key=lambda r: r['timestamp'])


def test_keyframe_bag_holds_the_jpeg_bytes_and_calibration_of_every_keyframe(
    dataroot, tables, keyframe_bag
):
    topics = _messages(keyframe_bag)
    for cam in OFFICIAL_CAMERAS:
        records = _camera_records(tables, cam, key_only=True)
        images = topics[f'/{cam}/image_raw/compressed']
        assert len(records) == KEYFRAMES and len(images) == KEYFRAMES
        for record, (_, msgtype, raw) in zip(records, images):
            msg = deserialize(raw, msgtype)
            assert msgtype == 'sensor_msgs/msg/CompressedImage' and msg.format == 'jpeg'
            assert bytes(msg.data) == (dataroot / record['filename']).read_bytes()
            assert (
                header_stamp_ns(raw) == record['timestamp'] * 1000 and msg.header.frame_id == cam
            )
        infos = [deserialize(raw, t) for _, t, raw in topics[f'/{cam}/camera_info']]
        assert len(infos) == KEYFRAMES
        K = np.array(tables['calibrated_sensor'][f'cs_{cam}']['camera_intrinsic'])
        for info in infos:
            np.testing.assert_array_equal(np.asarray(info.k).reshape(3, 3), K)
            assert (info.width, info.height) == (W, H) and info.header.frame_id == cam
    assert not any(t.endswith('/image_raw') for t in topics)


def test_odometry_is_the_ego_pose_of_every_camera_sample(tables, keyframe_bag):
    odom = [deserialize(raw, t) for _, t, raw in _messages(keyframe_bag)['/odom']]
    tokens = {
        r['ego_pose_token']
        for cam in OFFICIAL_CAMERAS
        for r in _camera_records(tables, cam, False)
    }
    expected = sorted(tokens, key=lambda tok: tables['ego_pose'][tok]['timestamp'])
    assert len(odom) == len(expected) == 6 * (KEYFRAMES + SWEEPS_BETWEEN * (KEYFRAMES - 1))
    stamps = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in odom]
    assert stamps == sorted(stamps)
    for msg, token in zip(odom, expected):
        pose = tables['ego_pose'][token]
        assert msg.header.frame_id == 'odom' and msg.child_frame_id == 'base_link'
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        np.testing.assert_allclose([p.x, p.y, p.z], pose['translation'], atol=1e-12)
        np.testing.assert_allclose([q.w, q.x, q.y, q.z], pose['rotation'], atol=1e-12)
    # the drive: (7, 4 t, 0) m/s in the world, 0.15 rad/s yaw
    for i in (0, len(odom) // 2, len(odom) - 1):
        t = (stamps[i] / 1000 - T0_US) * 1e-6
        q = Quaternion(tables['ego_pose'][expected[i]]['rotation'])
        twist = odom[i].twist.twist
        body = q.inverse.rotate([7.0, 4.0 * t, 0.0])
        # one-sided at the ends: first order only
        tolerance = 1e-6 if 0 < i < len(odom) - 1 else 0.5
        np.testing.assert_allclose(
            [twist.linear.x, twist.linear.y, twist.linear.z], body, atol=tolerance
        )
        assert abs(twist.angular.z - 0.15) < 0.01


def test_sweeps_give_every_camera_frame_as_decoded_rgb(dataroot, tables, sweep_bag):
    topics = _messages(sweep_bag)
    for cam in OFFICIAL_CAMERAS:
        records = _camera_records(tables, cam, key_only=False)
        images = topics[f'/{cam}/image_raw']
        assert len(records) == len(images) == KEYFRAMES + SWEEPS_BETWEEN * (KEYFRAMES - 1)
        msg = deserialize(images[1][2], images[1][1])
        assert (msg.width, msg.height, msg.encoding) == (W, H, 'rgb8')
        decoded = np.asarray(Image.open(dataroot / records[1]['filename']).convert('RGB'))
        got = np.asarray(msg.data).reshape(H, W, 3)
        # JPEG decoders may differ by a rounding step
        assert np.abs(got.astype(int) - decoded).max() <= 2
    assert not any(t.endswith('/compressed') for t in topics)


def test_rig_yaml_and_tf_static_are_the_calibration_relative_to_lidar_top(tables, keyframe_bag):
    rig = load_rig(keyframe_bag.with_suffix('.rig.yaml'))
    lidar = tables['calibrated_sensor']['cs_LIDAR_TOP']
    q_lidar, t_lidar = Quaternion(lidar['rotation']), np.array(lidar['translation'])
    assert rig.reference_frame == 'LIDAR_TOP' and rig.camera_names == OFFICIAL_CAMERAS
    shipped = load_rig(config_file('nuscenes_rig.yaml'))
    for cam in rig.cameras:
        cs = tables['calibrated_sensor'][f'cs_{cam.name}']
        rotation = (q_lidar.inverse * Quaternion(cs['rotation'])).rotation_matrix
        translation = q_lidar.inverse.rotate(np.array(cs['translation']) - t_lidar)
        np.testing.assert_allclose(cam.sensor2lidar.rotation, rotation, atol=1e-12)
        np.testing.assert_allclose(cam.sensor2lidar.translation, translation, atol=1e-12)
        # the test rig is nuScenes' own: the shipped file's derived values (12 decimals) agree
        np.testing.assert_allclose(
            cam.sensor2lidar.rotation, shipped.camera(cam.name).sensor2lidar.rotation, atol=1e-9
        )
        np.testing.assert_array_equal(cam.K, cs['camera_intrinsic'])
        assert cam.image_size == (W, H)

    ((_, msgtype, raw),) = _messages(keyframe_bag)['/tf_static']
    transforms = {tf.child_frame_id: tf for tf in deserialize(raw, msgtype).transforms}
    assert set(transforms) == {'LIDAR_TOP', *OFFICIAL_CAMERAS}
    for child, tf in transforms.items():
        cs = tables['calibrated_sensor'][f'cs_{child}']
        r, t = tf.transform.rotation, tf.transform.translation
        assert tf.header.frame_id == 'base_link'
        np.testing.assert_array_equal([t.x, t.y, t.z], cs['translation'])
        np.testing.assert_array_equal([r.w, r.x, r.y, r.z], cs['rotation'])


def _expected_car_box(tables: dict, k: int) -> np.ndarray:
    """
    Return the car of keyframe k in LIDAR_TOP, straight from the tables.

    Official gt_boxes convention.
    """
    sample = f'sample_scene-0001_{k}'
    lidar = next(
        r
        for r in tables['sample_data'].values()
        if r['sample_token'] == sample and r['is_key_frame'] and 'LIDAR_TOP' in r['filename']
    )
    ego = tables['ego_pose'][lidar['ego_pose_token']]
    cs = tables['calibrated_sensor']['cs_LIDAR_TOP']
    q_ego, q_cs = Quaternion(ego['rotation']), Quaternion(cs['rotation'])
    ann = tables['sample_annotation'][f'ann_car0_{sample}']
    center = q_cs.inverse.rotate(
        q_ego.inverse.rotate(np.array(ann['translation']) - ego['translation']) - cs['translation']
    )
    heading = (q_cs.inverse * q_ego.inverse * Quaternion(ann['rotation'])).yaw_pitch_roll[0]
    yaw = math.atan2(math.sin(-heading - math.pi / 2), math.cos(-heading - math.pi / 2))
    t = [tables['sample'][f'sample_scene-0001_{i}']['timestamp'] * 1e-6 for i in (k - 1, k + 1)]
    velocity = (np.array(CAR_CENTERS[k + 1]) - CAR_CENTERS[k - 1]) / (t[1] - t[0])
    velocity[2] = 0.0
    velocity = q_cs.inverse.rotate(q_ego.inverse.rotate(velocity))
    w, length, h = ann['size']
    return np.array(
        [center[0], center[1], center[2] - h / 2, w, length, h, yaw, velocity[0], velocity[1]]
    )


def test_ground_truth_is_the_valid_boxes_in_the_keyframe_lidar_frame(tables, keyframe_bag):
    doc = json.loads(keyframe_bag.with_suffix('.ground_truth.json').read_text())
    assert doc['frame_id'] == 'LIDAR_TOP' and doc['scene']['scene'] == 'scene-0001'
    assert len(doc['frames']) == KEYFRAMES
    front = _camera_records(tables, 'CAM_FRONT', key_only=True)
    assert [f['stamp_ns'] for f in doc['frames']] == [r['timestamp'] * 1000 for r in front]
    middle = doc['frames'][1]
    # car + pedestrian; the animal (no detection class) and the car without lidar/radar points are
    # dropped
    assert sorted(NUSCENES_CLASSES[i] for i in middle['labels']) == ['car', 'pedestrian']
    car = middle['labels'].index(NUSCENES_CLASSES.index('car'))
    np.testing.assert_allclose(middle['boxes'][car], _expected_car_box(tables, 1), atol=2e-6)
    assert 0.5 < middle['boxes'][car][7] ** 2 + middle['boxes'][car][8] ** 2  # the car moves ...
    pedestrian = middle['boxes'][1 - car]
    assert pedestrian[7:] == [0.0, 0.0]  # ... the single-frame pedestrian has no velocity estimate
    assert len({f['instance_ids'][f['labels'].index(0)] for f in doc['frames']}) == 1


def test_scene_without_annotations_has_no_ground_truth_file(dataroot, tmp_path, capsys):
    out = tmp_path / 'test_split.mcap'
    assert main(['--dataroot', str(dataroot), '--scene', 'scene-0002', '--quiet', str(out)]) == 0
    assert out.exists() and out.with_suffix('.rig.yaml').exists()
    topics = _messages(out)
    assert all(len(topics[f'/{c}/image_raw/compressed']) == 1 for c in OFFICIAL_CAMERAS)
    assert len(topics['/odom']) == 6
    assert not out.with_suffix('.ground_truth.json').exists()
    assert 'no annotations' in capsys.readouterr().out


def test_mcap_reader_sees_the_ros2_layout(keyframe_bag):
    mcap_reader = pytest.importorskip('mcap.reader')
    counts: dict[str, int] = {}
    with keyframe_bag.open('rb') as f:
        for schema, channel, message in mcap_reader.make_reader(f).iter_messages():
            assert channel.message_encoding == 'cdr' and schema.encoding == 'ros2msg'
            counts[channel.topic] = counts.get(channel.topic, 0) + 1
            if channel.topic == '/CAM_BACK/image_raw/compressed':
                assert schema.name == 'sensor_msgs/msg/CompressedImage'
                # JPEG SOI
                assert bytes(deserialize(message.data, schema.name).data[:2]) == b'\xff\xd8'
    assert counts['/tf_static'] == 1
    assert all(counts[f'/{c}/image_raw/compressed'] == KEYFRAMES for c in OFFICIAL_CAMERAS)
    assert counts['/odom'] == counts['/tf'] == 6 * (KEYFRAMES + SWEEPS_BETWEEN * (KEYFRAMES - 1))


def test_render_and_training_readers_take_the_bag(tables, keyframe_bag):
    rig_yaml = keyframe_bag.with_suffix('.rig.yaml')
    frames = BagFrames([keyframe_bag], rig_path=rig_yaml)
    assert len(frames) == KEYFRAMES
    views = list(frames.frames())
    assert all(sorted(v.images) == sorted(OFFICIAL_CAMERAS) for v in views)
    assert views[0].images['CAM_FRONT'].shape == (H, W, 3)
    np.testing.assert_allclose(
        views[1].ground_truth.boxes[views[1].ground_truth.labels == 0][0],
        _expected_car_box(tables, 1),
        atol=2e-6,
    )

    rig = load_rig(rig_yaml)
    # the default topics find the /compressed ones
    scene = BagScene(keyframe_bag, smoke().model, rig)
    try:
        assert len(scene) == KEYFRAMES and scene.extrinsics_source == '/tf_static'
        for got, cam in zip(scene.sensor2lidar, rig.cameras):
            np.testing.assert_allclose(got.rotation, cam.sensor2lidar.rotation, atol=1e-9)
            np.testing.assert_allclose(got.translation, cam.sensor2lidar.translation, atol=1e-9)
        frame = scene.frame(1)
        assert frame.img.shape == (6, 3, 96, 160) and frame.gt_labels.tolist().count(0) == 1
        front = _camera_records(tables, 'CAM_FRONT', key_only=True)[1]
        pose = tables['ego_pose'][front['ego_pose_token']]
        np.testing.assert_allclose(frame.can_bus[:3], pose['translation'], atol=1e-9)
    finally:
        scene.close()


def test_raw_sweep_bag_trains_with_the_default_topics(sweep_bag):
    scene = BagScene(sweep_bag, smoke().model, load_rig(sweep_bag.with_suffix('.rig.yaml')))
    try:
        # the sweeps have no ground truth, so only keyframes are frames
        assert len(scene) == KEYFRAMES
    finally:
        scene.close()


@pytest.mark.parametrize(
    'case', ['no_dataroot', 'bad_version', 'unknown_scene', 'exists', 'missing_image']
)
def test_errors_name_the_fix_without_a_traceback(case, dataroot, keyframe_bag, tmp_path, capsys):
    args = [
        '--dataroot',
        str(dataroot),
        '--scene',
        'scene-0001',
        '--quiet',
        str(tmp_path / 'out.mcap'),
    ]
    expected_code, expected_text = (
        2,
        {
            'no_dataroot': 'dataroot not found',
            'bad_version': 'pass --version with one of them',
            'unknown_scene': 'scene-0001, scene-0002',
            'exists': 'pass --force',
            'missing_image': 'cannot read',
        }[case],
    )
    if case == 'no_dataroot':
        args[1] = str(tmp_path / 'nowhere')
    elif case == 'bad_version':
        args += ['--version', 'v1.0-trainval']
    elif case == 'unknown_scene':
        args[3] = 'scene-9999'
    elif case == 'exists':
        args[-1] = str(keyframe_bag)
    else:
        copy = tmp_path / 'copy'  # the tables and maps, but no samples/ folder
        copy.mkdir()
        for item in dataroot.iterdir():
            if item.name != 'samples':
                (copy / item.name).symlink_to(item)
        expected_code, args[1] = 1, str(copy)
    assert main(args) == expected_code
    err = capsys.readouterr().err
    assert expected_text in err and 'Traceback' not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / 'out.mcap').exists()
