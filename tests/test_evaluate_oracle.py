"""Evaluation numbers end to end, with an oracle in place of the network.

The oracle answers each smoke sample's image with that sample's own training targets (the
Gaussian heatmaps and depths the data pipeline builds), and a mirrored image with the mirrored
targets. Everything after the network is then real: `predict` (flip test, sub-pixel decoding),
`predict_dataset`, `joints_in_image` / `decode.joints_to_image`, `decode.reconstruct_3d`, the
protocols and the per-action table. The expected numbers are derived here from the raw
annotations, independently of pose3dlib's conversions:

  - a joint at crop pixel q sits at heatmap pixel u = (q + 0.5) H / S - 0.5 (pixel centres of
    the S-pixel crop and the H-pixel heatmap aligned); its Gaussian peaks at the nearest pixel k;
    `quarter` decoding moves k a quarter pixel toward u, `log_parabola` recovers u exactly
    (the log of a Gaussian is a parabola); on the heatmap's border neither moves k. A joint with
    an all-zero map (outside the crop) decodes to pixel (0, 0). So with `log_parabola` an interior
    joint comes back exactly, and with `quarter` within 0.25 heatmap pixel per axis (0.5 on the
    border): at most 0.25 x box / H image pixels, box the crop's side in the image;
  - depth_j = (Z_j - Z_pelvis) x (sum of 2D edge lengths / sum of 3D edge lengths on x, y),
    in the normalised units 2 u / H - 1 of the 2D joints;
  - the 3D prediction is (x, y, depth) made pelvis-relative and scaled so its 14 edges sum to
    the checkpoint's bone_sum_mm (weak perspective), so even the oracle's Protocol #1 is not 0:
    its floor is the weak-perspective and skeleton-size error, computed here from the ground truth.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from pose3dlib.config import load_config
from pose3dlib.data.h36m import H36MDataset
from pose3dlib.data.mpii import MPIIDataset
from pose3dlib.evaluation import evaluate
from pose3dlib.skeleton import MPII16

SMOKE = "configs/smoke.yaml"
BONE_SUM_MM = 4000.0  # the stand-in checkpoint's millimetre scale
PAPER_BONE_SUM_MM = 4296.99  # eval.paper_bone_sum_mm of the smoke config (checked below)
PELVIS = MPII16.joint_names.index("pelvis")
THORAX = MPII16.joint_names.index("thorax")
UPPER_NECK = MPII16.joint_names.index("upper_neck")
EDGES = np.asarray(MPII16.edges)
MIRROR = [MPII16.joint_names.index(("l_" + n[2:]) if n.startswith("r_") else ("r_" + n[2:]) if n.startswith("l_")
                                   else n) for n in MPII16.joint_names]  # joint j of a mirrored image is MIRROR[j]
SUBPIXEL = ("quarter", "log_parabola")
TIE = 1e-3  # heatmap px: closer than this to a tie, float rounding may decode either way
ATOL_HM = 1e-4  # heatmap px: float32 rounding of the decoded joints


class TargetOracle(torch.nn.Module):
    """Stand-in network: the training targets of the sample whose image it is shown (recognised by
    its pixels); for a mirrored image, the targets of that mirror image (maps mirrored, left and
    right swapped), so flip testing must give the very same maps back."""

    def __init__(self, datasets):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))  # predict_dataset reads the device from it
        self.answers: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
        for ds in datasets:
            for i in range(len(ds)):
                s = ds[i]
                image = s["image"]  # (3, S, S) uint8
                for key, heatmaps, depth in (
                        (image.tobytes(), s["heatmaps"], s["depth"]),
                        (np.ascontiguousarray(image[:, :, ::-1]).tobytes(), s["heatmaps"][MIRROR, :, ::-1],
                         s["depth"][MIRROR])):
                    assert key not in self.answers, "two smoke images are pixel-identical: the oracle needs them apart"
                    self.answers[key] = (np.ascontiguousarray(heatmaps, np.float32), np.asarray(depth, np.float32))

    def forward(self, x):
        images = (x * 255.0).round().to(torch.uint8).cpu().numpy()  # undo preprocess (input_format rgb)
        heatmaps, depth = zip(*(self.answers[im.tobytes()] for im in images))
        return {"heatmaps": [torch.from_numpy(np.stack(heatmaps))], "depth": torch.from_numpy(np.stack(depth))}


@dataclasses.dataclass
class Truth:
    """Per-split ground truth derived in this file from the raw annotations."""

    u: np.ndarray  # (N, 16, 2) heatmap px of every joint
    valid: np.ndarray  # (N, 16) the joint has a heatmap (annotated and inside the crop)
    box: np.ndarray  # (N,) crop side in image px
    image_px: np.ndarray  # (N, 16, 2) the annotation
    rel_mm: np.ndarray | None  # (N, 16, 3) pelvis-relative camera-frame mm (3D splits)
    actions: np.ndarray  # (N,)


@pytest.fixture(scope="module")
def setup(smoke_data):
    cfg = load_config(SMOKE, smoke_data)
    assert cfg.model.input_format == "rgb" and cfg.eval.paper_bone_sum_mm == PAPER_BONE_SUM_MM
    splits = {"lab_test": H36MDataset(cfg.data.h36m_dir, "test", cfg.data),
              "wild_test": H36MDataset(cfg.data.wild_test_dir, "test", cfg.data),
              "mpii_val": MPIIDataset(cfg.data.mpii_dir, "val", cfg.data)}
    truths = {name: _truth(ds, cfg.data.input_size, cfg.data.heatmap_size) for name, ds in splits.items()}
    return cfg, splits, truths, TargetOracle(splits.values())


def _truth(ds, size: int, hm: int) -> Truth:
    is_3d = isinstance(ds, H36MDataset)
    image_px = ds.joints_2d_px if is_3d else ds.part
    annotated = np.ones(image_px.shape[:2], bool) if is_3d else ds.annotated
    crops = np.stack([ds[i]["crop"] for i in range(len(ds))]).astype(np.float64)  # (N, 2, 3) image px -> crop px
    q = np.einsum("nij,nkj->nki", crops[:, :, :2], image_px) + crops[:, None, :, 2]  # crop px
    u = (q + 0.5) * hm / size - 0.5
    inside = np.all((q >= -0.5) & (q < size - 0.5), axis=-1)
    box = size / np.sqrt(np.abs(np.linalg.det(crops[:, :, :2])))
    rel = None
    if is_3d:
        rel = ds.joints_3d_cam - ds.joints_3d_cam[:, PELVIS:PELVIS + 1]
    return Truth(u=u, valid=annotated & inside, box=box, image_px=image_px, rel_mm=rel, actions=ds.actions)


def _candidates(u: float, hm: int, subpixel: str) -> list[float]:
    """The heatmap px the decoder may return on one axis for a Gaussian centred at u (several only at a tie)."""
    out = []
    for k in (math.floor(u), math.floor(u) + 1):  # the nearest pixel: the Gaussian's maximum
        if not (0 <= k <= hm - 1 and abs(k - u) <= 0.5 + TIE):
            continue
        if k in (0, hm - 1):
            out.append(float(k))  # no refinement on the border
        elif subpixel == "log_parabola":
            out.append(u)
        elif abs(u - k) < TIE:
            out += [k - 0.25, float(k), k + 0.25]  # neighbours (nearly) equal
        else:
            out.append(k + 0.25 * math.copysign(1.0, u - k))
    return out


def _expected_hm(truth: Truth, got_norm: np.ndarray, hm: int, subpixel: str) -> np.ndarray:
    """The decoded heatmap px this file expects, (N, 16, 2); asserts `got_norm` (normalised units) is one of them
    (at a tie, where either is right, the one returned is taken)."""
    got = (got_norm.astype(np.float64) + 1.0) * hm / 2.0
    expected = np.zeros_like(got)
    for n, j, a in np.ndindex(*got.shape):
        cands = _candidates(float(truth.u[n, j, a]), hm, subpixel) if truth.valid[n, j] else [0.0]  # zero map: (0, 0)
        best = min(cands, key=lambda c: abs(c - got[n, j, a]))
        assert abs(best - got[n, j, a]) <= ATOL_HM, (
            f"sample {n} joint {MPII16.joint_names[j]} axis {'xy'[a]}: decoded {got[n, j, a]:.5f} heatmap px, "
            f"expected one of {cands} (the joint is at {truth.u[n, j, a]:.5f})")
        expected[n, j, a] = best
    return expected


# ----------------------------------------------------------------------------- 2D: predict_dataset


@pytest.mark.parametrize("subpixel", SUBPIXEL)
@pytest.mark.parametrize("split", ["lab_test", "wild_test", "mpii_val"])
def test_the_oracle_decodes_to_its_own_joints_with_and_without_flip_test(setup, split, subpixel):
    cfg, splits, truths, oracle = setup
    hm, truth = cfg.data.heatmap_size, truths[split]
    runs = {flip: evaluate.predict_dataset(oracle, splits[split], "rgb", batch_size=8, flip_test=flip,
                                           subpixel=subpixel, progress=False) for flip in (False, True)}
    for pred in runs.values():
        _expected_hm(truth, pred.joints_2d, hm, subpixel)
        assert pred.valid.tolist() == truth.valid.tolist()
    # the bound the candidates imply: 0.25 heatmap px per axis inside the map (0 with log_parabola), 0.5 on its border
    got = (runs[True].joints_2d + 1.0) * hm / 2.0
    err = np.abs(got - truth.u)[truth.valid]  # (V, 2)
    border = np.isin(np.round(truth.u[truth.valid]).clip(0, hm - 1), (0, hm - 1))
    assert err[~border].max() <= (0.25 if subpixel == "quarter" else 0.0) + ATOL_HM + TIE
    assert err[border].max(initial=0.0) <= 0.5 + ATOL_HM
    # a symmetric oracle: the mirrored pass maps back onto the plain one, so flip testing changes nothing
    for name in ("joints_2d", "depth"):
        np.testing.assert_allclose(getattr(runs[True], name), getattr(runs[False], name), atol=1e-6, err_msg=name)
    depth = np.stack([splits[split][i]["depth"] for i in range(len(splits[split]))])
    np.testing.assert_allclose(runs[True].depth, depth, atol=1e-6)


# ----------------------------------------------------------------------------- 2D: PCKh in image pixels


@pytest.mark.parametrize("subpixel", SUBPIXEL)
def test_pckh_of_the_oracle_is_one_and_its_joints_land_on_the_annotations(setup, subpixel):
    cfg, splits, truths, oracle = setup
    mpii, truth, hm = splits["mpii_val"], truths["mpii_val"], cfg.data.heatmap_size
    # one pass (recrop_margin 0): the oracle knows the dataset's crops only
    eval_cfg = dataclasses.replace(cfg.eval, subpixel=subpixel, flip_test=True, recrop_margin=0.0)
    scored = evaluate.pckh_on_mpii(oracle, mpii, eval_cfg, "rgb", "cpu", progress=False)
    assert scored.all_joints == 1.0 and scored.benchmark == 1.0
    assert np.all(scored.per_joint[mpii.annotated.any(0)] == 1.0)
    # in original-image pixels (decode.joints_to_image through each crop), against the raw annotation
    found, gt, _, annotated = evaluate.mpii_predictions(oracle, mpii, eval_cfg, "rgb", "cpu", progress=False)
    np.testing.assert_array_equal(gt, truth.image_px)
    assert annotated.tolist() == truth.valid.tolist()  # every annotated smoke joint lies inside its crop
    err_px = np.abs(found - truth.image_px)  # (N, 16, 2)
    px_per_hm = truth.box / hm  # image px per heatmap px, (N,)
    expected = _expected_hm(truth, evaluate.predict_dataset(oracle, mpii, "rgb", subpixel=subpixel,
                                                            progress=False).joints_2d, hm, subpixel)
    decode_err = np.abs(expected - truth.u) * px_per_hm[:, None, None]  # the decoding's own error, image px
    np.testing.assert_allclose(err_px[annotated], decode_err[annotated], atol=1e-3)
    # the bound in words: a quarter heatmap pixel (x box / H) inside the map, none with log_parabola
    interior = np.all((np.round(truth.u) > 0) & (np.round(truth.u) < hm - 1), axis=-1) & annotated
    limit = (0.25 if subpixel == "quarter" else 0.0) * px_per_hm[:, None, None] + 1e-3
    assert np.all((err_px <= limit)[interior])


# ----------------------------------------------------------------------------- 3D: evaluate_3d_split


def _procrustes_mpjpe(p: np.ndarray, g: np.ndarray) -> float:
    """MPJPE after the least-squares similarity (rotation, no reflection) of p (16, 3) onto g."""
    x, y = p - p.mean(0), g - g.mean(0)
    u, s, vt = np.linalg.svd(x.T @ y)  # maximise trace(R^T x^T y) over rotations R: aligned = x R
    d = np.array([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rot = (u * d) @ vt
    scale = (s * d).sum() / (x**2).sum()
    return float(np.linalg.norm(scale * x @ rot + g.mean(0) - g, axis=-1).mean())


def _reconstruct(xy: np.ndarray, depth: np.ndarray, bone_sum: float) -> np.ndarray:
    p = np.concatenate([xy, depth[:, None]], -1)
    p = p - p[PELVIS]
    return p * bone_sum / np.linalg.norm(p[EDGES[:, 0]] - p[EDGES[:, 1]], axis=-1).sum()


def _expected_rows(truth: Truth, decoded_hm: np.ndarray, hm: int, action_names: dict[int, str]) -> dict:
    true_xy = 2.0 * truth.u / hm - 1.0  # normalised units
    found_xy = 2.0 * decoded_hm / hm - 1.0
    per_sample: dict[str, list[float]] = {p: [] for p in ("paper", "p1_mpjpe", "p2_pa_mpjpe", "n_mpjpe", "p1_mpjpe_gt2d")}
    for n in range(len(truth.u)):
        g = truth.rel_mm[n]
        len_2d = np.linalg.norm(true_xy[n, EDGES[:, 0]] - true_xy[n, EDGES[:, 1]], axis=-1).sum()
        len_3d = np.linalg.norm(g[EDGES[:, 0], :2] - g[EDGES[:, 1], :2], axis=-1).sum()
        depth = g[:, 2] * len_2d / len_3d  # the depth target
        p = _reconstruct(found_xy[n], depth, BONE_SUM_MM)
        per_sample["p1_mpjpe"].append(np.linalg.norm(p - g, axis=-1).mean())
        per_sample["n_mpjpe"].append(np.linalg.norm((p * g).sum() / (p * p).sum() * p - g, axis=-1).mean())
        per_sample["p2_pa_mpjpe"].append(_procrustes_mpjpe(p, g))
        paper = p * PAPER_BONE_SUM_MM / BONE_SUM_MM  # 14 edges summing to the paper's length, pelvis on the truth's
        paper[THORAX] = (paper[PELVIS] + paper[UPPER_NECK]) / 2  # the paper's evaluator: joint 7 := mid(6, 8)
        per_sample["paper"].append(np.linalg.norm(paper - g, axis=-1).mean())
        floor = _reconstruct(true_xy[n], depth, BONE_SUM_MM)  # exact 2D and depth: the weak-perspective floor
        per_sample["p1_mpjpe_gt2d"].append(np.linalg.norm(floor - g, axis=-1).mean())
    out = {}
    for protocol, values in per_sample.items():
        values = np.asarray(values)
        means = [values[truth.actions == a].mean() for a in sorted(set(truth.actions.tolist()))]
        out.update({(protocol, action_names[a]): m for a, m in zip(sorted(set(truth.actions.tolist())), means)})
        out[(protocol, "all")] = float(np.mean(means))
    return out


@pytest.mark.parametrize("subpixel", SUBPIXEL)
@pytest.mark.parametrize("split", ["lab_test", "wild_test"])
def test_3d_protocols_of_the_oracle_are_its_rounding_and_weak_perspective_floor(setup, split, subpixel):
    cfg, splits, truths, oracle = setup
    ds, truth, hm = splits[split], truths[split], cfg.data.heatmap_size
    decoded = _expected_hm(truth, evaluate.predict_dataset(oracle, ds, "rgb", subpixel=subpixel,
                                                           progress=False).joints_2d, hm, subpixel)
    expected = _expected_rows(truth, decoded, hm, ds.action_names)
    scored = {}
    for flip in (True, False):
        eval_cfg = dataclasses.replace(cfg.eval, subpixel=subpixel, flip_test=flip, recrop_margin=0.0)
        rows = evaluate.evaluate_3d_split(oracle, ds, eval_cfg,
                                          "rgb", "cpu", BONE_SUM_MM, stage="oracle", split=split,
                                          action_names=ds.action_names, progress=False)
        assert {r["stage"] for r in rows} == {"oracle"} and {r["split"] for r in rows} == {split}
        scored[flip] = {(r["protocol"], r["action"]): r["value"] for r in rows}
    assert scored[True] == pytest.approx(scored[False], abs=1e-6)  # flip testing a symmetric oracle changes nothing
    assert set(scored[True]) == set(expected)
    for key, value in expected.items():
        assert scored[True][key] == pytest.approx(value, rel=1e-4, abs=1e-3), key
