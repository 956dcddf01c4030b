"""Pose metrics: MPJPE protocols, the paper's evaluator, PCKh and 3DPCK/AUC.

Pure functions on numpy arrays or torch tensors (any device, any float dtype). Inputs are
converted to float64 numpy first (no copy when they are float64 numpy already; no function writes
into its inputs): metrics are never differentiated, and float64 keeps the
batched SVD exact. Each `name(...)` returns the mean over samples and joints as a Python
float; `name(..., per_sample=True)` and `name_per_sample(...)` return a float64 numpy
array of shape (N,).

All 3D inputs are (N, J, 3) in millimetres, joints in `skeleton.MPII16` order where a
function needs the skeleton (only `paper_protocol_*`).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .decode import bone_length_sum
from .skeleton import DEPTH_ROOT, MPI3DHP_EVAL_GROUPS, PAPER_BONE_SUM_MM, PAPER_EVAL_MIDPOINT, SPINE_INDEX

PCK3D_THRESHOLD_MM = 150.0  # MPI-INF-3DHP 3DPCK threshold
AUC_STEP_MM = 5.0  # MPI-INF-3DHP AUC: thresholds 0, 5, ..., max_mm


def _as_numpy(x: Any) -> np.ndarray:
    """float64 numpy copy of a numpy array or torch tensor (detached, moved to the CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _check_pair(pred: Any, gt: Any, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Convert and check that pred and gt are both (N, J, dim) with N, J >= 1."""
    p, g = _as_numpy(pred), _as_numpy(gt)
    for name, a in (("pred", p), ("gt", g)):
        if a.ndim != 3 or a.shape[-1] != dim or a.shape[0] == 0 or a.shape[1] == 0:
            raise ValueError(f"{name} must have shape (N, J, {dim}) with N, J >= 1, got {a.shape}")
    if p.shape != g.shape:
        raise ValueError(f"pred and gt must have the same shape (N, J, {dim}), got {p.shape} and {g.shape}")
    return p, g


def _joint_errors(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Euclidean distance per joint: (N, J, D), (N, J, D) -> (N, J)."""
    return np.sqrt(((p - g) ** 2).sum(-1))


# ----------------------------------------------------------------------------- MPJPE family

def mpjpe_per_sample(pred: Any, gt: Any) -> np.ndarray:
    """Protocol #1 per sample: mean Euclidean joint error (mm), (N, J, 3) x2 -> (N,).

    The inputs are compared as given: root-align them first (both root-relative).
    """
    p, g = _check_pair(pred, gt, 3)
    return _joint_errors(p, g).mean(-1)


def mpjpe(pred: Any, gt: Any, per_sample: bool = False) -> float | np.ndarray:
    """Protocol #1: MPJPE (mm), the mean joint error over samples and joints of root-aligned inputs.

    With per_sample=True, the (N,) per-sample errors (`mpjpe_per_sample`).
    """
    errs = mpjpe_per_sample(pred, gt)
    return errs if per_sample else float(errs.mean())


def procrustes_align(pred: Any, gt: Any) -> np.ndarray:
    """Per-sample similarity transform of pred onto gt (least squares), reflections excluded.

    For each sample finds s > 0, a rotation R (det R = +1) and t minimising
    sum_j |s R pred_j + t - gt_j|^2 (Umeyama / Kabsch via a batched SVD).

    Args:
        pred, gt: (N, J, 3).
    Returns:
        (N, J, 3) float64, the aligned prediction; all NaN for a sample holding a NaN or an infinity.
    """
    p, g = _check_pair(pred, gt, 3)
    finite = np.isfinite(p).all((1, 2)) & np.isfinite(g).all((1, 2))  # (N,)
    if not finite.all():  # a diverged network's NaN: that sample NaN, as mpjpe gives it (the SVD would fail)
        aligned = np.full(p.shape, np.nan)
        if finite.any():
            aligned[finite] = procrustes_align(p[finite], g[finite])
        return aligned
    mu_p, mu_g = p.mean(1, keepdims=True), g.mean(1, keepdims=True)  # (N, 1, 3)
    x, y = p - mu_p, g - mu_g  # (N, J, 3) centred
    m = np.einsum("nji,njk->nik", x, y)  # (N, 3, 3) = X^T Y
    u, sv, vt = np.linalg.svd(m)  # m = U diag(sv) V^T
    # X R^T ~ Y with R^T = U D V^T; D flips the last axis where U V^T would be a reflection.
    sign = np.sign(np.linalg.det(u @ vt))  # (N,)
    sign[sign == 0] = 1.0
    d = np.ones_like(sv)  # (N, 3)
    d[:, -1] = sign
    rt = (u * d[:, None, :]) @ vt  # (N, 3, 3) = U D V^T
    norm_x = (x**2).sum((1, 2))  # (N,)
    if np.any(norm_x == 0):
        bad = np.flatnonzero(norm_x == 0)[:5].tolist()
        raise ValueError(f"pred samples {bad} have all joints at one point: no similarity alignment exists")
    scale = (sv * d).sum(-1) / norm_x  # (N,) = trace(D S) / |X|^2
    return scale[:, None, None] * (x @ rt) + mu_g


def pa_mpjpe_per_sample(pred: Any, gt: Any) -> np.ndarray:
    """Protocol #2 per sample: MPJPE (mm) after per-sample similarity (Procrustes) alignment, (N,)."""
    p, g = _check_pair(pred, gt, 3)
    return _joint_errors(procrustes_align(p, g), g).mean(-1)


def pa_mpjpe(pred: Any, gt: Any, per_sample: bool = False) -> float | np.ndarray:
    """Protocol #2: PA-MPJPE (mm), after per-sample rotation, scale and translation of pred
    onto gt (least-squares similarity / Procrustes alignment, reflections excluded).

    With per_sample=True, the (N,) per-sample errors.
    """
    errs = pa_mpjpe_per_sample(pred, gt)
    return errs if per_sample else float(errs.mean())


def n_mpjpe_per_sample(pred: Any, gt: Any) -> np.ndarray:
    """N-MPJPE per sample (mm), (N,): pred scaled by the least-squares optimal scale only.

    s = <pred, gt> / <pred, pred> per sample; no rotation or translation, so the inputs
    must be root-aligned as for Protocol #1.
    """
    p, g = _check_pair(pred, gt, 3)
    norm_p = (p**2).sum((1, 2))  # (N,)
    if np.any(norm_p == 0):
        bad = np.flatnonzero(norm_p == 0)[:5].tolist()
        raise ValueError(f"pred samples {bad} are all zeros: no optimal scale exists")
    scale = (p * g).sum((1, 2)) / norm_p  # (N,)
    return _joint_errors(scale[:, None, None] * p, g).mean(-1)


def n_mpjpe(pred: Any, gt: Any, per_sample: bool = False) -> float | np.ndarray:
    """N-MPJPE (mm): MPJPE after the per-sample least-squares optimal scale of pred (Rhodin et al. 2018).

    With per_sample=True, the (N,) per-sample errors.
    """
    errs = n_mpjpe_per_sample(pred, gt)
    return errs if per_sample else float(errs.mean())


# ----------------------------------------------------------------------------- the paper's evaluator

SPINE_MIDPOINT_CHOICES = ("pred", "both", "none")


def paper_protocol_align(
    pred: Any,
    gt: Any,
    bone_sum_mm: float = PAPER_BONE_SUM_MM,
    spine_midpoint: str = "pred",
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the paper's evaluator to (N, 16, 3) MPII16 skeletons; return (pred, gt) as compared.

    Steps (docs/paper.md, "Evaluation"):
      1. rescale the prediction about its root (`skeleton.DEPTH_ROOT`, the pelvis) so its 14
         edges (`skeleton.MPII16.edges`) sum to `bone_sum_mm`;
      2. translate it so its root lies on the ground-truth root;
      3. replace joint `SPINE_INDEX` (7) by the midpoint of joints `PAPER_EVAL_MIDPOINT` (6, 8).

    Which arrays get step 3 (`spine_midpoint`): "pred" (default) replaces it in the
    prediction only. In the 16-joint order row 7 of the ground truth is the Human3.6M
    spine, while the network's joint 7 is trained as the MPII thorax on MPII images (and, in
    this code, as the spine on lab images; the release trained the thorax on both, see
    docs/paper.md), so it need not be the spine; the midpoint of pelvis and upper neck
    approximates the H36M spine, so the prediction is mapped onto the ground truth's
    definition and the ground truth stays untouched. "both" also replaces it
    in the ground truth, "none" skips step 3. Step 3 commutes with steps 1-2 (it is affine).
    """
    if spine_midpoint not in SPINE_MIDPOINT_CHOICES:
        raise ValueError(f"spine_midpoint must be one of {SPINE_MIDPOINT_CHOICES}, got {spine_midpoint!r}")
    p, g = _check_pair(pred, gt, 3)
    if p.shape[1] != 16:
        raise ValueError(f"pred and gt must have shape (N, 16, 3) in MPII16 order, got {p.shape}")
    if not bone_sum_mm > 0:
        raise ValueError(f"bone_sum_mm must be positive, got {bone_sum_mm}")
    sums = bone_length_sum(p)  # (N,)
    if np.any(sums == 0):
        bad = np.flatnonzero(sums == 0)[:5].tolist()
        raise ValueError(f"pred samples {bad} have zero total bone length: cannot rescale")
    root = DEPTH_ROOT
    p = (p - p[:, root : root + 1]) * (bone_sum_mm / sums)[:, None, None] + g[:, root : root + 1]
    a, b = PAPER_EVAL_MIDPOINT
    if spine_midpoint in ("pred", "both"):
        p[:, SPINE_INDEX] = 0.5 * (p[:, a] + p[:, b])
    if spine_midpoint == "both":
        g = g.copy()
        g[:, SPINE_INDEX] = 0.5 * (g[:, a] + g[:, b])
    return p, g


def paper_protocol_mpjpe_per_sample(
    pred: Any, gt: Any, bone_sum_mm: float = PAPER_BONE_SUM_MM, spine_midpoint: str = "pred"
) -> np.ndarray:
    """The paper's evaluator per sample (mm), (N,): see `paper_protocol_align`."""
    p, g = paper_protocol_align(pred, gt, bone_sum_mm, spine_midpoint)
    return _joint_errors(p, g).mean(-1)


def paper_protocol_mpjpe(
    pred: Any, gt: Any, bone_sum_mm: float = PAPER_BONE_SUM_MM, spine_midpoint: str = "pred",
    per_sample: bool = False,
) -> float | np.ndarray:
    """The paper's own evaluator (Zhou et al. 2017, 64.9 mm on Human3.6M), mm.

    MPJPE over all 16 MPII16 joints after rescaling the prediction so its 14 edge lengths
    sum to `bone_sum_mm` (default 4296.99 mm), translating it to the ground-truth root and
    replacing joint 7 by the midpoint of joints 6 and 8 (in the prediction only by default;
    see `paper_protocol_align`). Not comparable with Protocol #1: it uses ground-truth
    root position and a fixed skeleton size. With per_sample=True, the (N,) per-sample errors.
    """
    errs = paper_protocol_mpjpe_per_sample(pred, gt, bone_sum_mm, spine_midpoint)
    return errs if per_sample else float(errs.mean())


# ----------------------------------------------------------------------------- PCKh (2D)

def _check_pckh(pred: Any, gt: Any, head_size: Any, valid: Any) -> tuple[np.ndarray, np.ndarray]:
    """Check PCKh inputs; return (scaled errors (N, J), valid mask (N, J) bool)."""
    p, g = _check_pair(pred, gt, 2)
    n, j = p.shape[:2]
    h = _as_numpy(head_size)
    if h.shape != (n,):
        raise ValueError(f"head_size must have shape (N,) = ({n},), got {h.shape}")
    v = valid.detach().cpu().numpy() if hasattr(valid, "detach") else np.asarray(valid)
    if v.shape != (n, j):
        raise ValueError(f"valid must have shape (N, J) = ({n}, {j}), got {v.shape}")
    v = v.astype(bool)
    bad = ~(np.isfinite(h) & (h > 0))  # a nan head size would count every joint a miss, inf every joint a hit
    if np.any(bad[v.any(1)]):
        first = int(np.flatnonzero(bad & v.any(1))[0])
        raise ValueError(f"head_size must be finite and positive for every sample with a valid joint; "
                         f"sample {first} has {float(h[first])}")
    with np.errstate(divide="ignore", invalid="ignore"):
        err = _joint_errors(p, g) / h[:, None]  # (N, J) in head sizes
    return err, v


def pckh_per_joint(pred: Any, gt: Any, head_size: Any, valid: Any, threshold: float = 0.5) -> np.ndarray:
    """MPII PCKh per joint, (J,) in [0, 1]; NaN for a joint with no valid entry.

    A valid joint is correct when its 2D error is <= threshold * head size.
    Shapes: pred, gt (N, J, 2) px; head_size (N,) px (MPII `normalize`); valid (N, J) bool.
    """
    err, v = _check_pckh(pred, gt, head_size, valid)
    hits = (err <= threshold) & v  # (N, J)
    with np.errstate(divide="ignore", invalid="ignore"):
        return hits.sum(0) / v.sum(0)


def pckh(pred: Any, gt: Any, head_size: Any, valid: Any, threshold: float = 0.5,
         joints: Sequence[int] | None = None) -> float:
    """MPII PCKh@threshold: the fraction in [0, 1] of valid joints within threshold x head size.

    Shapes: pred, gt (N, J, 2) px; head_size (N,) px (MPII `normalize`); valid (N, J) bool.
    A joint is correct when its error is <= threshold * head size. The fraction pools every
    valid entry of the scored joints: all J by default, only the columns `joints` when
    given. The MPII benchmark's mean leaves out the pelvis and the thorax
    (`skeleton.PCKH_BENCHMARK_JOINTS`); with all 16 joints the value is usually higher, as
    those two are among the easiest. Raises ValueError when no joint is valid, or for an index
    outside 0..J-1.
    """
    err, v = _check_pckh(pred, gt, head_size, valid)
    if joints is not None:
        cols = np.asarray(joints, dtype=np.int64).reshape(-1)
        if cols.size == 0 or cols.min() < 0 or cols.max() >= v.shape[1]:
            raise ValueError(f"pckh: joints must be indices in 0..{v.shape[1] - 1}, got {list(cols)}")
        err, v = err[:, cols], v[:, cols]
    if not v.any():
        raise ValueError("pckh: no valid joint (valid is all False)")
    return float(((err <= threshold) & v).sum() / v.sum())


def _pair_distances(pred: Any, gt: Any, flip_pairs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For left/right pairs (a, b): |pred_a - gt_a|, |pred_b - gt_b|, |pred_a - gt_b|, |pred_b - gt_a|, each (N, P)."""
    p, g = _check_pair(pred, gt, _as_numpy(pred).shape[-1])
    pairs = np.asarray(flip_pairs, dtype=np.int64).reshape(-1, 2)
    a, b = pairs[:, 0], pairs[:, 1]

    def dist(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.linalg.norm(p[:, x] - g[:, y], axis=-1)

    return dist(a, a), dist(b, b), dist(a, b), dist(b, a)


def left_right_swap_fraction(pred: Any, gt: Any, flip_pairs: Any, margin: float = 0.0) -> float:
    """Fraction in [0, 1] of the joints of left/right pairs predicted on the wrong side.

    A joint of a pair (a, b) counts as swapped when its prediction lies more than `margin`
    nearer the other joint's true position than its own: |pred_a - gt_b| + margin < |pred_a - gt_a|.
    Shapes: pred, gt (N, J, D) in one unit (px for 2D); flip_pairs: (a, b) index pairs, e.g.
    `skeleton.MPII16.flip_pairs`; margin in that unit. Raises ValueError without pairs.
    """
    if len(np.asarray(flip_pairs).reshape(-1, 2)) == 0:
        raise ValueError("left_right_swap_fraction: no flip pairs")
    own_a, own_b, a_at_b, b_at_a = _pair_distances(pred, gt, flip_pairs)
    return float(np.mean(np.concatenate([a_at_b + margin < own_a, b_at_a + margin < own_b], axis=1)))


def left_right_order_oracle(pred: Any, gt: Any, flip_pairs: Any) -> np.ndarray:
    """Per sample and left/right pair, the order of the pair's two predictions nearer the truth.

    A diagnostic upper bound, not a metric: it shows how much an error measure would gain if
    every left/right confusion were undone. For each pair (a, b) the predictions are swapped
    when |pred_a - gt_b| + |pred_b - gt_a| < |pred_a - gt_a| + |pred_b - gt_b|.
    Shapes: pred, gt (N, J, D); returns (N, J) joint indices: the order to apply to any
    per-joint prediction of the same samples (2D, depth) as `x[np.arange(N)[:, None], order]`.
    """
    own_a, own_b, a_at_b, b_at_a = _pair_distances(pred, gt, flip_pairs)
    swap = a_at_b + b_at_a < own_a + own_b  # (N, P)
    pairs = np.asarray(flip_pairs, dtype=np.int64).reshape(-1, 2)
    order = np.tile(np.arange(_as_numpy(pred).shape[1]), (len(swap), 1))
    for k, (a, b) in enumerate(pairs):
        order[swap[:, k], a], order[swap[:, k], b] = b, a
    return order


def bone_depth_sign_agreement(pred_depth: Any, true_depth: Any, edges: Any, fraction: float = 0.5) -> float:
    """Fraction in [0, 1] of clearly oriented bones whose predicted depth runs the right way.

    A diagnostic of a depth branch's front/back reading, which bone lengths (and the
    geometric loss) leave open. For every sample and bone (a, b) it compares the signs of
    depth[a] - depth[b] in the prediction and the truth, over the `fraction` of all (sample,
    bone) pairs with the largest true |depth[a] - depth[b]|: bones that lie nearly parallel
    to the image carry no sign worth scoring. Shapes: pred_depth, true_depth (N, J), each
    in its own unit (only the prediction's signs and the truth's ranking are used); edges:
    (a, b) joint index pairs, e.g. `skeleton.MPII16.edges`. A zero difference (in the
    prediction, or in the truth when `fraction` reaches such bones) counts as wrong. Raises
    ValueError for mismatched shapes, no samples, non-finite depths, no edges, edges outside
    0..J-1 or `fraction` outside (0, 1].
    """
    p, t = _as_numpy(pred_depth), _as_numpy(true_depth)
    if p.ndim != 2 or p.shape != t.shape:
        raise ValueError(f"bone_depth_sign_agreement: pred_depth and true_depth must both be (N, J), "
                         f"got {p.shape} and {t.shape}")
    if p.shape[0] == 0:
        raise ValueError("bone_depth_sign_agreement: no samples")
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(t))):
        raise ValueError("bone_depth_sign_agreement: pred_depth and true_depth must be finite")
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if len(e) == 0:
        raise ValueError("bone_depth_sign_agreement: no edges")
    if e.min() < 0 or e.max() >= p.shape[1]:
        raise ValueError(f"bone_depth_sign_agreement: edges must index joints 0..{p.shape[1] - 1}, "
                         f"got {e.min()}..{e.max()}")
    if not 0 < fraction <= 1:
        raise ValueError(f"bone_depth_sign_agreement: fraction must be in (0, 1], got {fraction}")
    dp = (p[:, e[:, 0]] - p[:, e[:, 1]]).ravel()
    dt = (t[:, e[:, 0]] - t[:, e[:, 1]]).ravel()
    keep = np.argsort(-np.abs(dt), kind="stable")[:max(1, round(fraction * dt.size))]
    return float(np.mean(np.sign(dp[keep]) * np.sign(dt[keep]) > 0))


# ----------------------------------------------------------------------------- 3DPCK / AUC

def auc_thresholds_mm(max_mm: float = PCK3D_THRESHOLD_MM, step_mm: float = AUC_STEP_MM) -> np.ndarray:
    """The AUC thresholds 0, step, ..., max_mm (MPI-INF-3DHP: 0..150 step 5, 31 values)."""
    n = round(max_mm / step_mm)
    if n < 1 or not np.isclose(n * step_mm, max_mm):
        raise ValueError(f"max_mm ({max_mm}) must be a positive multiple of step_mm ({step_mm})")
    return np.arange(n + 1) * step_mm


def pck3d_per_sample(pred: Any, gt: Any, threshold_mm: float = PCK3D_THRESHOLD_MM) -> np.ndarray:
    """MPI-INF-3DHP 3DPCK per sample, (N,) in [0, 1]: fraction of joints with error < threshold_mm.

    Strict inequality, as in the MPI-INF-3DHP evaluation code. Inputs (N, J, 3) mm, root-aligned.
    """
    p, g = _check_pair(pred, gt, 3)
    return (_joint_errors(p, g) < threshold_mm).mean(-1)


def pck3d(pred: Any, gt: Any, threshold_mm: float = PCK3D_THRESHOLD_MM, per_sample: bool = False) -> float | np.ndarray:
    """MPI-INF-3DHP 3DPCK: fraction in [0, 1] of joints whose 3D error is < threshold_mm (150).

    With per_sample=True, the (N,) per-sample fractions.
    """
    fractions = pck3d_per_sample(pred, gt, threshold_mm)
    return fractions if per_sample else float(fractions.mean())


def auc3d_per_sample(pred: Any, gt: Any, max_mm: float = PCK3D_THRESHOLD_MM) -> np.ndarray:
    """MPI-INF-3DHP AUC per sample, (N,): mean 3DPCK over thresholds 0, 5, ..., max_mm."""
    p, g = _check_pair(pred, gt, 3)
    t = auc_thresholds_mm(max_mm)  # (T,)
    err = _joint_errors(p, g)  # (N, J)
    return (err[:, :, None] < t).mean((1, 2))


def auc3d(pred: Any, gt: Any, max_mm: float = PCK3D_THRESHOLD_MM, per_sample: bool = False) -> float | np.ndarray:
    """MPI-INF-3DHP AUC in [0, 1]: the mean of 3DPCK at thresholds 0, 5, ..., max_mm (31 values).

    With the strict inequality, 3DPCK at 0 mm is always 0, so a perfect prediction scores
    30/31 (as in the MPI-INF-3DHP evaluation code). With per_sample=True, the (N,) per-sample AUCs.
    """
    aucs = auc3d_per_sample(pred, gt, max_mm)
    return aucs if per_sample else float(aucs.mean())


def pck3d_3dhp(pred_mm: Any, gt_mm: Any) -> dict[str, Any]:
    """The official MPI-INF-3DHP protocol: 3DPCK@150 mm and AUC as fractions in [0, 1] (the papers
    print them in percent), per joint group and overall.

    Args:
        pred_mm, gt_mm: (N, 16, 3) pelvis-relative joints in MPII16 order, mm (ground truth:
            the test set's `univ_annot3`, valid frames only).
    Returns:
        {"pck": float, "auc": float, "groups": {group: {"pck": float, "auc": float}}, "n": N}.
        Only the 14 joints of `skeleton.MPI3DHP_EVAL_GROUPS` count (pelvis and thorax/spine
        are excluded); a joint is correct when its error is strictly < 150 mm; AUC is the
        mean PCK over thresholds 0, 5, ..., 150 mm; the overall values weigh every joint
        equally (so a two-joint group counts twice a one-joint group).
    """
    p, g = _check_pair(pred_mm, gt_mm, 3)
    if p.shape[1] != 16:
        raise ValueError(f"pck3d_3dhp expects (N, 16, 3) joints in MPII16 order, got {p.shape}")
    err = _joint_errors(p, g)  # (N, 16)
    t = auc_thresholds_mm()  # (31,)

    def scores(joints: list[int]) -> dict[str, float]:
        e = err[:, joints]
        return {"pck": float((e < PCK3D_THRESHOLD_MM).mean()), "auc": float((e[..., None] < t).mean())}

    groups = {name: scores(list(js)) for name, js in MPI3DHP_EVAL_GROUPS.items()}
    return {**scores([j for js in MPI3DHP_EVAL_GROUPS.values() for j in js]), "groups": groups, "n": len(p)}
