"""The one table of action names: Human3.6M actions 2..16, the synthetic wild-only pose families,
and the MPI-INF-3DHP test set's activities.

The synthetic generator's lab pose families are the Human3.6M actions (same ids); its wild
domain adds the families 17.. below, which only occur in the wild splits (`mpii/`,
`wild_test/`). MPII samples have action 0 ("unknown"). A converted MPI-INF-3DHP test set
(`convert-3dhp`) stores its activity 1..7 as the action; its ids overlap the Human3.6M ones,
so such a set (recognised by its `sequence` field) is named with `MPI3DHP_ACTIVITIES`.
"""
from __future__ import annotations

# Human3.6M action ids as in the original release's annotation files (2..16).
H36M_ACTIONS: dict[int, str] = {
    2: "Directions", 3: "Discussion", 4: "Eating", 5: "Greeting", 6: "Phoning",
    7: "Posing", 8: "Purchases", 9: "Sitting", 10: "SittingDown", 11: "Smoking",
    12: "TakingPhoto", 13: "Waiting", 14: "Walking", 15: "WalkingDog", 16: "WalkTogether",
}
# Synthetic wild-only pose families (wider and more extreme than the lab's).
WILD_ACTIONS: dict[int, str] = {
    17: "Crouching", 18: "ArmsRaised", 19: "Reaching", 20: "Bending", 21: "Running", 22: "Stretching",
}
UNKNOWN_ACTION = 0
ACTION_NAMES: dict[int, str] = {UNKNOWN_ACTION: "Unknown", **H36M_ACTIONS, **WILD_ACTIONS}
# MPI-INF-3DHP test set activities (annot_data.mat's activity_annotation, 1..7).
MPI3DHP_ACTIVITIES: dict[int, str] = {
    1: "Standing/Walking", 2: "Exercising", 3: "Sitting", 4: "Reaching/Crouching", 5: "On the floor",
    6: "Sports", 7: "Miscellaneous",
}


def action_names_for(dataset) -> dict[int, str]:
    """The action-name table of a 3D dataset: 3DHP activities for a converted MPI-INF-3DHP set
    (one whose annotation has `sequence`, exposed as `dataset.sequences`), else ACTION_NAMES."""
    return MPI3DHP_ACTIVITIES if getattr(dataset, "sequences", None) is not None else ACTION_NAMES


def action_name(action_id: int) -> str:
    """Name of an action id (Human3.6M 2..16, synthetic wild 17..); 'Action<id>' if unknown."""
    return ACTION_NAMES.get(int(action_id), f"Action{int(action_id)}")


def dataset_action_name(dataset, action_id: int) -> str:
    """A dataset's own name of an action id: its `action_names_for` table, else `action_name`."""
    return action_names_for(dataset).get(int(action_id), action_name(action_id))
