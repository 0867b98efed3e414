"""Actions done mostly on the spot: jump (up, travelling or spinning), squat, kick (stepping into it), wave.

Same interface as locomotion.py. Speed classes scale the tempo of every phase that muscles control (crouch, push,
kick, raise, the wave's frequency) while keeping the pose's range the same, so the rate of pose change, which the
speed probe reads, differs by class; a jump's flight time follows from its height (ballistic).
"""

from __future__ import annotations

import numpy as np

from .channels import FPS, Channels, G, Style, jitter, keyframes, smoothstep, spread, swing_mask
from .locomotion import direction_vec, lead_frames, speed_class, turn_sign

# Per speed class (slowly, normal, quickly).
JUMP = {"crouch": (15, 7, 3), "push": (6, 3, 2), "height": (0.25, 0.18, 0.09), "absorb": (8, 4, 2),
        "recover": (15, 6, 2), "depth": (0.2, 0.16, 0.08), "reps": ((1, 2), (1, 3), (2, 4))}
SQUAT = {"period": (54.0, 32.0, 17.0), "reps": ((1, 2), (1, 3), (2, 4))}
KICK = {"tempo": (1.8, 1.0, 0.5), "reps": ((1, 1), (1, 2), (1, 3))}
WAVE = {"freq": (0.9, 1.6, 2.6), "tempo": (1.7, 1.0, 0.6), "cycles": ((2, 4), (3, 6), (4, 8))}
RAISED = np.array([0.2, 1.4, 1.7, np.pi / 2])  # the waving arm: out to the side, forearm up


def _reps(rng, table, c) -> int:
    lo, hi = table[c]
    return int(rng.integers(lo, hi + 1))


def _frames(p: dict, body: int) -> int:
    return p["lead_in"] + p["lead_out"] + 2 + body


def _disp_to_vel(disp: np.ndarray) -> np.ndarray:
    """Per-frame steps (frame t -> t+1) that trace the displacement curve `disp` (n, ...)."""
    return np.diff(disp, axis=0, append=disp[-1:])


def plan_jump(rng: np.random.Generator, attributes: dict) -> dict:
    c = speed_class(attributes)
    reps = []
    for _ in range(_reps(rng, JUMP["reps"], c)):
        h = jitter(rng, JUMP["height"][c], 0.08)
        reps.append({"crouch": max(2, round(jitter(rng, JUMP["crouch"][c], 0.08))), "push": JUMP["push"][c],
                     "flight": max(3, round(2 * np.sqrt(2 * h / G) * FPS)), "height": h,
                     "absorb": max(2, round(jitter(rng, JUMP["absorb"][c], 0.08))),
                     "recover": max(2, round(jitter(rng, JUMP["recover"][c], 0.08)))})
    dist = {"forward": (0.4, 0.7), "backward": (0.3, 0.45)}.get(attributes.get("direction"), (0.3, 0.5))
    d = rng.uniform(*dist) * (0.6 if c == 2 else 1.0) if "direction" in attributes else 0.0
    spin = np.radians(rng.uniform(90, 170)) * turn_sign(attributes["turn"]) if "turn" in attributes else 0.0
    lead_in, lead_out = lead_frames(rng)
    p = {"reps": reps, "dir": direction_vec(attributes.get("direction", "forward")), "dist": d,
         "spin": float(spin), "depth": jitter(rng, JUMP["depth"][c], 0.1), "lead_in": lead_in, "lead_out": lead_out}
    p["frames"] = _frames(p, sum(r["crouch"] + r["push"] + r["flight"] + r["absorb"] + r["recover"] for r in reps))
    return p


