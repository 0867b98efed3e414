"""`mate segment`: fills the workspace cache for every caption of a dataset, writes metrics.json, reports fallbacks
and agreement with the ground truth; the ground-truth backend reads the synthetic corpus's annotations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mate.cache import file_sha256
from mate.cli import main
from mate.config import resolve
from mate.text.segment import dataset_captions, segment_dataset
from mate.text.segment.truth import GroundTruthSegmenter


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): file_sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("backend", ["rules", "truth"])
def test_segment_command_on_the_synthetic_corpus(tiny_corpus, tmp_path, capsys, backend):
    before = _snapshot(tiny_corpus)
    ws, out = tmp_path / "ws", tmp_path / "out"
    argv = ["segment", "--data", str(tiny_corpus), "--backend", backend, "--workspace", str(ws), "--out", str(out),
            "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    n = len(dataset_captions(tiny_corpus))
    assert metrics["segment/captions"] == n and metrics["segment/fallbacks"] == 0
    assert metrics["segment/count_agreement"] >= 0.95 and metrics["segment/word_agreement"] >= 0.95
    if backend == "truth":
        assert metrics["segment/count_agreement"] == metrics["segment/word_agreement"] == 1.0
    assert "0 fell back to the rules" in printed and "agreement with ground truth" in printed
    (cache,) = (ws / "cache" / "segments" / backend).glob("*.jsonl")
    assert len(cache.read_text().splitlines()) == 1 + n
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["segment.backend"] == backend and run["cache"] == str(cache)
    assert _snapshot(tiny_corpus) == before  # datasets are read-only

    assert main(argv) == 0  # the second run is served by the cache
    assert f"{n} from the cache, 0 computed" in capsys.readouterr().out


def test_segment_dataset_api_and_truth_order(tiny_corpus, tmp_path):
    cfg = resolve(["segment.backend=truth"])
    run = segment_dataset(tiny_corpus, cfg, tmp_path, progress=False)
    truth = GroundTruthSegmenter(tiny_corpus)
    assert truth.model.startswith("annotations-") and run.model == truth.model
    ann = [json.loads(line) for line in (tiny_corpus / "annotations.jsonl").read_text().splitlines()]
    reordered = [c for clip in ann for c in clip["captions"] if c["reordered"]]
    assert reordered
    for c in reordered[:10]:
        seg = run.segmentations[c["text"]]
        by_segment = sorted(c["subtexts"], key=lambda s: s["segment"])
        assert seg.texts == [s["text"] for s in by_segment]  # temporal, not reading order
        for w in c["words"]:
            assert seg.index_at(w["char"]) == [s["segment"] for s in by_segment].index(w["segment"])
    (fallback,) = truth.segment(["a caption the corpus never wrote"])
    assert fallback.fallback == "no_truth" and fallback.texts


def test_errors_are_one_clear_line(tmp_path, capsys):
    def run(*argv) -> str:
        assert main(["segment", *argv, "--workspace", str(tmp_path / "ws")]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
        return err

    assert "no such dataset folder" in run("--data", str(tmp_path / "nowhere"))
    data = tmp_path / "data"
    (data / "texts").mkdir(parents=True)
    (data / "texts" / "000000.txt").write_text("a person walks then sits#a/DET person/NOUN walk/VERB then/ADV "
                                                "sit/VERB#0.0#0.0\n")
    err = run("--data", str(data), "--backend", "llama")
    assert "segment.backend" in err and "rules, openai, truth" in err
    assert "annotations.jsonl" in run("--data", str(data), "--backend", "truth")
    assert "segment.modle" in run("--data", str(data), "segment.modle=x")
    (data / "texts" / "000001.txt").write_text("broken line without fields\n")
    assert "000001.txt:1" in run("--data", str(data))


def test_rules_on_a_dataset_without_ground_truth(tmp_path, capsys):
    data = tmp_path / "data"
    (data / "texts").mkdir(parents=True)
    (data / "texts" / "000000.txt").write_text(
        "a person walks then sits#a/DET person/NOUN walk/VERB then/ADV sit/VERB#0.0#0.0\n"
        "a person walks then sits#a/DET person/NOUN walk/VERB then/ADV sit/VERB#0.0#0.0\n"
        "the man jumps after he waves#the/DET man/NOUN jump/VERB after/ADP he/PRON wave/VERB#0.0#0.0\n")
    out = tmp_path / "out"
    assert main(["segment", "--data", str(data), "--workspace", str(tmp_path / "ws"), "--out", str(out),
                 "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == {"segment/captions": 2, "segment/fallbacks": 0}  # distinct captions; no truth, no agreement
    assert "agreement" not in capsys.readouterr().out
