"""Physical probes: read what a motion does (action, turn, direction, speed, limb) from its 263-dim features, score
generated motion on minimal pairs, and measure physical plausibility (foot skating, jitter). Numpy only.

The turn / direction / speed / limb readings are the synthetic corpus's own rules (`mate.data.synth.rules`); this
module adds an **action** rule and the measures built on top of them (docs/architecture.md §7: `probe/*`).

Action rule (`read_action`): simple physics on one segment, in this order (the first that holds wins):
  1. flight (rows where neither foot is on the ground, >= 5% of the segment): travelling >= 0.9 m/s -> run, else jump;
  2. a wrist >= 5 cm above its shoulder for >= 8 rows while swinging back and forth (>= 2 reversals) -> wave;
  3. one ankle >= 0.25 m higher than the other while that other foot is on the ground -> kick;
  4. the pelvis goes >= 0.2 m down and back up without travelling (< 0.15 m/s) -> squat;
  5. travel (net displacement in the body's own facing frame) >= 0.15 m/s -> side-step when mostly sideways, else
     run when >= 2.2 m/s, else walk;
  6. the body's facing turns >= 45 degrees -> turn;
  7. none holds: the action whose cue comes closest to its threshold, if it reaches half of it; else "none" (a
     body that stands still or barely moves), which matches no annotation.
"On the ground" for a foot = its lowest joint (ankle or toe) within 10 cm of the floor, and a contact flag
(features 259..262) or the joints themselves saying it does not move (HumanML3D's contact test: squared
displacement < 0.002 m^2 per frame). The floor is the clip's own: the 2nd percentile of its lowest foot joint.

Plausibility, on joints recovered from the features (`joints`, numpy; same result as
`mate.data.features.features_to_joints`):
  - `foot_skate`: mean horizontal speed (m/s) of the toe joints while on the ground, weighted by the height
    factor of the character-animation literature's foot-sliding measure, w(h) = clip(2 - 2^(h / H), 0, 1) with
    H = 2.5 cm above the floor (w = 1 on the floor, 0 at H and above): sum(w * v) / sum(w) over toes x frame
    pairs, with h the mean toe height of the two frames (above the clip's floor, as for the action rule) and v
    the toe's horizontal speed between them. A motion whose toes never come within H of its floor scores 0.
    Why 2.5 cm and not 5: the synthetic gait swings its feet only ~6 cm high, so with H = 5 cm every swing counts
    as "on the ground" and clean synthetic motion (planted feet that never move) scores 0.09 m/s, about what 2 mm
    of feature noise adds; with 2.5 cm it scores 0.02 m/s, and sliding (root velocity x 1.1) or 2 mm of noise
    raise it to 0.07 and 0.10 m/s. `skating_ratio` gives the other common figure (GMD's): the share of frame
    pairs in which a toe stays below 5 cm and slides faster than 0.5 m/s (also on average over 5 frames); it is
    not monotone in noise on this corpus (0.18 clean, 0.08 with 5 mm of noise), so it is not what we report.
  - `jitter`: mean magnitude of the joints' jerk, the third finite difference of position times fps^3 (m/s^3 at
    20 fps), over all joints and frames.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from mate.data.features import SKATE_HEIGHT, ground_weight
from mate.data.synth import rules
from mate.data.synth.schema import ACTIONS, ALLOWED, NORMAL_SPEED

__all__ = [
    "ACTIONS",
    "PAIR_ATTRIBUTES",
    "NO_ACTION",
    "ActionCues",
    "action_confusion",
    "action_cues",
    "check_features",
    "classify",
    "foot_skate",
    "jitter",
    "joints",
    "plausibility",
    "probe_accuracy",
    "probe_segment",
    "read_action",
    "sample_pairs",
    "score_pairs",
    "select_pairs",
    "skating_ratio",
    "word_pair_accuracy",
]

FPS = 20.0
FEATURE_DIM = 263
CONTACTS = slice(259, 263)  # [left ankle, left toe, right ankle, right toe]
FEET = ((7, 10), (8, 11))  # (ankle, toe) of the left and right foot
TOES = (10, 11)
_ANKLES = (7, 8)
_L_SH, _R_SH, _L_WRIST, _R_WRIST = 16, 17, 20, 21
PROBE_ATTRIBUTES = ("turn", "direction", "speed", "action", "limb")
PAIR_ATTRIBUTES = ("turn", "direction", "speed", "limb")

# Action rule thresholds (see the module docstring).
GROUND_HEIGHT = 0.10  # m above the floor: a foot's lowest joint below this can be on the ground
CONTACT_DISP2 = 0.002  # m^2 per frame: HumanML3D's "does not move" test
FLIGHT_SHARE = 0.05
FLIGHT_MIN_ROWS = 2
RUN_SPEED = 0.9  # m/s: flight and travel faster than this is a run, slower a jump
WAVE_RAISE = 0.05  # m of a wrist above its shoulder
WAVE_MIN_ROWS = 8
WAVE_REVERSALS = 2
WAVE_SWING = 0.03  # m: the smallest back-and-forth that counts as a reversal
KICK_HEIGHT = 0.25  # m of an ankle above the other one
FALLBACK_SHARE = 0.5  # of a threshold: the least cue the fallback accepts
NO_ACTION = "none"
SQUAT_DROP = 0.20  # m of the pelvis below standing
TRAVEL_SPEED = 0.15  # m/s
LATERAL_SHARE = 0.7  # of the travel, sideways: side-step
RUN_NO_FLIGHT_SPEED = 2.2  # m/s: travel this fast counts as running even without a detected flight phase
TURN_DEGREES = 45.0

# Plausibility.
GMD_HEIGHT = 0.05  # m, skating_ratio only
SKATE_SPEED = 0.5  # m/s, skating_ratio only
SKATE_WINDOW = 5  # frames, skating_ratio only


# ------------------------------------------------------------------------------------------------------ features


def check_features(features, name: str = "features") -> np.ndarray:
    """(T, 263) float64 copy of HumanML3D features; a clear ValueError naming the shape otherwise."""
    if hasattr(features, "detach"):  # a torch tensor, without importing torch
        features = features.detach().cpu().numpy()
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[1] != FEATURE_DIM:
        raise ValueError(f"{name}: expected (T, {FEATURE_DIM}) HumanML3D features, got shape {f.shape}")
    if len(f) < 1:
        raise ValueError(f"{name}: expected at least 1 row, got shape {f.shape}")
    return f


def joints(features) -> np.ndarray:
    """(T, 22, 3) global joint positions (metres, y up) from (T, 263) features: numpy twin of `features_to_joints`.

    Facing of row t = the sum of the per-row half-angle steps before it (row 0 faces +z); the root integrates its
    facing-frame velocity; the other joints are the root-relative positions turned back into the world frame.
    """
    f = check_features(features)
    half = np.concatenate([[0.0], np.cumsum(f[:-1, 0])])
    c, s = np.cos(2.0 * half), np.sin(2.0 * half)
    v = np.concatenate([np.zeros((1, 2)), f[:-1, 1:3]])
    root_x = np.cumsum(c * v[:, 0] - s * v[:, 1])
    root_z = np.cumsum(s * v[:, 0] + c * v[:, 1])
    ric = f[:, 4:67].reshape(len(f), 21, 3)
    jx = c[:, None] * ric[..., 0] - s[:, None] * ric[..., 2] + root_x[:, None]
    jz = s[:, None] * ric[..., 0] + c[:, None] * ric[..., 2] + root_z[:, None]
    root = np.stack([root_x, f[:, 3], root_z], -1)[:, None]
    return np.concatenate([root, np.stack([jx, ric[..., 1], jz], -1)], 1)


def _span(n: int, span) -> tuple[int, int]:
    s, e = (0, n) if span is None else (int(span[0]), int(span[1]))
    if not 0 <= s < e <= n:
        raise ValueError(f"span {None if span is None else list(span)} is outside the motion's {n} rows")
    return s, e


# --------------------------------------------------------------------------------------------------- action rule


@dataclass(frozen=True)
class ActionCues:
    """The physical quantities the action rule reads from one segment (units in the field comments)."""

    flight: float  # share of rows with neither foot on the ground
    flight_rows: int
    travel: float  # m/s, net pelvis displacement in the body's facing frame over the segment's duration
    lateral: float  # share of that displacement that is sideways (0..1)
    yaw: float  # degrees, |net change of the body's facing|
    drop: float  # m, vertical range of the pelvis over the segment (top minus bottom)
    kick: float  # m, highest ankle above the other ankle while that other foot is on the ground
    wave_rows: int  # rows with a wrist >= WAVE_RAISE above its shoulder (of the hand that swings more)
    wave_reversals: int  # back-and-forth reversals of that wrist while raised


def _grounded(f: np.ndarray, j: np.ndarray, floor: float) -> np.ndarray:
    """(T, 2) bool: each foot on the ground (low, and flagged as in contact or not moving)."""
    out = np.zeros((len(f), 2), bool)
    for side, (ankle, toe) in enumerate(FEET):
        low = j[:, [ankle, toe], 1].min(1) - floor < GROUND_HEIGHT
        flagged = f[:, CONTACTS][:, 2 * side:2 * side + 2].max(1) > 0.5
        disp2 = (np.diff(j[:, [ankle, toe]], axis=0) ** 2).sum(-1).min(1)
        still = np.concatenate([disp2 < CONTACT_DISP2, [False]])
        out[:, side] = low & (flagged | still)
    return out


def _floor(j: np.ndarray) -> float:
    return float(np.percentile(j[:, [a for foot in FEET for a in foot], 1].min(1), 2))


def _reversals(x: np.ndarray, swing: float) -> int:
    """Direction reversals of a 1-D path, ignoring wiggles smaller than `swing` (hysteresis)."""
    count, direction = 0, 0
    lo = hi = extreme = float(x[0]) if len(x) else 0.0
    for v in map(float, x[1:]):
        if direction == 0:
            lo, hi = min(lo, v), max(hi, v)
            if v - lo >= swing:
                direction, extreme = 1, v
            elif hi - v >= swing:
                direction, extreme = -1, v
        elif direction * (v - extreme) > 0:
            extreme = v
        elif abs(v - extreme) >= swing:
            count, direction, extreme = count + 1, -direction, v
    return count


def _wave(pose: np.ndarray) -> tuple[int, int]:
    best = (0, 0)
    for wrist, shoulder in ((_L_WRIST, _L_SH), (_R_WRIST, _R_SH)):
        rel = pose[:, wrist] - pose[:, shoulder]
        raised = rel[:, 1] >= WAVE_RAISE
        rows = int(raised.sum())
        if rows < 3:
            best = max(best, (rows, 0))
            continue
        pts = rel[raised]
        centred = pts - pts.mean(0)
        axis = np.linalg.svd(centred, full_matrices=False)[2][0]  # main direction of the hand's motion
        best = max(best, (rows, _reversals(centred @ axis, WAVE_SWING)), key=lambda r: (r[1], r[0]))
    return best


class _Motion:
    """One motion's features with what the action rule reads from every segment, computed once."""

    def __init__(self, features, name: str = "features"):
        self.f = check_features(features, name)
        self.finite = bool(np.isfinite(self.f).all())
        if self.finite:
            self.j = joints(self.f)
            self.floor = _floor(self.j)
            self.grounded = _grounded(self.f, self.j, self.floor)
            self.facing = rules.facing(self.f)
            self.body_velocity = rules.body_velocity(self.f)
            self.body_pose = rules.body_pose(self.f)

    def __len__(self) -> int:
        return len(self.f)


