"""`mate clean` on a real tiny workspace: caches a run names stay (and the run still loads), derived and orphaned
ones go, crashed writers' temporaries go, LLM answers stay; with the run gone, its pack and evaluator go too."""

from __future__ import annotations

import shutil

import pytest

from mate.cli import main
from mate.config import resolve
from mate.pipeline import load_run, run_trial

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow
def test_clean_keeps_what_runs_reference(tiny_corpus, tmp_path, capsys):
    ws = tmp_path / "ws"
    cfg = resolve({"profile": "tiny", "data.dir": str(tiny_corpus), "align.enabled": False, "gen.epochs": 1})
    run_trial(cfg, None, workspace=ws, out=ws / "runs" / "r1", log=lambda s: None)
    cache = ws / "cache"
    (cache / "packs" / ".orphan.123.tmp").write_bytes(b"x" * 100)
    (cache / "segments").mkdir(exist_ok=True)
    (cache / "segments" / "answers.json").write_text("{}")
    text_before = sorted((cache / "text").glob("*.safetensors"))
    assert text_before and any((cache / "packs").iterdir()) and any((cache / "evaluators").iterdir())

    assert main(["clean", "--workspace", str(ws), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would remove" in out and ".orphan.123.tmp" in out and all(p.exists() for p in text_before)

    assert main(["clean", "--workspace", str(ws)]) == 0
    assert not list((cache / "text").glob("*.safetensors")) and not (cache / "packs" / ".orphan.123.tmp").exists()
    assert (cache / "segments" / "answers.json").is_file()
    assert [p for p in (cache / "evaluators").iterdir() if p.is_dir()]  # the run's scoring evaluator stays
    run = load_run(ws / "runs" / "r1", ws)  # and the run still loads (its pack is there)
    assert run.sample(["a person walks"], [8])[0][0].shape == (8, 263)

    shutil.rmtree(ws / "runs")
    assert main(["clean", "--workspace", str(ws)]) == 0
    assert not [p for p in (cache / "packs").iterdir() if p.is_dir() and p.name != "aliases"]
    assert not [p for p in (cache / "evaluators").iterdir() if p.is_dir()]
