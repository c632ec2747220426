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
Exported-graph engines against eager torch, through the real runtimes (case_small fixture model).

Tolerances: on this machine (AMX) ONNX Runtime and OpenVINO fp32 differ from torch by at most
8e-6 (bev_embed), 1.1e-5 (logits) and 8e-5 (boxes, metres); other CPUs (AVX2, AVX512) pick other
kernels, so the bounds below leave more than 10x that.
"""

from __future__ import annotations

import copy

from bevformer_ros.core.temporal import TemporalState
from bevformer_ros.model.engines import (
    create_engine,
    DeferredEngine,
    EngineCacheError,
    MissingRuntimeError,
)
from bevformer_ros.model.engines.base import SCACapacityError
from bevformer_ros.model.export import make_spec, read_metadata
from bevformer_ros.tools.check_official import build_from_fixture
import numpy as np
import onnx
import pytest
from reference_fixtures import CASE_SMALL, require
import torch

TOLERANCE = {'bev_embed': 1e-4, 'all_cls_scores': 2e-4, 'all_bbox_preds': 1e-3}
BACKENDS = ('onnxruntime', 'openvino')


@pytest.fixture(scope='module')
def case():
    return torch.load(require(CASE_SMALL), map_location='cpu', weights_only=True)


@pytest.fixture(scope='module')
def fixture_model(case):
    return build_from_fixture(case, False, torch.device('cpu'))


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp('engines')


def _img_shape(case):
    meta = case['frames'][0]['img_metas']
    return int(meta['img_shape'][0][0]), int(meta['img_shape'][0][1])


def _engine(backend, case, fixture_model, cache, lines=None, **options):
    model, cfg = fixture_model
    pytest.importorskip(backend, reason=f'{backend} is not installed (requirements-dev.txt)')
    progress = lines.append if lines is not None else None
    shape = _img_shape(case)
    return create_engine(backend, model, cfg, shape, 6, folder=cache, progress=progress, **options)


def _frames(case, masked_camera):
    """Yield (img, lidar2img, can_bus, camera_mask) of the fixture's frames, one camera dropped."""
    for index, frame in enumerate(case['frames']):
        meta = frame['img_metas']
        mask = torch.ones(1, 6, dtype=torch.bool)
        if index > 0:  # the first frame with all cameras, then one camera missing
            mask[0, masked_camera] = False
        lidar2img = torch.as_tensor(meta['lidar2img'], dtype=torch.float64)[None]
        yield frame, meta, frame['img'].float(), lidar2img, mask


@pytest.mark.parametrize('backend', BACKENDS)
def test_engine_matches_torch_with_history_and_a_masked_camera(
    backend, case, fixture_model, cache
):
    model, cfg = fixture_model
    engine = _engine(backend, case, fixture_model, cache)
    assert not model.training  # the export leaves the model as it found it (was left training)
    states = {
        'torch': TemporalState(video_test_mode=True),
        backend: TemporalState(video_test_mode=True),
    }
    shape = _img_shape(case)
    for _, meta, img, lidar2img, mask in _frames(case, masked_camera=2):
        outs = {}
        for name, run in (('torch', model), (backend, engine)):
            step = states[name].step(np.asarray(meta['can_bus_input']), meta['scene_token'])
            can_bus = torch.from_numpy(step.can_bus)[None]
            with torch.no_grad():
                outs[name] = run(img, lidar2img, shape, can_bus, step.prev_bev, camera_mask=mask)
            states[name].update(outs[name]['bev_embed'])
        for key, tol in TOLERANCE.items():
            want, got = outs['torch'][key], outs[backend][key]
            if key != 'bev_embed':
                want = want[-1:]  # engines return the last decoder layer
            assert got.shape == want.shape
            assert float((got - want).abs().max()) < tol, key
    assert states['torch'].prev_bev is not None  # the last frames did run with history


def test_masked_camera_changes_the_engine_output(case, fixture_model, cache):
    engine = _engine('onnxruntime', case, fixture_model, cache)
    _, meta, img, lidar2img, mask = list(_frames(case, masked_camera=0))[1]
    can_bus = torch.zeros(1, 18, dtype=torch.float64)
    full = engine(img, lidar2img, _img_shape(case), can_bus)
    dropped = engine(img, lidar2img, _img_shape(case), can_bus, camera_mask=mask)
    assert float((full['bev_embed'] - dropped['bev_embed']).abs().max()) > 1e-3


FLOAT_ONLY_IN_TENSORRT_8 = ('CumSum', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceMean', 'Clip')


def assert_tensorrt_parses_natively(proto: onnx.ModelProto) -> None:
    """
    Assert what TensorRT's ONNX parser documents beyond "standard op" for the ops used here.

    TopK: k <= 3840 (small and base keep 5625 / 10000 queries per camera); NonZero: data-
    dependent shape; ScatterElements / ScatterND with a reduction: a plugin, not the core layer
    (and wrong results when indices outnumber the output rows, onnx-tensorrt #953); CumSum,
    reductions and Clip: float types only in TensorRT 8.x (its ONNX parser's support matrix).
    """
    nodes = proto.graph.node
    assert not {n.op_type for n in nodes} & {'TopK', 'NonZero'}
    for n in nodes:
        if n.op_type in ('ScatterElements', 'ScatterND'):
            reduction = {a.name: a.s for a in n.attribute}.get('reduction', b'none')
            assert reduction == b'none', (n.name, reduction)
    typed = onnx.shape_inference.infer_shapes(proto).graph
    elem = {v.name: v.type.tensor_type.elem_type for v in [*typed.value_info, *typed.input]}
    float_only = [n for n in nodes if n.op_type in FLOAT_ONLY_IN_TENSORRT_8]
    assert float_only  # the check below must have something to check
    for n in float_only:
        assert elem.get(n.input[0]) in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16), n.name


