"""Where a checkpoint's 3D error comes from: `python -m pose3dlib diagnose-depth`.

Protocol #1 is rebuilt from each combination of the network's own or the true 2D and its
own or the true depth (`error_decomposition`), and the predicted depth is compared with the
true one (`depth_statistics`: spread, correlation, the front/back sign of each bone), also
by how far the trunk leans toward the camera (`by_trunk_tilt`: the camera's elevation for an
upright person). The true depth is put in the crop's normalised units
(`true_depth_normalised`), the units of the network's depth, so every combination goes
through the same `decode.reconstruct_3d` as `evaluate`. A diagnostic for choosing what to
work on, not a benchmark protocol: the errors here are means over samples, not `evaluate`'s
means over actions.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

from .. import decode, metrics
from ..data.targets import depth_target
from ..engine.errors import Pose3DError
from ..engine.paths import CommandLinePath
from ..skeleton import DEPTH_ROOT, MPII16
from .evaluate import TEST_SPLIT_DIRS, Predictions, check_limit, mean_pose_prediction

# (2D, depth) sources of each rebuilt skeleton: "own" = the network's, "true" = ground truth
COMBINATIONS = (("own", "own"), ("true", "own"), ("own", "true"), ("true", "true"))
# bins of `trunk_tilt_deg`: (label, lower bound included, upper bound excluded)
TILT_BINS = (("< 0", -np.inf, 0.0), ("0-15", 0.0, 15.0), ("15-30", 15.0, 30.0), ("30-45", 30.0, 45.0),
             (">= 45", 45.0, np.inf))
MIN_BIN_SAMPLES = 10  # a tilt bin with fewer samples gets no depth statistics (NaN): too few to read
THORAX = MPII16.joint_names.index("thorax")
STATISTICS = ("spread_ratio", "correlation", "sign_agreement", "true_mean_abs_depth_mm")  # of depth_statistics
# the 3D splits a config names, and the data config key of each one's folder
SPLITS = {"lab_val": "lab_val_dir", "wild_val": "wild_val_dir", **TEST_SPLIT_DIRS}  # the folder's "test" split


def true_depth_normalised(gt_joints_2d: np.ndarray, gt_joints_3d_mm: np.ndarray) -> np.ndarray:
    """The true root-relative depth in the crop's normalised units, (N, 16): the training target.

    Per sample `data.targets.depth_target`, the depth the network is trained to predict
    (the millimetre depth times the ratio of the 2D to the 3D skeleton's projected bone
    lengths). Shapes: gt_joints_2d (N, 16, 2) normalised crop units, gt_joints_3d_mm (N, 16, 3).
    """
    n = len(gt_joints_3d_mm)
    if gt_joints_2d.shape != (n, MPII16.num_joints, 2) or gt_joints_3d_mm.shape != (n, MPII16.num_joints, 3):
        raise Pose3DError(f"true_depth_normalised: expected (N, 16, 2) and (N, 16, 3), got "
                          f"{gt_joints_2d.shape} and {gt_joints_3d_mm.shape}")
    out = np.empty((n, MPII16.num_joints), dtype=np.float64)
    for i in range(n):
        try:
            out[i] = depth_target(gt_joints_2d[i], gt_joints_3d_mm[i])
        except ValueError as e:
            raise Pose3DError(f"true_depth_normalised: sample {i}: {e}") from None
    return out


@dataclasses.dataclass(frozen=True)
class _Scored:
    """The samples with 3D ground truth, and their true depth in the network's units (computed once)."""

    joints_2d: np.ndarray
    depth: np.ndarray
    gt_joints_2d: np.ndarray
    gt_joints_3d_mm: np.ndarray
    true_depth: np.ndarray

    def take(self, rows: np.ndarray) -> _Scored:
        return _Scored(*(getattr(self, f.name)[rows] for f in dataclasses.fields(self)))


def _scored(pred: Predictions) -> _Scored:
    keep = pred.has_depth
    if not np.any(keep):
        raise Pose3DError("the split has no samples with 3D ground truth to diagnose")
    gt_2d, gt_3d = pred.gt_joints_2d[keep], pred.gt_joints_3d_mm[keep]
    return _Scored(pred.joints_2d[keep], pred.depth[keep], gt_2d, gt_3d, true_depth_normalised(gt_2d, gt_3d))


