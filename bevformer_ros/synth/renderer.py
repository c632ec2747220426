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
Ray-cast pinhole renderer.

It draws sky, a textured ground plane (road, kerbs, sidewalks) and flat-shaded cuboids.

Every pixel (u, v) casts the ray K^-1 (u, v, 1) of the camera (pixel centres at integer
coordinates, the OpenCV / nuScenes convention of K), so the pictures agree with `lidar2img`
projections to the pixel. The ray parameter is the camera depth z, which doubles as the z-buffer
value:
- the ground z = 0 is hit at depth -o_z / d_z (rays pointing down), the sky is everything else;
- each box is intersected exactly (slab test in the box frame) over the screen rectangle its
  near-plane-clipped corners cover, and wins a pixel where it is nearer than what is there already,
  so occlusion is exact and boxes crossing the camera plane are clipped at `near`;
- faces are lit by a fixed sun (ambient + Lambert), box edges are drawn `edge_px` wide in screen
  space, and each box darkens the ground under it (a contact shadow). Distance haze blends
  everything into the horizon.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bevformer_ros.core.calibration import scale_intrinsics
from bevformer_ros.core.markers import NUSCENES_CLASSES
from bevformer_ros.core.rig import Rig
from bevformer_ros.synth.road import LANE_WIDTH, PARKING_EDGE, Road, SIDEWALK_EDGE
from bevformer_ros.synth.scene import extrinsics_matrix, WorldBoxes
import numpy as np

SKY_ZENITH = np.array([70, 120, 200], dtype=np.float32)
HORIZON = np.array([200, 212, 225], dtype=np.float32)
ASPHALT = np.array([72, 72, 76], dtype=np.float32)
LANE_PAINT = np.array([225, 225, 220], dtype=np.float32)
CENTRE_PAINT = np.array([230, 200, 70], dtype=np.float32)
KERB = np.array([185, 185, 180], dtype=np.float32)
SIDEWALK = np.array([150, 146, 138], dtype=np.float32)
VERGE = np.array([78, 112, 60], dtype=np.float32)
# ground material codes 0..7: verge, verge (light checker), sidewalk, sidewalk joint, kerb,
# asphalt, lane line, centre line
GROUND_PALETTE = np.stack(
    [VERGE, VERGE + 8.0, SIDEWALK, SIDEWALK * 0.85, KERB, ASPHALT, LANE_PAINT, CENTRE_PAINT]
).astype(np.float32)
SUN = np.array([0.45, 0.3, 0.84]) / np.linalg.norm([0.45, 0.3, 0.84])
AMBIENT, DIFFUSE = 0.5, 0.5
HAZE_DISTANCE_M = 300.0
GROUND_MAX_DEPTH_M = 3000.0  # beyond this the haze has made the ground the horizon colour anyway
SHADOW_FACTOR = 0.55
SHADOW_MARGIN = 1.12  # the contact shadow is the footprint grown by this factor
EDGE_DARK, EDGE_LIGHT = 25.0, 185.0  # edge grey on light / on dark bodies
LUMA = np.array([0.3, 0.59, 0.11], dtype=np.float32)
WINDOW = np.array([45, 55, 68], dtype=np.float32)
HEAD_LIGHT = np.array([250, 245, 210], dtype=np.float32)
TAIL_LIGHT = np.array([200, 20, 20], dtype=np.float32)
WINDOWED_CLASSES = ('car', 'truck', 'bus', 'construction_vehicle')
LIT_CLASSES = WINDOWED_CLASSES + ('trailer', 'motorcycle')

# Corners of a unit box in its own frame (x along l, y along w, z up), centre at the origin.
_UNIT_CORNERS = np.array(
    [[sx, sy, sz] for sx in (-0.5, 0.5) for sy in (-0.5, 0.5) for sz in (-0.5, 0.5)]
)


@dataclass(frozen=True)
class PinholeCamera:
    name: str
    frame_id: str
    K: np.ndarray  # [3, 3] at (width, height)
    width: int
    height: int
    lidar_from_camera: np.ndarray  # [4, 4] LIDAR_TOP <- camera optical frame


@dataclass(frozen=True)
class RenderedView:
    image: np.ndarray  # [H, W, 3] uint8 RGB
    depth: np.ndarray  # [H, W] float32 camera z of what the pixel shows (inf: sky)
    instance: np.ndarray  # [H, W] int32 instance id of the box shown, -1 for sky and ground


