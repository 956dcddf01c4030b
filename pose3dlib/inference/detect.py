"""Finding people in uncropped pictures with the pose network's own heatmap confidence.

No detector weights are downloaded: the pose network itself scores square windows. A
window's score is the mean over the 16 joints of the heatmap maximum, which is high
only when a whole person fills the window at about the scale the network was trained on.

1. coarse search: windows on a grid of positions (stride = WINDOW_STRIDE x side) at
   sides from the image's longer side down to MIN_SIDE_FRACTION x its shorter side,
   SCALES_PER_OCTAVE per halving (the smallest scales left out where they would take the
   count past MAX_WINDOWS: long, narrow pictures), all scored in batches;
2. refinement: the best few distinct windows are re-centred on their predicted joints
   and re-sized to the joints' extent x REFINE_MARGIN (the margin of the training
   crops), REFINE_ROUNDS times, each time re-scored; each track's best-scoring window
   is reported re-centred on the joints predicted in it (RECENTRE_RESULT), and the
   largest box scoring within NEAR_BEST of the best wins.

`find_people` returns boxes best first; `hit` and `hit_rate` measure the search against
the ground truth of `data.scenes` (box centre on the person, side within 0.5-2.5 x the
person's).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .. import camera
from ..config import Config
from ..engine.paths import CommandLinePath
from ..evaluation.evaluate import predict

SCALES_PER_OCTAVE = 2  # window sides shrink by 2 ** (-1 / SCALES_PER_OCTAVE)
MIN_SIDE_FRACTION = 0.2  # smallest window side / the image's shorter side
WINDOW_STRIDE = 1 / 3  # grid step / window side
TOP_WINDOWS = 4  # distinct coarse windows refined
REFINE_ROUNDS = 3
REFINE_MARGIN = 1.5  # box side / extent of the confident joints (wild training crops: 1.35-2.0)
CONFIDENT_JOINT = 0.0  # joints whose heatmap maximum is at least this fraction of the best joint's frame the box
NEAR_BEST = 0.9  # among refined boxes scoring at least this fraction of the best, the largest wins (parts of a
# person score almost as well as the whole person; the whole is the larger box)
SAME_PERSON_IOU = 0.3  # boxes overlapping more than this are one person
SAME_PERSON_COVER = 0.9  # --all-people: a box lying this much inside a better one is a part of that person
RECENTRE_RESULT = True  # report each track's best window re-centred on the joints found in it: a network trained on
# loose, off-centre crops scores a window beside a person almost as high as a centred one, but finds the same joints
OTHER_PERSON_SCORE = 0.6  # --all-people keeps boxes scoring at least this fraction of the best
MIN_SCORE = 0.15  # below this mean heatmap maximum the search reports that no person was seen
RESEARCH_EVERY_S = 1.0  # videos: a whole-frame search this often (seconds of video) besides following the person
SWITCH_MARGIN = 0.1  # ... whose best box replaces the followed one when it scores this fraction higher
MAX_SIDE_OVER_IMAGE = 2.0  # a box larger than this x the picture's longer side frames no clear person (a close-up
# person's box is about 1.5 x); a followed box is held to it: re-centring on scattered joints grew one frame by frame,
# to 30 x a 320 px frame, and the search every RESEARCH_EVERY_S did not replace it
BATCH = 64
MAX_WINDOWS = 600  # coarse windows at most: a photo needs 175-550 (4:3 to 3:1); a 50 x 1000 strip would take 5,984


@dataclass
class Box:
    """A square person box in image pixels, with the score the network gave it."""

    center_px: np.ndarray  # (2,) x, y
    side_px: float
    score: float  # mean per-joint heatmap maximum in this box
    source: str

    def as_json(self) -> dict:
        return {"center_px": [round(float(v), 2) for v in self.center_px], "side_px": round(float(self.side_px), 2),
                "source": self.source, "score": None if math.isnan(self.score) else round(float(self.score), 4)}

    @classmethod
    def from_json(cls, box: dict) -> Box:
        """The box of a demo record (`as_json`'s form: the JSON's "box"); a null score reads as NaN."""
        score = box.get("score")
        return cls(np.asarray(box["center_px"], dtype=np.float64), float(box["side_px"]),
                   float("nan") if score is None else float(score), str(box.get("source", "")))


def candidate_windows(image_hw: tuple[int, int], min_side_fraction: float = MIN_SIDE_FRACTION,
                      scales_per_octave: int = SCALES_PER_OCTAVE, stride: float = WINDOW_STRIDE,
                      max_windows: int = MAX_WINDOWS) -> np.ndarray:
    """Square windows (N, 3): centre x, centre y, side (px), covering the image at every scale.

    Scales run from the longer side down; a scale that would take the count past `max_windows`
    ends the list (the largest scale is always kept), so a long, narrow picture does not cost
    thousands of windows of a few pixels."""
    h, w = image_hw
    side, smallest = float(max(h, w)), min_side_fraction * min(h, w)
    out: list[np.ndarray] = []
    count = 0
    while side >= smallest * 0.999:
        axes = []
        for extent in (w, h):
            if side >= extent:
                axes.append(np.array([(extent - 1) / 2.0]))
            else:
                n = int(np.ceil((extent - side) / (stride * side))) + 1
                axes.append(np.linspace(side / 2 - 0.5, extent - side / 2 - 0.5, n))
        cx, cy = np.meshgrid(*axes)
        if out and count + cx.size > max_windows:
            break
        out.append(np.stack([cx.ravel(), cy.ravel(), np.full(cx.size, side)], 1))
        count += cx.size
        side *= 2 ** (-1 / scales_per_octave)
    return np.concatenate(out)


def crop_windows(pyramid: camera.ImagePyramid, windows: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Crops (N, S, S, 3) uint8 of the windows (N, 3) of the picture of `pyramid` and their affines
    (N, 2, 3) image px -> crop px (a large window read from a halving of the picture)."""
    affines = np.stack([camera.crop_affine(win[:2], win[2], 0.0, size) for win in windows])
    crops = np.stack([pyramid.warp(a, size) for a in affines])
    return crops, affines


