"""Does a knob matter beyond seed noise? The answer `mate report` and a sweep's closing table give per varied key.

Grids with seeds: an analysis of variance of the objective over the knob's values with the seed as a block
(statsmodels' OLS + `anova_lm`). Every grid point runs the same seeds, and a seed shifts all points together (the
same data order, the same initialisation), so taking the seed out of the residual is far stronger than a one-way
test. A complete Cartesian grid is fitted as one additive model (every knob + seed); any other design (one factor at
a time around a base) per knob, on the slice where the other knobs hold one value (for an ofat space: the base).
The effect size is the partial eta squared, SS_knob / (SS_knob + SS_residual), beside the spread of the level means
in the objective's own units and the residual SD (what a seed moves the objective by, blocks removed).

Searches: Optuna's own fANOVA importances on the study, and a permutation test that says whether each one is larger
than the same importance computed on the study with its objective values shuffled among its trials. fANOVA always
hands out 100% between the parameters, even when every value is seed noise; the shuffles measure what noise gets.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ALPHA = 0.05
PERMUTATIONS = 49  # the smallest permutation p is 1/50; a fANOVA fit takes ~0.1 s
_ZERO = 1e-12      # a sum of squares this small (relative to the values' own) is exact zero up to rounding

Record = tuple[Mapping[str, str], float]  # (a run's params, seed included; its objective)


@dataclass(frozen=True)
class KnobEffect:
    """One knob's test on a grid."""

    knob: str
    levels: tuple[str, ...]
    runs: int
    seeds: int
    design: str
    f: float | None       # None: no residual degrees of freedom left to test against
    df: tuple[int, int]    # (knob, residual)
    p: float | None
    eta2: float | None     # partial eta squared
    spread: float          # max - min of the level means (objective units)
    noise_sd: float | None  # residual SD after the knobs and the seed blocks

    @property
    def matters(self) -> bool:
        return self.p is not None and self.p < ALPHA

    @property
    def verdict(self) -> str:
        if self.p is None:
            return "cannot tell: no replicates to measure seed noise"
        return f"matters (p < {ALPHA})" if self.matters else "within seed noise"


def _levels(values: Sequence[str]) -> tuple[str, ...]:
    def key(v: str):
        try:
            return (0, float(v), v)
        except ValueError:
            return (1, 0.0, v)

    return tuple(sorted(set(values), key=key))


def knob_effects(records: Sequence[Record], knobs: Sequence[str], seed_key: str = "seed") -> list[KnobEffect]:
    """A test per knob over the runs' objective values (non-finite values left out)."""
    rows = [(dict(p), float(v)) for p, v in records if v is not None and math.isfinite(v)]
    rows = [(p, v) for p, v in rows if all(k in p for k in knobs)]
    if not knobs or not rows:
        return []
    levels = {k: _levels([str(p[k]) for p, _ in rows]) for k in knobs}
    combos = {tuple(str(p[k]) for k in knobs) for p, _ in rows}
    if len(knobs) > 1 and len(combos) == math.prod(len(v) for v in levels.values()):
        return _fit(rows, list(knobs), seed_key, "additive over the grid")
    out = []
    for k in knobs:
        others = [o for o in knobs if o != k]
        slices: dict[tuple, list] = {}
        for p, v in rows:
            slices.setdefault(tuple(str(p[o]) for o in others), []).append((p, v))
        spanning = [s for s in slices.values() if len({str(p[k]) for p, _ in s}) > 1]
        if spanning:
            chosen = max(spanning, key=len)  # ofat: the base slice, the only one where this knob moves
            out += _fit(chosen, [k], seed_key, "one knob at a time" if others else "one knob")
    return out


def _complete_blocks(rows: list, knobs: list[str], seed_key: str) -> tuple[list, int]:
    """The runs of the seeds that ran every point of the design, and how many runs that leaves out.

    A seed block only compares points within itself when it holds all of them: a half-run ablation's extra seeds
    would otherwise be fitted on one or two points, leave a residual of one degree of freedom, and an accuracy that
    moves in steps of 1/n can then fit exactly by chance (F = inf). Without seeds (one block) nothing is left out."""
    by_seed: dict[str, set] = {}
    for p, _ in rows:
        by_seed.setdefault(str(p.get(seed_key, "")), set()).add(tuple(str(p[k]) for k in knobs))
    if len(by_seed) < 2:
        return rows, 0
    points = set().union(*by_seed.values())
    complete = {b for b, got in by_seed.items() if got == points}
    if not complete:  # no seed ran every point (each its own seed, say): the blocked fit has nothing to leave out
        return rows, 0
    kept = [(p, v) for p, v in rows if str(p.get(seed_key, "")) in complete]
    return kept, len(rows) - len(kept)


