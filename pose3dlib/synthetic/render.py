"""Drawing synthetic people and backgrounds with cv2 polygons (painter's algorithm by depth).

A person is a set of solid parts (tapered limbs, torso, neck, head with hair, hands, feet)
projected through pinhole intrinsics and drawn far to near, so nearer parts occlude
farther ones. Shading carries depth: a part's brightness grows as it comes nearer the
camera than the pelvis, and limbs get a lit stripe that makes them read as cylinders.
An optional label image receives each part's id, from which joint visibility follows.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from .bodies import (
    HEAD_TOP,
    L_ANKLE,
    L_ELBOW,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    L_WRIST,
    NECK,
    PELVIS,
    R_ANKLE,
    R_ELBOW,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    R_WRIST,
    SPINE,
)

SHIFT = 4  # cv2 sub-pixel bits: coordinates are drawn with 1/16 px precision
ONE = 1 << SHIFT
DEPTH_SHADE_PER_M = 0.6  # brightness gain per metre nearer than the pelvis
SHADE_RANGE = (0.5, 1.45)
LIGHT_2D = np.array([-0.6, -0.8])  # light from the upper left (image coordinates)
OCCLUDER_ID = 255
WILD_SATURATION = 0.55  # keep this fraction of the random background colours' saturation
BACKGROUND_ID = 0

# Part ids in the label image and the joints each part may cover while the joint stays visible.
PART_JOINTS: dict[int, tuple[int, ...]] = {
    1: (R_HIP, L_HIP, PELVIS, SPINE, NECK, R_SHOULDER, L_SHOULDER),  # torso and hips
    2: (HEAD_TOP, NECK), 3: (NECK,),  # head, neck
    4: (R_SHOULDER, R_ELBOW), 5: (R_ELBOW, R_WRIST), 6: (R_WRIST,),
    7: (L_SHOULDER, L_ELBOW), 8: (L_ELBOW, L_WRIST), 9: (L_WRIST,),
    10: (R_HIP, R_KNEE, PELVIS), 11: (R_KNEE, R_ANKLE), 12: (R_ANKLE,),
    13: (L_HIP, L_KNEE, PELVIS), 14: (L_KNEE, L_ANKLE), 15: (L_ANKLE,),
}
# (part id, joint a, joint b, radius a mm, radius b mm, colour key) for tapered limbs.
LIMBS: tuple[tuple[int, int, int, float, float, str], ...] = (
    (10, R_HIP, R_KNEE, 82, 56, "pants"), (13, L_HIP, L_KNEE, 82, 56, "pants"),
    (11, R_KNEE, R_ANKLE, 54, 38, "shin"), (14, L_KNEE, L_ANKLE, 54, 38, "shin"),
    (4, R_SHOULDER, R_ELBOW, 52, 40, "shirt"), (7, L_SHOULDER, L_ELBOW, 52, 40, "shirt"),
    (5, R_ELBOW, R_WRIST, 38, 29, "forearm"), (8, L_ELBOW, L_WRIST, 38, 29, "forearm"),
)
SKIN_TONES = np.array([[236, 200, 170], [224, 172, 138], [198, 144, 104], [160, 110, 75], [112, 72, 48],
                       [80, 52, 36]], dtype=np.float64)  # RGB, light to dark


@dataclass
class Appearance:
    """Colours (RGB 0..255) and clothing of one person; `girth` scales all radii."""

    shirt: np.ndarray
    pants: np.ndarray
    skin: np.ndarray
    hair: np.ndarray
    shoes: np.ndarray
    long_sleeves: bool
    shorts: bool
    stripes: np.ndarray | None  # stripe colour on the shirt, or None
    girth: float

    def colour(self, key: str) -> np.ndarray:
        if key == "forearm":
            return self.shirt if self.long_sleeves else self.skin
        if key == "shin":
            return self.skin if self.shorts else self.pants
        return getattr(self, key)


def _hsv_colour(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]) -> np.ndarray:
    hsv = np.uint8([[[rng.integers(0, 180), rng.uniform(*sat) * 255, rng.uniform(*val) * 255]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float64)


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """Random clothing colours and textures, skin tone, hair and body girth."""
    t = rng.uniform(0, len(SKIN_TONES) - 1)
    i = int(t)
    skin = SKIN_TONES[i] * (1 - (t - i)) + SKIN_TONES[min(i + 1, len(SKIN_TONES) - 1)] * (t - i)
    return Appearance(
        shirt=_hsv_colour(rng, (0.2, 0.9), (0.35, 0.95)),
        pants=_hsv_colour(rng, (0.1, 0.7), (0.15, 0.7)),
        skin=skin,
        hair=_hsv_colour(rng, (0.3, 0.8), (0.05, 0.45)),
        shoes=_hsv_colour(rng, (0.0, 0.5), (0.05, 0.5)),
        long_sleeves=bool(rng.random() < 0.6),
        shorts=bool(rng.random() < 0.25),
        stripes=_hsv_colour(rng, (0.2, 0.9), (0.3, 1.0)) if rng.random() < 0.35 else None,
        girth=float(rng.uniform(0.85, 1.2)),
    )


def _px(points: np.ndarray) -> np.ndarray:
    """Float pixels (k, 2) -> int32 fixed-point coordinates for cv2 with SHIFT bits (halves to even)."""
    return np.rint(points * ONE).astype(np.int32)


def _clip(x: float, lo: float, hi: float) -> float:
    """`np.clip` of one number, as a Python float (the renderer draws thousands of parts a second)."""
    return float(min(max(x, lo), hi))


def _shade(colour: np.ndarray, factor: float) -> tuple[float, float, float]:
    """An RGB colour (3,) times `factor`, clipped to 0..255, as cv2 takes a colour."""
    return tuple(_clip(c * factor, 0.0, 255.0) for c in colour.tolist())


class _Painter:
    """Draws parts into an RGB canvas and, optionally, their ids into a label image."""

    def __init__(self, canvas: np.ndarray, labels: np.ndarray | None):
        self.canvas, self.labels = canvas, labels

    def polygon(self, pts: np.ndarray, colour, part_id: int, label: bool = True) -> None:
        cv2.fillConvexPoly(self.canvas, _px(pts), colour, cv2.LINE_AA, SHIFT)
        if label and self.labels is not None:
            cv2.fillConvexPoly(self.labels, _px(pts), part_id, cv2.LINE_8, SHIFT)

    def disc(self, centre: np.ndarray, radius: float, colour, part_id: int, label: bool = True) -> None:
        c, r = tuple(int(v) for v in _px(centre)), max(round(radius * ONE), 1)
        cv2.circle(self.canvas, c, r, colour, -1, cv2.LINE_AA, SHIFT)
        if label and self.labels is not None:
            cv2.circle(self.labels, c, r, part_id, -1, cv2.LINE_8, SHIFT)

    def limb(self, a: np.ndarray, b: np.ndarray, ra: float, rb: float, colour: np.ndarray, shade: float,
             part_id: int) -> None:
        """A tapered limb with round ends from pixel a to b (radii in px) and a lit stripe."""
        d = b - a
        length = float(np.hypot(*d))
        dark = _shade(colour, shade * 0.72)
        self.disc(a, ra, dark, part_id)
        self.disc(b, rb, dark, part_id)
        if length < 1e-3:
            return
        n = np.array([-d[1], d[0]]) / length
        if n @ LIGHT_2D < 0:
            n = -n
        self.polygon(np.array([a + n * ra, b + n * rb, b - n * rb, a - n * ra]), dark, part_id)
        lit = _shade(colour, shade)
        ia, ib = a + n * ra * 0.3, b + n * rb * 0.3
        self.polygon(np.array([ia + n * ra * 0.4, ib + n * rb * 0.4, ib - n * rb * 0.35, ia - n * ra * 0.35]),
                     lit, part_id, label=False)


def _hull(points: np.ndarray, radii: np.ndarray, k: int = 10) -> np.ndarray:
    """Convex hull (m, 2) of discs (points (p, 2), radii (p,)), each sampled at k directions."""
    ang = np.linspace(0, 2 * np.pi, k, endpoint=False)
    ring = np.stack([np.cos(ang), np.sin(ang)], axis=-1)  # (k, 2)
    pts = (points[:, None, :] + radii[:, None, None] * ring[None]).reshape(-1, 2)
    return cv2.convexHull(pts.astype(np.float32))[:, 0, :].astype(np.float64)


# A part to draw: (depth in mm, the function that draws it); parts are drawn far to near.
_Part = tuple[float, Callable[[], None]]


class _View:
    """One person seen through one camera: projection, radii in pixels and depth shading."""

    def __init__(self, intrinsics: np.ndarray, z_ref: float, look: Appearance, paint: _Painter) -> None:
        self.fx, self.fy, self.cx, self.cy = intrinsics
        self.z_ref, self.look, self.paint = z_ref, look, paint

    def proj(self, p: np.ndarray) -> np.ndarray:
        """(..., 3) camera-frame mm -> (..., 2) pixels."""
        out = np.empty(p.shape[:-1] + (2,))
        out[..., 0] = self.fx * p[..., 0] / p[..., 2] + self.cx
        out[..., 1] = self.fy * p[..., 1] / p[..., 2] + self.cy
        return out

    def rad(self, r_mm: float, z: float) -> float:
        """A radius of r_mm (times the person's girth) at depth z, in pixels."""
        return r_mm * self.look.girth * self.fx / z

    def shade(self, z: float) -> float:
        """Brightness factor of a part at depth z: brighter when nearer than the pelvis."""
        return _clip(1.0 + DEPTH_SHADE_PER_M * (self.z_ref - z) / 1000.0, *SHADE_RANGE)


def _limb_parts(v: _View, joints_cam: np.ndarray) -> list[_Part]:
    """Thighs, shins, upper arms and forearms (LIMBS), each at its midpoint's depth."""
    parts: list[_Part] = []
    for part_id, a, b, ra, rb, key in LIMBS:
        pa, pb = joints_cam[a], joints_cam[b]
        zmid = (pa[2] + pb[2]) / 2
        parts.append((zmid, lambda pa=pa, pb=pb, ra=ra, rb=rb, key=key, part_id=part_id, zmid=zmid: v.paint.limb(
            v.proj(pa), v.proj(pb), v.rad(ra, pa[2]), v.rad(rb, pb[2]), v.look.colour(key), v.shade(zmid), part_id)))
    return parts


def _hand_and_foot_parts(v: _View, joints_cam: np.ndarray, forward_cam: np.ndarray, up_cam: np.ndarray) -> list[_Part]:
    """A disc beyond each wrist and a shoe (heel to toe along the pelvis' forward) at each ankle."""
    parts: list[_Part] = []
    for part_id, el, wr in ((6, R_ELBOW, R_WRIST), (9, L_ELBOW, L_WRIST)):
        d = joints_cam[wr] - joints_cam[el]
        c = joints_cam[wr] + 70.0 * d / np.linalg.norm(d)
        parts.append((c[2], lambda c=c, part_id=part_id: v.paint.disc(
            v.proj(c), v.rad(40, c[2]), _shade(v.look.skin, v.shade(c[2]) * 0.9), part_id)))
    for part_id, an in ((12, R_ANKLE), (15, L_ANKLE)):
        heel = joints_cam[an] - 40.0 * up_cam - 30.0 * forward_cam
        toe = heel + 190.0 * forward_cam
        zf = (heel[2] + toe[2]) / 2
        parts.append((zf, lambda heel=heel, toe=toe, part_id=part_id, zf=zf: v.paint.limb(
            v.proj(heel), v.proj(toe), v.rad(38, heel[2]), v.rad(34, toe[2]), v.look.shoes, v.shade(zf), part_id)))
    return parts


def _trunk_parts(v: _View, joints_cam: np.ndarray) -> list[_Part]:
    """Torso (shirt, optional stripes, a lit chest panel) and hips (pants): convex hulls of discs."""
    trunk = joints_cam[[R_SHOULDER, L_SHOULDER, SPINE, R_HIP, L_HIP]]
    trunk_r = np.array([68, 68, 118, 0, 0], dtype=np.float64)
    waist = joints_cam[SPINE] + 0.55 * (joints_cam[[R_HIP, L_HIP]] - joints_cam[SPINE])
    z_torso = float(trunk[:3, 2].mean())
    look, paint = v.look, v.paint

    def draw_torso() -> None:
        pts = np.concatenate([v.proj(trunk[:3]), v.proj(waist)])
        rads = np.array([v.rad(r, z) for r, z in zip(np.r_[trunk_r[:3], 95, 95], np.r_[trunk[:3, 2], waist[:, 2]])])
        s = v.shade(z_torso)
        paint.polygon(_hull(pts, rads), _shade(look.shirt, s * 0.85), 1)
        if look.stripes is not None:
            sh, hp = v.proj(trunk[:2]), v.proj(waist)
            width = max(v.rad(28, z_torso), 1.0)
            for t in (0.2, 0.45, 0.7):
                a, b = sh[0] + t * (hp[0] - sh[0]), sh[1] + t * (hp[1] - sh[1])
                cv2.line(paint.canvas, tuple(int(c) for c in _px(a)), tuple(int(c) for c in _px(b)),
                         _shade(look.stripes, s * 0.85), max(round(width), 1), cv2.LINE_AA, SHIFT)
        # A lit panel on the chest reads as a rounded body.
        centre = v.proj(trunk[:3].mean(0, keepdims=True))[0]
        paint.disc(centre + LIGHT_2D * v.rad(40, z_torso), v.rad(70, z_torso), _shade(look.shirt, s), 1, label=False)

    hips = joints_cam[[R_HIP, L_HIP, PELVIS]]
    z_hips = float(hips[:, 2].mean())

    def draw_hips() -> None:
        pts = np.concatenate([v.proj(hips), v.proj(waist)])
        rads = np.array([v.rad(r, z) for r, z in zip((88, 88, 95, 92, 92), np.r_[hips[:, 2], waist[:, 2]])])
        paint.polygon(_hull(pts, rads), _shade(look.pants, v.shade(z_hips) * 0.85), 1)

    return [(z_torso, draw_torso), (z_hips + 1.0, draw_hips)]  # hips just behind the torso at equal depth


def _head_parts(v: _View, joints_cam: np.ndarray, face_cam: np.ndarray) -> list[_Part]:
    """Neck and head: a skin sphere with hair on the back and top (in front when the face looks away)."""
    neck, top = joints_cam[NECK], joints_cam[HEAD_TOP]
    head_c = neck + 0.55 * (top - neck)
    head_r = 0.45 * float(np.linalg.norm(top - neck))
    head_up = (top - neck) / np.linalg.norm(top - neck)
    hair_c = head_c - 0.28 * head_r * face_cam + 0.14 * head_r * head_up
    look, paint = v.look, v.paint

    def draw_neck() -> None:
        paint.limb(v.proj(neck), v.proj(neck + 0.35 * (top - neck)), v.rad(46, neck[2]), v.rad(44, neck[2]),
                   look.skin, v.shade(neck[2]) * 0.9, 3)

    def draw_head() -> None:
        hr = head_r * v.fx / head_c[2]

        def hair() -> None:
            paint.disc(v.proj(hair_c), 0.97 * hr, _shade(look.hair, v.shade(hair_c[2])), 2)

        hair_in_front = face_cam[2] > 0  # the face looks away from the camera
        if not hair_in_front:
            hair()
        paint.disc(v.proj(head_c), hr, _shade(look.skin, v.shade(head_c[2]) * 0.8), 2)
        paint.disc(v.proj(head_c - 0.15 * head_r * face_cam) + LIGHT_2D * 0.2 * hr, 0.7 * hr,
                   _shade(look.skin, v.shade(head_c[2])), 2, label=False)
        if hair_in_front:
            hair()

    return [((neck[2] + head_c[2]) / 2 + 5.0, draw_neck), (head_c[2], draw_head)]


def render_person(canvas: np.ndarray, labels: np.ndarray | None, joints_cam: np.ndarray, face_cam: np.ndarray,
                  forward_cam: np.ndarray, up_cam: np.ndarray, intrinsics: np.ndarray, look: Appearance) -> None:
    """Draw one person into `canvas` (S, S, 3) uint8 RGB (and part ids into `labels` (S, S) uint8).

    Args:
        joints_cam: (16, 3) camera-frame joints, mm (MPII16 order).
        face_cam, forward_cam, up_cam: (3,) unit vectors in the camera frame: where the face
            looks, the pelvis' forward and up directions.
        intrinsics: (4,) fx, fy, cx, cy of `canvas` in px.
    """
    v = _View(intrinsics, joints_cam[PELVIS, 2], look, _Painter(canvas, labels))
    parts = (_limb_parts(v, joints_cam) + _hand_and_foot_parts(v, joints_cam, forward_cam, up_cam)
             + _trunk_parts(v, joints_cam) + _head_parts(v, joints_cam, face_cam))
    for _, draw in sorted(parts, key=lambda p: -p[0]):  # far to near; a stable sort keeps ties in list order
        draw()


# ----------------------------------------------------------------------------- backgrounds

def lab_background(rng: np.random.Generator, size: int, wall: np.ndarray, floor: np.ndarray,
                   horizon_v: float) -> np.ndarray:
    """A plain studio: a wall above `horizon_v` (px), a floor below, soft gradient and noise; (S, S, 3) uint8."""
    v = np.arange(size, dtype=np.float32)[:, None, None]  # (S, 1, 1)
    rows = np.where(v < horizon_v, wall.astype(np.float32) * (0.92 + 0.08 * v / size),
                    floor.astype(np.float32) * (0.85 + 0.15 * v / size))  # (S, 1, 3)
    img = rows + 3.0 * rng.standard_normal((size, size, 1), dtype=np.float32)  # (S, S, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def _muted(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random RGB colours (shape + (3,)) with their saturation scaled by WILD_SATURATION."""
    c = rng.integers(0, 256, size=shape + (3,)).astype(np.float64)
    grey = c.mean(axis=-1, keepdims=True)
    return grey + WILD_SATURATION * (c - grey)


def wild_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A cluttered, textured scene: smooth colour field, random shapes and lines, grain; (S, S, 3) uint8."""
    grid = _muted(rng, (int(rng.integers(2, 6)), int(rng.integers(2, 6)))).astype(np.uint8)
    img = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    s = size
    for _ in range(int(rng.integers(8, 25))):
        colour = tuple(float(c) for c in _muted(rng, ()))
        kind = rng.integers(0, 4)
        x, y = rng.uniform(-0.1, 1.1, 2) * s
        w, h = rng.uniform(0.03, 0.5, 2) * s
        if kind == 0:
            cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)), colour, -1)
        elif kind == 1:
            cv2.ellipse(img, (int(x), int(y)), (int(w / 2), int(h / 3)), float(rng.uniform(0, 180)), 0, 360,
                        colour, -1, cv2.LINE_AA)
        elif kind == 2:
            pts = (rng.uniform(-0.1, 1.1, (int(rng.integers(3, 6)), 2)) * s).astype(np.int32)
            cv2.fillPoly(img, [pts], colour, cv2.LINE_AA)
        else:
            x2, y2 = rng.uniform(-0.1, 1.1, 2) * s
            cv2.line(img, (int(x), int(y)), (int(x2), int(y2)), colour, int(rng.integers(1, max(2, s // 40))),
                     cv2.LINE_AA)
    if rng.random() < 0.5:
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 2.0)))
    grain = float(rng.uniform(2, 10)) * rng.standard_normal((s, s, 1), dtype=np.float32)
    return np.clip(img + grain, 0, 255).astype(np.uint8)


def draw_occluder(rng: np.random.Generator, canvas: np.ndarray, labels: np.ndarray, near_px: np.ndarray,
                  person_px: float) -> None:
    """Draw a rectangle or ellipse of about a quarter of the person's size near pixel `near_px` (2,)."""
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    c = near_px + rng.normal(0, 0.1, 2) * person_px
    w, h = rng.uniform(0.12, 0.35, 2) * person_px
    ang = float(rng.uniform(0, 180))
    box = cv2.boxPoints(((float(c[0]), float(c[1])), (float(w), float(h)), ang))
    if rng.random() < 0.5:
        cv2.fillConvexPoly(canvas, _px(box), colour, cv2.LINE_AA, SHIFT)
        cv2.fillConvexPoly(labels, _px(box), OCCLUDER_ID, cv2.LINE_8, SHIFT)
    else:
        args = ((int(c[0]), int(c[1])), (max(int(w / 2), 1), max(int(h / 2), 1)), ang, 0, 360)
        cv2.ellipse(canvas, *args, colour, -1, cv2.LINE_AA)
        cv2.ellipse(labels, *args, OCCLUDER_ID, -1, cv2.LINE_8)


def joint_visibility(labels: np.ndarray, joints_px: np.ndarray) -> np.ndarray:
    """(16,) bool: a joint is visible unless another body part or an occluder covers its pixel."""
    size = labels.shape[0]
    vis = np.zeros(len(joints_px), dtype=bool)
    for j, (u, v) in enumerate(np.round(joints_px).astype(int)):
        if not (0 <= u < size and 0 <= v < size):
            continue
        lab = int(labels[v, u])
        vis[j] = lab == BACKGROUND_ID or (lab != OCCLUDER_ID and j in PART_JOINTS.get(lab, ()))
    return vis