def _cues(m: _Motion, span) -> ActionCues:
    s, e = _span(len(m), span)
    if not m.finite:
        raise ValueError("the motion holds NaN or inf")
    air = ~m.grounded[s:e].any(1)
    d = m.body_velocity[s:e].sum(0)
    dist = float(np.linalg.norm(d))
    root_y = m.f[s:e, 3]
    kick = 0.0
    for side in (0, 1):
        height = m.j[s:e, _ANKLES[side], 1]
        t = int(np.argmax(height))
        if m.grounded[s + t, 1 - side]:
            kick = max(kick, float(height[t] - m.j[s + t, _ANKLES[1 - side], 1]))
    rows, reversals = _wave(m.body_pose[s:e])
    return ActionCues(flight=float(air.mean()), flight_rows=int(air.sum()), travel=dist / (e - s) * FPS,
                      lateral=abs(float(d[0])) / dist if dist > 1e-9 else 0.0,
                      yaw=float(np.degrees(abs(m.facing[min(e, len(m) - 1)] - m.facing[s]))),
                      drop=float(root_y.max() - root_y.min()), kick=kick, wave_rows=rows,
                      wave_reversals=reversals)


def action_cues(features, span=None) -> ActionCues:
    """The action rule's cues for rows [start, end) of a motion (default: all of it)."""
    return _cues(_Motion(features), span)


