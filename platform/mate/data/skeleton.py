"""Skeleton definitions of the two text-to-motion datasets (HumanML3D's SMPL-22 and KIT-ML's 21 joints).

The constants are HumanML3D's own (its `paramUtil`): the feature code must reproduce the dataset's processing
exactly, including its quirks, so the numbers here are facts about the data, not choices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Skeleton:
    name: str
    num_joints: int
    fps: float
    chains: tuple[tuple[int, ...], ...]
    raw_offsets: np.ndarray = field(repr=False)  # (J, 3) unit rest direction of each joint's incoming bone
    bone_lengths: np.ndarray = field(repr=False)  # (J,) length of the bone parent(j) -> j; 0 for the root
    feet_left: tuple[int, int]  # (ankle, toe)
    feet_right: tuple[int, int]
    # (r_hip, l_hip, r_shoulder, l_shoulder), the order HumanML3D's processing names them
    face_joints: tuple[int, int, int, int]
    joint_names: tuple[str, ...] = ()

    @property
    def parents(self) -> np.ndarray:
        parents = np.full(self.num_joints, -1, dtype=np.int64)
        for chain in self.chains:
            for a, b in zip(chain[:-1], chain[1:]):
                parents[b] = a
        return parents

    @property
    def feature_dim(self) -> int:
        j = self.num_joints
        return 4 + (j - 1) * 3 + (j - 1) * 6 + j * 3 + 4

    @property
    def offsets(self) -> np.ndarray:
        """Rest-pose bone vectors (J, 3): raw direction x length (HumanML3D's rest pose: arms down, feet forward)."""
        return self.raw_offsets * self.bone_lengths[:, None]

    @cached_property  # read for every mirrored training window
    def mirror(self) -> np.ndarray:
        """(J,) the joint each joint becomes in the left-right mirror image: a chain's joints pair with those of the
        chain from the same joint whose rest bone directions are its own reflected in x (the spine is its own)."""
        flip = np.array([-1.0, 1.0, 1.0])
        out = np.arange(self.num_joints)
        for chain in self.chains:
            dirs = self.raw_offsets[list(chain[1:])] * flip
            twins = [c for c in self.chains if c[0] == chain[0] and len(c) == len(chain)
                     and np.allclose(self.raw_offsets[list(c[1:])], dirs)]
            if len(twins) != 1:
                raise ValueError(f"{self.name}: no single mirror image for the chain {chain}")
            out[list(chain[1:])] = twins[0][1:]
        return out

    def feature_slices(self) -> dict[str, slice]:
        """Index ranges of the five feature groups (root split in its three parts)."""
        j = self.num_joints
        ric = 4 + (j - 1) * 3
        rot = ric + (j - 1) * 6
        vel = rot + j * 3
        return {
            "root_rot_vel": slice(0, 1),
            "root_lin_vel": slice(1, 3),
            "root_y": slice(3, 4),
            "ric": slice(4, ric),
            "rot": slice(ric, rot),
            "vel": slice(rot, vel),
            "contacts": slice(vel, vel + 4),
        }


T2M_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle", "right_ankle",
    "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)

_T2M_RAW = np.array(
    [[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0],
     [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1], [0, -1, 0], [0, -1, 0],
     [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0]],
    dtype=np.float64,
)

# Bone lengths of HumanML3D's target skeleton (every processed clip is retargeted to it), read off the real clip
# 012314 in shared/data/humanml3d-sample, where they are constant to 1e-6 m.
_T2M_LENGTHS = np.array(
    [0.0, 0.103074, 0.109883, 0.131568, 0.393623, 0.390188, 0.14319, 0.432433, 0.425643, 0.057365, 0.143382,
     0.149419, 0.21936, 0.137487, 0.143383, 0.103039, 0.131614, 0.122984, 0.25684, 0.263092, 0.266012, 0.269876],
    dtype=np.float64,
)

T2M = Skeleton(
    name="humanml3d",
    num_joints=22,
    fps=20.0,
    chains=((0, 2, 5, 8, 11), (0, 1, 4, 7, 10), (0, 3, 6, 9, 12, 15), (9, 14, 17, 19, 21), (9, 13, 16, 18, 20)),
    raw_offsets=_T2M_RAW,
    bone_lengths=_T2M_LENGTHS,
    feet_left=(7, 10),
    feet_right=(8, 11),
    face_joints=(2, 1, 17, 16),
    joint_names=T2M_JOINT_NAMES,
)

_KIT_RAW = np.array(
    [[0, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0], [0, -1, 0], [0, -1, 0], [-1, 0, 0],
     [0, -1, 0], [0, -1, 0], [1, 0, 0], [0, -1, 0], [0, -1, 0], [0, 0, 1], [0, 0, 1], [-1, 0, 0], [0, -1, 0],
     [0, -1, 0], [0, 0, 1], [0, 0, 1]],
    dtype=np.float64,
)

KIT = Skeleton(
    name="kit",
    num_joints=21,
    fps=12.5,
    chains=((0, 11, 12, 13, 14, 15), (0, 16, 17, 18, 19, 20), (0, 1, 2, 3, 4), (3, 5, 6, 7), (3, 8, 9, 10)),
    raw_offsets=_KIT_RAW,
    # KIT-ML is read, not synthesised: its clips carry their own lengths (millimetres in the raw data).
    bone_lengths=np.ones(21, dtype=np.float64) * (np.arange(21) > 0),
    feet_left=(19, 20),
    feet_right=(14, 15),
    face_joints=(11, 16, 5, 8),
)

SKELETONS = {"humanml3d": T2M, "kit": KIT}


def skeleton_for_dim(dim: int) -> Skeleton:
    """The skeleton whose feature vector has `dim` entries (263 -> HumanML3D, 251 -> KIT-ML)."""
    for sk in SKELETONS.values():
        if sk.feature_dim == dim:
            return sk
    raise ValueError(f"no known skeleton has {dim}-dim features (HumanML3D: 263, KIT-ML: 251)")
