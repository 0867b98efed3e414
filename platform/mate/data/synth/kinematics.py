"""Forward kinematics on HumanML3D's 22-joint skeleton, and the analytic two-bone leg IK that pins planted feet.

Every bone is placed as `parent + length * direction`, with the lengths of `skeleton.T2M` (HumanML3D's target
skeleton), so bone lengths are constant by construction. The spine, head and arms are posed by rotating rest
directions; the legs are solved from where the feet must be (a planted foot is a fixed target, so it cannot slide
however the pelvis moves). Body frame: x = the body's left, y = up, z = forward (SMPL); yaw is counterclockwise
seen from above (a positive rotation about +y turns +z towards +x).
"""

from __future__ import annotations

import numpy as np

from ..skeleton import T2M

SK = T2M
LENGTHS = SK.bone_lengths
LEFT, RIGHT = 0, 1
SIDE_SIGN = np.array([1.0, -1.0])  # +x is the body's left

HIP = (1, 2)
KNEE = (4, 5)
ANKLE = (7, 8)
TOE = (10, 11)
SHOULDER = (16, 17)
ELBOW = (18, 19)
WRIST = (20, 21)

ANKLE_HEIGHT = 0.05  # ankle above the floor when the foot is flat (HumanML3D's clip 012314: 0.047-0.06 m)


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


# Rest directions of each joint's incoming bone in the body frame (left side; the right mirrors x). Chosen to look
# like a relaxed standing person on HumanML3D's skeleton: hips below and beside the pelvis, a gently curved spine.
_REST_LEFT = {
    1: _unit([0.57, -0.82, 0.0]),  # left hip
    3: _unit([0.0, 0.98, -0.2]),  # spine1
    6: _unit([0.0, 0.995, 0.1]),  # spine2
    9: _unit([0.0, 0.98, 0.2]),  # spine3
    12: _unit([0.0, 1.0, 0.05]),  # neck
    15: _unit([0.0, 0.9, 0.42]),  # head
    13: _unit([0.5, 0.85, 0.12]),  # left collar
    16: _unit([0.98, -0.15, -0.08]),  # left shoulder
}
REST = dict(_REST_LEFT)
for _l, _r in ((1, 2), (13, 14), (16, 17)):
    REST[_r] = REST[_l] * np.array([-1.0, 1.0, 1.0])

# Foot (ankle -> toe) and leg (thigh + shin) lengths, per side.
FOOT_LEN = LENGTHS[list(TOE)]
LEG_MAX = LENGTHS[list(KNEE)] + LENGTHS[list(ANKLE)]  # thigh + shin
HIP_OFFSET = np.stack([REST[h] * LENGTHS[h] for h in HIP])  # (2, 3) pelvis -> hip, body frame


def rot_y(a: np.ndarray) -> np.ndarray:
    """(n, 3, 3) rotations by `a` radians about +y (counterclockwise seen from above)."""
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def rot_x(a: np.ndarray) -> np.ndarray:
    """About +x: a positive angle tips +y towards +z (a forward lean)."""
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def rot_z(a: np.ndarray) -> np.ndarray:
    """About +z: a positive angle tips +y towards -x (a lean to the body's right)."""
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def yaw_vec(yaw: np.ndarray, local_xz: np.ndarray) -> np.ndarray:
    """Rotate body-frame (x, z) offsets (..., 2) by yaw (...) into world (x, z)."""
    c, s = np.cos(yaw), np.sin(yaw)
    x, z = local_xz[..., 0], local_xz[..., 1]
    return np.stack([c * x + s * z, -s * x + c * z], -1)


