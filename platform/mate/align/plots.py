"""Pictures of an alignment run: where words attend (over their prior and true span), how prototypes are used, and
whether motion-word sentence features separate (a 2-D projection before and after)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def attention(rows: Sequence[dict], out: str | Path) -> Path:
    """rows: dicts with `caption`, `word`, `attention` (L,), `prior` (L,) or None, `true` (lo, hi) tokens or None."""
    plt = _plt()
    n = max(1, len(rows))
    fig, axes = plt.subplots(n, 1, figsize=(7, 1.9 * n), squeeze=False)
    for ax, r in zip(axes[:, 0], rows):
        att = np.asarray(r["attention"], dtype=float)
        x = np.arange(len(att))
        ax.bar(x, att, color="#1f77b4", width=0.9, label="attention")
        if r.get("prior") is not None:
            prior = np.asarray(r["prior"], dtype=float)
            if prior.max() > 0:
                ax.plot(x, prior / prior.max() * att.max(), color="#ff7f0e", lw=1.5, label="prior (scaled)")
        if r.get("true") is not None:
            ax.axvspan(r["true"][0] - 0.5, r["true"][1] - 0.5, color="#2ca02c", alpha=0.15, label="word's segment")
        ax.set_title(f"'{r['word']}' in: {r['caption'][:80]}", fontsize=8)
        ax.set_xlim(-0.5, len(att) - 0.5)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("motion token (4 rows = 0.2 s)")
    fig.tight_layout()
    return _save(fig, out)


def prototype_usage(counts: np.ndarray, names: Sequence[str], out: str | Path, top: int = 30) -> Path:
    """counts (N words, m prototypes): how often each prototype won for its word's occurrences."""
    plt = _plt()
    counts = np.asarray(counts, dtype=float)
    order = np.argsort(-counts.sum(1))[:top]
    fig, ax = plt.subplots(figsize=(8, 3))
    bottom = np.zeros(len(order))
    for k in range(counts.shape[1]):
        ax.bar(range(len(order)), counts[order, k], bottom=bottom, label=f"prototype {k}")
        bottom += counts[order, k]
    ax.set_xticks(range(len(order)), [names[i] for i in order], rotation=70, fontsize=7)
    ax.set_ylabel("occurrences won")
    if counts.shape[1] > 1:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out)


def projection(before: dict[str, np.ndarray], after: dict[str, np.ndarray], out: str | Path) -> Path:
    """Sentence features of motion-word captions, grouped by the value they name (e.g. 'clockwise'), projected to
    2-D with one PCA per panel: before (base rows) and after (aligned rows)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, (title, groups) in zip(axes, (("base rows", before), ("aligned rows", after))):
        labels = [k for k, v in groups.items() if len(v)]
        if not labels:
            continue
        x = np.concatenate([groups[k] for k in labels])
        x = x - x.mean(0)
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        p = x @ vt[:2].T
        start = 0
        for k in labels:
            n = len(groups[k])
            ax.scatter(p[start : start + n, 0], p[start : start + n, 1], s=10, label=k)
            start += n
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _save(fig, out)


def _save(fig, out: str | Path) -> Path:
    plt = _plt()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
