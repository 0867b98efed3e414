"""Search-space files: the shipped ones load and resolve, grids expand as documented, every kind of mistake is one
message naming the file and the key, the fingerprint ignores only the budget keys an extension may change."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mate.config import Config, ConfigError, resolve
from mate.sweep.dryrun import describe, estimate, format_estimate, format_trials
from mate.sweep.space import check_resumable, load_space

REPO = Path(__file__).resolve().parents[2]
SPACES = REPO / "search_spaces"
SHIPPED = ("smoke", "mate_humanml3d", "ablation_prior", "ablation_prior_shape", "ablation_prototypes",
           "ablation_losses", "ablation_segmentation", "multiobjective")

SEARCH = """\
profile: smoke
objective: {metric: val/probe/word_pair_acc, mode: max}
budget: {num_samples: 4, max_concurrent: 2}
search:
  align.sigma_scale: {loguniform: [0.25, 4.0]}
  align.prototypes_per_word: {int: [1, 4]}
"""  # search last: a test appends parameters to it


def write(tmp_path: Path, text: str, name: str = "space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def optuna_trials(space, n: int):
    """`n` trials sampled through the space's own define-by-run function, as Ray's OptunaSearch would."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0),
                                directions=["maximize"] * len(space.objectives))
    out = []
    for _ in range(n):
        trial = study.ask()
        constants = space.sample(trial)  # first: it makes the suggestions
        out.append({**trial.params, **constants})
        study.tell(trial, [0.5] * len(space.objectives) if space.multi_objective else 0.5)
    return out


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_space_loads_and_its_trials_resolve(name):
    space = load_space(SPACES / f"{name}.yaml")
    assert space.name == name and space.metrics and all(m.startswith("val/") for m in space.metrics)
    extra = {"data.dir": "/data/HumanML3D"} if space.data_required else None
    trials = optuna_trials(space, 3) if space.is_search else space.trials()
    for params in trials:
        cfg = space.trial_config(params, extra=extra)
        assert isinstance(cfg, Config) and cfg["profile"] == space.profile and cfg["gen.epochs"] == space.max_epochs
        assert cfg.to_dict() == resolve(cfg.to_dict()).to_dict()  # a resolved config resolves to itself
    if not space.is_search:
        assert len({json.dumps(t, sort_keys=True) for t in trials}) == len(trials) == space.num_trials
        assert len(space.seeds) >= 3  # ablations replicate over several seeds
    text = format_trials(space)
    assert space.name in text and space.profile in text
    if space.profile == "paper":  # priced by stage: no per-trial CPU estimate, the dry-run shows the stages
        with pytest.raises(ValueError, match="priced by stage"):
            estimate(space)
        assert "GPU-hours by stage" in describe(space)
    else:
        assert "trials" in format_estimate(estimate(space))
    header = (SPACES / f"{name}.yaml").read_text().splitlines()[0]
    assert header.startswith("#")  # every file says what it studies


def test_shipped_spaces_are_the_documented_ones():
    assert sorted(p.stem for p in SPACES.glob("*.yaml")) == sorted(SHIPPED)
    smoke = load_space(SPACES / "smoke.yaml")
    assert (smoke.profile, smoke.budget.num_samples, smoke.budget.max_concurrent) == ("smoke", 4, 2)
    assert (smoke.budget.cpus_per_trial, smoke.budget.gpus_per_trial) == (1, 0.0)
    assert (smoke.algorithm, smoke.scheduler, smoke.seed_mode) == ("tpe", "asha", "derived")
    assert smoke.metrics == ["val/eval/r_precision_top3"] and smoke.modes == ["max"]
    paper = load_space(SPACES / "mate_humanml3d.yaml")
    assert paper.profile == "paper" and paper.data_required and 0 < paper.budget.gpus_per_trial <= 1
    with pytest.raises(ConfigError, match=r"mate_humanml3d.yaml: data_required: .*--data DIR"):
        paper.trial_config({})
    multi = load_space(SPACES / "multiobjective.yaml")
    assert multi.metrics == ["val/eval/fid", "val/eval/r_precision_top3"] and multi.modes == ["min", "max"]
    assert (multi.algorithm, multi.scheduler) == ("nsga2", "fifo")
    segmentation = load_space(SPACES / "ablation_segmentation.yaml")
    assert segmentation.values_of("segment.backend") == ["rules", "openai", "truth"]
    assert segmentation.scheduler == "fifo" and segmentation.seed_mode == "replicates"