@torch.no_grad()
def score_windows(model: torch.nn.Module, cfg: Config, image_rgb: np.ndarray, windows: np.ndarray,
                  device: torch.device | None = None, batch: int = BATCH) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the network on each window (no flip test).

    Returns:
        scores (N,) mean heatmap maximum, joints (N, 16, 2) image px, maxvals (N, 16).
    """
    device = device or next(model.parameters()).device
    size, hm = cfg.data.input_size, cfg.data.heatmap_size
    scores, joints, maxvals = [], [], []
    pyramid = camera.ImagePyramid(image_rgb)  # its halvings made once for all the batches
    for i in range(0, len(windows), batch):
        crops, affines = crop_windows(pyramid, windows[i:i + batch], size)
        x = torch.from_numpy(crops).permute(0, 3, 1, 2).contiguous().to(device)  # (B, 3, S, S) uint8
        out = predict(model, x, cfg.model.input_format, flip_test=False)
        mv = out["maxvals"].float().cpu().numpy()  # (B, 16)
        crop_px = camera.normalized_to_crop_px(out["joints_2d"].float().cpu().numpy(), size, hm)  # (B, 16, 2)
        joints.append(np.stack([camera.apply_affine(p, camera.invert_affine(a)) for p, a in zip(crop_px, affines)]))
        maxvals.append(mv)
        scores.append(mv.mean(1))
    return np.concatenate(scores), np.concatenate(joints), np.concatenate(maxvals)


def box_from_joints(joints_px: np.ndarray, maxvals: np.ndarray, margin: float = REFINE_MARGIN) -> np.ndarray:
    """Window (3,) centred on the confident joints' box, side = their larger extent x margin."""
    keep = maxvals >= CONFIDENT_JOINT * maxvals.max()
    centre, side = camera.box_around(joints_px[keep] if keep.sum() >= 2 else joints_px, margin)
    return np.array([*centre, side])


def square_intersection(a: np.ndarray, b: np.ndarray) -> float:
    """Area (px^2) shared by two square windows (cx, cy, side)."""
    lo = np.maximum(a[:2] - a[2] / 2, b[:2] - b[2] / 2)
    hi = np.minimum(a[:2] + a[2] / 2, b[:2] + b[2] / 2)
    return float(np.prod(np.clip(hi - lo, 0, None)))


