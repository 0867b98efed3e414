"""Stick-figure animation of a motion: the picture T2M users expect (HumanML3D's plot_3d_motion, our own way).

Takes feature rows (263 or 251 dims, so generated motion renders the same way) or joint positions. The camera
follows the root so long walks stay in frame; a ground grid and the root's trail show travel and turning.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from .skeleton import SKELETONS, Skeleton, skeleton_for_dim

_CHAIN_COLORS = ("#d62728", "#1f77b4", "#333333", "#ff7f0e", "#2ca02c")  # right leg, left leg, spine, arms


def as_joints(motion: np.ndarray, skeleton: Skeleton | None = None) -> tuple[np.ndarray, Skeleton]:
    """(T, D) features or (T, J, 3) joints -> (T, J, 3) joints and their skeleton."""
    motion = np.asarray(motion)
    if motion.ndim == 2:
        from .features import features_to_joints

        sk = skeleton or skeleton_for_dim(motion.shape[-1])
        return features_to_joints(motion.astype(np.float32), sk), sk
    if motion.ndim == 3 and motion.shape[-1] == 3:
        if skeleton is None:
            matches = [s for s in SKELETONS.values() if s.num_joints == motion.shape[1]]
            if not matches:
                raise ValueError(f"no known skeleton has {motion.shape[1]} joints (HumanML3D: 22, KIT-ML: 21)")
            skeleton = matches[0]
        return motion, skeleton
    raise ValueError(f"expected (T, D) features or (T, J, 3) joints, got shape {motion.shape}")


def render_gif(
    motion: np.ndarray,
    out: str | Path,
    *,
    skeleton: Skeleton | None = None,
    title: str = "",
    fps: float | None = None,
    max_frames: int = 200,
    size: float = 4.0,
) -> Path:
    """Write an animated GIF of the motion to `out` and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    joints, sk = as_joints(motion, skeleton)
    if len(joints) == 0:
        raise ValueError("cannot render an empty motion")
    if not np.isfinite(joints).all():
        raise ValueError("motion contains NaN or Inf")
    if sk.name == "kit":
        joints = joints / 1000.0 if np.abs(joints).max() > 50 else joints  # KIT-ML joints are in millimetres
    stride = max(1, int(np.ceil(len(joints) / max_frames)))
    frames = joints[::stride]
    fps = (fps or sk.fps) / stride
    height = float(joints[..., 1].max()) or 1.0
    radius = max(1.0, 0.6 * height)
    floor = float(joints[..., 1].min())
    trail = joints[:, 0, [0, 2]]
    top = 1.15 * (height - floor)

    fig = plt.figure(figsize=(size, size), dpi=80)
    ax = fig.add_subplot(111, projection="3d")
    fig.subplots_adjust(left=0, right=1, bottom=0, top=0.9 if title else 1)
    if title:
        fig.suptitle(textwrap.fill(title, 48), fontsize=9)
    lines = [ax.plot([], [], [], lw=3 if i < 3 else 2, color=c)[0] for i, c in enumerate(_CHAIN_COLORS[: len(sk.chains)])]
    (trace,) = ax.plot([], [], [], lw=1, color="#9467bd")
    grid = np.linspace(-radius, radius, 5)

    def draw(i: int):
        pose = frames[i]
        cx, cz = pose[0, 0], pose[0, 2]
        for coll in list(ax.collections):
            coll.remove()
        gx, gz = np.meshgrid(grid + cx, grid + cz)
        ax.plot_wireframe(gx, gz, np.full_like(gx, floor), color="#bbbbbb", linewidth=0.5)
        ax.set_xlim(cx - radius, cx + radius)
        ax.set_zlim(floor, floor + top)
        ax.set_ylim(cz - radius, cz + radius)
        for line, chain in zip(lines, sk.chains):
            pts = pose[list(chain)]
            line.set_data(pts[:, 0], pts[:, 2])
            line.set_3d_properties(pts[:, 1])
        upto = trail[: i * stride + 1]
        trace.set_data(upto[:, 0], upto[:, 1])
        trace.set_3d_properties(np.full(len(upto), floor))
        return [*lines, trace]

    # matplotlib's 3D axes put z up; we plot (x, z, y) so the motion's y (up) is vertical.
    ax.view_init(elev=20, azim=-60)
    ax.set_box_aspect((2 * radius, 2 * radius, top), zoom=1.2)
    ax.set_axis_off()
    anim = FuncAnimation(fig, draw, frames=len(frames), interval=1000 / fps, blit=False)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.gif")
    try:
        anim.save(tmp, writer=PillowWriter(fps=fps))
        tmp.replace(out)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return out