def generate_jump(p: dict, style: Style) -> Channels:
    n = p["frames"]
    ch = Channels.idle(n, style)
    idle = ch.arms[0, 0, 0]
    t = p["lead_in"] + 1
    tk, hk, sk, ak, lk = [0.0], [0.0], [0.0], [idle], [0.0]
    flights = []
    disp = np.zeros((n, 2))
    home = np.zeros(2)
    depth, step, turn = p["depth"], np.array(p["dir"]) * p["dist"], p["spin"] / len(p["reps"])
    for r in p["reps"]:
        c1 = t + r["crouch"]
        to = c1 + r["push"]
        land = to + r["flight"]
        a1 = land + r["absorb"]
        q1 = a1 + r["recover"]
        vs = 4 * r["height"] / r["flight"]
        apex = to + r["flight"] / 2
        tk += [t, c1, to, apex, land, a1, q1]
        hk += [0.0, -depth, 0.02, 0.02 + r["height"], 0.02, -0.6 * depth, 0.0]
        sk += [0.0, 0.0, vs, 0.0, -vs, 0.0, 0.0]
        ak += [idle, idle - 0.55, idle + 0.4, idle + 1.45, idle + 0.65, idle + 0.25, idle]  # back, then up in the air
        lk += [0.0, 0.45, 0.05, 0.08, 0.12, 0.3, 0.0]
        flights.append((to, land, r["height"]))
        # Travel and spin mostly in the air, a little while pushing off and landing.
        w = np.zeros(n)
        w[c1:to] = np.linspace(0.2, 1.0, to - c1)
        w[to:land] = 1.0
        w[land:a1] = np.linspace(1.0, 0.2, a1 - land)
        ch.yaw_rate += turn * w / w.sum()
        disp += np.cumsum(spread(n, step, w), 0)
        home = home + step
        for side in (0, 1):  # the landing footprints go where the jump ends
            ch.offset[land:q1, side] = home - disp[land:q1]
        ch.stance[:, :] &= ~swing_mask(n, [to + 1], r["flight"] - 1)[:, None]
        t = q1
    tk.append(n - 1)
    hk.append(0.0)
    sk.append(0.0)
    ak.append(idle)
    lk.append(0.0)
    ch.height[:] = keyframes(n, tk, hk, sk)
    for to, land, h in flights:  # ballistic flight
        s = (np.arange(to, land + 1) - to) / (land - to)
        ch.height[to:land + 1] = 0.02 + 4 * h * s * (1 - s)
    ch.vel[:] = _disp_to_vel(disp)
    ch.arms[..., 0] = keyframes(n, tk, ak)[:, None]
    ch.lean[:] = keyframes(n, tk, lk)
    ch.lift[:] = 0.12  # knees tuck in the air
    ch.follow[:] = 1.0
    ch.pitch[:] = 0.35 * (~ch.stance)
    return ch


def plan_squat(rng: np.random.Generator, attributes: dict) -> dict:
    c = speed_class(attributes)
    periods = [jitter(rng, SQUAT["period"][c], 0.06) for _ in range(_reps(rng, SQUAT["reps"], c))]
    lead_in, lead_out = lead_frames(rng)
    p = {"periods": [round(x) for x in periods], "depth": rng.uniform(0.36, 0.42), "back": rng.uniform(0.06, 0.1),
         "lead_in": lead_in, "lead_out": lead_out}
    p["frames"] = _frames(p, sum(p["periods"]))
    return p


def generate_squat(p: dict, style: Style) -> Channels:
    n = p["frames"]
    ch = Channels.idle(n, style)
    shape = np.zeros(n)
    t = p["lead_in"] + 1
    for period in p["periods"]:
        s = np.arange(period + 1) / period
        shape[t:t + period + 1] = (1 - np.cos(2 * np.pi * s)) / 2
        t += period
    ch.height[:] = -p["depth"] * shape
    ch.vel[:, 1] = _disp_to_vel(-p["back"] * shape)
    ch.lean[:] = 0.55 * shape
    ch.arms[..., 0] += (1.35 - ch.arms[..., 0]) * shape[:, None]
    return ch


def plan_kick(rng: np.random.Generator, attributes: dict) -> dict:
    c = speed_class(attributes)
    forward = attributes.get("direction", "forward") == "forward"
    reps = []
    for _ in range(_reps(rng, KICK["reps"], c)):
        k = jitter(rng, KICK["tempo"][c], 0.05)
        reps.append({"shift": max(2, round(5 * k)), "kick": max(6, round(12 * k)), "transfer": max(2, round(5 * k)),
                     "rejoin": max(3, round(7 * k)),
                     "dist": rng.uniform(0.25, 0.38) if forward else rng.uniform(0.24, 0.32),
                     "height": rng.uniform(0.35, 0.43) if forward else rng.uniform(0.32, 0.4),
                     "reach": rng.uniform(0.48, 0.56) if forward else rng.uniform(0.5, 0.58)})
    lead_in, lead_out = lead_frames(rng)
    p = {"reps": reps, "sign": 1.0 if forward else -1.0, "foot": 0 if attributes["limb"] == "left" else 1,
         "lead_in": lead_in, "lead_out": lead_out}
    p["frames"] = _frames(p, sum(r["shift"] + r["kick"] + r["transfer"] + r["rejoin"] for r in p["reps"]))
    return p


