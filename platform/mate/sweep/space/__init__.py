"""Search-space files (`search_spaces/*.yaml`): the schema, its validation, and the trials a file describes.

A file is validated whole before anything starts (docs/architecture.md §8); every error is one `ConfigError` naming the
file, the key path inside it and what is allowed. The schema (every section but `profile`, `objective` and one of the
four `search`/`grid`/`ofat`/`points` is optional):

    name: smoke                  # the sweep's name (default: the file's stem); --name overrides it
    description: one line        # free text
    profile: smoke               # tiny | smoke | bench | paper (config PROFILES): the trial sizes
    data_required: false         # true: the sweep refuses to start without --data DIR (a real dataset)
    constants:                   # config keys set in every trial, flat dotted or nested
      align.word_sampling: motion
    search:                      # TPE (NSGA-II with several objectives): one distribution per config key
      align.sigma_scale: {loguniform: [0.25, 4.0]}      # float keys: uniform | loguniform [low, high]
      align.prototypes_per_word: {int: [1, 4]}          # int keys: int [low, high] (inclusive; step, log optional)
      align.prior: {choice: [binary, gaussian_full]}    # any key: choice [values]
      align.prior_strength: {uniform: [0.5, 4.0], when: {align.prior: [binary, gaussian_full]}}
    grid:                        # or: a Cartesian product, first key slowest
      align.prototypes_per_word: [1, 2, 4]
    ofat:                        # or: one factor at a time around a base (the base point once)
      base: {align.prior: gaussian_full}
      vary: {align.prior: [none, binary], align.sigma_scale: [0.5, 2.0]}
    points:                      # or: an explicit list of points (override dicts; {} is the constants alone)
      - {}
      - {align.enabled: false}
    seeds: [0, 1, 2]             # see seed_mode below
    objective:                   # one {metric, mode} or a list of them; every metric is a val/* figure
      metric: val/probe/word_pair_acc
      mode: max
    budget:
      num_samples: 4             # trials a search samples (searches only; a grid runs points x seeds)
      max_epochs: 3              # generator epochs of every trial (sets gen.epochs; ASHA's max_t); default: profile's
      grace_period: 1            # ASHA: epochs before a trial may be stopped (<= max_epochs)
      cpus_per_trial: 1          # the trial's threads
      gpus_per_trial: 0          # may be fractional (<= 1) to share a GPU
      max_concurrent: 2          # trials at once
      time_budget_s: 300         # optional wall-clock cap of the sweep
      max_failures: 2            # Tune's retries of a failed trial, from its last checkpoint
    rerun: {top: 3, seeds: [1, 2, 3]}   # searches only: re-run the best configs over these replicate seeds
    variants:                    # --variant NAME: these fields over the file's (constants, budget merged; a design
                                 # such as grid replaces the file's design whole); the
      paper: {profile: paper, data_required: true, budget: {gpus_per_trial: 0.5}}   # sweep is named <name>-NAME

Rules. Every parameter is a registered config key (mate.config.KEYS) whose type fits its distribution (uniform and
loguniform need a float key, int an int key; bool and str keys take `choice`) and every value is checked with
`check_value`. `profile`, `seed` and `gen.epochs` are set through `profile:`, `seeds:` and `budget.max_epochs`, never as
keys; keys the prepare stage fixes for a whole sweep (`data.*` but `data.random_crop`, `encoder.*`, `evaluator.*`, the
measurement keys `eval.scorer|official_dir|repeats|samples|pairs|val_items`, how the LLM is reached) and
stage seeds may be constants but never vary (`fixed_reason` says why). A key is a constant or a parameter, not both.
`search` never mixes with a grid (docs/architecture.md §8). Unknown keys anywhere, duplicate YAML keys and `1e-3` (YAML
1.1 text; write `1.0e-3`) are errors.

Conditional parameters: `when: {parent: value or [values], ...}` on a search parameter samples it only when every
parent (a `choice` parameter of the same search) took one of those values; otherwise the key keeps its constant /
profile / default value. Conditions may chain; cycles are refused.

seed_mode. A search is `derived`: one base seed (`seeds` absent = [0], or a single entry) seeds the sampler, and trial
number n runs with `derive_seed(base, "trial<n>")`: one seed per trial, never replicates (TPE must not see the same
config twice as two points). Grids are `replicates`: every point runs once per seed in `seeds` (default [0]), seed
the outer loop, so a partial run already holds every point. Replicates of a search's best configs: `rerun`.

Objectives are `val/` + a figure reported after every generator epoch (`eval/*` and `probe/*` of docs/architecture.md
§7): test figures never drive selection, and `val/align/*` rides on the first report only. One objective: TPE + ASHA on
generator epochs; several: NSGA-II (or a grid) with FIFO, never ASHA.

Resume: `fingerprint()` hashes everything except `name`, `description` and the budget keys a sweep's extension may
change (num_samples, max_concurrent, time_budget_s); `check_resumable(old, new)` names whatever else changed.

The package, by concern: `load` (YAML, variants, error messages) -> `schema` (the structure, pydantic) -> `checks`
(what the values mean) -> `model` (`Space`: trials, configs, resume), with `kinds` the one table from a parameter's
kind to its Optuna and Tune forms. The `--dry-run` text and estimate: `mate.sweep.dryrun`.
"""


from mate.config import ConfigError

from .checks import fixed_reason
from .kinds import Param
from .load import apply_variant, load_space
from .model import Space, check_resumable
from .schema import Budget, Objective, Rerun

__all__ = ["Budget", "ConfigError", "Objective", "Param", "Rerun", "Space", "apply_variant", "check_resumable",
           "fixed_reason", "load_space"]
