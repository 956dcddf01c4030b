"""Where a checkpoint's 3D error comes from: `python -m pose3dlib diagnose-depth`.

Protocol #1 is rebuilt from each combination of the network's own or the true 2D and its
own or the true depth (`error_decomposition`), and the predicted depth is compared with the
true one (`depth_statistics`: spread, correlation, the front/back sign of each bone). The
true depth is put in the crop's normalised units (`true_depth_normalised`), the units of
the network's depth, so every combination goes through the same `decode.reconstruct_3d`
as `evaluate`. A diagnostic for choosing what to work on, not a benchmark protocol: the
errors here are means over samples, not `evaluate`'s means over actions.
"""
from __future__ import annotations

import numpy as np

from .. import decode, metrics
from ..engine.errors import Pose3DError
from ..skeleton import DEPTH_ROOT, MPII16
from .evaluate import Predictions

# (2D, depth) sources of each rebuilt skeleton: "own" = the network's, "true" = ground truth
COMBINATIONS = (("own", "own"), ("true", "own"), ("own", "true"), ("true", "true"))
# the 3D splits a config names, as (config key of the folder, split inside it)
SPLITS = {"lab_val": ("lab_val_dir", "test"), "wild_val": ("wild_val_dir", "test"),
          "lab_test": ("h36m_dir", "test"), "wild_test": ("wild_test_dir", "test")}


def true_depth_normalised(gt_joints_2d: np.ndarray, gt_joints_3d_mm: np.ndarray) -> np.ndarray:
    """The true root-relative depth in the crop's normalised units, (N, 16).

    Weak perspective: the crop shows the person's x, y in millimetres times one scale per
    sample, estimated as the mean |root-relative coordinate| of the true 2D over that of
    the true 3D's x and y; the depth in millimetres times that scale is the depth the
    network is trained to predict, up to the perspective the model ignores.
    Shapes: gt_joints_2d (N, 16, 2) normalised crop units, gt_joints_3d_mm (N, 16, 3).
    """
    xy = gt_joints_2d - gt_joints_2d[:, DEPTH_ROOT:DEPTH_ROOT + 1]
    xyz = gt_joints_3d_mm - gt_joints_3d_mm[:, DEPTH_ROOT:DEPTH_ROOT + 1]
    extent_3d = np.abs(xyz[..., :2]).mean(axis=(1, 2))
    if np.any(extent_3d == 0):
        raise Pose3DError("true_depth_normalised: a sample's true 3D joints are all at the root")
    return xyz[..., 2] * (np.abs(xy).mean(axis=(1, 2)) / extent_3d)[:, None]


