"""Losses against independent per-sample loop implementations of their formulas."""
from __future__ import annotations

import math

import pytest
import torch

from pose3dlib.engine.errors import DataError
from pose3dlib.losses import depth_loss, geometric_loss, heatmap_loss, total_loss
from pose3dlib.skeleton import BONE_GROUPS
from pose3dlib.tools.bench.loop_loss import geometric_loss_loop as geometric_reference

torch.set_num_threads(1)
J = 16


def _random_case(gen: torch.Generator, batch: int = 12):
    depth = torch.randn(batch, J, generator=gen)
    joints = torch.rand(batch, J, 2, generator=gen) * 2 - 1
    valid = torch.rand(batch, J, generator=gen) > 0.25
    # zero-length bones: joint 1 on joint 0 (2D and depth) in samples 0-3
    joints[:4, 1] = joints[:4, 0]
    depth[:4, 1] = depth[:4, 0]
    valid[:4, :2] = True
    # a group without usable bones: no hip joints in samples 4-5 (hips group empty)
    valid[4:6, 2] = valid[4:6, 3] = False
    valid[6] = False  # a sample without any annotated joint
    valid[7, 10:16] = False  # no arm bone and no shoulder bone: two groups empty
    valid[8] = True  # every bone usable
    return depth, joints, valid


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_geometric_loss_matches_loop_values_and_gradients(seed):
    gen = torch.Generator().manual_seed(seed)
    depth, joints, valid = _random_case(gen)
    d1 = depth.clone().requires_grad_(True)
    d2 = depth.clone().requires_grad_(True)
    out = geometric_loss(d1, joints, valid)
    ref = geometric_reference(d2, joints, valid)
    assert out.shape == (depth.shape[0],)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    assert out[6] == 0 and out[8] > 0
    weights = torch.rand(depth.shape[0], generator=gen)  # a random cotangent exercises every sample
    (out * weights).sum().backward()
    (ref * weights).sum().backward()
    assert torch.isfinite(d1.grad).all()
    torch.testing.assert_close(d1.grad, d2.grad, rtol=1e-4, atol=1e-6)
    assert d1.grad[6].abs().sum() == 0  # no annotated joints: no gradient


def test_geometric_loss_hand_computed_value():
    """Hips group only: bone lengths 1 and 3 around mean 2 -> loss ((1-2)^2 + (3-2)^2) / 2 = 1,
    for the loss and for the loop form the other tests take as their reference."""
    assert [(a, b, w) for a, b, w in BONE_GROUPS["hips"]] == [(2, 6, 1.0), (3, 6, 1.0)]
    depth = torch.zeros(2, J)
    joints = torch.zeros(2, J, 2)
    valid = torch.zeros(2, J, dtype=torch.bool)
    joints[0, 2] = torch.tensor([1.0, 0.0])  # r_hip, 1 from the pelvis (joint 6 at the origin)
    depth[0, 3] = 3.0  # l_hip, 3 from the pelvis along depth
    joints[1, 2] = torch.tensor([0.6, 0.8])  # |(0.6, 0.8, 0)| = 1
    joints[1, 3, 0] = -1.0
    depth[1, 3] = math.sqrt(8.0)  # |(-1, 0, sqrt 8)| = 3: image plane and depth in one bone
    valid[:, [2, 3, 6]] = True
    for loss in (geometric_loss, geometric_reference):
        torch.testing.assert_close(loss(depth, joints, valid), torch.ones(2), rtol=1e-6, atol=1e-6)


def test_geometric_loss_uses_the_ratio_weights():
    """Legs with thigh/shin lengths in the H36M ratio are penalised 0; equal lengths are not."""
    thigh_over_shin = {(a, b): w for a, b, w in BONE_GROUPS["legs"]}[(0, 1)]
    depth = torch.zeros(1, J)
    joints = torch.zeros(1, J, 2)
    valid = torch.zeros(1, J, dtype=torch.bool)
    valid[0, [0, 1, 2]] = True
    joints[0, 1] = torch.tensor([0.0, 1.0])  # knee
    joints[0, 0] = torch.tensor([0.0, 1.0 + 1.0 / thigh_over_shin])  # ankle: shin = 1 / ratio
    joints[0, 2] = torch.tensor([0.0, 0.0])  # hip: thigh = 1
    assert geometric_loss(depth, joints, valid).item() == pytest.approx(0.0, abs=1e-10)
    joints[0, 0] = torch.tensor([0.0, 2.0])  # shin = 1: weighted lengths ratio and 1
    expected = ((thigh_over_shin - 1) / 2) ** 2  # two lengths around their mean
    assert geometric_loss(depth, joints, valid).item() == pytest.approx(expected, rel=1e-5)