def generate_kick(p: dict, style: Style) -> Channels:
    n = p["frames"]
    ch = Channels.idle(n, style)
    kf, sf = p["foot"], 1 - p["foot"]
    to_support = 1.0 if sf == 0 else -1.0  # +x is left
    sign = p["sign"]
    frames = np.arange(n, dtype=np.float64)
    lat, fwd = np.zeros(n), np.zeros(n)
    home = {kf: np.zeros(2), sf: np.zeros(2)}
    t = p["lead_in"] + 1
    tk, lean_k, abd_k = [0.0], [0.0], [0.0]
    for r in p["reps"]:
        k0 = t + r["shift"]
        land = k0 + r["kick"]
        rj = land + r["transfer"]
        end = rj + r["rejoin"]
        lat += 0.05 * to_support * (smoothstep((frames - t) / r["shift"]) - smoothstep((frames - land) / (end - land)))
        base = fwd[t]
        fwd[t:] = base + sign * r["dist"] * smoothstep((frames[t:] - land) / (end - land))
        ch.stance[:, kf] &= ~swing_mask(n, [k0], r["kick"])
        ch.stance[:, sf] &= ~swing_mask(n, [rj], r["rejoin"])
        tau = np.clip((frames - (k0 - 1)) / (r["kick"] + 1), 0, 1)
        air = (frames >= k0) & (frames < land)
        ch.extra[:, kf, 1] += air * r["height"] * np.sin(np.pi * tau) ** 1.2
        ch.extra[:, kf, 2] += air * sign * r["reach"] * np.sin(np.pi * np.clip((tau - 0.12) / 0.76, 0, 1)) ** 2
        ch.pitch[:, kf] += air * 0.5 * np.sin(np.pi * tau)
        home[kf] = home[kf] + [0.0, sign * r["dist"]]
        ch.offset[land:, kf] = home[kf]
        home[sf] = home[sf] + [0.0, sign * r["dist"]]
        ch.offset[end:, sf] = home[sf]
        tk += [t, k0, (k0 + land) / 2, land, end]
        lean_k += [0.0, 0.0, -0.12 if sign > 0 else 0.35, 0.05, 0.0]
        abd_k += [0.0, 0.4, 0.55, 0.3, 0.0]
        t = end
    ch.offset[:, :, 0] -= lat[:, None]  # footprints stay put while the pelvis shifts its weight
    ch.offset[:, :, 1] -= fwd[:, None]
    ch.vel[:] = _disp_to_vel(np.stack([lat, fwd], -1))
    tk.append(n - 1)
    lean_k.append(0.0)
    abd_k.append(0.0)
    ch.lean[:] = keyframes(n, tk, lean_k)
    ch.arms[..., 1] += keyframes(n, tk, abd_k)[:, None]
    ch.arms[..., 0] += 0.5 * keyframes(n, tk, abd_k)[:, None]
    ch.lift[:, sf] = 0.05
    return ch


def plan_wave(rng: np.random.Generator, attributes: dict) -> dict:
    c = speed_class(attributes)
    freq = jitter(rng, WAVE["freq"][c], 0.06)
    k = jitter(rng, WAVE["tempo"][c], 0.06)
    cycles = _reps(rng, WAVE["cycles"], c)
    lead_in, lead_out = lead_frames(rng)
    p = {"hand": 0 if attributes["limb"] == "left" else 1, "freq": freq, "raise": max(4, round(10 * k)),
         "lower": max(4, round(10 * k)), "waving": max(4, round(cycles * FPS / freq)), "lead_in": lead_in,
         "lead_out": lead_out}
    p["frames"] = _frames(p, p["raise"] + p["waving"] + p["lower"])
    return p


def generate_wave(p: dict, style: Style) -> Channels:
    n = p["frames"]
    ch = Channels.idle(n, style)
    h = p["hand"]
    t0 = p["lead_in"] + 1
    w0, w1 = t0 + p["raise"], t0 + p["raise"] + p["waving"]
    t = np.arange(n, dtype=np.float64)
    up = smoothstep((t - t0) / p["raise"]) * smoothstep((w1 + p["lower"] - t) / p["lower"])
    rest = ch.arms[:, h].copy()
    ch.arms[:, h] = rest + (RAISED - rest) * up[:, None]
    amp = smoothstep((t - w0) / 3) * smoothstep((w1 - t) / 3)
    ch.arms[:, h, 2] += 0.55 * amp * np.sin(2 * np.pi * p["freq"] * (t - w0) / FPS)
    ch.roll[:] = 0.05 * up * (-1.0 if h == 0 else 1.0)
    return ch