def test_ofat_runs_the_base_once_then_one_change_at_a_time_per_seed():
    space = load_space(SPACES / "ablation_losses.yaml")
    assert len(space.points) == 7 and space.num_trials == 7 * 3
    labels = [label for label, _ in space.points]
    assert labels == ["base", "align.w_rec=0.0", "align.w_self=0.0", "align.w_cross=0.0", "align.w_align=0.0",
                      "align.w_sent=0.0", "align.enabled=false"]
    base = space.trial_config({}).to_dict()
    for params in space.trials()[1:7]:
        changed = {k for k, v in space.trial_config(params).items() if base[k] != v}
        assert len(changed) == 1  # exactly one factor away from the base
    assert [t["seed"] for t in space.trials()] == [0] * 7 + [1] * 7 + [2] * 7  # seeds outermost
    assert space.labels()[7] == "base"


def test_ofat_skips_values_equal_to_the_base(tmp_path):
    path = write(tmp_path, """\
        profile: tiny
        constants: {align.prior_mode: logit_bias}
        ofat:
          base: {align.sigma_scale: 2.0}
          vary:
            align.sigma_scale: [0.5, 2.0, 4.0]      # 2.0 is the base
            align.prior: [gaussian_full, binary]    # gaussian_full is the default, so the base too
        seeds: [3, 4]
        objective: {metric: val/eval/fid, mode: min}
        """)
    space = load_space(path)
    assert [p for _, p in space.points] == [
        {"align.sigma_scale": 2.0}, {"align.sigma_scale": 0.5}, {"align.sigma_scale": 4.0},
        {"align.sigma_scale": 2.0, "align.prior": "binary"}]
    assert space.num_trials == 8 and space.trials()[-1] == {"align.sigma_scale": 2.0, "align.prior": "binary",
                                                            "seed": 4}
    cfg = space.trial_config(space.trials()[0])
    assert (cfg["align.prior_mode"], cfg["align.sigma_scale"], cfg["seed"], cfg["gen.epochs"]) == \
        ("logit_bias", 2.0, 3, 2)  # constants apply, tiny's gen.epochs is the default max_epochs


def test_cartesian_grid_counts_and_points_form(tmp_path):
    space = load_space(SPACES / "ablation_prototypes.yaml", "grid")  # the variant's grid replaces the file's ofat
    assert space.kind == "grid" and len(space.points) == 3 * 3 and space.num_trials == 27
    assert space.points[0][1] == {"align.prototype_vocab": "8", "align.prototypes_per_word": 1}
    assert space.points[1][1] == {"align.prototype_vocab": "8", "align.prototypes_per_word": 2}  # last key fastest
    path = write(tmp_path, """\
        profile: tiny
        points:
          - {}
          - {align: {enabled: false}}
          - {align.w_sent: 0, align.w_self: 0.5}
        seeds: [0, 1]
        objective: [{metric: val/probe/word_pair_acc, mode: max}]
        """)
    space = load_space(path)
    assert space.kind == "points" and space.num_trials == 6
    assert space.labels()[:3] == ["base", "align.enabled=false", "align.w_sent=0.0, align.w_self=0.5"]
    assert space.trial_config(space.trials()[2])["align.w_sent"] == 0.0