def test_geometric_loss_all_zero_bones_have_finite_zero_gradients():
    depth = torch.zeros(3, J, requires_grad=True)
    loss = geometric_loss(depth, torch.zeros(3, J, 2), torch.ones(3, J, dtype=torch.bool))
    loss.sum().backward()
    assert torch.equal(loss, torch.zeros(3)) and torch.equal(depth.grad, torch.zeros(3, J))


def test_geometric_loss_refuses_bad_shapes():
    with pytest.raises(DataError, match="joints_2d"):
        geometric_loss(torch.zeros(2, J), torch.zeros(2, J, 3), torch.ones(2, J, dtype=torch.bool))


def test_heatmap_loss_is_masked_mse_summed_over_stacks():
    gen = torch.Generator().manual_seed(3)
    target = torch.rand(4, J, 8, 8, generator=gen)
    preds = [torch.rand(4, J, 8, 8, generator=gen, requires_grad=True) for _ in range(2)]
    valid = torch.rand(4, J, generator=gen) > 0.3
    expected = sum(torch.nn.functional.mse_loss(p[valid], target[valid]) for p in preds)
    torch.testing.assert_close(heatmap_loss(preds, target, valid), expected)
    # unannotated joints do not matter
    changed = [p.detach().clone() for p in preds]
    changed[0][~valid] = 100.0
    torch.testing.assert_close(heatmap_loss(changed, target, valid), expected.detach())