def _scores(c: ActionCues) -> dict[str, float]:
    """How close each action's cue comes to its threshold (1 = at it), for the fallback."""
    flight = min(c.flight / FLIGHT_SHARE, c.flight_rows / FLIGHT_MIN_ROWS)
    return {
        "run": min(flight, c.travel / RUN_SPEED), "jump": flight,
        "wave": min(c.wave_rows / WAVE_MIN_ROWS, c.wave_reversals / WAVE_REVERSALS),
        "kick": c.kick / KICK_HEIGHT, "squat": min(c.drop / SQUAT_DROP, TRAVEL_SPEED / max(c.travel, 1e-9)),
        "side-step": c.travel / TRAVEL_SPEED * (c.lateral >= LATERAL_SHARE),
        "walk": c.travel / TRAVEL_SPEED * (c.lateral < LATERAL_SHARE), "turn": c.yaw / TURN_DEGREES,
    }


def classify(c: ActionCues) -> str:
    """The action rule's decision list on a segment's cues (see the module docstring)."""
    if c.flight >= FLIGHT_SHARE and c.flight_rows >= FLIGHT_MIN_ROWS:
        return "run" if c.travel >= RUN_SPEED else "jump"
    if c.wave_rows >= WAVE_MIN_ROWS and c.wave_reversals >= WAVE_REVERSALS:
        return "wave"
    if c.kick >= KICK_HEIGHT:
        return "kick"
    if c.drop >= SQUAT_DROP and c.travel < TRAVEL_SPEED:
        return "squat"
    if c.travel >= TRAVEL_SPEED:
        if c.lateral >= LATERAL_SHARE:
            return "side-step"
        return "run" if c.travel >= RUN_NO_FLIGHT_SPEED else "walk"
    if c.yaw >= TURN_DEGREES:
        return "turn"
    scores = _scores(c)
    best = max(ACTIONS, key=lambda a: scores[a])
    return best if scores[best] >= FALLBACK_SHARE else NO_ACTION


