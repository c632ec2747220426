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

"""Official test-time image preprocessing vs the official fixture (README §10) and references."""

from __future__ import annotations

import hashlib
import struct
from types import SimpleNamespace
import zlib

from bevformer_ros.model.preprocess import ImagePreprocessor
import numpy as np
import pytest
from reference_fixtures import REFERENCE, require
import torch
import torch.nn.functional as F

FIXTURE = REFERENCE / 'case_preprocess_tiny.pt'

TINY_MEAN, TINY_STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
SMALL_MEAN, SMALL_STD = (103.53, 116.28, 123.675), (1.0, 1.0, 1.0)


def decode_png_bgr(buf: bytes) -> np.ndarray:
    """
    Minimal PNG decoder (8-bit RGB/RGBA, not interlaced, filters 0-4) -> uint8 [H, W, 3] BGR.

    Neither cv2 nor PIL is installed here. Rows depend on the row above and pixels on their left
    neighbour, so the unfiltering walks anti-diagonals (every pixel on one is independent),
    vectorised over rows.
    """
    if buf[:8] != b'\x89PNG\r\n\x1a\n':
        raise ValueError('not a PNG file')
    pos, idat, header = 8, [], None
    while pos < len(buf):
        (length,) = struct.unpack('>I', buf[pos:pos + 4])
        kind, data = buf[pos + 4:pos + 8], buf[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b'IHDR':
            header = struct.unpack('>IIBBBBB', data)
        elif kind == b'IDAT':
            idat.append(data)
    width, height, depth, color, _, _, interlace = header
    if depth != 8 or interlace != 0 or color not in (2, 6):
        raise ValueError(
            f'unsupported PNG: depth {depth}, colour type {color}, interlace {interlace}'
        )
    channels = 3 if color == 2 else 4
    rows = np.frombuffer(zlib.decompress(b''.join(idat)), np.uint8).reshape(
        height, 1 + width * channels
    )
    kinds, filt = rows[:, 0], rows[:, 1:].reshape(height, width, channels).astype(np.int32)
    raw = np.zeros((height + 1, width + 1, channels), np.int32)  # zero row above and column left
    for diag in range(height + width - 1):
        r = np.arange(max(0, diag - width + 1), min(height, diag + 1))
        c = diag - r
        left, up, up_left = raw[r + 1, c], raw[r, c + 1], raw[r, c]
        p = left + up - up_left
        pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - up_left)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))
        k = kinds[r][:, None]
        pred = np.select([k == 1, k == 2, k == 3, k == 4], [left, up, (left + up) >> 1, paeth], 0)
        raw[r + 1, c + 1] = (filt[r, c] + pred) & 255
    return np.ascontiguousarray(raw[1:, 1:, 2::-1].astype(np.uint8))  # RGB(A) -> BGR


def normalize_reference(bgr: torch.Tensor, mean: tuple, std: tuple, to_rgb: bool) -> torch.Tensor:
    """Independent float32 normalisation: uint8 [N, H, W, 3] BGR -> float32 [N, 3, H, W]."""
    x = bgr.float()
    if to_rgb:
        x = x[..., [2, 1, 0]]
    x = (x - torch.tensor(mean, dtype=torch.float32)) / torch.tensor(std, dtype=torch.float32)
    return x.permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope='module')
def case() -> dict:
    d = torch.load(require(FIXTURE), weights_only=True)
    d['bgr'] = torch.stack(
        [torch.from_numpy(decode_png_bgr(t.numpy().tobytes())) for t in d['inputs']['images_png']]
    )
    return d


@pytest.fixture(scope='module')
def tiny_out(case: dict):  # noqa: ANN201
    cfg = case['config']['img_norm_cfg']
    pre = ImagePreprocessor(
        cfg['mean'], cfg['std'], cfg['to_rgb'], scale=case['config']['scales'][0], size_divisor=32
    )
    return pre, pre(case['bgr'], channel_order='bgr')