def _fit(rows: list, knobs: list[str], seed_key: str, design: str) -> list[KnobEffect]:
    import numpy as np
    import pandas as pd

    rows, left_out = _complete_blocks(rows, knobs, seed_key)
    if left_out:
        design += f", {left_out} run(s) of seeds missing a point left out"
    cols = {k: f"k{i}" for i, k in enumerate(knobs)}
    frame = pd.DataFrame([{**{cols[k]: str(p[k]) for k in knobs}, "blk": str(p.get(seed_key, "")), "y": v}
                          for p, v in rows])
    seeds = frame["blk"].nunique()
    blocked = seeds > 1
    design += ", blocked by seed" if blocked else ", no seed blocks"
    terms = [f"C({cols[k]})" for k in knobs if frame[cols[k]].nunique() > 1] + (["C(blk)"] if blocked else [])
    used = 1 + sum(frame[c].nunique() - 1 for c in [*cols.values(), *(["blk"] if blocked else [])])
    df_resid = len(frame) - used
    raw_ss = float((frame["y"] ** 2).sum())
    constant = frame["y"].nunique() == 1
    table = None
    if df_resid > 0 and terms:
        from statsmodels.formula.api import ols
        from statsmodels.stats.anova import anova_lm

        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore")
            table = anova_lm(ols("y ~ " + " + ".join(terms), data=frame).fit(), typ=2)
    out = []
    for k in knobs:
        c = cols[k]
        means = frame.groupby(c)["y"].mean()
        spread = float(means.max() - means.min())
        lv = _levels(frame[c].tolist())
        f = p = eta2 = noise = None
        df_k = len(lv) - 1
        if table is not None and f"C({c})" in table.index:
            ss_k = max(float(table.loc[f"C({c})", "sum_sq"]), 0.0)
            ss_r = max(float(table.loc["Residual", "sum_sq"]), 0.0)
            # rounding in the fit is relative to the values' own size, not to their spread; a figure that never
            # moves has no effect to test (the fit's sums of squares are then rounding noise or NaN)
            ss_k = 0.0 if constant or ss_k <= _ZERO * raw_ss else ss_k  # equal level means, up to rounding
            ss_r = 0.0 if constant or ss_r <= _ZERO * raw_ss else ss_r
            if ss_k == 0.0:
                f, p, eta2 = 0.0, 1.0, 0.0
            elif ss_r == 0.0:  # an exact fit: no noise left to weigh a real difference against
                f, p, eta2 = math.inf, 0.0, 1.0
            else:
                f = (ss_k / df_k) / (ss_r / df_resid)
                p = float(table.loc[f"C({c})", "PR(>F)"])
                eta2 = ss_k / (ss_k + ss_r)
            noise = math.sqrt(ss_r / df_resid)
        out.append(KnobEffect(k, lv, len(frame), seeds, design, f, (df_k, max(df_resid, 0)), p, eta2, spread, noise))
    return out


def effects_table(effects: Sequence[KnobEffect]) -> tuple[list[str], list[list[str]]]:
    """(head, rows) for Markdown and HTML."""
    head = ["knob", "levels", "runs", "design", "F (df)", "p", "partial η²", "spread of means", "residual SD",
            "verdict"]
    rows = []
    for e in effects:
        f = "-" if e.f is None else ("inf" if math.isinf(e.f) else f"{e.f:.3g}")
        rows.append([e.knob, str(len(e.levels)), str(e.runs), e.design, f"{f} ({e.df[0]}, {e.df[1]})",
                     "-" if e.p is None else f"{e.p:.3g}", "-" if e.eta2 is None else f"{e.eta2:.2f}",
                     f"{e.spread:.4g}", "-" if e.noise_sd is None else f"{e.noise_sd:.3g}", e.verdict])
    return head, rows


# The test figures a grid's knobs are also tested on, for reading: selection stays on the val objective
TEST_FIGURES = ("probe/word_pair_acc", "probe/word_pair_acc_comp", "probe/pair_acc", "eval/r_precision_top3",
                "eval/fid")


def figure_effects(records: Sequence[tuple[Mapping[str, str], Mapping[str, float]]], knobs: Sequence[str],
                   figures: Sequence[str] = TEST_FIGURES, seed_key: str = "seed") -> dict[str, list[KnobEffect]]:
    """`knob_effects` on each figure the runs report: {figure: effects} over (params, metrics) records."""
    out = {}
    for figure in figures:
        if any(m.get(figure) is not None for _, m in records):
            out[figure] = knob_effects([(p, m.get(figure)) for p, m in records], knobs, seed_key)
    return out


def figure_effects_table(by_figure: Mapping[str, Sequence[KnobEffect]]) -> tuple[list[str], list[list[str]]]:
    """(head, rows): a knob per row, a figure per column, each cell F, p and partial η² ("matters" when p < 0.05)."""
    knobs = list(dict.fromkeys(e.knob for effects in by_figure.values() for e in effects))
    cell = {(f, e.knob): e for f, effects in by_figure.items() for e in effects}
    rows = []
    for knob in knobs:
        row = [knob]
        for figure in by_figure:
            e = cell.get((figure, knob))
            if e is None or e.p is None:
                row.append("-")
                continue
            f = "inf" if math.isinf(e.f) else f"{e.f:.3g}"
            row.append(f"F={f}, p={e.p:.3g}, η²={e.eta2:.2f}" + (" matters" if e.matters else ""))
        rows.append(row)
    return ["knob", *by_figure], rows