def test_exported_file_has_standard_ops_and_metadata(case, fixture_model, cache):
    _engine('onnxruntime', case, fixture_model, cache)
    (path,) = (cache / 'onnx').glob('*.onnx')
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert {node.domain for node in proto.graph.node} <= {'', 'ai.onnx'}
    assert max(o.version for o in proto.opset_import if o.domain in ('', 'ai.onnx')) >= 17
    assert_tensorrt_parses_natively(proto)
    meta = read_metadata(path)
    assert meta['image_height'] == '96' and meta['image_width'] == '160'
    assert (
        meta['bev_h'] == str(fixture_model[1].head.bev_h)
        and meta['precision'] == 'fp32'
        and meta['opset'] == '17'
    )
    assert len(meta['checkpoint_sha256']) == 64 and meta['package_version']
    # no large constants besides the weights (an index_add once added a [HW, C] zeros constant
    # per camera and layer: 1.7 GB for base)
    model = fixture_model[0]
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert path.stat().st_size < weights + 1.2e6  # 0.6 MB over the weights today; 2 MB then


def test_cache_is_reused(case, fixture_model, cache):
    _engine('openvino', case, fixture_model, cache)
    (path,) = (cache / 'onnx').glob('*.onnx')
    written = path.stat().st_mtime_ns
    lines = []
    _engine('openvino', case, fixture_model, cache, lines)
    assert lines and not any('exporting' in line for line in lines)
    assert path.stat().st_mtime_ns == written


def test_a_stale_engine_file_is_refused(case, fixture_model, cache, tmp_path):
    pytest.importorskip('onnxruntime')
    _engine('onnxruntime', case, fixture_model, cache)
    (exported,) = (cache / 'onnx').glob('*.onnx')
    model, cfg = fixture_model
    other = build_from_fixture(case, False, torch.device('cpu'))[0]
    with torch.no_grad():
        other.pts_bbox_head.bev_embedding.weight.add_(1.0)  # other weights than the file's
    shape = _img_shape(case)
    # a file given by hand (bevformer_export) ...
    with pytest.raises(EngineCacheError, match='checkpoint_sha256.*rm '):
        create_engine('onnxruntime', other, cfg, shape, 6, folder=tmp_path, onnx_file=exported)
    # ... and a cache entry whose content is not what its name says
    spec = make_spec(other, cfg, shape, 6)
    stale = tmp_path / 'onnx' / f'{spec.key()}.onnx'
    stale.parent.mkdir()
    stale.write_bytes(exported.read_bytes())
    with pytest.raises(EngineCacheError, match='checkpoint_sha256'):
        create_engine('onnxruntime', other, cfg, shape, 6, folder=tmp_path)


def test_too_small_sca_capacity_is_refused_not_truncated(case, fixture_model, cache):
    engine = _engine('onnxruntime', case, fixture_model, cache, sca_capacity=8)
    _, meta, img, lidar2img, _ = next(_frames(case, 0))
    with pytest.raises(SCACapacityError, match='--sca-capacity'):
        engine(img, lidar2img, _img_shape(case), torch.zeros(1, 18, dtype=torch.float64))


def test_deferred_engine_builds_at_the_first_frame(case, fixture_model, cache):
    pytest.importorskip('onnxruntime')
    model, cfg = fixture_model
    engine = DeferredEngine('onnxruntime', model, cfg, folder=cache)
    assert engine.engine is None
    _, meta, img, lidar2img, _ = next(_frames(case, 0))
    out = engine(img, lidar2img, _img_shape(case), torch.zeros(1, 18, dtype=torch.float64))
    head = cfg.head
    assert out['bev_embed'].shape == (head.bev_h * head.bev_w, 1, head.embed_dims)
    assert engine.engine is not None


def test_missing_runtime_names_the_pip_package(case, fixture_model, cache):
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip('tensorrt is installed here: its absence cannot be shown')
    model, cfg = fixture_model
    with pytest.raises(MissingRuntimeError, match='pip install tensorrt'):
        create_engine('tensorrt', model, cfg, _img_shape(case), 6, folder=cache)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_export_of_a_model_on_cuda(case, fixture_model, tmp_path):
    """The export traces a CPU copy: CPU example inputs never meet CUDA weights."""
    pytest.importorskip('onnxruntime')
    model, cfg = fixture_model
    cuda = copy.deepcopy(model).cuda()
    engine = create_engine('onnxruntime', cuda, cfg, _img_shape(case), 6, folder=tmp_path)
    _, meta, img, lidar2img, _ = next(_frames(case, 0))
    can_bus = torch.zeros(1, 18, dtype=torch.float64)
    got = engine(img, lidar2img, _img_shape(case), can_bus)
    with torch.no_grad():
        want = model(img, lidar2img, _img_shape(case), can_bus)
    assert float((got['bev_embed'] - want['bev_embed']).abs().max()) < TOLERANCE['bev_embed']
    assert next(cuda.parameters()).is_cuda  # the caller's model stays where it was