BAD = [
    # (what is wrong, the file's text, the expected message after "<file>: ")
    ("unknown top-level key", SEARCH + "budgt: {}\n", r"budgt: unknown key 'budgt' \(did you mean 'budget'\?\)"),
    ("unknown config key", SEARCH.replace("align.sigma_scale", "align.sigam_scale"),
     r"search.align.sigam_scale: unknown config key 'align.sigam_scale' \(did you mean 'align.sigma_scale'\?\)"),
    ("unknown nested constant", SEARCH + "constants: {align: {priorr: binary}}\n",
     r"constants.align.priorr: unknown config key 'align.priorr' \(did you mean 'align.prior'\?\)"),
    ("typo in a distribution", SEARCH.replace("loguniform", "logunifrom"),
     r"search.align.sigma_scale.logunifrom: unknown key 'logunifrom' \(did you mean 'loguniform'\?\)"),
    ("a key the prepare stage fixes", SEARCH + "  evaluator.epochs: {int: [1, 5]}\n",
     (r"search.evaluator.epochs: 'evaluator.epochs' cannot vary within a sweep \(the frozen evaluators are trained "
     r"once per sweep by the prepare stage\); it may only be a constant")),
    ("a tokenizer key", SEARCH + "  gen.vq_codes: {choice: [256, 512]}\n",
     (r"search.gen.vq_codes: 'gen.vq_codes' cannot vary within a sweep \(the motion tokenizer is trained once per "
     r"sweep by the prepare stage and shared by every trial\); it may only be a constant")),
    ("seed as a parameter", SEARCH.replace("align.prototypes_per_word: {int: [1, 4]}", "seed: {int: [0, 9]}"),
     r"search.seed: 'seed' is not a config key here: trial seeds come from `seeds:`"),
    ("profile as a constant", SEARCH + "constants: {profile: bench}\n",
     r"constants.profile: 'profile' is not a config key here: set it with the top-level `profile:`"),
    ("empty range", SEARCH.replace("[0.25, 4.0]", "[1.0, 1.0]"),
     r"search.align.sigma_scale.loguniform: empty range: low 1.0 must be below high 1.0"),
    ("low above high", SEARCH.replace("{int: [1, 4]}", "{int: [4, 1]}"),
     r"search.align.prototypes_per_word.int: empty range: low 4 must be below high 1"),
    ("empty choice", SEARCH + "  align.prior: {choice: []}\n", r"search.align.prior.choice: empty list"),
    ("uniform on a str key", SEARCH + "  align.prior: {uniform: [0, 1]}\n",
     r"search.align.prior.uniform: 'align.prior' is a str key, uniform needs a float key; use choice"),
    ("uniform on an int key", SEARCH.replace("{int: [1, 4]}", "{uniform: [1, 4]}"),
     (r"search.align.prototypes_per_word.uniform: 'align.prototypes_per_word' is an int key, uniform needs a float "
     r"key; use int: \[low, high\]")),
    ("choice value not allowed", SEARCH + "  align.prior: {choice: [gaussian, none]}\n",
     (r"search.align.prior.choice\[0\]: config key 'align.prior' must be one of none, binary, gaussian_segment, "
     r"gaussian_full; got 'gaussian'")),
    ("a number where the key takes text", SEARCH + "  align.prototype_vocab: {choice: [8, all]}\n",
     r"search.align.prototype_vocab.choice\[0\]: config key 'align.prototype_vocab' expects str, got int 8"),
    ("YAML's 1e-3 is text", SEARCH + "  align.row_lr: {loguniform: [1e-4, 1.0e-2]}\n",
     (r"search.align.row_lr.loguniform\[0\]: config key 'align.row_lr' expects float, got str '1e-4' \(YAML reads "
     r"1e-4 as text: write it with a dot, e.g. 1.0e-4\)")),
    ("log scale from zero", SEARCH.replace("[0.25, 4.0]", "[0.0, 4.0]"),
     r"search.align.sigma_scale.loguniform: a log scale needs low > 0"),
    ("an int range that is not whole steps", SEARCH.replace("{int: [1, 4]}", "{int: [1, 8], step: 2}"),
     r"search.align.prototypes_per_word.int: \[1, 8\] is not a whole number of steps of 2 \(Optuna would stop at 7\); "
     r"write \[1, 7\] or \[1, 9\]"),
    ("test metric as objective", SEARCH.replace("val/probe/word_pair_acc", "probe/word_pair_acc"),
     (r"objective.metric: 'probe/word_pair_acc' is not a val/\* metric; test figures never drive selection "
     r"\(docs/architecture\.md §7\): use 'val/probe/word_pair_acc'")),
    ("unknown metric", SEARCH.replace("val/probe/word_pair_acc", "val/probe/word_pair_accuracy"),
     (r"objective.metric: 'val/probe/word_pair_accuracy' is not a metric the trials report \(did you mean "
     r"'val/probe/word_pair_acc'\?\)")),
    ("a metric reported once", SEARCH.replace("val/probe/word_pair_acc", "val/align/word_pair_acc"),
     r"objective.metric: 'val/align/word_pair_acc' is reported once"),
    ("the wrong direction", SEARCH.replace("val/probe/word_pair_acc, mode: max", "val/eval/fid, mode: max"),
     r"objective.mode: mode max would select the worst trials: min is better for val/eval/fid"),
    ("a bad mode", SEARCH.replace("mode: max", "mode: maximum"), r"objective.mode: input should be 'min' or 'max'"),
    ("search mixed with grid", SEARCH + "grid: {align.prior: [none, binary]}\n",
     r"grid: search and grid cannot be mixed \(TPE and grids never mix, docs/architecture\.md §8\)"),
    ("replicate seeds in a search", SEARCH + "seeds: [0, 1, 2]\n",
     r"seeds: a search gives every trial its own seed derived from one base seed \(seed_mode 'derived'\)"),
    ("num_samples missing", SEARCH.replace("num_samples: 4, ", ""),
     r"budget.num_samples: a search needs the number of trials to sample"),
    ("num_samples below 1", SEARCH.replace("num_samples: 4", "num_samples: 0"),
     r"budget.num_samples: input should be greater than or equal to 1 \(got 0\)"),
    ("grace period beyond the epochs", SEARCH.replace("max_concurrent: 2", "max_epochs: 2, grace_period: 3"),
     r"budget.grace_period: 3 is beyond max_epochs \(2\)"),
    ("gen.epochs as a key", SEARCH + "constants: {gen.epochs: 5}\n",
     r"constants.gen.epochs: .*set it with `budget.max_epochs`"),
    ("a constant that is also a parameter", SEARCH + "constants: {align.sigma_scale: 2.0}\n",
     r"constants.align.sigma_scale: 'align.sigma_scale' is also given in search: set it in one place"),
    ("a condition on a range", SEARCH + "  align.w_self: {uniform: [0, 1], when: {align.sigma_scale: 1.0}}\n",
     (r"search.align.w_self.when.align.sigma_scale: 'align.sigma_scale' is not another choice parameter of this "
     r"search")),
    ("a condition value the parent never takes",
     SEARCH + "  align.prior: {choice: [none, binary]}\n  align.w_loc: {uniform: [0, 1], when: {align.prior: "
              "gaussian_full}}\n",
     r"search.align.w_loc.when.align.prior: 'gaussian_full' is not one of align.prior's choices \(none, binary\)"),
    ("a key given twice", SEARCH + "profile: tiny\n", r"line 7: key 'profile' is given twice"),
    ("a group, not a key", SEARCH + "constants: {align: 3}\n", r"constants.align: 'align' is a group of keys"),
    ("nothing to run", "profile: smoke\nobjective: {metric: val/eval/fid, mode: min}\n",
     r"\(top level\): nothing to run: give one of search \(TPE\), grid, ofat or points"),
    ("num_samples with a grid",
     ("profile: smoke\ngrid: {align.prior: [none]}\nobjective: {metric: val/eval/fid, mode: min}\n"
     "budget: {num_samples: 3}\n"),
     r"budget.num_samples: a grid runs each point once per seed \(1 trial here\); num_samples belongs to searches"),
    ("a wrong value type in a grid",
     "profile: smoke\ngrid: {align.enabled: [yes, maybe]}\nobjective: {metric: val/eval/fid, mode: min}\n",
     r"grid.align.enabled\[1\]: config key 'align.enabled' expects bool, got str 'maybe'"),
    ("Guo's scorer for trials", SEARCH + "constants: {eval.scorer: guo}\n",
     r"constants.eval.scorer: trials score with our retrieval evaluator \(eval.scorer=ours\); eval.scorer=guo is "
     r"for `mate evaluate` on saved motions"),
    ("a profile that does not exist", SEARCH.replace("profile: smoke", "profile: huge"),
     r"profile: must be one of tiny, smoke, bench, paper; got 'huge'"),
]


