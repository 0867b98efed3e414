"""Every private Ray / Optuna attribute the platform's code touches, each behind one named function, checked on
Ray 2.60.0 and Optuna 5.0.0. `tests/sweep/test_private_api.py` fails when one of them moves or changes shape, so an
upgrade breaks there, with the name of the attribute, not in the middle of a sweep.

Where a public or developer hook exists the code uses it instead: the trial's working directory is
`tune.get_context().get_storage().trial_working_directory` (a DeveloperAPI), ASHA's time attribute and horizon are the
values the driver gave it, an Optuna trial's state is read through the public storage API.

Private names used by tests and benches only (they break loudly there): `ray.autoscaler._private.util`
(`tests/sweep/test_cluster_config.py`: the autoscaler's own validation of ray_cluster.yaml) and
`ray._private.internal_api.node_stats` (`bench/ship_bench.py`: object-store traffic per node).
"""

from __future__ import annotations

from typing import Any

HEAD_RESOURCE = "node:__internal_head__"  # the resource Ray gives the head node only (no public "is head" flag)


def optuna_search_trials(search: Any) -> dict[str, Any]:
    """`OptunaSearch._ot_trials`: Tune trial id -> the `optuna.Trial` it asked for. No public accessor: the pruning
    search needs it to tell Optuna PRUNED/FAIL for a trial Tune ended (Ray tells COMPLETE with the last value)."""
    return search._ot_trials


def optuna_search_completed(search: Any) -> set[str]:
    """`OptunaSearch._completed_trials`: the Tune trial ids it has told Optuna about; the pruning search adds the
    ones it tells itself, so Ray's own `on_trial_complete` does not tell them a second time."""
    return search._completed_trials