def square_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two square windows (cx, cy, side)."""
    inter = square_intersection(a, b)
    return inter / (a[2] ** 2 + b[2] ** 2 - inter)


def square_cover(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of square window a (cx, cy, side) that lies inside square window b."""
    return square_intersection(a, b) / a[2] ** 2


def distinct(windows: np.ndarray, scores: np.ndarray, limit: int, iou: float = SAME_PERSON_IOU,
             cover: float | None = None) -> list[int]:
    """Indices of the best-scoring windows, skipping any that overlap a better one by more than `iou`
    or (when `cover` is given) lie at least that fraction inside a better one."""
    def same(i: int, k: int) -> bool:
        return square_iou(windows[i], windows[k]) > iou or (cover is not None and square_cover(windows[i], windows[k]) >= cover)

    kept: list[int] = []
    for i in np.argsort(-scores):
        if not any(same(i, k) for k in kept):
            kept.append(int(i))
            if len(kept) == limit:
                break
    return kept


def refine(model: torch.nn.Module, cfg: Config, image_rgb: np.ndarray, windows: np.ndarray,
           rounds: int = REFINE_ROUNDS, device: torch.device | None = None,
           recentre: bool = RECENTRE_RESULT) -> tuple[np.ndarray, np.ndarray]:
    """Re-centre and re-size windows (K, 3) on their predicted joints.

    Each track keeps its best-scoring window. Returns, per track, that window re-centred on
    the joints predicted in it (`recentre`, the default) or the window itself, and its score.
    """
    def score_and_centre(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores (K,) of the windows and each window re-centred on its predicted joints (K, 3)."""
        scores, joints, maxvals = score_windows(model, cfg, image_rgb, windows, device)
        return scores, np.stack([box_from_joints(j, m) for j, m in zip(joints, maxvals)])

    best_scores, centred = score_and_centre(windows)
    best = (centred if recentre else windows).copy()  # per track, the box reported for its best window
    for _ in range(rounds):
        windows = centred
        scores, centred = score_and_centre(windows)
        better = scores > best_scores
        best_scores[better] = scores[better]
        best[better] = (centred if recentre else windows)[better]
    return best, best_scores


def find_people(model: torch.nn.Module, cfg: Config, image_rgb: np.ndarray, max_people: int = 1,
                device: torch.device | None = None, recentre: bool = RECENTRE_RESULT) -> list[Box]:
    """Search the whole image for people; boxes best first (at most `max_people`, at least one).

    `recentre`: see `refine` (False: the rule before, which reports the best window itself).
    """
    windows = candidate_windows(image_rgb.shape[:2])
    scores, _, _ = score_windows(model, cfg, image_rgb, windows, device)
    seeds = windows[distinct(windows, scores, max(TOP_WINDOWS, 2 * max_people))]
    refined, refined_scores = refine(model, cfg, image_rgb, seeds, device=device, recentre=recentre)
    near = refined_scores >= NEAR_BEST * refined_scores.max()
    first = int(np.argmax(np.where(near, refined[:, 2], -np.inf)))  # the largest of the near-best boxes
    rank = np.argsort(-refined_scores)
    rank = np.r_[first, rank[rank != first]]
    priority = np.empty(len(rank))
    priority[rank] = -np.arange(len(rank))  # the chosen box first, then by score
    keep = distinct(refined, priority, max_people, cover=SAME_PERSON_COVER)
    best = refined_scores[keep[0]]
    keep = [k for k in keep if k == keep[0] or refined_scores[k] >= OTHER_PERSON_SCORE * best]
    return [Box(refined[k, :2], float(refined[k, 2]), float(refined_scores[k]), "heatmap search")
            for k in keep]


def track(model: torch.nn.Module, cfg: Config, image_rgb: np.ndarray, previous: Box,
          device: torch.device | None = None) -> Box:
    """Follow a person from the previous video frame's box (refinement only, no grid search)."""
    start = np.array([[*previous.center_px, previous.side_px]])
    refined, scores = refine(model, cfg, image_rgb, start, rounds=1, device=device)
    h, w = image_rgb.shape[:2]
    centre = np.clip(refined[0, :2], 0, [w - 1, h - 1])  # the person is in the frame
    side = min(float(refined[0, 2]), max_side((h, w)))
    return Box(centre, side, float(scores[0]), "tracked from the previous frame")


def max_side(image_hw: tuple[int, int]) -> float:
    """The largest box side (px) that can still frame a person in a picture of `image_hw` (MAX_SIDE_OVER_IMAGE)."""
    return MAX_SIDE_OVER_IMAGE * max(image_hw)


def follow(model: torch.nn.Module, cfg: Config, image_rgb: np.ndarray, previous: Box, search: bool,
           device: torch.device | None = None) -> Box:
    """The person's box in the next video frame: `track` from the previous box, and a whole-frame
    `find_people` when the track is lost (score below MIN_SCORE) or `search` is asked for (every
    RESEARCH_EVERY_S of video). A search's box replaces a tracked one only when it scores SWITCH_MARGIN
    higher, so a track that locked onto the wrong thing in an earlier frame is corrected and a
    good one is not swapped for a near tie."""
    box = track(model, cfg, image_rgb, previous, device=device)
    lost = box.score < MIN_SCORE
    if lost or search:
        found = find_people(model, cfg, image_rgb, device=device)[0]
        if lost or found.score > box.score * (1 + SWITCH_MARGIN):
            return found
    return box


def hit(box: Box, person_box_xywh: np.ndarray) -> bool:
    """The target: box centre inside the person's box, box side within 0.5-2.5 x the person's larger side."""
    x, y, w, h = person_box_xywh
    cx, cy = box.center_px
    inside = x <= cx <= x + w and y <= cy <= y + h
    return bool(inside and 0.5 <= box.side_px / max(w, h) <= 2.5)


def hit_rate(model: torch.nn.Module, cfg: Config, scenes, device: torch.device | None = None,
             progress: bool = False, recentre: bool = RECENTRE_RESULT) -> dict:
    """Fraction of scenes whose best box hits the (first) person; also the per-scene detail."""
    from ..engine.progress import progress_bar

    rows = []
    for scene in progress_bar(scenes, desc="person search", disable=not progress):
        box = find_people(model, cfg, scene.image, device=device, recentre=recentre)[0]
        x, y, w, h = scene.person_boxes_px[0]
        rows.append({"hit": hit(box, scene.person_boxes_px[0]), "score": box.score,
                     "side_ratio": box.side_px / max(w, h),
                     "centre_offset": float(np.linalg.norm(box.center_px - [x + w / 2, y + h / 2]) / max(w, h))})
    return {"hit_rate": float(np.mean([r["hit"] for r in rows])), "scenes": len(rows), "rows": rows}


def add_arguments(parser) -> None:
    parser.description = ("Measure the person search on synthetic uncropped scenes: the fraction whose best box "
                          "hits the person (centre on the person, side 0.5-2.5x the person's).")
    parser.add_argument("checkpoint", action=CommandLinePath, help="pose3d checkpoint")
    parser.add_argument("--scenes", type=int, default=100, help="number of scenes (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="scene seed (default 1)")
    parser.add_argument("--out", action=CommandLinePath, default=None, help="also write the per-scene rows to this JSON file")
    parser.add_argument("--no-recentre", dest="recentre", action="store_false",
                        help="report each track's best window itself instead of re-centring it on its joints "
                             "(the rule before; for comparisons)")


def run(args) -> int:
    import json

    from ..engine.atomic_io import atomic_write_text
    from ..engine.paths import resolve
    from ..model import load_model
    from ..synthetic.scenes import make_scenes

    if args.scenes < 1 or args.seed < 0:
        from ..engine.errors import Pose3DError
        raise Pose3DError(f"--scenes must be >= 1 and --seed >= 0, got {args.scenes} and {args.seed}")
    if args.out:  # before minutes of scenes
        from ..engine.paths import refuse_overwriting_an_input
        refuse_overwriting_an_input(args.out, "--out", {"checkpoint": args.checkpoint})
    model, cfg = load_model(resolve(args.checkpoint))
    result = hit_rate(model, cfg, make_scenes(args.seed, args.scenes), progress=True, recentre=args.recentre)
    print(f"person found in {sum(r['hit'] for r in result['rows'])}/{result['scenes']} scenes "
          f"({100 * result['hit_rate']:.0f} %)")
    if args.out:
        atomic_write_text(resolve(args.out), json.dumps({**result, "checkpoint": str(args.checkpoint),
                                                         "recentre": args.recentre}, indent=1))
    return 0
