"""Do the lexicon pairs' readings (`mate.evaluate.pairs.READINGS`) order REAL motions as their annotations say?

The lexicon probe (`probe/pair_*`) scores generated motion pair-relatively: of two samples whose captions differ in
one motion word, the reading must be larger for the word's pole. This checks the readings themselves on the
synthetic corpus's own clips, where the annotation is the truth: pairs of real clips with the same action sequence
whose annotations differ only in one attribute's value (each clip takes one value of it over its segments), read
on the whole clip as the probe reads a sample. A reading that orders real pairs right (near 100%) leaves any
disagreement between the lexicon and the annotated probes on generated motion to the generators, not the probe.

    python bench/pair_readings_real.py W/data/synth-2000-s0 [--split test|all] [--pairs 2000]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

# attribute -> (the value whose reading must be the larger, the other, the reading; limb picks arms or legs)
CONTRASTS = {
    "turn": ("counterclockwise", "clockwise", "yaw"),
    "fore/aft": ("forward", "backward", "travel_forward"),
    "side": ("left", "right", "travel_left"),
    "speed": ("quickly", "slowly", "speed"),
    "limb": ("left", "right", None),
}
_ATTRIBUTE = {"turn": "turn", "fore/aft": "direction", "side": "direction", "speed": "speed", "limb": "limb"}


def _value(clip: dict, attribute: str) -> str | None:
    values = {s["attributes"][attribute] for s in clip["segments"] if attribute in s["attributes"]}
    return values.pop() if len(values) == 1 else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="a synthetic corpus folder (annotations.jsonl, new_joint_vecs/)")
    ap.add_argument("--split", default="test", help="train, val, test or all")
    ap.add_argument("--pairs", type=int, default=2000, help="at most this many pairs per contrast")
    args = ap.parse_args()
    from mate.evaluate.pairs import read

    clips = [json.loads(line) for line in (args.data / "annotations.jsonl").read_text().splitlines()]
    if args.split != "all":
        ids = set((args.data / f"{args.split}.txt").read_text().split())
        clips = [c for c in clips if c["id"] in ids]
    motion = {c["id"]: np.load(args.data / "new_joint_vecs" / f"{c['id']}.npy") for c in clips}
    rng = np.random.default_rng(0)
    print(f"{args.split}: {len(clips)} clips\n")
    print("| contrast | reading | pairs | ordered as annotated | median |difference| |")
    print("|---|---|---:|---:|---:|")
    for name, (high, low, reading) in CONTRASTS.items():
        groups: dict[tuple, dict[str, list[str]]] = {}
        for c in clips:
            v = _value(c, _ATTRIBUTE[name])
            if v in (high, low):
                actions = tuple(s["action"] for s in c["segments"])
                groups.setdefault(actions, {high: [], low: []})[v].append(c["id"])
        pairs = [(a, b, actions) for actions, g in groups.items() for a in g[high] for b in g[low]]
        if len(pairs) > args.pairs:
            pairs = [pairs[i] for i in rng.choice(len(pairs), args.pairs, replace=False)]
        hits, gaps, used = [], [], set()
        for a, b, actions in pairs:
            r = reading or ("limb_arms" if "wave" in actions else "limb_legs")
            used.add(r)
            d = read(motion[a], r) - read(motion[b], r)
            hits.append(d > 0)
            gaps.append(abs(d))
        share = f"{np.mean(hits):.3f}" if hits else "-"
        gap = f"{np.median(gaps):.3g}" if gaps else "-"
        print(f"| {name} ({high} > {low}) | {', '.join(sorted(used))} | {len(pairs)} | {share} | {gap} |")


if __name__ == "__main__":
    main()
