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
    return render_panels([motion], out, titles=[title], skeleton=skeleton, fps=fps, max_frames=max_frames, size=size)


class _Panel:
    """One stick figure on its own 3D axes, the camera following its root."""

    def __init__(self, fig, index: int, count: int, joints: np.ndarray, sk: Skeleton, title: str):
        self.joints, self.sk = joints, sk
        self.ax = fig.add_subplot(1, count, index + 1, projection="3d")
        if title:
            self.ax.set_title(textwrap.fill(title, 36), fontsize=8)
        height = float(joints[..., 1].max()) or 1.0
        self.radius = max(1.0, 0.6 * height)
        self.floor = float(joints[..., 1].min())
        self.top = 1.15 * (height - self.floor)
        self.trail = joints[:, 0, [0, 2]]
        self.grid = np.linspace(-self.radius, self.radius, 5)
        self.lines = [self.ax.plot([], [], [], lw=3 if i < 3 else 2, color=c)[0]
                      for i, c in enumerate(_CHAIN_COLORS[: len(sk.chains)])]
        (self.trace,) = self.ax.plot([], [], [], lw=1, color="#9467bd")
        # matplotlib's 3D axes put z up; we plot (x, z, y) so the motion's y (up) is vertical.
        self.ax.view_init(elev=20, azim=-60)
        self.ax.set_box_aspect((2 * self.radius, 2 * self.radius, self.top), zoom=1.2)
        self.ax.set_axis_off()

    def draw(self, t: int) -> list:
        t = min(t, len(self.joints) - 1)  # a shorter motion holds its last pose
        pose, ax, r = self.joints[t], self.ax, self.radius
        cx, cz = pose[0, 0], pose[0, 2]
        for coll in list(ax.collections):
            coll.remove()
        gx, gz = np.meshgrid(self.grid + cx, self.grid + cz)
        ax.plot_wireframe(gx, gz, np.full_like(gx, self.floor), color="#bbbbbb", linewidth=0.5)
        ax.set_xlim(cx - r, cx + r)
        ax.set_zlim(self.floor, self.floor + self.top)
        ax.set_ylim(cz - r, cz + r)
        for line, chain in zip(self.lines, self.sk.chains):
            pts = pose[list(chain)]
            line.set_data(pts[:, 0], pts[:, 2])
            line.set_3d_properties(pts[:, 1])
        upto = self.trail[: t + 1]
        self.trace.set_data(upto[:, 0], upto[:, 1])
        self.trace.set_3d_properties(np.full(len(upto), self.floor))
        return [*self.lines, self.trace]


def render_panels(
    motions: list[np.ndarray],
    out: str | Path,
    *,
    titles: list[str] | None = None,
    skeleton: Skeleton | None = None,
    fps: float | None = None,
    max_frames: int = 200,
    size: float = 4.0,
) -> Path:
    """One animated GIF with the motions side by side (e.g. generated vs real, or the two captions of a minimal
    pair), played in step; a shorter motion holds its last pose. Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    if not motions:
        raise ValueError("nothing to render")
    titles = list(titles or [""] * len(motions))
    if len(titles) != len(motions):
        raise ValueError(f"{len(titles)} titles for {len(motions)} motions")
    prepared = []
    for m in motions:
        joints, sk = as_joints(m, skeleton)
        if len(joints) == 0:
            raise ValueError("cannot render an empty motion")
        if not np.isfinite(joints).all():
            raise ValueError("motion contains NaN or Inf")
        if sk.name == "kit":
            joints = joints / 1000.0 if np.abs(joints).max() > 50 else joints  # KIT-ML joints are in millimetres
        prepared.append((joints, sk))
    longest = max(len(j) for j, _ in prepared)
    stride = max(1, int(np.ceil(longest / max_frames)))
    rate = (fps or prepared[0][1].fps) / stride
    fig = plt.figure(figsize=(size * len(motions), size), dpi=80)
    fig.subplots_adjust(left=0, right=1, bottom=0, top=0.9 if any(titles) else 1, wspace=0)
    panels = [_Panel(fig, i, len(motions), j, sk, title) for i, ((j, sk), title) in enumerate(zip(prepared, titles))]

    def draw(i: int):
        return [artist for panel in panels for artist in panel.draw(i * stride)]

    anim = FuncAnimation(fig, draw, frames=len(range(0, longest, stride)), interval=1000 / rate, blit=False)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.gif")
    try:
        anim.save(tmp, writer=PillowWriter(fps=rate))
        tmp.replace(out)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return out