def read_action(features, span=None) -> str:
    """The action (one of schema.ACTIONS, or "none") the rule reads from rows [start, end) of a motion (default:
    all of it)."""
    return classify(action_cues(features, span))


# ---------------------------------------------------------------------------------------------- segment probes


def _probe(m: _Motion, span, action: str | None) -> dict[str, str]:
    s, e = _span(len(m), span)
    read = classify(_cues(m, (s, e)))
    act = action if action is not None else read
    if act == NO_ACTION:
        return {"action": read}
    if act not in ALLOWED:
        raise ValueError(f"unknown action {act!r} (one of {', '.join(ACTIONS)})")
    out = {"action": read}
    for attribute in ("turn", "direction", "speed", "limb"):
        if attribute in ALLOWED[act]:
            out[attribute] = rules.read(m.f, (s, e), act, attribute)
    return out


def probe_segment(features, span=None, action: str | None = None) -> dict[str, str]:
    """Every attribute the probes read from rows [start, end) of a motion (default: all of it): {"action": the
    action rule's reading, and for each attribute the segment's action can carry (schema.ALLOWED; speed always)
    its value ("normal" speed included)}. The speed and limb rules, and which attributes apply, depend on the
    action: `action` (the annotated one) when given, else the rule's reading (when that is "none": the action
    alone)."""
    return _probe(_Motion(features), span, action)


def _clip_span(span, n: int) -> tuple[int, int] | None:
    """The span cut to a motion of n rows; None when fewer than 2 rows of it remain."""
    s, e = int(span[0]), min(int(span[1]), n)
    return (s, e) if e - s >= 2 else None


