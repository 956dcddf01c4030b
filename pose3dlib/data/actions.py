"""The one table of action names: Human3.6M actions 2..16 and the synthetic wild-only pose families.

The synthetic generator's lab pose families are the Human3.6M actions (same ids); its wild
domain adds the families 17.. below, which only occur in the wild splits (`mpii/`,
`wild_test/`). MPII samples have action 0 ("unknown").
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


def action_name(action_id: int) -> str:
    """Name of an action id (Human3.6M 2..16, synthetic wild 17..); 'Action<id>' if unknown."""
    return ACTION_NAMES.get(int(action_id), f"Action{int(action_id)}")