def hip_positions(root: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """(n, 2, 3) hip joints of a pelvis at `root` (n, 3) turned by `yaw` (the pelvis only yaws)."""
    xz = yaw_vec(yaw[:, None], HIP_OFFSET[None, :, [0, 2]])
    out = np.empty(root.shape[:1] + (2, 3))
    out[..., 0] = root[:, None, 0] + xz[..., 0]
    out[..., 1] = root[:, None, 1] + HIP_OFFSET[None, :, 1]
    out[..., 2] = root[:, None, 2] + xz[..., 1]
    return out


def two_bone_ik(hip: np.ndarray, target: np.ndarray, l1: float, l2: float, pole: np.ndarray):
    """Knee and ankle (n, 3) of a leg from `hip` reaching for `target`, the knee bending towards `pole`.

    Targets out of reach are pulled onto the reachable sphere (the ankle lands short of them), so callers must keep
    planted feet within reach (the clip builder lowers the pelvis for that) and only swing feet ever fall short.
    """
    d_vec = target - hip
    d = np.linalg.norm(d_vec, axis=-1, keepdims=True)
    u = d_vec / np.maximum(d, 1e-9)
    dc = np.clip(d, abs(l1 - l2) + 1e-4, l1 + l2 - 1e-6)
    a = (l1**2 - l2**2 + dc**2) / (2 * dc)
    h = np.sqrt(np.maximum(l1**2 - a**2, 0.0))
    w = pole - (pole * u).sum(-1, keepdims=True) * u
    w = w / np.maximum(np.linalg.norm(w, axis=-1, keepdims=True), 1e-9)
    knee = hip + a * u + h * w
    ankle = hip + dc * u
    return knee, ankle


def arm_directions(params: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Upper-arm and forearm unit directions (n, 3) in the torso frame from (flex, abduct, elbow, bend_up) angles.

    flex raises the arm forwards, abduct sideways; the forearm bends from the upper arm by `elbow` in the plane that
    holds the upper arm and a bend direction between forward (bend_up=0) and up (bend_up=pi/2), so a wave is an
    oscillating elbow angle with the forearm up.
    """
    flex, abd, elbow, up = (params[:, i] for i in range(4))
    s = SIDE_SIGN[side]
    d1 = np.stack([s * np.sin(abd) * np.cos(flex), -np.cos(abd) * np.cos(flex), np.sin(flex)], -1)
    d1 /= np.linalg.norm(d1, axis=-1, keepdims=True)
    b = np.stack([np.zeros_like(up), np.sin(up), np.cos(up)], -1)
    b = b - (b * d1).sum(-1, keepdims=True) * d1
    b /= np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-9)
    d2 = np.cos(elbow)[:, None] * d1 + np.sin(elbow)[:, None] * b
    return d1, d2


def assemble(root: np.ndarray, yaw: np.ndarray, lean: np.ndarray, roll: np.ndarray, arms: np.ndarray,
             ankle_targets: np.ndarray, foot_yaw: np.ndarray, foot_pitch: np.ndarray | None = None) -> np.ndarray:
    """Joint positions (n, 22, 3) of the whole body.

    root (n, 3) pelvis; yaw/lean/roll (n,) radians; arms (n, 2, 4) arm angles (see arm_directions); ankle_targets
    (n, 2, 3) where the ankles should be; foot_yaw (n, 2) heading of each foot; foot_pitch (n, 2) extra downward
    pitch of the toes (radians, 0 = flat).
    """
    n = len(root)
    j = np.zeros((n, SK.num_joints, 3))
    j[:, 0] = root
    r_yaw = rot_y(yaw)
    hips = hip_positions(root, yaw)
    j[:, 1], j[:, 2] = hips[:, 0], hips[:, 1]

    # Spine: a third of the lean and roll per vertebra, the head and shoulders carried by the top one.
    levels = [r_yaw @ rot_x(lean * k / 3) @ rot_z(roll * k / 3) for k in (1, 2, 3)]
    for joint, parent, lvl in ((3, 0, 0), (6, 3, 1), (9, 6, 2), (12, 9, 2), (15, 12, 2), (13, 9, 2), (14, 9, 2),
                               (16, 13, 2), (17, 14, 2)):
        j[:, joint] = j[:, parent] + LENGTHS[joint] * (levels[lvl] @ REST[joint])
    torso = levels[2]
    for side in (LEFT, RIGHT):
        d1, d2 = arm_directions(arms[:, side], side)
        elbow = j[:, SHOULDER[side]] + LENGTHS[ELBOW[side]] * np.einsum("nij,nj->ni", torso, d1)
        j[:, ELBOW[side]] = elbow
        j[:, WRIST[side]] = elbow + LENGTHS[WRIST[side]] * np.einsum("nij,nj->ni", torso, d2)

    # Legs: the knee bends towards where the foot and the pelvis point, a little outwards.
    fwd_pelvis = np.stack([np.sin(yaw), np.zeros(n), np.cos(yaw)], -1)
    pitch = np.zeros((n, 2)) if foot_pitch is None else foot_pitch
    for side in (LEFT, RIGHT):
        fy = foot_yaw[:, side]
        fwd_foot = np.stack([np.sin(fy), np.zeros(n), np.cos(fy)], -1)
        out = SIDE_SIGN[side] * np.stack([np.cos(yaw), np.zeros(n), -np.sin(yaw)], -1)
        pole = fwd_foot + fwd_pelvis + 0.15 * out
        knee, ankle = two_bone_ik(j[:, HIP[side]], ankle_targets[:, side], LENGTHS[KNEE[side]],
                                  LENGTHS[ANKLE[side]], pole)
        j[:, KNEE[side]], j[:, ANKLE[side]] = knee, ankle
        # Toe: forward along the foot's heading, dropped by the flat-foot pitch plus any extra pitch.
        base = np.arcsin(ANKLE_HEIGHT / FOOT_LEN[side])
        lowest = np.arcsin(np.clip(ankle[:, 1] / FOOT_LEN[side], 0.0, 1.0))  # the toe never goes under the floor
        p = np.minimum(base + pitch[:, side], np.maximum(lowest, base))
        toe_dir = np.stack([np.sin(fy) * np.cos(p), -np.sin(p), np.cos(fy) * np.cos(p)], -1)
        j[:, TOE[side]] = ankle + FOOT_LEN[side] * toe_dir
    return j