def error_decomposition(pred: Predictions, bone_sum_mm: float) -> list[dict]:
    """Protocol #1 for each (2D, depth) source in COMBINATIONS, samples with 3D ground truth.

    Each row: "2d", "depth" ("own" or "true"), "p1_mm" (mean joint error over samples and
    all 16 joints, mm) and "abs_x_mm", "abs_y_mm", "abs_depth_mm" (mean absolute error per
    camera axis). ("true", "true") is not zero: it holds what weak perspective and the
    bone-sum scale (`bone_sum_mm`, the checkpoint's) cost by themselves.
    """
    return _decomposition(_scored(pred), bone_sum_mm)


def _decomposition(s: _Scored, bone_sum_mm: float) -> list[dict]:
    sources = {"own": (s.joints_2d, s.depth), "true": (s.gt_joints_2d, s.true_depth)}
    rows = []
    for src_2d, src_depth in COMBINATIONS:
        mm = decode.reconstruct_3d(sources[src_2d][0], sources[src_depth][1], bone_sum_mm)
        err = np.abs(mm - s.gt_joints_3d_mm).mean(axis=(0, 1))
        rows.append({"2d": src_2d, "depth": src_depth, "p1_mm": float(metrics.mpjpe(mm, s.gt_joints_3d_mm)),
                     "abs_x_mm": float(err[0]), "abs_y_mm": float(err[1]), "abs_depth_mm": float(err[2])})
    return rows


def depth_statistics(pred: Predictions) -> dict[str, float]:
    """The predicted root-relative depth against the true one, samples with 3D ground truth.

    "spread_ratio": standard deviation of the prediction / of the truth, over every
    non-root joint (normalised units); "correlation": their Pearson correlation;
    "sign_agreement": `metrics.bone_depth_sign_agreement` over the half of the (sample, bone)
    pairs most clearly pointing toward or away from the camera (true depth in mm);
    "true_mean_abs_depth_mm": the median over samples of the mean |true root-relative depth|
    of the non-root joints.
    """
    return _statistics(_scored(pred))


def _statistics(s: _Scored) -> dict[str, float]:
    joints = [j for j in range(MPII16.num_joints) if j != DEPTH_ROOT]
    p = (s.depth - s.depth[:, DEPTH_ROOT:DEPTH_ROOT + 1])[:, joints].ravel()
    t = s.true_depth[:, joints].ravel()
    if p.std() == 0 or t.std() == 0:
        raise Pose3DError("depth_statistics: the predicted or the true depth is constant")
    gt_3d = s.gt_joints_3d_mm
    depth_mm = gt_3d[..., 2] - gt_3d[:, DEPTH_ROOT:DEPTH_ROOT + 1, 2]
    return {"spread_ratio": float(p.std() / t.std()), "correlation": float(np.corrcoef(p, t)[0, 1]),
            "sign_agreement": metrics.bone_depth_sign_agreement(s.depth, depth_mm, MPII16.edges),
            "true_mean_abs_depth_mm": float(np.median(np.abs(depth_mm[:, joints]).mean(axis=1)))}


def trunk_tilt_deg(gt_joints_3d_mm: np.ndarray) -> np.ndarray:
    """Per sample, how far the pelvis -> thorax direction leans toward the camera, degrees, (N,).

    0 for an upright trunk seen from chest height (the lab cameras); positive when the
    thorax is nearer the camera than the pelvis (a camera above the person, or a person
    leaning toward it), negative when it is further (a camera below). Camera axes: y down,
    depth away from the camera. The angle is taken against the camera's depth axis, not the
    line of sight to the person, so for a person far off the image centre (a wide whole
    picture) it differs from the camera's elevation by up to half the field of view; and it
    mixes the viewpoint with the pose (a person bending toward the camera leans too).
    Range -180..180; a sample whose thorax sits on the pelvis is refused.
    """
    if gt_joints_3d_mm.ndim != 3 or gt_joints_3d_mm.shape[1:] != (MPII16.num_joints, 3):
        raise Pose3DError(f"trunk_tilt_deg: expected (N, 16, 3) joints, got {gt_joints_3d_mm.shape}")
    spine = gt_joints_3d_mm[:, THORAX] - gt_joints_3d_mm[:, DEPTH_ROOT]
    flat = np.flatnonzero(~np.any(spine[:, 1:] != 0, axis=1) | ~np.all(np.isfinite(spine), axis=1))
    if len(flat):
        raise Pose3DError(f"trunk_tilt_deg: samples {flat[:5].tolist()} have no finite pelvis -> thorax "
                          "direction in the y-depth plane")
    return np.degrees(np.arctan2(-spine[:, 2], -spine[:, 1]))