@pytest.mark.parametrize("what, text, message", BAD, ids=[b[0] for b in BAD])
def test_each_mistake_is_one_message_naming_the_file_and_the_key(tmp_path, what, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_space(path)
    text = str(info.value)
    assert text.startswith(f"{path}: "), text
    assert re.search(message, text), text
    assert "\n" not in text


def test_fixed_keys_may_be_constants_and_a_missing_file_is_named(tmp_path):
    space = load_space(write(tmp_path, SEARCH + "constants: {evaluator: {epochs: 3}, data.num_clips: 200}\n"))
    assert space.trial_config({})["evaluator.epochs"] == 3 and space.constants["data.num_clips"] == 200
    with pytest.raises(ConfigError, match=r"nowhere.yaml: no such search-space file"):
        load_space(tmp_path / "nowhere.yaml")
    with pytest.raises(ConfigError, match=r"space.yaml: not valid YAML"):
        load_space(write(tmp_path, "profile: [smoke\n"))


def test_conditional_parameters_are_sampled_only_when_their_condition_holds(tmp_path):
    path = write(tmp_path, SEARCH + (
        "  align.prior: {choice: [none, binary, gaussian_full]}\n"
        "  align.prior_strength: {uniform: [0.5, 4.0], when: {align.prior: [binary, gaussian_full]}}\n"))
    space = load_space(path)
    trials = optuna_trials(space, 24)
    off = [t for t in trials if t["align.prior"] == "none"]
    on = [t for t in trials if t["align.prior"] != "none"]
    assert off and on
    assert all("align.prior_strength" not in t for t in off) and all("align.prior_strength" in t for t in on)
    # Tune's own samplers draw every parameter: trial_config drops the inactive one
    cfg = space.trial_config({"align.prior": "none", "align.prior_strength": 3.0, "seed": 5})
    assert cfg["align.prior_strength"] == 1.0 and cfg["seed"] == 5
    assert len({t["seed"] for t in trials}) == len(trials)  # one derived seed per trial
    assert "align.prior in (binary, gaussian_full)" in format_trials(space)
    cycle = write(tmp_path, SEARCH + (
        "  align.prior: {choice: [none, binary], when: {align.prior_mode: key_scale}}\n"
        "  align.prior_mode: {choice: [key_scale, logit_bias], when: {align.prior: binary}}\n"), "cycle.yaml")
    with pytest.raises(ConfigError, match=r"cycle.yaml: search.align.prior.when: conditions form a cycle"):
        load_space(cycle)


def test_trial_config_layers_and_refuses_strangers(tmp_path):
    space = load_space(write(tmp_path, SEARCH + "constants: {align.w_cross: 0.5}\n"))
    cfg = space.trial_config({"align.sigma_scale": 2.0}, seed=7, extra={"data.dir": "/d"})
    assert (cfg["align.sigma_scale"], cfg["align.w_cross"], cfg["seed"], cfg["data.dir"]) == (2.0, 0.5, 7, "/d")
    assert cfg["data.num_clips"] == 400  # the smoke profile
    with pytest.raises(ConfigError, match=r"space.yaml: align.prior: not a parameter of this space"):
        space.trial_config({"align.prior": "binary"})
    with pytest.raises(ConfigError, match=r"override align.sigma_scale: not allowed"):
        space.trial_config({}, extra={"align.sigma_scale": 1.0})
    assert space.trial_seed(0) != space.trial_seed(1) and space.trial_seed(3) == space.trial_seed(3)
    assert set(space.optuna_distributions()) == {"align.sigma_scale", "align.prototypes_per_word"}


def test_fingerprint_ignores_the_extensible_budget_and_sees_everything_else(tmp_path):
    base = load_space(write(tmp_path, SEARCH, "a.yaml"))
    extended = load_space(write(tmp_path, "# a comment\ndescription: more trials\n" + SEARCH.replace(
        "num_samples: 4, max_concurrent: 2", "num_samples: 40, max_concurrent: 8, time_budget_s: 3600"), "b.yaml"))
    assert base.fingerprint() == extended.fingerprint()
    check_resumable(base, extended)
    check_resumable(json.loads(json.dumps(base.identity())), extended)  # as stored beside the sweep
    check_resumable(base.fingerprint(), extended)
    nested = load_space(write(tmp_path, SEARCH + "constants: {align: {w_cross: 0.5}}\n", "c.yaml"))
    flat = load_space(write(tmp_path, SEARCH + "constants: {align.w_cross: 0.5}\n", "d.yaml"))
    assert nested.fingerprint() == flat.fingerprint() != base.fingerprint()

    narrower = load_space(write(tmp_path, SEARCH.replace("[0.25, 4.0]", "[0.5, 4.0]"), "e.yaml"))
    assert narrower.fingerprint() != base.fingerprint()
    with pytest.raises(ConfigError) as info:
        check_resumable(base.identity(), narrower)
    text = str(info.value)
    assert text.startswith(f"{tmp_path / 'e.yaml'}: cannot resume sweep 'e': its space changed since it started: ")
    assert "search.align.sigma_scale.low: 0.25 -> 0.5" in text and "--name" in text
    longer = load_space(write(tmp_path, SEARCH.replace("max_concurrent: 2", "max_concurrent: 2, max_epochs: 5"),
                              "f.yaml"))
    with pytest.raises(ConfigError, match=r"budget.max_epochs: 3 -> 5"):
        check_resumable(base, longer)
    with pytest.raises(ConfigError, match=r"fingerprint .* -> "):
        check_resumable(base.fingerprint(), longer)


def test_estimate_is_trials_times_the_profiles_per_trial_cost(tmp_path):
    smoke = estimate(load_space(SPACES / "smoke.yaml"))
    assert (smoke["trials"], smoke["per_trial_seconds"], smoke["device"]) == (4, 90.0, "cpu")
    assert smoke["total_seconds"] == 4 * 90.0 and smoke["cpu_hours"] == pytest.approx(0.1)
    assert smoke["gpu_hours"] == 0 and smoke["wall_hours"] == pytest.approx(2 * 90 / 3600)  # 2 at a time
    losses = estimate(load_space(SPACES / "ablation_losses.yaml"))
    assert losses["trials"] == 21 and losses["total_seconds"] == 21 * losses["per_trial_seconds"] == 21 * 20 * 60
    threads = SEARCH.replace("max_concurrent: 2}", "max_concurrent: 2, cpus_per_trial: 2}")
    two = estimate(load_space(write(tmp_path, threads)))
    assert two["per_trial_seconds"] == 45.0 and two["cpu_hours"] == smoke["cpu_hours"]  # ideal scaling
    cheap = estimate(load_space(write(tmp_path, SEARCH.replace("profile: smoke", "profile: tiny"))))
    assert cheap["per_trial_seconds"] == 10.0 and cheap["total_seconds"] == 40.0
    replicated = load_space(write(tmp_path, "rerun: {top: 2, seeds: [7, 8, 9]}\n" + SEARCH))
    est = estimate(replicated)
    assert (replicated.num_rerun_trials, est["trials"], est["rerun_trials"]) == (6, 4, 6)
    assert est["total_seconds"] == 10 * 90.0 and est["wall_hours"] == pytest.approx((2 + 3) * 90 / 3600)
    assert "4 trials + 6 re-runs" in describe(replicated)


def test_importing_the_space_module_stays_light():
    code = ("import sys; import mate.sweep.space; "
            "print(sorted(m for m in ('optuna', 'ray', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO / "platform"), "PATH": ""})
    assert out.stdout.strip() == "[]"


def test_a_variant_replaces_the_files_setting_and_names_a_sweep_of_its_own(tmp_path):
    plain = load_space(SPACES / "ablation_prior.yaml")
    paper = load_space(SPACES / "ablation_prior.yaml", "paper")
    assert (plain.name, plain.profile, plain.budget.cpus_per_trial) == ("ablation_prior", "bench", 1)
    assert (paper.name, paper.profile, paper.data_required) == ("ablation_prior-paper", "paper", True)
    assert (paper.budget.cpus_per_trial, paper.budget.gpus_per_trial, paper.budget.max_concurrent) == (2, 0.5, 8)
    assert paper.constants == plain.constants and paper.points == plain.points  # merged, not replaced
    assert list(paper.metrics) == ["val/probe/pair_acc"] and list(plain.metrics) == ["val/probe/word_pair_acc"]
    assert paper.fingerprint() != plain.fingerprint()
    with pytest.raises(ConfigError, match="data_required: this space runs on a real dataset; pass --data DIR"):
        paper.trial_config(paper.trials()[0])
    with pytest.raises(ConfigError, match=r"--variant gpu: no such variant \(this file has: paper\)"):
        load_space(SPACES / "ablation_prior.yaml", "gpu")
    bad = write(tmp_path, SEARCH + "variants: {big: {name: other}}\n")
    with pytest.raises(ConfigError, match=r"variants.big.name: a variant may set description, profile, "):
        load_space(bad, "big")
    assert load_space(bad).name == load_space(write(tmp_path, SEARCH)).name  # without --variant: the file as it is


def test_a_variants_design_replaces_the_files_design_whole(tmp_path):
    path = write(tmp_path, SEARCH + "variants: {few: {grid: {align.prior: [none, binary]}, seeds: [0, 1],\n"
                                    "                 budget: {num_samples: null}}}\n")
    search, few = load_space(path), load_space(path, "few")
    assert search.kind == "search" and few.kind == "grid"  # the file's search is gone, not a conflict with the grid
    assert [p for _, p in few.points] == [{"align.prior": "none"}, {"align.prior": "binary"}] and few.num_trials == 4
    bench = load_space(SPACES / "ablation_prototypes.yaml")
    paper = load_space(SPACES / "ablation_prototypes.yaml", "paper")
    assert bench.kind == "ofat" and bench.num_trials == 9
    assert [p for _, p in bench.points] == [
        {"align.prototype_vocab": "all", "align.prototypes_per_word": 1},
        {"align.prototype_vocab": "8", "align.prototypes_per_word": 1},
        {"align.prototype_vocab": "all", "align.prototypes_per_word": 4}]
    assert paper.kind == "grid" and paper.num_trials == 27 and paper.profile == "paper"
