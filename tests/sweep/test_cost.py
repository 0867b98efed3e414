"""`--dry-run` of a GPU sweep: GPU-hours per stage from the paper profile's sizes (MoMask's and MDM's step counts),
each stage present only where the config runs it, and the step times labelled as assumptions until measured."""

from __future__ import annotations

from pathlib import Path

from mate.config import resolve
from mate.sweep.cost import STEP_SECONDS, format_stages, stages

REPO = Path(__file__).resolve().parents[2]


def _by_name(cfg) -> dict:
    return {s.name: s for s in stages(cfg)}


def test_stage_steps_follow_the_published_recipes_and_the_config():
    masked = _by_name(resolve({"profile": "paper"}))
    assert masked["generator"].steps == 180_000 and "tokenizer" in masked and masked["tokenizer"].once
    diffusion = _by_name(resolve({"profile": "paper", "gen.kind": "diffusion"}))
    assert diffusion["generator"].steps == 600_000 and "tokenizer" not in diffusion
    assert "alignment" not in _by_name(resolve({"profile": "paper", "align.enabled": False}))
    once = _by_name(resolve({"profile": "paper", "eval.regenerate": False, "eval.mm_texts": 0}))
    assert once["scoring"].steps < masked["scoring"].steps  # 20 regenerations and MultiModality cost generations
    assert masked["alignment"].gpu_hours == masked["alignment"].steps * STEP_SECONDS["align"] / 3600


def test_the_table_adds_per_trial_stages_once_per_trial_and_says_its_step_times_are_assumed():
    cfg = resolve({"profile": "paper"})
    one, ten = format_stages(cfg, 1, 0.5, 8), format_stages(cfg, 10, 0.5, 8)
    total = lambda text: float(text.split("total ")[1].split(" GPU-hours")[0])  # noqa: E731
    per_trial = sum(s.gpu_hours for s in stages(cfg) if not s.once)
    assert abs(total(ten) - total(one) - 9 * per_trial) < 0.2
    assert "ASSUMED" in one and "4 GPUs" in one


def test_dry_run_of_the_paper_space_prints_the_stages(capsys):
    from mate.cli import main

    assert main(["sweep", str(REPO / "search_spaces" / "mate_humanml3d.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "GPU-hours by stage" in out and "masked generator" in out and "180,000 steps" in out