def gather_samples(img: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    pos = positions.long()
    return img[pos[:, 0], :, pos[:, 1], pos[:, 2]]  # [S, 3]


def test_png_decoder_matches_md5_and_channel_sums(case: dict) -> None:
    for i, bgr in enumerate(case['bgr'].numpy()):
        assert bgr.shape == (900, 1600, 3)
        assert (
            hashlib.md5(np.ascontiguousarray(bgr).tobytes()).hexdigest()
            == case['inputs']['image_md5_bgr_hwc'][i]
        )
        sums = torch.from_numpy(bgr.reshape(-1, 3).astype(np.int64).sum(0))
        assert torch.equal(sums, case['inputs']['image_channel_sums_bgr'][i])


def test_tiny_matches_official_sample_values(case: dict, tiny_out) -> None:
    _, out = tiny_out
    values = gather_samples(out.img, case['outputs']['sample_positions'])
    torch.testing.assert_close(values, case['outputs']['sample_values'], rtol=0, atol=1e-4)
    # Same pipeline, same arithmetic: README §10.2 says bit-exact; allow the documented
    # same-pipeline spread.
    assert (values - case['outputs']['sample_values']).abs().max().item() <= 4.8e-7


def test_tiny_shapes_masks_and_padding(case: dict, tiny_out) -> None:
    _, out = tiny_out
    o = case['outputs']
    assert list(out.img[None].shape) == o['network_input_shape']
    assert out.img.dtype == torch.float32
    for cam in range(2):
        assert [*out.img_shape, 3] == o['img_shape'][cam]
        assert [*out.ori_shape, 3] == o['ori_shape'][cam]
        assert [*out.pad_shape, 3] == o['pad_shape'][cam]
        assert [*out.resized_shape, 3] == o['ori_shape'][cam]
    hp, wp = out.img_shape
    row_mask = torch.arange(hp) >= out.resized_shape[0]
    col_mask = torch.arange(wp) >= out.resized_shape[1]
    assert torch.equal(row_mask.expand(2, hp), o['pad_row_mask'])
    assert torch.equal(col_mask.expand(2, wp), o['pad_col_mask'])
    padding = out.img[:, :, row_mask]
    assert padding.numel() > 0 and bool((padding == 0).all()) == o['padding_all_zero']


def test_tiny_scaled_lidar2img(case: dict, tiny_out) -> None:
    pre, _ = tiny_out
    before = case['inputs']['lidar2img'].clone()
    scaled = pre.scale_lidar2img(case['inputs']['lidar2img'])
    assert scaled.dtype == torch.float64
    torch.testing.assert_close(scaled, case['outputs']['lidar2img'], rtol=1e-12, atol=0)
    assert torch.equal(case['inputs']['lidar2img'], before)  # input untouched
    scaled_np = pre.scale_lidar2img(before.numpy())
    assert isinstance(scaled_np, np.ndarray)
    np.testing.assert_allclose(scaled_np, case['outputs']['lidar2img'].numpy(), rtol=1e-12, atol=0)


def test_tiny_statistics(case: dict, tiny_out) -> None:
    _, out = tiny_out
    for name, img in (
        ('stats_padded', out.img),
        ('stats_valid', out.img[:, :, : out.resized_shape[0]]),
    ):
        ref, x = case['outputs'][name], img.double().flatten(2)  # [2, 3, pixels]
        torch.testing.assert_close(x.mean(-1), ref['mean'], rtol=0, atol=1e-5)
        torch.testing.assert_close(x.std(-1, unbiased=False), ref['std'], rtol=0, atol=1e-5)
        torch.testing.assert_close(x.amin(-1), ref['min'], rtol=0, atol=1e-4)
        torch.testing.assert_close(x.amax(-1), ref['max'], rtol=0, atol=1e-4)


def test_tiny_fast_path_within_tolerance(case: dict) -> None:
    cfg = case['config']['img_norm_cfg']
    pre = ImagePreprocessor(cfg['mean'], cfg['std'], cfg['to_rgb'], scale=0.5, exact=False)
    values = gather_samples(pre(case['bgr']).img, case['outputs']['sample_positions'])
    torch.testing.assert_close(values, case['outputs']['sample_values'], rtol=0, atol=1e-4)


def test_resizing_uint8_first_fails_the_tolerance(case: dict) -> None:
    """Sensitivity: the subtle wrong order (resize uint8, then normalise) fails at atol 1e-4."""
    chw = case['bgr'].permute(0, 3, 1, 2)
    small = F.interpolate(
        chw, size=(450, 800), mode='bilinear', align_corners=False, antialias=False
    )
    wrong = F.pad(
        normalize_reference(small.permute(0, 2, 3, 1), TINY_MEAN, TINY_STD, to_rgb=True),
        (0, 0, 0, 30),
    )
    diff = (
        gather_samples(wrong, case['outputs']['sample_positions'])
        - case['outputs']['sample_values']
    ).abs()
    assert diff.max().item() > 5e-3


def test_rgb_input_gives_the_same_result(case: dict, tiny_out) -> None:
    pre, out = tiny_out
    out_rgb = pre(case['bgr'][:1].flip(-1).numpy(), channel_order='rgb')
    assert torch.equal(out_rgb.img, out.img[:1])


def test_small_geometry_against_interpolate() -> None:
    """Official small: BGR, std 1, scale 0.8: 1600x900 -> 1280x720, padded to 1280x736."""
    gen = torch.Generator().manual_seed(0)
    bgr = torch.randint(0, 256, (1, 900, 1600, 3), dtype=torch.uint8, generator=gen)
    pre = ImagePreprocessor(SMALL_MEAN, SMALL_STD, to_rgb=False, scale=0.8, size_divisor=32)
    out = pre(bgr)
    assert out.img.shape == (1, 3, 736, 1280)
    assert out.img_shape == out.pad_shape == (736, 1280)
    assert out.resized_shape == out.ori_shape == (720, 1280)
    assert out.scale_factor == 0.8
    ref = F.interpolate(
        normalize_reference(bgr, SMALL_MEAN, SMALL_STD, to_rgb=False),
        size=(720, 1280),
        mode='bilinear',
        align_corners=False,
        antialias=False,
    )
    # Values reach |x| ~ 150 with std 1 (float32 ULP 1.5e-5); a grey-level mistake would be >= 0.1.
    torch.testing.assert_close(out.img[:, :, :720], ref, rtol=0, atol=1e-4)
    assert bool((out.img[:, :, 720:] == 0).all())
    lidar2img = torch.randn(2, 4, 4, dtype=torch.float64, generator=gen)
    scaled = pre.scale_lidar2img(lidar2img)
    torch.testing.assert_close(
        scaled,
        torch.diag(torch.tensor([0.8, 0.8, 1.0, 1.0], dtype=torch.float64)) @ lidar2img,
        rtol=1e-12,
        atol=0,
    )


def test_base_geometry_pads_only() -> None:
    """Official base: no resize, 1600x900 padded to 1600x928, values are the normalised image."""
    gen = torch.Generator().manual_seed(1)
    bgr = torch.randint(0, 256, (2, 900, 1600, 3), dtype=torch.uint8, generator=gen)
    pre = ImagePreprocessor(SMALL_MEAN, SMALL_STD, to_rgb=False, scale=None, size_divisor=32)
    out = pre(bgr)
    assert out.img.shape == (2, 3, 928, 1600)
    assert out.img_shape == (928, 1600) and out.ori_shape == out.resized_shape == (900, 1600)
    assert out.scale_factor == 1.0
    assert torch.equal(
        out.img[:, :, :900], normalize_reference(bgr, SMALL_MEAN, SMALL_STD, to_rgb=False)
    )
    assert bool((out.img[:, :, 900:] == 0).all())
    lidar2img = torch.randn(2, 4, 4, dtype=torch.float64, generator=gen)
    assert torch.equal(pre.scale_lidar2img(lidar2img), lidar2img)


def naive_bilinear(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Textbook half-pixel bilinear in float64, one output pixel at a time: img [C, H, W]."""
    c, h, w = img.shape
    out = np.zeros((c, out_h, out_w))
    for oy in range(out_h):
        sy = min(max((oy + 0.5) * h / out_h - 0.5, 0.0), h - 1)
        y0 = int(np.floor(sy))
        y1, fy = min(y0 + 1, h - 1), sy - y0
        for ox in range(out_w):
            sx = min(max((ox + 0.5) * w / out_w - 0.5, 0.0), w - 1)
            x0 = int(np.floor(sx))
            x1, fx = min(x0 + 1, w - 1), sx - x0
            top = img[:, y0, x0] * (1 - fx) + img[:, y0, x1] * fx
            bottom = img[:, y1, x0] * (1 - fx) + img[:, y1, x1] * fx
            out[:, oy, ox] = top * (1 - fy) + bottom * fy
    return out


@pytest.mark.parametrize(
    ('height', 'width', 'scale'), [(25, 40, 0.8), (25, 40, 1.6), (23, 37, 0.37), (23, 37, 1.7)]
)
def test_non_integer_ratio_against_independent_references(
    height: int, width: int, scale: float
) -> None:
    gen = torch.Generator().manual_seed(2)
    bgr = torch.randint(0, 256, (2, height, width, 3), dtype=torch.uint8, generator=gen)
    pre = ImagePreprocessor(TINY_MEAN, TINY_STD, to_rgb=True, scale=scale, size_divisor=8)
    out = pre(bgr)
    hr, wr = int(height * scale), int(width * scale)
    assert out.resized_shape == (hr, wr)
    assert out.img_shape == (-(-hr // 8) * 8, -(-wr // 8) * 8)
    norm = normalize_reference(bgr, TINY_MEAN, TINY_STD, to_rgb=True)
    naive = torch.from_numpy(np.stack([naive_bilinear(n, hr, wr) for n in norm.double().numpy()]))
    torch.testing.assert_close(out.img[:, :, :hr, :wr].double(), naive, rtol=0, atol=1e-5)
    assert bool((out.img[:, :, hr:] == 0).all()) and bool((out.img[:, :, :, wr:] == 0).all())
    fast = ImagePreprocessor(
        TINY_MEAN, TINY_STD, to_rgb=True, scale=scale, size_divisor=8, exact=False
    )(bgr)
    # F.interpolate computes the source coordinate in float32: exact only when in/out is a binary
    # fraction (as for the official 0.5 and 0.8 at 1600x900), about 1e-5 off otherwise.
    exact_ratio = (height / hr * 256).is_integer() and (width / wr * 256).is_integer()
    torch.testing.assert_close(fast.img, out.img, rtol=0, atol=1e-5 if exact_ratio else 1e-4)
    if exact_ratio:
        ref = F.interpolate(
            norm, size=(hr, wr), mode='bilinear', align_corners=False, antialias=False
        )
        torch.testing.assert_close(out.img[:, :, :hr, :wr], ref, rtol=0, atol=1e-5)


def test_from_config_duck_typed() -> None:
    cfg = SimpleNamespace(
        mean=SMALL_MEAN,
        std=SMALL_STD,
        to_rgb=False,
        scale=0.8,
        size_divisor=32,
        input_hw=(900, 1600),
    )
    pre = ImagePreprocessor.from_config(cfg)
    assert pre.scale == 0.8 and not pre.to_rgb and pre.size_divisor == 32
    assert pre.output_shapes(900, 1600) == ((720, 1280), (736, 1280))


@pytest.mark.parametrize(
    ('images', 'match'),
    [
        (torch.zeros(2, 8, 8, 3), 'got dtype torch.float32'),
        (torch.zeros(8, 8, 3, dtype=torch.uint8), r'images\[None\]'),
        (torch.zeros(2, 8, 8, 4, dtype=torch.uint8), 'got 4 channels'),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), 'got 8 channels'),
        ([[1, 2, 3]], 'got list'),
    ],
)
def test_bad_input_names_the_expected_layout(images: object, match: str) -> None:
    pre = ImagePreprocessor(TINY_MEAN, TINY_STD, to_rgb=True, scale=0.5)
    with pytest.raises(ValueError, match=match) as err:
        pre(images)
    assert r'uint8 images [num_cams, H, W, 3]' in str(err.value)


def test_bad_arguments() -> None:
    pre = ImagePreprocessor(TINY_MEAN, TINY_STD, to_rgb=True, scale=0.5)
    with pytest.raises(ValueError, match="channel_order must be 'bgr' or 'rgb'"):
        pre(torch.zeros(1, 8, 8, 3, dtype=torch.uint8), channel_order='BGR8')
    with pytest.raises(ValueError, match='lidar2img must be'):
        pre.scale_lidar2img(torch.eye(3))
    with pytest.raises(ValueError, match='scale must be'):
        ImagePreprocessor(TINY_MEAN, TINY_STD, to_rgb=True, scale=0.0)
    with pytest.raises(ValueError, match='3 values'):
        ImagePreprocessor((1.0, 2.0), TINY_STD, to_rgb=True)


@pytest.mark.parametrize(
    ('name', 'resized', 'padded'),
    [
        ('tiny', (450, 800), (480, 800)),
        ('small', (720, 1280), (736, 1280)),
        ('base', (900, 1600), (928, 1600)),
    ],
)
def test_official_presets_give_the_official_shapes(
    name: str, resized: tuple, padded: tuple
) -> None:
    """Shapes from fixture README §10.1 for the three official configs at nuScenes 1600x900."""
    from bevformer_ros.model.config import preset

    image_cfg = preset(name).image
    pre = ImagePreprocessor.from_config(image_cfg)
    assert pre.output_shapes(*image_cfg.input_hw) == (resized, padded)
