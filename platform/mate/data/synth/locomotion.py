"""Actions that travel or turn by stepping: walk (also backwards and in a circle), run, side-step, turn on the spot.

Each action has `plan(rng, attributes) -> params` (JSON-able; `params["frames"]` is its length in joint frames) and
`generate(params, style) -> Channels`. Speed classes differ in rate (m/s, deg/s), never only in duration, so a
physical probe reads them from any stretch of the motion. Gait: steps alternate feet every D frames, each foot in
the air for a fixed share of a stride; footprints come from feet.py's mid-stance rule, so step length follows from
speed and cadence.
"""

from __future__ import annotations

import numpy as np

from .channels import FPS, Channels, Style, envelope, jitter, keyframes, smoothstep, swing_mask

# Per speed class (slowly, normal, quickly): pelvis speed (m/s), cadence (steps/s), share of a stride on the ground;
# steps per segment, and how many steps the start and the stop take.
GAITS = {
    "walk": {"v": (0.7, 1.2, 1.8), "cadence": (1.55, 1.85, 2.15), "stance": (0.62, 0.6, 0.57), "steps": (5, 10),
             "ramp": 1.2},
    "run": {"v": (2.1, 3.0, 4.1), "cadence": (2.55, 2.8, 3.1), "stance": (0.42, 0.36, 0.32), "steps": (7, 14),
            "ramp": 2.0},
    "side-step": {"v": (0.32, 0.58, 1.0), "cadence": (1.5, 1.9, 2.6), "stance": (0.64, 0.62, 0.6), "steps": (4, 9),
                  "ramp": 1.0},
}
TURN_RATE = (55.0, 110.0, 250.0)  # deg/s on the spot, per speed class
CIRCLE_RATE = (30.0, 55.0)  # deg/s range of walking in a circle
MAX_TURN = np.radians(165.0)  # per segment: keeps the probes' facing estimates unambiguous


def speed_class(attributes: dict) -> int:
    return {"slowly": 0, "quickly": 2}.get(attributes.get("speed"), 1)


def direction_vec(direction: str) -> list[float]:
    return {"forward": [0.0, 1.0], "backward": [0.0, -1.0], "left": [1.0, 0.0], "right": [-1.0, 0.0]}[direction]


def lead_frames(rng: np.random.Generator) -> tuple[int, int]:
    return int(rng.integers(2, 4)), int(rng.integers(2, 4))


def plan_gait(rng: np.random.Generator, action: str, attributes: dict) -> dict:
    g, c = GAITS[action], speed_class(attributes)
    v, cadence = jitter(rng, g["v"][c], 0.06), jitter(rng, g["cadence"][c], 0.05)
    stance = g["stance"][c]
    lead_in, lead_out = lead_frames(rng)
    steps = int(rng.integers(g["steps"][0], g["steps"][1] + 1))
    d = FPS / cadence
    swing = (1 - stance) * 2 * d
    frames = int(round(lead_in + lead_out + 2 + (steps - 1) * d + swing))
    turn = 0.0  # walking in a circle: the net turn over the segment
    if "turn" in attributes:
        rate = np.radians(rng.uniform(*CIRCLE_RATE))
        turn = turn_sign(attributes["turn"]) * min(rate * frames / FPS, MAX_TURN)
    direction = attributes.get("direction", "forward")
    # Which foot steps first: either when going forwards or backwards, the leading one when going sideways.
    first = int(rng.integers(0, 2)) if direction in ("forward", "backward") else (0 if direction == "left" else 1)
    return {"frames": frames, "v": v, "swing": swing, "steps": steps, "lead_in": lead_in, "lead_out": lead_out,
            "dir": direction_vec(direction), "turn": float(turn), "first": first, "narrow": rng.uniform(0.1, 0.14)}


def turn_sign(value: str) -> float:
    return 1.0 if value == "counterclockwise" else -1.0


