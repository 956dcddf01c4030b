"""pose3dlib.skeleton: internal consistency, and the tables against the shared paper-facts.md."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from pose3dlib import skeleton
from pose3dlib.engine.paths import PROJECT_ROOT
from pose3dlib.skeleton import (
    BONE_GROUPS,
    H36M17,
    H36M17_TO_MPII16,
    MPII16,
    MPII16_FROM_H36M17,
)

PAPER_FACTS = PROJECT_ROOT.parent / "shared" / "docs" / "paper-facts.md"


def side(name: str) -> str:
    return name[:2] if name[:2] in ("r_", "l_") else ""


# ----------------------------------------------------------------------------- flips

@pytest.mark.parametrize("skel", [MPII16, H36M17], ids=lambda s: s.name)
def test_flip_permutation_is_an_involution(skel) -> None:
    perm = skel.flip_permutation
    np.testing.assert_array_equal(perm[perm], np.arange(skel.num_joints))
    flat = [j for pair in skel.flip_pairs for j in pair]
    assert len(flat) == len(set(flat)), "a joint is in two flip pairs"


@pytest.mark.parametrize("skel", [MPII16, H36M17], ids=lambda s: s.name)
def test_flip_pairs_join_left_and_right(skel) -> None:
    for a, b in skel.flip_pairs:
        na, nb = skel.joint_names[a], skel.joint_names[b]
        assert {side(na), side(nb)} == {"r_", "l_"} and na[2:] == nb[2:], (na, nb)
    paired = {j for pair in skel.flip_pairs for j in pair}
    for j, name in enumerate(skel.joint_names):
        assert (j in paired) == bool(side(name)), f"{name}: sided joints are exactly the paired ones"


@pytest.mark.parametrize("skel", [MPII16, H36M17], ids=lambda s: s.name)
def test_edges_form_a_tree_closed_under_flip(skel) -> None:
    parents = skel.parents
    assert parents[skel.root] == -1
    for a, b in skel.edges:
        assert parents[a] == b or parents[b] == a
    perm = skel.flip_permutation
    edges = {frozenset(e) for e in skel.edges}
    assert {frozenset((perm[a], perm[b])) for a, b in skel.edges} == edges


def test_mpii16_tree_leaves_out_joint_7() -> None:
    assert len(MPII16.edges) == 14 and MPII16.root == 6 == skeleton.DEPTH_ROOT
    assert MPII16.parents[7] == -1 and skeleton.SPINE_INDEX == 7
    reached = [j for j, p in enumerate(MPII16.parents) if p != -1]
    assert len(reached) == 14  # every joint but the root and 7


def test_flip_joints_numpy_and_torch() -> None:
    rng = np.random.default_rng(0)
    joints = rng.normal(size=(3, 16, 3))
    out = skeleton.flip_joints(joints)
    np.testing.assert_allclose(out[:, MPII16.flip_permutation, 0], -joints[..., 0])
    np.testing.assert_allclose(skeleton.flip_joints(out), joints)
    px = rng.uniform(0, 63, size=(2, 16, 2))
    np.testing.assert_allclose(skeleton.flip_joints(skeleton.flip_joints(px, width=64), width=64), px)
    np.testing.assert_allclose(skeleton.flip_joints(px, width=64)[:, 6, 0], 63 - px[:, 6, 0])
    t = torch.from_numpy(joints)
    assert torch.allclose(skeleton.flip_joints(t), torch.from_numpy(out))
    assert torch.equal(t, torch.from_numpy(joints))  # input untouched


# ----------------------------------------------------------------------------- index maps

def test_index_maps_are_inverse() -> None:
    assert len(H36M17_TO_MPII16) == 16 and len(set(H36M17_TO_MPII16)) == 16
    assert len(MPII16_FROM_H36M17) == 17
    for k, i in enumerate(H36M17_TO_MPII16):
        assert MPII16_FROM_H36M17[i] == k
    dropped = [i for i, k in enumerate(MPII16_FROM_H36M17) if k == -1]
    assert dropped == [H36M17.index("neck_nose")]


def test_index_map_keeps_sides_and_root() -> None:
    for k, i in enumerate(H36M17_TO_MPII16):
        assert side(MPII16.joint_names[k]) == side(H36M17.joint_names[i]), (k, i)
    assert H36M17_TO_MPII16[MPII16.root] == H36M17.root


def test_h36m17_to_mpii16_reorders_and_commutes_with_flip() -> None:
    x = np.arange(17 * 3, dtype=float).reshape(1, 17, 3)
    np.testing.assert_array_equal(skeleton.h36m17_to_mpii16(x)[0, :, 0], np.array(H36M17_TO_MPII16) * 3)
    via_h36m = skeleton.h36m17_to_mpii16(x[:, H36M17.flip_permutation])
    via_mpii = skeleton.h36m17_to_mpii16(x)[:, MPII16.flip_permutation]
    np.testing.assert_array_equal(via_h36m, via_mpii)
    with pytest.raises(ValueError, match=r"17"):
        skeleton.h36m17_to_mpii16(np.zeros((1, 16, 3)))


# ----------------------------------------------------------------------------- bone groups

def test_bone_groups_are_edges_symmetric_under_flip() -> None:
    edges = {frozenset(e) for e in MPII16.edges}
    perm = MPII16.flip_permutation
    for name, bones in BONE_GROUPS.items():
        weights = {frozenset((a, b)): w for a, b, w in bones}
        assert set(weights) <= edges, name
        flipped = {frozenset((perm[a], perm[b])): w for a, b, w in bones}
        assert flipped == weights, f"group {name} is not left/right symmetric"


def test_bone_group_weights_are_length_ratios() -> None:
    # docs/paper.md "Skeleton": thigh/shin 456.0086/452.1255 and upper-arm/forearm 284.1253/249.7726 mm.
    assert skeleton.THIGH_OVER_SHIN == pytest.approx(456.0086 / 452.1255, rel=1e-6)
    assert skeleton.UPPER_ARM_OVER_FOREARM == pytest.approx(284.1253 / 249.7726, rel=1e-6)
    for bones in BONE_GROUPS.values():
        for _, _, w in bones:
            assert w in (1.0, skeleton.THIGH_OVER_SHIN, skeleton.UPPER_ARM_OVER_FOREARM)


# ----------------------------------------------------------------------------- against paper-facts.md

@pytest.fixture(scope="module")
def facts() -> str:
    if not PAPER_FACTS.is_file():
        pytest.skip(f"{PAPER_FACTS} not present (shared notes are outside the repository)")
    return PAPER_FACTS.read_text()


def section(text: str, heading: str) -> str:
    m = re.search(rf"^## {re.escape(heading)}.*?$(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert m, f"paper-facts.md has no section '## {heading}'"
    return m.group(1)


def numbered_names(text: str) -> list[str]:
    """'0 r_ankle, 1 r_knee, ...' -> names in index order (checks the indices are 0..n-1)."""
    pairs = re.findall(r"(\d+) ([a-z_/]+(?: \(root\))?)", text)
    assert [int(i) for i, _ in pairs] == list(range(len(pairs))), pairs
    return [n.replace(" (root)", "").replace("/", "_") for _, n in pairs]


def int_pairs(line: str) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in re.findall(r"\((\d+),\s*(\d+)\)", line)]


def test_mpii16_matches_paper_facts(facts) -> None:
    sec = section(facts, "Skeleton")
    names_text = sec.split("- Edges")[0]
    assert tuple(numbered_names(names_text)) == MPII16.joint_names
    root_name = re.search(r"\d+ ([a-z_]+) \(root\)", names_text).group(1)
    assert MPII16.joint_names[MPII16.root] == root_name
    edges = int_pairs(re.search(r"^- Edges.*$", sec, re.MULTILINE).group(0))
    assert tuple(edges) == MPII16.edges
    flips = int_pairs(re.search(r"^- Flip pairs.*$", sec, re.MULTILINE).group(0))
    assert tuple(flips) == MPII16.flip_pairs


def test_h36m17_and_map_match_paper_facts(facts) -> None:
    sec = section(facts, "Skeleton")
    h36m_text = re.search(r"Human3\.6M 17-joint order:(.*?)\n\s*16-joint row", sec, re.DOTALL).group(1)
    assert tuple(numbered_names(h36m_text)) == H36M17.joint_names
    order = re.search(r"takes H36M joint \[([\d,\s]+)\]", sec).group(1)
    assert tuple(int(i) for i in order.split(",")) == H36M17_TO_MPII16


def test_bone_groups_match_paper_facts(facts) -> None:
    sec = section(facts, "Geometric (bone-length ratio) loss")
    parsed = {}
    for name, body in re.findall(r"^- (\w+): (.*)$", sec, re.MULTILINE):
        parsed[name] = tuple((int(a), int(b), float(w)) for a, b, w in re.findall(r"\((\d+),\s*(\d+),\s*([\d.]+)\)", body))
    assert parsed == BONE_GROUPS
    flat = " ".join(sec.split())  # prose lines wrap anywhere
    lengths = re.search(r"thigh/shin ([\d.]+)/([\d.]+), upper-arm/forearm ([\d.]+)/([\d.]+)", flat).groups()
    thigh, shin, upper, fore = map(float, lengths)
    assert skeleton.THIGH_OVER_SHIN == pytest.approx(thigh / shin, rel=1e-6)
    assert skeleton.UPPER_ARM_OVER_FOREARM == pytest.approx(upper / fore, rel=1e-6)


def test_eval_midpoint_matches_paper_facts(facts) -> None:
    flat = " ".join(section(facts, "Evaluation").split())  # prose lines wrap anywhere
    a, b = map(int, re.search(r"joint 7 is replaced by the midpoint of (\d+) and (\d+)", flat).groups())
    assert (a, b) == skeleton.PAPER_EVAL_MIDPOINT and skeleton.SPINE_INDEX == 7


def test_h36m17_to_mpii16_by_joint_name() -> None:
    """The 17 -> 16 map spelled by names (docs/data.md; the original release's convention): MPII's
    thorax row holds Human3.6M's spine, its upper neck Human3.6M's thorax, its head top the head;
    the nose is dropped. Independent of ../shared, so a swap inside the index tuple fails here too."""
    by_name = {"r_ankle": "r_foot", "r_knee": "r_knee", "r_hip": "r_hip", "l_hip": "l_hip", "l_knee": "l_knee",
               "l_ankle": "l_foot", "pelvis": "hip", "thorax": "spine", "upper_neck": "thorax", "head_top": "head",
               "r_wrist": "r_wrist", "r_elbow": "r_elbow", "r_shoulder": "r_shoulder", "l_shoulder": "l_shoulder",
               "l_elbow": "l_elbow", "l_wrist": "l_wrist"}
    assert [H36M17.joint_names[i] for i in H36M17_TO_MPII16] == [by_name[n] for n in MPII16.joint_names]


def test_h36m32_to_h36m17_matches_the_documented_indices() -> None:
    """docs/data.md states which of Human3.6M's 32 recorded joints make its 17 (from the official
    format); the synthetic official files are written with the same tuple, so only this pins it."""
    text = (PROJECT_ROOT / "docs" / "data.md").read_text()
    found = re.search(r"32 -> 17 joints: indices ([\d, ]+) \(", text)
    assert found, "docs/data.md no longer states the 32 -> 17 indices"
    assert skeleton.H36M32_TO_H36M17 == tuple(int(i) for i in found.group(1).split(","))


def test_mpi3dhp17_to_mpii16_by_joint_name() -> None:
    """The MPI-INF-3DHP 17 -> 16 map spelled by names. The official 17-joint test order is written out
    here, not read from pose3dlib; as skeleton.py states (the original release's convention), MPII's
    thorax row takes 3DHP's spine and its upper neck 3DHP's neck; 3DHP's head (between neck and head
    top) goes nowhere."""
    official_3dhp17 = ("head_top", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
                       "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
                       "left_ankle", "pelvis", "spine", "head")
    assert MPII16.joint_names == ("r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax",
                                  "upper_neck", "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder",
                                  "l_elbow", "l_wrist")
    by_name = {"thorax": "spine", "upper_neck": "neck", "head_top": "head_top", "pelvis": "pelvis"}
    for n in MPII16.joint_names:
        if n[:2] in ("r_", "l_"):
            by_name[n] = {"r_": "right_", "l_": "left_"}[n[:2]] + n[2:]
    assert len(skeleton.MPI3DHP17_TO_MPII16) == 16 and skeleton.MPI3DHP17_NUM_JOINTS == len(official_3dhp17)
    assert [official_3dhp17[i] for i in skeleton.MPI3DHP17_TO_MPII16] == [by_name[n] for n in MPII16.joint_names]
    assert official_3dhp17[skeleton.MPI3DHP17_HEAD] == "head"
    assert skeleton.MPI3DHP17_HEAD not in skeleton.MPI3DHP17_TO_MPII16
    # the reordering function applies the same map: joint k of its output is named by_name[MPII16 name k]
    joints = np.arange(17 * 3, dtype=float).reshape(17, 3)
    out = skeleton.mpi3dhp17_to_mpii16(joints)
    for k, n in enumerate(MPII16.joint_names):
        np.testing.assert_array_equal(out[k], joints[official_3dhp17.index(by_name[n])], err_msg=n)
    # the official evaluation groups name MPII16 rows: each group's rows hold the 3DHP joints of that name
    groups = {g: {official_3dhp17[skeleton.MPI3DHP17_TO_MPII16[r]] for r in rows}
              for g, rows in skeleton.MPI3DHP_EVAL_GROUPS.items()}
    assert groups == {"head_top": {"head_top"}, "neck": {"neck"}, "shoulders": {"right_shoulder", "left_shoulder"},
                      "elbows": {"right_elbow", "left_elbow"}, "wrists": {"right_wrist", "left_wrist"},
                      "hips": {"right_hip", "left_hip"}, "knees": {"right_knee", "left_knee"},
                      "ankles": {"right_ankle", "left_ankle"}}