def probe_accuracy(features_list: Sequence, annotations: Sequence[dict]) -> dict[str, float]:
    """`probe/{turn,direction,speed,action,limb}_acc` over every annotated segment of every clip.

    `annotations[i]` is clip i's annotation (annotations.jsonl: its `segments`) and `features_list[i]` its motion
    (real, or generated for that clip's caption). Each segment counts once per attribute it carries (speed: every
    segment, absent = "normal"; action: every segment); the speed and limb rules use the annotated action. A
    segment the motion does not reach (fewer than 2 of its rows) or a non-finite motion counts as a miss. An
    attribute no segment carries gives NaN.
    """
    if len(features_list) != len(annotations):
        raise ValueError(f"{len(features_list)} motions for {len(annotations)} annotations")
    hits, total = Counter(), Counter()
    for i, (features, ann) in enumerate(zip(features_list, annotations)):
        m = _Motion(features, f"motion {i} ({ann.get('id', '?')})")
        for seg in ann["segments"]:
            wanted = {"action": seg["action"], **seg["attributes"]}
            wanted.setdefault("speed", NORMAL_SPEED)
            span = _clip_span(seg["span"], len(m))
            got = _probe(m, span, seg["action"]) if m.finite and span is not None else {}
            for attribute, value in wanted.items():
                total[attribute] += 1
                hits[attribute] += got.get(attribute) == value
    return {f"probe/{a}_acc": hits[a] / total[a] if total[a] else float("nan") for a in PROBE_ATTRIBUTES}


def action_confusion(features_list: Sequence, annotations: Sequence[dict]) -> dict[str, dict[str, int]]:
    """{annotated action: {read action (or "none"): count}} over every annotated segment (the rule's confusion)."""
    out = {a: {b: 0 for b in (*ACTIONS, NO_ACTION)} for a in ACTIONS}
    for features, ann in zip(features_list, annotations):
        m = _Motion(features)
        for seg in ann["segments"]:
            out[seg["action"]][classify(_cues(m, seg["span"]))] += 1
    return out


# ------------------------------------------------------------------------------------------------ minimal pairs

Sampler = Callable[[list, list, int], Sequence]


def _pair_hit(motion, pair: dict, value: str) -> bool:
    f = check_features(motion, f"motion for the pair of clip {pair.get('clip', '?')} ({pair.get('text_a', '')!r})")
    if not np.isfinite(f).all():
        return False
    span = _clip_span(pair["span"], len(f))
    if span is None:
        return False
    return rules.read(f, span, pair["action"], pair["attribute"]) == value


def score_pairs(pairs: Sequence[dict], motions_a: Sequence, motions_b: Sequence) -> list[bool]:
    """Per pair: the probe reads value_a from motion a AND value_b from motion b, on the pair's segment span (cut
    to the motion's length; a motion shorter than 2 rows of the span, or non-finite, is a miss)."""
    if not len(pairs) == len(motions_a) == len(motions_b):
        raise ValueError(f"{len(pairs)} pairs, {len(motions_a)} motions for text_a, {len(motions_b)} for text_b")
    return [_pair_hit(a, p, p["value_a"]) and _pair_hit(b, p, p["value_b"])
            for p, a, b in zip(pairs, motions_a, motions_b)]


def _summary(pairs: Sequence[dict], hits: Sequence[bool]) -> dict[str, float]:
    hits = np.asarray(hits, dtype=bool)
    comp = np.array([bool(p.get("compositional")) for p in pairs], dtype=bool)
    out = {"probe/word_pair_acc": float(hits.mean()) if len(hits) else float("nan"),
           "probe/word_pair_acc_comp": float(hits[comp].mean()) if comp.any() else float("nan")}
    for attribute in PAIR_ATTRIBUTES:
        m = np.array([p["attribute"] == attribute for p in pairs], dtype=bool)
        if m.any():
            out[f"probe/word_pair_acc_{attribute}"] = float(hits[m].mean())
    return out


def select_pairs(pairs: Iterable[dict], n: int | None = None, seed: int = 0) -> list[dict]:
    """The antonym pairs, capped to n by a seeded random subset (kept in file order)."""
    ant = [p for p in pairs if p["kind"] == "antonym"]
    if n is not None and n < len(ant):
        keep = np.sort(np.random.default_rng([seed, 7_919]).permutation(len(ant))[:max(n, 0)])
        ant = [ant[i] for i in keep]
    return ant


