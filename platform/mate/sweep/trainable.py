"""The Tune trainable: `run_trial` with `tune.report` as its report and Tune's checkpoint as its resume_dir.

Only `ray.tune.*` APIs inside the trial (tune.report, tune.Checkpoint, tune.get_checkpoint). The trial writes its
artifacts into Tune's trial directory; the driver's MLflow callback logs them (trials never open MLflow,
docs/architecture.md §8).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def trial_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's own keys from Tune's config: a search's sampled keys and seed, or a grid point or a replicate
    (under `trial`; a replicate's marker `rerun_of` is not a key)."""
    from mate.sweep.rerun import strip

    return strip(config["trial"]) if "trial" in config else dict(config)


def rerun_of(config: Mapping[str, Any]) -> str | None:
    """The search trial a replicate repeats (`mate.sweep.rerun`), None for every other trial."""
    from mate.sweep.rerun import RERUN_KEY

    trial = config.get("trial")
    return trial.get(RERUN_KEY) if isinstance(trial, Mapping) else None


def _cpu_share(cpus: float) -> int:
    return max(1, int(cpus))


def trial_function(config: Mapping[str, Any], *, space, workspace: str, pinned: Mapping[str, Any],
                   cpus: float = 1.0, gpus: float = 0.0, shipped: Mapping[str, Any] | None = None) -> None:
    """One sweep trial. `config` holds the sampled keys and `seed` (a grid: one point under `trial`); `pinned` the
    keys every trial of the sweep shares (the prepared dataset, the evaluator seeds and sha: docs/architecture.md §8);
    `shipped`, on a cluster, where the prepare outputs were published (fetched once per node into a node-local
    workspace)."""
    import tempfile

    import ray
    from ray import tune

    import mate
    from mate.pipeline import run_trial
    from mate.sweep.gpu import GpuMonitor, is_oom, limit_memory, oom_message
    from mate.sweep.nodes import fetch, shipped_model

    extra = dict(pinned)
    if shipped:
        node_ws, node_data = fetch(dict(shipped), ray.get_runtime_context().get_node_id())
        workspace, extra["data.dir"] = str(node_ws), str(node_data)
        if model := shipped_model(dict(shipped), node_ws):  # the driver's encoder.path, shipped in the bundle
            extra["encoder.path"] = model
    cfg = space.trial_config(trial_params(config), extra=extra)
    out = trial_working_dir() / "run"  # synced to the sweep's storage with every checkpoint (sync_artifacts)
    restored = tune.get_checkpoint()
    resume = None
    if restored is not None:
        resume = Path(tempfile.mkdtemp(prefix="mate-resume-"))
        restored.to_directory(str(resume))
    limit_memory(gpus)
    gpu = GpuMonitor()
    started = time.time()

    def report(metrics: dict, checkpoint_dir: Path | None = None) -> None:
        # evidence for the rule (docs/architecture.md §8) that trials never talk to MLflow (the driver's callback is the
        # only writer); written before the report: a scheduler may stop the trial inside it
        out.mkdir(parents=True, exist_ok=True)
        (out / "process.json").write_text(json.dumps({
            "pid": os.getpid(), "niceness": os.nice(0), "mlflow_imported": "mlflow" in sys.modules,
            "mate_file": mate.__file__,
            "node_id": ray.get_runtime_context().get_node_id(), "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "started": started, "reported": time.time()}))
        clean = {k: float(v) for k, v in {**metrics, **gpu.sample()}.items() if isinstance(v, (int, float))}
        clean["run_dir"] = str(out)  # type: ignore[assignment]  # the callback finds the artifacts here
        if checkpoint_dir is not None:
            tune.report(clean, checkpoint=tune.Checkpoint.from_directory(str(checkpoint_dir)))
        else:
            tune.report(clean)

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # the checkpoint (weights + optimizer state) lives outside the synced working directory: Tune's checkpoint is its
    # one upload per epoch (inside `run/` it went up a second time with the artifacts)
    ckpt = Path(tempfile.mkdtemp(prefix="mate-ckpt-"))
    try:
        run_trial(cfg, report, resume_dir=resume, workspace=workspace, out=out, threads=_cpu_share(cpus),
                  progress=False, log=lambda s: print(s, flush=True), checkpoint_dir=ckpt)
    except Exception as exc:
        if is_oom(exc):
            raise RuntimeError(oom_message(gpus)) from exc
        raise
    finally:
        shutil.rmtree(ckpt, ignore_errors=True)
        if resume is not None:
            shutil.rmtree(resume, ignore_errors=True)


def trial_working_dir() -> Path:
    """The trial's working directory, whose files Tune syncs to storage (the trial dir Tune names elsewhere lives on
    the driver's node, which another node cannot write to)."""
    from ray import tune

    return Path(tune.get_context().get_storage().trial_working_directory)
