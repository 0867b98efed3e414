"""HumanML3D's motion representation: joint positions <-> the 263-dim (KIT-ML: 251-dim) feature rows.

The forward direction reproduces HumanML3D's own `process_file` exactly, quirks included, because every
pretrained evaluator and generator in the field reads features made that way:
- the body's facing for the joint rotations comes from HumanML3D's inverse kinematics, which unpacks its face
  joints as (l_hip, r_hip, ...) from a list written (r_hip, l_hip, ...): its "across" vector is
  (L_hip - R_hip) + (R_shoulder - L_shoulder), dominated by the shoulders; that facing is smoothed with a
  Gaussian (sigma 20 frames, 'nearest' edges) and its first frame is forced to identity;
- root linear velocity is rotated by the facing of frame t+1, joint velocities by the facing of frame t;
- the root angular velocity is arcsin of the y part of the relative facing quaternion (half the yaw step);
- foot contacts are "squared displacement < 0.002 m^2 per frame", with no height test;
- the facing quaternion comes from a shortest-arc rotation onto +z, which changes hemisphere when the facing passes
  180 degrees from +z: the root angular velocity of that one frame then has the wrong sign, and recovered joints
  carry the heading error from there on. HumanML3D's own features have this glitch on clips that turn that far;
  we keep it (pretrained evaluators saw it), and the synthetic corpus never turns past 170 degrees from its start.
T+1 joint frames give T feature rows; T rows recover T joint frames.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

from .quaternion import qbetween, qinv, qmul, qrot, quat_to_cont6d
from .skeleton import T2M, Skeleton, skeleton_for_dim

FEET_THRESHOLD = 0.002  # squared metres per frame, HumanML3D's feet_thre
SKATE_HEIGHT = 0.025  # m: how far over its floor a toe still counts (partly) as on the ground (probe/foot_skate's H)
_UP = np.array([0.0, 1.0, 0.0])
_Z = np.array([0.0, 0.0, 1.0])

Array = TypeVar("Array")


def gaussian_smooth(x: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """1-D Gaussian smoothing along axis 0 with 'nearest' edges (scipy's gaussian_filter1d, without scipy)."""
    radius = int(truncate * float(sigma) + 0.5)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 / sigma**2 * offsets**2)
    weights /= weights.sum()
    padded = np.pad(x, [(radius, radius)] + [(0, 0)] * (x.ndim - 1), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1, axis=0)  # (T, ..., 2r+1)
    return windows @ weights


def ground_weight(height: Array, scale: float = SKATE_HEIGHT) -> Array:
    """How much a foot `height` over the floor counts as on the ground: 1 on it, 0 from `scale` up, smooth between.
    One formula for the skating probe, the tokenizer's loss that mirrors it and the foot-locking clean-up; numpy
    arrays or torch tensors."""
    return (2.0 - 2.0 ** (height.clip(min=0.0) / scale)).clip(0.0, 1.0)


def _across(joints: np.ndarray, r_hip: int, l_hip: int, r_sdr: int, l_sdr: int) -> np.ndarray:
    across = (joints[..., r_hip, :] - joints[..., l_hip, :]) + (joints[..., r_sdr, :] - joints[..., l_sdr, :])
    return across / np.linalg.norm(across, axis=-1, keepdims=True)


def _facing_quat(forward: np.ndarray) -> np.ndarray:
    """Rotation that turns `forward` onto +z (the body's frame)."""
    forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    return qbetween(forward, np.broadcast_to(_Z, forward.shape))