def rig_cameras(rig: Rig, width: int, height: int) -> list[PinholeCamera]:
    """
    Return the rig's cameras (rig order) at width x height.

    K is scaled from each camera's calibrated size.
    """
    return [
        PinholeCamera(
            c.name,
            c.frame_id,
            scale_intrinsics(c.K, c.image_size, (width, height)),
            width,
            height,
            extrinsics_matrix(c.sensor2lidar),
        )
        for c in rig.cameras
    ]


def _box_rotation(heading: float) -> np.ndarray:
    """[3, 3] world <- box frame."""
    c, s = np.cos(heading), np.sin(heading)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _haze(color: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Blend [..., 3] colours into the horizon colour with distance [...]."""
    f = (1.0 - np.exp(-depth / HAZE_DISTANCE_M))[..., None].astype(np.float32)
    return color * (1.0 - f) + HORIZON * f


class Renderer:
    def __init__(
        self,
        road: Road,
        cameras: Sequence[PinholeCamera],
        near: float = 0.1,
        far: float = 300.0,
        edge_px: float | None = None,
    ) -> None:
        self.road = road
        self.cameras = list(cameras)
        self.near = near
        self.far = far
        width = self.cameras[0].width if self.cameras else 1600
        self.edge_px = edge_px if edge_px is not None else max(1.0, 1.6 * width / 1600)

    def render(self, world_from_lidar: np.ndarray, boxes: WorldBoxes) -> list[RenderedView]:
        """
        Render one view per camera (rig order).

        LIDAR_TOP is at `world_from_lidar` [4, 4].
        """
        return [
            self.render_camera(cam, world_from_lidar @ cam.lidar_from_camera, boxes)
            for cam in self.cameras
        ]

    def render_camera(
        self, cam: PinholeCamera, world_from_camera: np.ndarray, boxes: WorldBoxes
    ) -> RenderedView:
        R, origin = world_from_camera[:3, :3], world_from_camera[:3, 3]
        # 3 x [H, W] world directions, camera z = 1
        rays = _rays(cam, R, 0, cam.height, 0, cam.width)
        image, depth, ground_xy = self._background(rays, origin)
        instance = np.full((cam.height, cam.width), -1, dtype=np.int32)
        for i in range(len(boxes.labels)):
            self._draw_box(cam, R, origin, boxes, i, image, depth, instance, ground_xy)
        return RenderedView(np.clip(image + 0.5, 0, 255).astype(np.uint8), depth, instance)

    # ------------------------------------------------------------------ background
    def _background(
        self, rays: tuple[np.ndarray, ...], origin: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """
        Render sky and ground.

        Returns colours [H, W, 3] float32, their depth [H, W] and the ground hits' world x, y
        (2 x [H, W], nan where the sky shows).
        """
        rx, ry, rz = rays
        metres_per_depth = np.sqrt(rx * rx + ry * ry + rz * rz)  # [H, W]
        with np.errstate(divide='ignore'):
            depth = np.where(rz < -1e-6, np.float32(-origin[2]) / rz, np.float32(np.inf))  # [H, W]
        ground = depth <= GROUND_MAX_DEPTH_M
        sky = ~ground
        depth[sky] = np.inf
        image = np.empty((*depth.shape, 3), dtype=np.float32)
        elevation = np.sqrt(np.clip(rz[sky] / metres_per_depth[sky], 0.0, 1.0))[:, None]
        image[sky] = HORIZON + (SKY_ZENITH - HORIZON) * elevation
        t = depth[ground]
        gx = np.float32(origin[0]) + t * rx[ground]
        gy = np.float32(origin[1]) + t * ry[ground]
        image[ground] = _haze(self._ground_color(gx, gy), t * metres_per_depth[ground])
        ground_x = np.full(depth.shape, np.nan, dtype=np.float32)
        ground_y = np.full(depth.shape, np.nan, dtype=np.float32)
        ground_x[ground], ground_y[ground] = gx, gy
        return image, depth.astype(np.float32, copy=False), (ground_x, ground_y)

    def _ground_color(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """[P, 3] float32 colours of world ground points (x [P], y [P])."""
        s, d = self.road.road_coordinates(x, y)
        ad = np.abs(d)
        checker = (np.floor(x * (1 / 3.0)) + np.floor(y * (1 / 3.0))) % 2 == 0
        code = np.select(
            [
                (ad < 0.08) & ((s % 9.0) < 4.5),
                np.abs(ad - LANE_WIDTH) < 0.08,
                ad < PARKING_EDGE,
                ad < PARKING_EDGE + 0.2,
                (ad < SIDEWALK_EDGE) & ((s % 1.8) < 0.05),
                ad < SIDEWALK_EDGE,
                checker,
            ],
            [7, 6, 5, 4, 3, 2, 1],
            0,
        ).astype(np.uint8)
        return GROUND_PALETTE[code]

    # ------------------------------------------------------------------ boxes
    def _screen_rect(
        self, cam: PinholeCamera, points_cam: np.ndarray
    ) -> tuple[int, int, int, int] | None:
        """
        Return the pixel rectangle (v0, v1, u0, u1) of a convex point set [8+, 3].

        The rectangle covers the part of the set before `near`.
        """
        front = points_cam[points_cam[:, 2] > self.near]
        if len(front) == 0:
            return None
        clipped = [front]
        behind = points_cam[:, 2] <= self.near
        if behind.any():  # where the segments between corners cross the near plane
            a, b = points_cam[behind], points_cam[~behind]
            f = (self.near - a[:, None, 2]) / (b[None, :, 2] - a[:, None, 2])  # [Na, Nb]
            clipped.append((a[:, None] + f[..., None] * (b[None] - a[:, None])).reshape(-1, 3))
        p = np.concatenate(clipped)
        uv = p[:, :2] / p[:, 2:3] * np.diag(cam.K)[:2] + cam.K[:2, 2]
        u0, v0 = np.floor(uv.min(axis=0)).astype(int) - 1
        u1, v1 = np.ceil(uv.max(axis=0)).astype(int) + 2
        u0, u1 = max(u0, 0), min(u1, cam.width)
        v0, v1 = max(v0, 0), min(v1, cam.height)
        return (v0, v1, u0, u1) if u0 < u1 and v0 < v1 else None

    def _draw_box(
        self,
        cam: PinholeCamera,
        R: np.ndarray,
        origin: np.ndarray,
        boxes: WorldBoxes,
        i: int,
        image: np.ndarray,
        depth: np.ndarray,
        instance: np.ndarray,
        ground_xy: tuple[np.ndarray, np.ndarray],
    ) -> None:
        center = boxes.centers[i]
        extent = boxes.sizes_wlh[i][[1, 0, 2]] / 2  # half sizes along the box x (l), y (w), z (h)
        R_wb = _box_rotation(boxes.headings[i])
        footprint = np.array(
            [
                [sx * extent[0] * SHADOW_MARGIN, sy * extent[1] * SHADOW_MARGIN, -extent[2]]
                for sx in (-1, 1)
                for sy in (-1, 1)
            ]
        )  # [4, 3] the contact shadow's corners
        # [12, 3] in the box frame
        local = np.concatenate([_UNIT_CORNERS * (2 * extent), footprint])
        points_cam = (local @ R_wb.T + center - origin) @ R  # [12, 3] in the camera frame
        if np.min(np.linalg.norm(points_cam, axis=1)) > self.far:
            return
        rect = self._screen_rect(cam, points_cam)
        if rect is None:
            return
        v0, v1, u0, u1 = rect
        block = (slice(v0, v1), slice(u0, u1))
        R_bw = R_wb.T
        _shadow(
            image[block],
            instance[block],
            (ground_xy[0][block], ground_xy[1][block]),
            center,
            R_bw,
            extent,
        )
        o = (R_bw @ (origin - center)).astype(np.float32)  # camera centre in the box frame
        d = _rays(cam, R_bw @ R, v0, v1, u0, u1)  # 3 x [h, w] ray directions in the box frame
        t_in, t_out, t_near = _slab(o, d, extent.astype(np.float32))
        win = (t_in <= t_out) & (t_in > self.near) & (t_in < depth[block])
        if not win.any():
            return
        t = t_in[win]  # [P]
        ray = np.stack([c[win] for c in d], axis=1)  # [P, 3]
        # [P] entered face's axis
        face = np.argmax(np.stack([tn[win] for tn in t_near], axis=1), axis=1)
        rows = np.arange(len(face))
        sign = -np.sign(ray[rows, face])  # outward normal of the entered face
        shade = (AMBIENT + DIFFUSE * np.clip((R_wb.T @ SUN)[face] * sign, 0.0, None)).astype(
            np.float32
        )
        base = boxes.colors[i].astype(np.float32)
        point = o + t[:, None] * ray  # [P, 3] hit points in the box frame
        color = (
            _paint(NUSCENES_CLASSES[boxes.labels[i]], base, point, face, sign, extent)
            * shade[:, None]
        )
        margin = extent.astype(np.float32) - np.abs(point)  # to the face borders, per axis
        margin[rows, face] = np.inf
        on_edge = margin.min(axis=1) < self.edge_px * t / cam.K[0, 0]
        color[on_edge] = EDGE_DARK if base @ LUMA > 90 else EDGE_LIGHT
        image[block][win] = _haze(color, t * np.linalg.norm(ray, axis=1))
        depth[block][win] = t
        instance[block][win] = boxes.instance_ids[i]


def _paint(
    class_name: str,
    base: np.ndarray,
    point: np.ndarray,
    face: np.ndarray,
    sign: np.ndarray,
    extent: np.ndarray,
) -> np.ndarray:
    """
    Return [P, 3] unlit colours of box surface points.

    The body colour, plus for vehicles a window band on the sides and lights on the front (+x) and
    rear (-x) faces, so that a picture shows which way a box faces.
    """
    color = np.broadcast_to(base, (len(point), 3)).copy()
    if class_name not in LIT_CLASSES:
        return color
    z = point[:, 2] / extent[2]  # -1 bottom .. 1 top
    across = np.abs(point[:, 1]) / extent[1]  # 0 middle .. 1 side
    sides = face != 2
    if class_name in WINDOWED_CLASSES:
        color[sides & (z > 0.25) & (z < 0.8) & (across < 0.9)] = WINDOW
    lamps = (face == 0) & (z > -0.35) & (z < -0.05) & (across > 0.55) & (across < 0.9)
    color[lamps & (sign > 0)] = HEAD_LIGHT
    color[lamps & (sign < 0)] = TAIL_LIGHT
    return color


def _rays(
    cam: PinholeCamera, R: np.ndarray, v0: int, v1: int, u0: int, u1: int
) -> tuple[np.ndarray, ...]:
    """
    Return the directions R @ K^-1 (u, v, 1) of the pixels v0:v1, u0:u1.

    As three float32 [h, w] components.
    """
    K = cam.K
    a = ((np.arange(u0, u1) - K[0, 2]) / K[0, 0]).astype(np.float32)[None, :]  # [1, w]  x / z
    b = ((np.arange(v0, v1) - K[1, 2]) / K[1, 1]).astype(np.float32)[:, None]  # [h, 1]  y / z
    Rf = R.astype(np.float32)
    return tuple(Rf[k, 0] * a + (Rf[k, 1] * b + Rf[k, 2]) for k in range(3))


def _slab(
    o: np.ndarray, d: tuple[np.ndarray, ...], extent: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """
    Intersect rays with a box in the box frame.

    Returns entry and exit parameters [h, w] and per-axis entries.
    """
    t_near, t_far = [], []
    with np.errstate(divide='ignore', invalid='ignore'):
        for k in range(3):
            inv = 1.0 / d[k]
            t1, t2 = (-extent[k] - o[k]) * inv, (extent[k] - o[k]) * inv
            t_near.append(np.minimum(t1, t2))
            t_far.append(np.maximum(t1, t2))
    t_in = np.maximum(np.maximum(t_near[0], t_near[1]), t_near[2])
    t_out = np.minimum(np.minimum(t_far[0], t_far[1]), t_far[2])
    return t_in, t_out, t_near


def _shadow(
    block: np.ndarray,
    block_instance: np.ndarray,
    block_ground: tuple[np.ndarray, np.ndarray],
    center: np.ndarray,
    R_bw: np.ndarray,
    extent: np.ndarray,
) -> None:
    """Darken the still-uncovered ground pixels of the block that lie under the grown footprint."""
    # [h, w]
    dx, dy = (block_ground[0] - np.float32(center[0]), block_ground[1] - np.float32(center[1]))
    with np.errstate(invalid='ignore'):  # nan: sky pixels
        under = (
            (np.abs(R_bw[0, 0] * dx + R_bw[0, 1] * dy) < extent[0] * SHADOW_MARGIN)
            & (np.abs(R_bw[1, 0] * dx + R_bw[1, 1] * dy) < extent[1] * SHADOW_MARGIN)
            & (block_instance < 0)
        )
    block[under] *= SHADOW_FACTOR