def _three_d(pred: Predictions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    keep = pred.has_depth
    if not np.any(keep):
        raise Pose3DError("the split has no samples with 3D ground truth to diagnose")
    return pred.joints_2d[keep], pred.depth[keep], pred.gt_joints_2d[keep], pred.gt_joints_3d_mm[keep]


def error_decomposition(pred: Predictions, bone_sum_mm: float) -> list[dict]:
    """Protocol #1 for each (2D, depth) source in COMBINATIONS, samples with 3D ground truth.

    Each row: "2d", "depth" ("own" or "true"), "p1_mm" (mean joint error over samples and
    all 16 joints, mm) and "abs_x_mm", "abs_y_mm", "abs_depth_mm" (mean absolute error per
    camera axis). ("true", "true") is not zero: it holds what weak perspective and the
    bone-sum scale (`bone_sum_mm`, the checkpoint's) cost by themselves.
    """
    own_2d, own_depth, gt_2d, gt_3d = _three_d(pred)
    sources = {"own": (own_2d, own_depth), "true": (gt_2d, true_depth_normalised(gt_2d, gt_3d))}
    rows = []
    for src_2d, src_depth in COMBINATIONS:
        mm = decode.reconstruct_3d(sources[src_2d][0], sources[src_depth][1], bone_sum_mm)
        err = np.abs(mm - gt_3d).mean(axis=(0, 1))
        rows.append({"2d": src_2d, "depth": src_depth, "p1_mm": float(metrics.mpjpe(mm, gt_3d)),
                     "abs_x_mm": float(err[0]), "abs_y_mm": float(err[1]), "abs_depth_mm": float(err[2])})
    return rows


def depth_statistics(pred: Predictions) -> dict[str, float]:
    """The predicted root-relative depth against the true one, samples with 3D ground truth.

    "spread_ratio": standard deviation of the prediction / of the truth, over every
    non-root joint (normalised units); "correlation": their Pearson correlation;
    "sign_agreement": `metrics.bone_depth_sign_agreement` over the half of the bones most
    clearly pointing toward or away from the camera (true depth in mm);
    "true_mean_abs_depth_mm": the median over samples of the mean |true root-relative depth|.
    """
    _, own_depth, gt_2d, gt_3d = _three_d(pred)
    joints = [j for j in range(MPII16.num_joints) if j != DEPTH_ROOT]
    p = (own_depth - own_depth[:, DEPTH_ROOT:DEPTH_ROOT + 1])[:, joints].ravel()
    t = true_depth_normalised(gt_2d, gt_3d)[:, joints].ravel()
    if p.std() == 0 or t.std() == 0:
        raise Pose3DError("depth_statistics: the predicted or the true depth is constant")
    depth_mm = gt_3d[..., 2] - gt_3d[:, DEPTH_ROOT:DEPTH_ROOT + 1, 2]
    return {"spread_ratio": float(p.std() / t.std()), "correlation": float(np.corrcoef(p, t)[0, 1]),
            "sign_agreement": metrics.bone_depth_sign_agreement(own_depth, depth_mm, MPII16.edges),
            "true_mean_abs_depth_mm": float(np.median(np.abs(depth_mm[:, joints]).mean(axis=1)))}


def markdown(split: str, rows: list[dict], stats: dict[str, float]) -> str:
    """The two results of one split as a short markdown report."""
    lines = [f"### {split}", "",
             "| 2D, depth | P1 (mm, mean over samples) | mean abs error x / y / depth (mm) |", "|---|---:|---|"]
    for r in rows:
        lines.append(f"| {r['2d']}, {r['depth']} | {r['p1_mm']:.1f} | "
                     f"{r['abs_x_mm']:.0f} / {r['abs_y_mm']:.0f} / {r['abs_depth_mm']:.0f} |")
    lines += ["", f"predicted depth: {stats['spread_ratio']:.2f} x the true spread, correlation "
              f"{stats['correlation']:.2f}; bone front/back signs right: {100 * stats['sign_agreement']:.1f} % "
              f"(clearer half); true mean |depth| per pose, median: {stats['true_mean_abs_depth_mm']:.0f} mm", ""]
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.add_argument("--config", required=True, help="YAML config naming the data (e.g. configs/cpu.yaml)")
    parser.add_argument("--checkpoint", required=True, help="a stage 2 or 3 checkpoint")
    parser.add_argument("--splits", default="lab_val,wild_val",
                        help=f"comma-separated, from {', '.join(SPLITS)} (default lab_val,wild_val: tune on validation)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N samples of each split")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. eval.recrop_margin=0 (repeatable)")


def run(args) -> int:
    import torch

    from ..config import load_config
    from ..data.h36m import H36MDataset
    from ..engine.checkpoint import bone_sum_mm, load_checkpoint
    from ..engine.device import resolve_device
    from ..model import load_model
    from ..synthetic.generator import check_not_stale
    from .evaluate import checkpoint_geometry, predict_dataset

    cfg = load_config(args.config, args.overrides)
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    unknown = [s for s in splits if s not in SPLITS]
    if not splits or unknown:
        raise Pose3DError(f"--splits {args.splits!r}: expected a comma-separated list of {', '.join(SPLITS)}")
    dev = resolve_device(cfg.train.device)
    ckpt = load_checkpoint(args.checkpoint, map_location=dev)
    model, trained = load_model(ckpt, map_location=dev)
    model.to(dev).eval()
    scale_mm = bone_sum_mm(ckpt, str(args.checkpoint))
    data = checkpoint_geometry(cfg.data, trained)
    for split in splits:
        key, part = SPLITS[split]
        root = getattr(data, key)
        if not root:
            raise Pose3DError(f"--splits {split}: the config's data.{key} is empty")
        check_not_stale(root)
        with torch.no_grad():
            pred = predict_dataset(model, H36MDataset(root, part, data), trained.model.input_format,
                                   batch_size=cfg.eval.batch_size, flip_test=cfg.eval.flip_test,
                                   subpixel=cfg.eval.subpixel, device=dev, limit=args.limit,
                                   recrop_margin=cfg.eval.recrop_margin, recrop_max_fill=cfg.eval.recrop_max_fill,
                                   desc=split)
        print(markdown(split, error_decomposition(pred, scale_mm), depth_statistics(pred)))
    return 0