def figure_effects_text(by_figure: Mapping[str, Sequence[KnobEffect]]) -> str:
    """What the test-figure table is and is not (the report and the closing ablation.md both say it)."""
    cells = len(by_figure) * len({e.knob for v in by_figure.values() for e in v})
    return ("The same test on the test figures, to read beside it (settings are chosen on val, never on these): F, p "
            f"and partial η² per knob and figure. Of {cells} cells, about {ALPHA * cells:.1f} pass p < {ALPHA} by "
            "chance alone.")


def figure_effects_markdown(by_figure: Mapping[str, Sequence[KnobEffect]]) -> str:
    head, rows = figure_effects_table(by_figure)
    lines = [figure_effects_text(by_figure), "", "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def effects_markdown(effects: Sequence[KnobEffect], objective: str) -> str:
    head, rows = effects_table(effects)
    lines = [f"Does each knob move `{objective}` beyond seed noise? (analysis of variance, seed as block)", "",
             "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


# -- searches: Optuna's importances and what shuffled objectives get ---------------------------------------------------

@dataclass(frozen=True)
class ParamImportance:
    objective: str
    param: str
    importance: float   # Optuna's fANOVA, normalised to sum to 1 over the params (what optuna-dashboard shows)
    raw: float          # unnormalised: the share of the objective's variance this param's main effect explains
    null95: float       # the 95th percentile of `raw` over the shuffles
    p: float            # permutation p: the share of shuffles at least as large

    @property
    def verdict(self) -> str:
        return f"beyond noise (p < {ALPHA})" if self.p < ALPHA else "within noise: shuffled objectives get as much"


def study_importances(study, permutations: int = PERMUTATIONS, seed: int = 0) -> tuple[list[ParamImportance], str]:
    """(importances, note) over the study's COMPLETE trials; the note says why there are none when there are none."""
    import numpy as np
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances
    from optuna.trial import TrialState, create_trial

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    names = study.metric_names or [f"objective {i}" for i in range(len(study.directions))]
    if len(trials) < 3:
        return [], f"{len(trials)} completed trial(s): too few for importances (3 or more)"
    params = sorted(set.intersection(*(set(t.params) for t in trials)))
    params = [k for k in params if len({repr(t.params[k]) for t in trials}) > 1]
    if not params:
        return [], "no parameter takes two values over the completed trials"
    flat = [i for i in range(len(names)) if len({t.values[i] for t in trials}) < 2]
    if flat:  # fANOVA has nothing to split (and raises): say so
        return [], f"{names[flat[0]]} takes one value over the {len(trials)} completed trials: nothing to attribute"
    out: list[ParamImportance] = []
    rng = np.random.default_rng(seed)
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, name in enumerate(names):
                def fanova(s, i=i) -> dict[str, float]:
                    return get_param_importances(s, evaluator=FanovaImportanceEvaluator(seed=seed), params=params,
                                                 target=lambda tr: tr.values[i], normalize=False)

                values = np.array([t.values[i] for t in trials])
                raw = fanova(study)
                total = sum(raw.values()) or 1.0
                null = {k: [] for k in params}
                for _ in range(permutations):
                    shadow = optuna.create_study(directions=study.directions)
                    shadow.add_trials([create_trial(params=t.params, distributions=t.distributions,
                                                    values=[*t.values[:i], v, *t.values[i + 1:]])
                                       for t, v in zip(trials, rng.permutation(values))])
                    for k, v in fanova(shadow).items():
                        null[k].append(v)
                for k in params:
                    ge = sum(v >= raw[k] - 1e-12 for v in null[k])
                    out.append(ParamImportance(name, k, raw[k] / total, raw[k], float(np.percentile(null[k], 95)),
                                               (1 + ge) / (1 + permutations)))
    finally:
        optuna.logging.set_verbosity(previous)
    return out, f"{len(trials)} completed trials, {permutations} shuffles"


def importances_table(items: Sequence[ParamImportance]) -> tuple[list[str], list[list[str]]]:
    head = ["objective", "param", "importance (fANOVA)", "variance share", "shuffled, 95th pct", "p", "verdict"]
    return head, [[i.objective, i.param, f"{i.importance:.2f}", f"{i.raw:.3f}", f"{i.null95:.3f}", f"{i.p:.2f}",
                   i.verdict] for i in items]


def importances_markdown(items: Sequence[ParamImportance], note: str) -> str:
    head, rows = importances_table(items)
    lines = [f"Optuna's fANOVA importances ({note}); within noise when shuffled objectives get as much:", "",
             "| " + " | ".join(head) + " |", "|---" * len(head) + "|", *("| " + " | ".join(r) + " |" for r in rows)]
    return "\n".join(lines)


def load_study(storage, name: str):
    """The sweep's Optuna study, or None when that storage (a URL or an Optuna storage) has no study of that name."""
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None