def inverse_kinematics(joints: np.ndarray, skeleton: Skeleton = T2M, smooth_forward: bool = True) -> np.ndarray:
    """Per-joint local rotations (T, J, 4) as HumanML3D's `inverse_kinematics_np` computes them.

    Each chain starts from the root's facing rotation (also the chains that start at the spine: HumanML3D ignores the
    spine's rotation there), and each joint's rotation takes its raw rest direction to the observed bone direction.
    """
    # HumanML3D passes (r_hip, l_hip, r_sdr, l_sdr) into a function that names them (l_hip, r_hip, r_sdr, l_sdr).
    a, b, r_sdr, l_sdr = skeleton.face_joints
    across = _across(joints, b, a, r_sdr, l_sdr)
    forward = np.cross(_UP, across)
    if smooth_forward:
        forward = gaussian_smooth(forward, 20)
    root_quat = _facing_quat(forward)
    root_quat[0] = np.array([1.0, 0.0, 0.0, 0.0])
    quats = np.zeros(joints.shape[:-1] + (4,))
    quats[:, 0] = root_quat
    raw = skeleton.raw_offsets
    for chain in skeleton.chains:
        parent_rot = root_quat
        for p, c in zip(chain[:-1], chain[1:]):
            bone = joints[:, c] - joints[:, p]
            bone = bone / np.linalg.norm(bone, axis=-1, keepdims=True)
            world = qbetween(np.broadcast_to(raw[c], bone.shape), bone)
            local = qmul(qinv(parent_rot), world)
            quats[:, c] = local
            parent_rot = qmul(parent_rot, local)
    return quats


def canonicalize(joints: np.ndarray, skeleton: Skeleton = T2M) -> np.ndarray:
    """HumanML3D's placement: floor at y=0, frame 0's root at the xz origin, frame 0 facing +z."""
    joints = np.array(joints, dtype=np.float64)
    joints[..., 1] -= joints[..., 1].min()
    joints -= joints[0, 0] * np.array([1.0, 0.0, 1.0])
    r_hip, l_hip, r_sdr, l_sdr = skeleton.face_joints
    forward = np.cross(_UP, _across(joints[0], r_hip, l_hip, r_sdr, l_sdr))
    return qrot(np.broadcast_to(_facing_quat(forward), joints.shape[:-1] + (4,)), joints)


def foot_contacts(joints: np.ndarray, skeleton: Skeleton = T2M, threshold: float = FEET_THRESHOLD) -> np.ndarray:
    """(T, 4) float contacts [left ankle, left toe, right ankle, right toe] from T+1 frames of positions."""
    feet = list(skeleton.feet_left) + list(skeleton.feet_right)
    disp2 = ((joints[1:, feet] - joints[:-1, feet]) ** 2).sum(-1)
    return (disp2 < threshold).astype(np.float32)