def test_heatmap_loss_without_annotated_joints_is_zero_with_a_graph():
    pred = torch.rand(2, J, 4, 4, requires_grad=True)
    loss = heatmap_loss([pred], torch.rand(2, J, 4, 4), torch.zeros(2, J, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0 and torch.equal(pred.grad, torch.zeros_like(pred))


def test_depth_loss_on_samples_with_depth_only():
    gen = torch.Generator().manual_seed(4)
    pred = torch.randn(5, J, generator=gen, requires_grad=True)
    target = torch.randn(5, J, generator=gen)
    has_depth = torch.tensor([True, False, True, False, False])
    expected = sum(((pred[b] - target[b]) ** 2).mean() for b in (0, 2)) / 5
    torch.testing.assert_close(depth_loss(pred, target, has_depth), expected)
    none = depth_loss(pred, target, torch.zeros(5, dtype=torch.bool))
    none.backward()
    assert none.item() == 0 and torch.equal(pred.grad, torch.zeros_like(pred))


def test_total_loss_weights_and_normalisation():
    gen = torch.Generator().manual_seed(5)
    b = 6
    depth_pred = torch.randn(b, J, generator=gen, requires_grad=True)
    outputs = {"heatmaps": [torch.rand(b, J, 8, 8, generator=gen) for _ in range(2)], "depth": depth_pred}
    batch = {
        "heatmaps": torch.rand(b, J, 8, 8, generator=gen), "valid": torch.rand(b, J, generator=gen) > 0.2,
        "joints_2d": torch.rand(b, J, 2, generator=gen) * 2 - 1, "depth": torch.randn(b, J, generator=gen),
        "has_depth": torch.tensor([True, True, False, False, False, True]),
    }
    batch["heatmap_valid"] = batch["valid"].clone()
    batch["heatmap_valid"][2] = True  # a 2D-only crop without a whole person: every heatmap supervised
    loss, terms = total_loss(outputs, batch, heatmap_weight=1.0, depth_weight=0.1, geometric_weight=0.01)
    # the original: varWeight * (sum over 2D samples) / batch size
    geo = geometric_reference(depth_pred.detach(), batch["joints_2d"], batch["valid"])[~batch["has_depth"]].sum() / b
    # heatmaps: per stack, the mean squared error over the pixels of the supervised joints, summed over stacks
    def heatmap_mse(mask):
        return sum((p - batch["heatmaps"])[mask].square().mean() for p in outputs["heatmaps"])

    hm = heatmap_mse(batch["heatmap_valid"])
    assert not torch.isclose(hm, heatmap_mse(batch["valid"]))  # the two masks give different terms here
    # depth: the per-sample mean over joints, summed over the samples with depth, divided by the batch size
    dl = sum(((depth_pred[i] - batch["depth"][i]) ** 2).mean() for i in range(b) if batch["has_depth"][i]) / b
    dl = dl.detach()
    torch.testing.assert_close(terms["heatmap"], hm, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(terms["depth"], dl, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(terms["geometric"], geo, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(loss.detach(), hm + 0.1 * dl + 0.01 * geo, rtol=1e-5, atol=1e-7)
    assert set(terms) == {"heatmap", "depth", "geometric", "total"}
    assert all(not t.requires_grad for t in terms.values())
    loss.backward()
    assert torch.isfinite(depth_pred.grad).all() and depth_pred.grad.abs().sum() > 0
    assert math.isclose(terms["total"].item(), loss.item())


def test_losses_of_bf16_predictions_are_float32_and_equal_the_upcast_loss():
    """The module's promise: every loss is computed in float32 whatever the predictions' dtype (bf16 under
    autocast), so bf16 predictions give the float32 loss of the same values upcast first."""
    gen = torch.Generator().manual_seed(6)
    b = 5
    hm_bf16 = [torch.rand(b, J, 8, 8, generator=gen).bfloat16() for _ in range(2)]
    depth_bf16 = (torch.randn(b, J, generator=gen) * 3).bfloat16()
    target = torch.rand(b, J, 8, 8, generator=gen)
    depth_target = torch.randn(b, J, generator=gen) * 3
    joints, valid = torch.rand(b, J, 2, generator=gen) * 2 - 1, torch.rand(b, J, generator=gen) > 0.2
    has_depth = torch.tensor([True, False, True, False, True])
    hm_up, depth_up = [h.float() for h in hm_bf16], depth_bf16.float()  # exactly the bf16 values, in float32
    pairs = [
        (heatmap_loss(hm_bf16, target, valid), heatmap_loss(hm_up, target, valid)),
        (depth_loss(depth_bf16, depth_target, has_depth), depth_loss(depth_up, depth_target, has_depth)),
        (geometric_loss(depth_bf16, joints, valid), geometric_loss(depth_up, joints, valid)),
    ]
    batch = {"heatmaps": target, "heatmap_valid": valid, "valid": valid, "joints_2d": joints,
             "depth": depth_target, "has_depth": has_depth}
    weights = {"heatmap_weight": 1.0, "depth_weight": 0.1, "geometric_weight": 0.01}
    low, low_terms = total_loss({"heatmaps": hm_bf16, "depth": depth_bf16}, batch, **weights)
    up, up_terms = total_loss({"heatmaps": hm_up, "depth": depth_up}, batch, **weights)
    pairs += [(low, up)] + [(low_terms[k], up_terms[k]) for k in up_terms]
    for got, expected in pairs:
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)
    # a loss computed in bf16 itself would be off by bf16's rounding (8 bits of mantissa), far outside that tolerance
    in_bf16 = (hm_bf16[0] - target.bfloat16()).square().sum(dim=(2, 3))[valid].sum() / (valid.sum() * 64)
    in_f32 = (hm_up[0] - target).square().sum(dim=(2, 3))[valid].sum() / (valid.sum() * 64)
    assert not torch.isclose(in_bf16.float(), in_f32, rtol=1e-6, atol=1e-7)


def test_heatmap_and_depth_losses_name_the_mismatched_shapes():
    """A stack's heatmaps of another shape than the target, and a depth target of another shape than the
    prediction, are DataErrors naming both shapes."""
    target, valid = torch.zeros(2, J, 8, 8), torch.ones(2, J, dtype=torch.bool)
    with pytest.raises(DataError, match=r"heatmaps have shape \(2, 16, 4, 4\), target \(2, 16, 8, 8\)"):
        heatmap_loss([torch.zeros(2, J, 8, 8), torch.zeros(2, J, 4, 4)], target, valid)
    with pytest.raises(DataError, match=r"valid \(B, J\) expected, got \(2, 16, 8, 8\), \(2, 15\)"):
        heatmap_loss([target], target, torch.ones(2, J - 1, dtype=torch.bool))
    with pytest.raises(DataError, match=r"has_depth \(B,\) expected, got \(2, 16\), \(2, 15\), \(2,\)"):
        depth_loss(torch.zeros(2, J), torch.zeros(2, J - 1), torch.ones(2, dtype=torch.bool))
    with pytest.raises(DataError, match=r"has_depth \(B,\) expected, got \(2, 16\), \(2, 16\), \(3,\)"):
        depth_loss(torch.zeros(2, J), torch.zeros(2, J), torch.ones(3, dtype=torch.bool))
