"""The Tune trainable: `run_trial` with `tune.report` as its report and Tune's checkpoint as its resume_dir.

Only `ray.tune.*` APIs inside the trial (tune.report, tune.Checkpoint, tune.get_checkpoint). The trial writes its
artifacts into Tune's trial directory; the driver's MLflow callback logs them (trials never open MLflow, DESIGN 5).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def trial_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's own keys from Tune's config: a search's sampled keys and seed, or a grid point (under `trial`)."""
    return dict(config["trial"]) if "trial" in config else dict(config)


def _cpu_share(cpus: float) -> int:
    return max(1, int(cpus))


def trial_function(config: Mapping[str, Any], *, space, workspace: str, pinned: Mapping[str, Any],
                   cpus: float = 1.0) -> None:
    """One sweep trial. `config` holds the sampled keys and `seed` (a grid: one point under `trial`); `pinned` the
    keys every trial of the sweep shares (the prepared dataset, the evaluator seeds and sha: DESIGN 5)."""
    import tempfile

    from ray import tune

    from mate.pipeline import run_trial

    cfg = space.trial_config(trial_params(config), extra=pinned)
    context = tune.get_context()
    out = Path(context.get_trial_dir()) / "run"
    restored = tune.get_checkpoint()
    resume = None
    if restored is not None:
        resume = Path(tempfile.mkdtemp(prefix="mate-resume-"))
        restored.to_directory(str(resume))

    def report(metrics: dict, checkpoint_dir: Path | None = None) -> None:
        # evidence for DESIGN 5's rule that trials never talk to MLflow (the driver's callback is the only writer);
        # written before the report: a scheduler may stop the trial inside it
        out.mkdir(parents=True, exist_ok=True)
        (out / "process.json").write_text(json.dumps({"pid": os.getpid(),
                                                      "mlflow_imported": "mlflow" in sys.modules}))
        clean = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
        clean["run_dir"] = str(out)  # type: ignore[assignment]  # the callback finds the artifacts here
        if checkpoint_dir is not None:
            tune.report(clean, checkpoint=tune.Checkpoint.from_directory(str(checkpoint_dir)))
        else:
            tune.report(clean)

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    run_trial(cfg, report, resume_dir=resume, workspace=workspace, out=out, threads=_cpu_share(cpus),
              progress=False, log=lambda s: print(s, flush=True))