def joints_to_features(joints: np.ndarray, skeleton: Skeleton = T2M, *, canonical: bool = True) -> np.ndarray:
    """(T+1, J, 3) joint positions (metres, y up) -> (T, D) float32 feature rows.

    `canonical=True` first applies HumanML3D's placement (`canonicalize`); pass False for positions that are already
    placed (HumanML3D's own new_joints, or our synthetic clips written that way).
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (skeleton.num_joints, 3):
        raise ValueError(f"expected joints of shape (T+1, {skeleton.num_joints}, 3), got {joints.shape}")
    if len(joints) < 2:
        raise ValueError("need at least 2 joint frames to compute 1 feature row")
    if canonical:
        joints = canonicalize(joints, skeleton)
    contacts = foot_contacts(joints, skeleton)

    quats = inverse_kinematics(joints, skeleton, smooth_forward=True)
    r_rot = quats[:, 0]
    root_vel = qrot(r_rot[1:], joints[1:, 0] - joints[:-1, 0])
    r_vel = qmul(r_rot[1:], qinv(r_rot[:-1]))

    local = joints.copy()
    local[..., 0] -= local[:, :1, 0]
    local[..., 2] -= local[:, :1, 2]
    local = qrot(np.broadcast_to(r_rot[:, None], local.shape[:-1] + (4,)), local)

    n = len(joints) - 1
    root = np.concatenate([np.arcsin(np.clip(r_vel[:, 2:3], -1.0, 1.0)), root_vel[:, [0, 2]], local[:-1, 0, 1:2]], -1)
    ric = local[:-1, 1:].reshape(n, -1)
    rot = quat_to_cont6d(quats[:-1, 1:]).reshape(n, -1)
    vel = qrot(np.broadcast_to(r_rot[:-1, None], (n, skeleton.num_joints, 4)), joints[1:] - joints[:-1]).reshape(n, -1)
    return np.concatenate([root, ric, rot, vel, contacts], axis=-1).astype(np.float32)


def features_to_joints(features: Array, skeleton: Skeleton | None = None) -> Array:
    """(..., T, D) feature rows -> (..., T, J, 3) joint positions, from the root and relative-position groups.

    Takes numpy arrays or torch tensors (any device) and returns the same kind; integrates in float64 so long clips
    do not drift.
    """
    import torch

    is_numpy = isinstance(features, np.ndarray)
    x = torch.from_numpy(features) if is_numpy else features
    sk = skeleton or skeleton_for_dim(x.shape[-1])
    out_dtype = x.dtype
    x = x.to(torch.float64)
    # Facing angle of frame t = sum of the per-frame half-angle steps before it (frame 0 faces +z).
    half = torch.cumsum(torch.nn.functional.pad(x[..., :-1, 0], (1, 0)), dim=-1)
    cos, sin = torch.cos(half), torch.sin(half)
    # Undo the facing: rotate (x, z) by -2*half about +y (the facing quaternion turns by 2*half).
    cos2, sin2 = cos * cos - sin * sin, 2 * sin * cos

    def unface(vx, vz, c, s):
        return c * vx - s * vz, s * vx + c * vz

    step_x, step_z = unface(
        torch.nn.functional.pad(x[..., :-1, 1], (1, 0)), torch.nn.functional.pad(x[..., :-1, 2], (1, 0)), cos2, sin2
    )
    root_x, root_z = torch.cumsum(step_x, -1), torch.cumsum(step_z, -1)
    ric = x[..., 4 : 4 + (sk.num_joints - 1) * 3].unflatten(-1, (sk.num_joints - 1, 3))
    jx, jz = unface(ric[..., 0], ric[..., 2], cos2[..., None], sin2[..., None])
    jx, jz = jx + root_x[..., None], jz + root_z[..., None]
    others = torch.stack([jx, ric[..., 1], jz], dim=-1)
    root = torch.stack([root_x, x[..., 3], root_z], dim=-1)[..., None, :]
    joints = torch.cat([root, others], dim=-2).to(out_dtype)
    return joints.numpy() if is_numpy else joints


# the mirror image of a local joint rotation R is M R M, M = diag(-1, 1, 1): in the 6D form (R's columns 0 and 1)
# the entries with exactly one index 0 change sign
_ROT6D_MIRROR = np.array([1.0, -1.0, -1.0, -1.0, 1.0, 1.0], dtype=np.float32)


def mirror_features(features: np.ndarray, skeleton: Skeleton | None = None) -> np.ndarray:
    """(T, D) feature rows -> the rows of the motion's left-right mirror image (x negated, left and right joints
    swapped), as `joints_to_features` would compute them from the mirrored joints; HumanML3D augments its data so
    (its M-prefixed clips). It turns a clockwise turn counterclockwise and a right-hand wave into a left-hand one."""
    f = np.asarray(features, dtype=np.float32)
    sk = skeleton or skeleton_for_dim(f.shape[-1])
    sl, swap, j = sk.feature_slices(), sk.mirror, sk.num_joints
    out = f.copy()
    out[..., 0] = -f[..., 0]  # root angular velocity
    out[..., 1] = -f[..., 1]  # root velocity, x in the facing frame
    flip = np.array([-1.0, 1.0, 1.0], dtype=np.float32)
    ric = f[..., sl["ric"]].reshape(*f.shape[:-1], j - 1, 3)
    out[..., sl["ric"]] = (ric[..., swap[1:] - 1, :] * flip).reshape(*f.shape[:-1], -1)
    rot = f[..., sl["rot"]].reshape(*f.shape[:-1], j - 1, 6)
    out[..., sl["rot"]] = (rot[..., swap[1:] - 1, :] * _ROT6D_MIRROR).reshape(*f.shape[:-1], -1)
    vel = f[..., sl["vel"]].reshape(*f.shape[:-1], j, 3)
    out[..., sl["vel"]] = (vel[..., swap, :] * flip).reshape(*f.shape[:-1], -1)
    out[..., sl["contacts"]] = f[..., sl["contacts"]][..., [2, 3, 0, 1]]  # (l ankle, l toe, r ankle, r toe)
    return out

