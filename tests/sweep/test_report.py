"""The sweep table read back from Tune's trial folders: a sweep stopped mid-way must not call a trial that is still
held or never reported "failed" (that word means an error, and `error.txt` says so), and rows name trials by id."""

from __future__ import annotations

import json

from mate.sweep.report import collect


def test_an_interrupted_sweep_tells_failed_stopped_and_unreported_trials_apart(tmp_path):
    run = tmp_path / "tune" / "run-1"
    kinds = {"aaaa1111": "finished", "bbbb2222": "stopped", "cccc3333": "failed", "dddd4444": "no result"}
    for n, (tid, kind) in enumerate(kinds.items()):
        trial = run / f"trial_function_{tid}_{n + 1}_align_sigma_scale=0.5,seed=7_2026-11-24_16-28-48"
        trial.mkdir(parents=True)
        (trial / "params.json").write_text(json.dumps({"align.sigma_scale": 0.5, "seed": 7}))
        if kind in ("finished", "stopped"):
            (trial / "result.json").write_text(json.dumps({"trial_id": tid, "val/eval/r_precision_top3": 0.2}) + "\n")
        if kind == "finished":
            (trial / "run").mkdir()
            (trial / "run" / "metrics.json").write_text("{}")
            (trial / "run" / "run.json").write_text(json.dumps({"config": {}}))
        if kind == "failed":
            (trial / "error.txt").write_text("RuntimeError: boom")
    rows = collect(tmp_path)
    assert {r["trial"]: r["status"] for r in rows} == kinds
