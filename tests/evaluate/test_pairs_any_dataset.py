"""A HumanML3D-layout folder with none of the synthetic corpus's extras (no `annotations.jsonl`, no `prompts/`, no
compositional split files), as a real dataset comes: a whole tiny trial (MATE alignment included) runs on it, and its
word-level figures are the `probe/pair_*` built from its own captions."""

from __future__ import annotations

import json
import shutil

import pytest

from mate.config import resolve
from mate.pipeline import run_trial

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def stripped(tiny_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("stripped") / "hml"
    shutil.copytree(tiny_corpus, out, ignore=shutil.ignore_patterns("annotations.jsonl", "prompts", "*_comp.txt"))
    assert (out / "texts").is_dir() and not (out / "annotations.jsonl").exists() and not (out / "prompts").exists()
    return out


def test_a_trial_on_a_dataset_without_annotations_reports_pair_probes(stripped, trial_ws):
    reports = []
    out = trial_ws / "runs" / "stripped"
    cfg = resolve({"profile": "tiny", "data.dir": str(stripped), "gen.epochs": 1})
    metrics = run_trial(cfg, lambda m, c=None: reports.append(dict(m)), workspace=trial_ws, out=out)
    saved = json.loads((out / "metrics.json").read_text())
    for k in ("probe/pair_acc", "probe/pair_count"):
        assert k in saved and k in metrics
    assert 0.0 <= saved["probe/pair_acc"] <= 1.0 and saved["probe/pair_count"] == cfg["eval.lexicon_pairs"]
    assert any(k.startswith("probe/pair_acc_") for k in saved)
    assert "val/probe/pair_acc" in reports[0]  # a val objective on any dataset
    assert not any(k.startswith(("probe/word_pair", "probe/turn_acc", "val/probe/word_pair")) for k in saved)