def word_pair_accuracy(pairs: Iterable[dict], sample: Sampler, seed: int, n: int | None = None,
                       batch_size: int | None = None, subset_seed: int | None = None) -> dict[str, float]:
    """`probe/word_pair_acc`, `probe/word_pair_acc_comp` and `probe/word_pair_acc_{turn,direction,speed,limb}`.

    pairs: minimal pairs (prompts/minimal_pairs.jsonl); only antonym pairs count, capped to `n` (a subset chosen
    by `subset_seed`, else `seed`). sample(texts, lengths, seed) -> one (T, 263) motion per text. All text_a go in
    one call and all text_b in another with the same lengths and seed, so the two captions of a pair sit at the same
    position of equal-seeded calls (a sampler that draws its noise per position gives them the same noise);
    `batch_size` splits both into chunks, chunk k sampled with seed + k (`sample_pairs`). Chance is 25% for a
    two-valued attribute; `_comp` is over compositional pairs only (NaN when there are none); per-attribute figures
    only for attributes present.
    """
    chosen = select_pairs(pairs, n, seed if subset_seed is None else subset_seed)
    return _summary(chosen, score_pairs(chosen, *sample_pairs(chosen, sample, seed, batch_size)))


def sample_pairs(chosen: Sequence[dict], sample: Sampler, seed: int,
                 batch_size: int | None = None) -> tuple[list, list]:
    """(motions for text_a, motions for text_b) of minimal pairs (`text_a`, `text_b`, `length`): in chunks of
    `batch_size` (all at once without), chunk k's text_a and text_b sampled in two calls with seed + k, so a pair's
    two captions share their position and noise. Every pair probe samples through here."""
    size = batch_size or max(len(chosen), 1)
    motions_a: list = []
    motions_b: list = []
    for k, start in enumerate(range(0, len(chosen), size)):
        chunk = chosen[start:start + size]
        lengths = [int(p["length"]) for p in chunk]
        for key, out in (("text_a", motions_a), ("text_b", motions_b)):
            got = list(sample([p[key] for p in chunk], list(lengths), seed + k))
            if len(got) != len(chunk):
                raise ValueError(f"the sampler returned {len(got)} motions for {len(chunk)} texts")
            out.extend(got)
    return motions_a, motions_b


# ------------------------------------------------------------------------------------------------- plausibility


def _toes(features) -> tuple[np.ndarray, np.ndarray]:
    """Toe heights above the floor (T, 2) and horizontal speeds (T-1, 2) in m/s."""
    j = joints(features)
    floor = _floor(j)
    toes = j[:, TOES]
    height = toes[..., 1] - floor
    speed = np.linalg.norm(np.diff(toes[..., [0, 2]], axis=0), axis=-1) * FPS
    return height, speed


def foot_skate(features) -> float:
    """Height-weighted mean horizontal toe speed on the ground, m/s (module docstring); 0 for fewer than 2 rows."""
    height, speed = _toes(features)
    if len(speed) == 0:
        return 0.0
    h = 0.5 * (height[1:] + height[:-1])
    w = ground_weight(h, SKATE_HEIGHT)
    total = w.sum()
    return float((w * speed).sum() / total) if total > 0 else 0.0


def skating_ratio(features) -> float:
    """Share of frame pairs where a toe stays below 5 cm (both frames) and slides faster than 0.5 m/s, both at that
    frame pair and on average over a 5-frame window (GMD's definition)."""
    height, speed = _toes(features)
    if len(speed) == 0:
        return 0.0
    low = (height[1:] < GMD_HEIGHT) & (height[:-1] < GMD_HEIGHT)
    k = np.ones(SKATE_WINDOW) / SKATE_WINDOW
    avg = np.stack([np.convolve(speed[:, i], k, mode="same") for i in range(2)], -1)
    skating = (low & (speed > SKATE_SPEED) & (avg > SKATE_SPEED)).any(1)
    return float(skating.mean())


def jitter(features) -> float:
    """Mean magnitude of joint jerk (third finite difference of positions x fps^3), m/s^3; 0 below 4 rows."""
    j = joints(features)
    if len(j) < 4:
        return 0.0
    return float(np.linalg.norm(np.diff(j, n=3, axis=0), axis=-1).mean() * FPS**3)


def plausibility(features_list: Iterable) -> dict[str, float]:
    """`probe/foot_skate` and `probe/jitter`: means over motions (non-finite ones skipped; NaN if none left)."""
    skate, jit = [], []
    for f in features_list:
        f = check_features(f)
        if np.isfinite(f).all():
            skate.append(foot_skate(f))
            jit.append(jitter(f))
    return {"probe/foot_skate": float(np.mean(skate)) if skate else float("nan"),
            "probe/jitter": float(np.mean(jit)) if jit else float("nan")}
