"""Stick-figure previews of a trained run: generated next to real motion for a few val captions, and the two
captions of minimal pairs side by side ("turns clockwise" / "turns counterclockwise"), where a person sees at a
glance whether the generator heard the one word that differs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

PAIR_ATTRIBUTES = ("turn", "direction", "speed", "limb")


def pick_pairs(pairs: list[dict], count: int) -> list[dict]:
    """Antonym pairs, one per attribute in PAIR_ATTRIBUTES order (compositional ones first), up to `count`."""
    chosen = []
    for attr in PAIR_ATTRIBUTES:
        found = sorted((p for p in pairs if p["kind"] == "antonym" and p["attribute"] == attr),
                       key=lambda p: not p.get("compositional"))
        if found:
            chosen.append(found[0])
    return chosen[:count]


def render_previews(folder: str | Path, workspace: str | Path | None = None, *, prompts: int = 2, pairs: int = 2,
                    seed: int = 0, max_frames: int = 100, log: Callable[[str], None] = print) -> list[Path]:
    """GIFs in `<folder>/previews`: `prompts` generated-vs-real pairs, `pairs` minimal pairs. Matplotlib's 3D
    drawing costs ~0.05 s a frame and panel, hence at most `max_frames` frames (every other row of a long clip)."""
    from mate.data.render import render_panels
    from mate.evaluate.generated import fixed_items
    from mate.evaluate.truth import load_pairs
    from mate.pipeline import load_run

    run = load_run(folder, workspace)
    out = Path(folder) / "previews"
    written = []
    items = fixed_items(run.pack, "val", prompts, seed)[:prompts]
    gen = run.sample([it["text"] for it in items], [it["length"] for it in items], seed=seed)
    for k, (it, g) in enumerate(zip(items, gen)):
        real = run.pack.denormalize(it["motion"])
        written.append(render_panels([g[0], real], out / f"prompt{k}.gif",
                                     titles=[f"generated: {it['text']}", f"real ({it['id']})"],
                                     max_frames=max_frames))
    for p in pick_pairs(load_pairs(run.pack.source, "val"), pairs):
        (a,), (b,) = (run.sample([p[key]], [p["length"]], seed=seed)[0] for key in ("text_a", "text_b"))  # same noise
        written.append(render_panels([a, b], out / f"pair-{p['attribute']}.gif",
                                     titles=[p["text_a"], p["text_b"]], max_frames=max_frames))
    log(f"previews: {len(written)} GIFs in {out}")
    return written