def by_trunk_tilt(pred: Predictions, bone_sum_mm: float, train_joints_3d_mm: np.ndarray) -> list[dict]:
    """Protocol #1 and the depth's statistics per TILT_BINS of `trunk_tilt_deg`.

    Each row, for the bins holding samples with 3D ground truth: "tilt" (the bin's label),
    "n", "p1_mm" and "p1_true_2d_mm" (mean over its samples, with the network's own and the
    true 2D; the depth is the network's), "mean_pose_p1_mm" (the same for the mean-pose
    baseline of `train_joints_3d_mm`, (M, 16, 3) root-relative training poses) and the bin's
    `depth_statistics` (NaN for bins with fewer than MIN_BIN_SAMPLES samples).
    """
    if train_joints_3d_mm.ndim != 3 or train_joints_3d_mm.shape[1:] != (MPII16.num_joints, 3) \
            or len(train_joints_3d_mm) == 0:
        raise Pose3DError(f"by_trunk_tilt: train_joints_3d_mm must be (M, 16, 3) with M > 0, "
                          f"got {train_joints_3d_mm.shape}")
    scored = _scored(pred)
    baseline = metrics.mpjpe_per_sample(
        mean_pose_prediction(train_joints_3d_mm, len(scored.gt_joints_3d_mm)), scored.gt_joints_3d_mm)
    tilt = trunk_tilt_deg(scored.gt_joints_3d_mm)
    rows = []
    for label, lo, hi in TILT_BINS:
        inside = (tilt >= lo) & (tilt < hi)
        if np.any(inside):
            sub = scored.take(inside)
            p1 = {(r["2d"], r["depth"]): r["p1_mm"] for r in _decomposition(sub, bone_sum_mm)}
            stats = _statistics(sub) if inside.sum() >= MIN_BIN_SAMPLES else dict.fromkeys(STATISTICS, np.nan)
            rows.append({"tilt": label, "n": int(inside.sum()), "p1_mm": p1["own", "own"],
                         "p1_true_2d_mm": p1["true", "own"], "mean_pose_p1_mm": float(baseline[inside].mean()),
                         **stats})
    return rows


def _number(value: float, fmt: str, unit: str = "") -> str:
    """A table cell: the formatted value, or "-" for NaN (a bin too small for statistics)."""
    return "-" if np.isnan(value) else f"{value:{fmt}}{unit}"