def generate_gait(action: str, p: dict, style: Style) -> Channels:
    n, steps, swing = p["frames"], p["steps"], p["swing"]
    ch = Channels.idle(n, style)
    t0 = p["lead_in"] + 1
    t_end = n - p["lead_out"] - 1
    d = (t_end - t0 - swing) / (steps - 1)  # frames per step, refitted to the frame count
    starts = t0 + d * np.arange(steps)
    for k in range(steps):
        foot = (p["first"] + k) % 2
        ch.stance[:, foot] &= ~swing_mask(n, [starts[k]], swing)
    env = envelope(n, t0, t_end, GAITS[action]["ramp"] * d)  # speed up and slow down over a step or two
    v = p["v"] / FPS
    direction = np.array(p["dir"])
    ch.vel[:] = env[:, None] * v * direction
    if p["turn"]:
        ch.yaw_rate[:] = p["turn"] * env / env.sum()
    lateral = direction[0] != 0
    if lateral:
        # Step-close: the leading foot lands wide, the trailing one closes in (see feet.py's offsets).
        lead = p["first"]
        h = v * d
        c = (p["narrow"] + h - 2 * style.width) / 2
        side = 1.0 if lead == 0 else -1.0
        for foot, sign in ((lead, side), (1 - lead, -side)):
            air = np.flatnonzero(~ch.stance[:, foot])  # plants before the first and after the last step stay neutral
            ch.offset[air[0]:air[-1] + 1, foot, 0] = sign * c
    else:
        # Pelvis sways over the planted foot.
        sway = 0.02 * (ch.stance[:, 0].astype(float) - ch.stance[:, 1].astype(float))
        sway = np.convolve(np.pad(sway, 3, mode="edge"), np.ones(7) / 7, mode="valid") * env
        ch.vel[:, 0] += np.gradient(sway)
    run = action == "run"
    air = (~ch.stance[:, 0] & ~ch.stance[:, 1]).astype(float)
    air = np.convolve(np.pad(air, 2, mode="edge"), np.hanning(5) / np.hanning(5).sum(), mode="valid")
    ch.height[:] = env * (-0.035 + 0.06 * air) if run else -0.015 * env
    ch.lift[:] = (0.1 if run else 0.06 if not lateral else 0.05) * np.ones((n, 2))
    forward = direction[1]
    ch.lean[:] = env * (0.16 * forward if run else 0.05 * forward + (0.03 if lateral else 0.0))
    if run:
        ch.arms[..., 2] += (1.45 - ch.arms[..., 2]) * env[:, None]
    if lateral:
        ch.arms[..., 1] += 0.2 * env[:, None]
    else:
        ch.swing[:] = env * (1.3 if run else 1.0)
    return ch


def plan_turn(rng: np.random.Generator, attributes: dict) -> dict:
    angle = np.radians(rng.uniform(85.0, 170.0)) * turn_sign(attributes["turn"])
    rate = np.radians(jitter(rng, TURN_RATE[speed_class(attributes)], 0.08))
    turning = abs(angle) / rate * FPS
    lead_in, lead_out = lead_frames(rng)
    frames = int(round(lead_in + lead_out + 2 + turning))
    return {"frames": frames, "angle": float(angle), "lead_in": lead_in, "lead_out": lead_out,
            "steps": 2 if abs(angle) <= np.radians(120) else 3}


def generate_turn(p: dict, style: Style) -> Channels:
    n = p["frames"]
    ch = Channels.idle(n, style)
    t0, t1 = p["lead_in"] + 1, n - p["lead_out"] - 1
    t = np.arange(n, dtype=np.float64)
    w = np.sin(np.pi * np.clip((t - t0) / (t1 - t0), 0, 1)) ** 2
    ch.yaw_rate[:] = p["angle"] * w / w.sum()
    k = p["steps"]
    slot = (t1 - t0) / k
    sw = max(2.0, 0.75 * slot)
    first = 0 if p["angle"] > 0 else 1  # the foot on the side we turn to opens first
    for i in range(k):
        ch.stance[:, (first + i) % 2] &= ~swing_mask(n, [t0 + i * slot + (slot - sw) / 2], sw)
    ch.lift[:] = 0.05
    ch.arms[..., 1] += 0.12 * (smoothstep((t - t0) / 3) * smoothstep((t1 - t) / 3))[:, None]
    ch.roll[:] = keyframes(n, [t0, (t0 + t1) / 2, t1], [0.0, 0.04 * np.sign(p["angle"]), 0.0])
    return ch