def markdown(split: str, rows: list[dict], stats: dict[str, float], tilt_rows: list[dict]) -> str:
    """The two results of one split as a short markdown report."""
    lines = [f"### {split}", "",
             "| 2D, depth | P1 (mm, mean over samples) | mean abs error x / y / depth (mm) |", "|---|---:|---|"]
    for r in rows:
        lines.append(f"| {r['2d']}, {r['depth']} | {r['p1_mm']:.1f} | "
                     f"{r['abs_x_mm']:.0f} / {r['abs_y_mm']:.0f} / {r['abs_depth_mm']:.0f} |")
    lines += ["", f"predicted depth: {stats['spread_ratio']:.2f} x the true spread, correlation "
              f"{stats['correlation']:.2f}; bone front/back signs right: {100 * stats['sign_agreement']:.1f} % "
              f"(clearer half); true mean |depth| per pose, median: {stats['true_mean_abs_depth_mm']:.0f} mm", "",
              f"(per viewpoint: the depth statistics only for bins of at least {MIN_BIN_SAMPLES} samples)", "",
              "| trunk tilt toward the camera (deg) | samples | P1 (mm) | mean pose P1 (mm) | ratio "
              "| P1, true 2D (mm) | depth spread | depth correlation | bone signs right |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in tilt_rows:
        lines.append(f"| {r['tilt']} | {r['n']} | {r['p1_mm']:.1f} | {r['mean_pose_p1_mm']:.1f} | "
                     f"{r['p1_mm'] / r['mean_pose_p1_mm']:.2f} | {r['p1_true_2d_mm']:.1f} | "
                     f"{_number(r['spread_ratio'], '.2f')} | {_number(r['correlation'], '.2f')} | "
                     f"{_number(100 * r['sign_agreement'], '.1f', ' %')} |")
    lines.append("")
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.add_argument("--config", action=CommandLinePath, required=True, help="YAML config naming the data (e.g. configs/cpu.yaml)")
    parser.add_argument("--checkpoint", action=CommandLinePath, required=True, help="a stage 2 or 3 checkpoint")
    parser.add_argument("--splits", default="lab_val,wild_val",
                        help=f"comma-separated, from {', '.join(SPLITS)} (default lab_val,wild_val: tune on validation)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N samples of each split (default 0: all)")
    parser.add_argument("--figure", action=CommandLinePath, default=None, metavar="PATH.png",
                        help="also save the per-viewpoint figure (Protocol #1 / mean pose, bone signs) here")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. eval.recrop_margin=0 (repeatable)")


def run(args) -> int:
    from ..config import comma_items, load_config
    from ..data.h36m import H36MDataset
    from ..data.locations import require_sets
    from ..engine.atomic_io import prepare_output_folder
    from ..engine.checkpoint import bone_sum_mm, checkpoint_caveats, load_checkpoint
    from ..engine.device import resolve_device
    from ..model import load_model
    from ..synthetic.generator import check_not_stale
    from .evaluate import check_overrides, checkpoint_geometry, predict_split

    check_overrides(args.overrides)  # the checkpoint decides its network and input geometry
    cfg = load_config(args.config, args.overrides)
    if args.figure is not None and Path(args.figure).suffix.lower() != ".png":
        raise Pose3DError(f"--figure {args.figure}: expected a .png path")
    if args.figure is not None:
        prepare_output_folder(Path(args.figure).parent, "--figure", args.figure)  # before the diagnosis, not after it
    check_limit(args.limit)
    splits = list(dict.fromkeys(s.strip() for s in comma_items(args.splits, "--splits", ",".join(SPLITS))))  # in order, once each
    unknown = [s for s in splits if s not in SPLITS]
    if not splits or unknown:
        raise Pose3DError(f"--splits {args.splits!r}: unknown {', '.join(unknown) or '(none given)'}; "
                          f"expected a comma-separated list of {', '.join(SPLITS)}")
    dev = resolve_device(cfg.train.device)
    ckpt = load_checkpoint(args.checkpoint, map_location=dev)
    model, trained = load_model(ckpt, map_location=dev)
    for caveat in checkpoint_caveats(ckpt, str(args.checkpoint)):
        print(f"warning: {caveat}", file=sys.stderr)
    model.to(dev).eval()
    scale_mm = bone_sum_mm(ckpt, str(args.checkpoint))
    data = checkpoint_geometry(cfg.data, trained)
    roots = {split: getattr(data, SPLITS[split]) for split in splits}
    for split, root in roots.items():  # every folder checked before any prediction
        if not root:
            raise Pose3DError(f"--splits {split}: the config's data.{SPLITS[split]} is empty")
    require_sets(data, ("h36m_dir", *(SPLITS[split] for split in splits)))
    check_not_stale(data.h36m_dir, *roots.values(), synthetic=cfg.synthetic)
    train_3d = H36MDataset(data.h36m_dir, "train", data).joints_3d_mm
    tilt_rows = {}
    for split, root in roots.items():
        pred = predict_split(model, H36MDataset(root, "test", data), cfg.eval, trained.model.input_format, dev,
                             limit=args.limit, desc=split)
        try:
            tilt_rows[split] = by_trunk_tilt(pred, scale_mm, train_3d)
            report = markdown(split, error_decomposition(pred, scale_mm), depth_statistics(pred), tilt_rows[split])
        except Pose3DError as e:
            raise Pose3DError(f"{split} ({root}): {e}") from None
        print(report)
    if args.figure is not None:
        from ..plots.diagnostics import plot_by_trunk_tilt
        from ..plots.viz import write_png

        path = write_png(plot_by_trunk_tilt(tilt_rows), Path(args.figure).resolve(), bbox_inches="tight")
        print(f"wrote {path}")
    return 0
