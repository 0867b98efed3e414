"""The synthetic corpus on disk: HumanML3D layout and formats, splits, held-out combinations, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mate.data.captions import read_captions
from mate.data.check import check_dataset
from mate.data.layout import read_split
from mate.data.skeleton import T2M
from mate.data.synth import synthesize
from mate.data.synth.corpus import assign, split_sizes
from mate.data.synth.schema import HELD_OUT_SET, VALUES
from mate.data.synth.vocab import ACTION_FORMS, HARD_CASE

POS_TAGS = {"DET", "NOUN", "VERB", "ADV", "ADP", "ADJ", "CCONJ", "SCONJ", "PRON", "AUX", "PART"}


def _annotations(root: Path) -> dict[str, dict]:
    return {a["id"]: a for a in map(json.loads, (root / "annotations.jsonl").read_text().splitlines())}


def _splits(root: Path) -> dict[str, list[str]]:
    return {n: read_split(root / f"{n}.txt") for n in ("train", "val", "test", "val_comp", "test_comp")}


def test_layout_shapes_and_stats(tiny_corpus):
    splits = _splits(tiny_corpus)
    ids = splits["train"] + splits["val"] + splits["test"]
    assert sorted(ids) == [f"{i:06d}" for i in range(128)]
    train_rows = []
    for cid in ids:
        f = np.load(tiny_corpus / "new_joint_vecs" / f"{cid}.npy")
        j = np.load(tiny_corpus / "new_joints" / f"{cid}.npy")
        assert f.dtype == np.float32 and f.ndim == 2 and f.shape[1] == 263 and 40 <= len(f) <= 196
        assert j.dtype == np.float32 and j.shape == (len(f), 22, 3)
        assert np.isfinite(f).all()
        if cid in splits["train"]:
            train_rows.append(f.astype(np.float64))
    mean, std = np.load(tiny_corpus / "Mean.npy"), np.load(tiny_corpus / "Std.npy")
    assert mean.shape == std.shape == (263,) and mean.dtype == std.dtype == np.float32
    data = np.concatenate(train_rows)
    np.testing.assert_allclose(mean, data.mean(0), rtol=1e-5, atol=1e-6)
    raw_std = data.std(0)
    for name, sl in T2M.feature_slices().items():  # HumanML3D: the group's mean std, for every dim of the group
        np.testing.assert_allclose(std[sl], raw_std[sl].mean(), rtol=1e-4, err_msg=name)
    assert check_dataset(tiny_corpus) == []  # the platform's own validator finds nothing wrong


def test_captions_parse_in_humanml3d_format(tiny_corpus):
    verb_forms = {w for forms in ACTION_FORMS.values() for v in forms
                  for w in (v.finite.split()[0], v.gerund.split()[0])}
    for path in sorted((tiny_corpus / "texts").glob("*.txt")):
        lines = path.read_text().splitlines()
        assert len(lines) == 3
        for line in lines:
            text, toks, start, end = line.split("#")
            assert (start, end) == ("0.0", "0.0")
            for tok in toks.split():
                word, pos = tok.split("/")
                assert pos in POS_TAGS and word.isalpha() and word == word.lower(), tok
                if pos in ("VERB", "NOUN") and word not in ("squat", "kick", "wave"):
                    assert word not in verb_forms, f"{tok} is not lemmatised in {path.name}"
        caps = read_captions(path)  # the platform's reader accepts every line
        assert [c.whole for c in caps] == [True] * 3
    sample = (tiny_corpus / "texts").glob("*.txt")
    words = {t for p in sample for line in p.read_text().splitlines() for t in line.split("#")[1].split()}
    assert "walk/VERB" in words and not any(w.startswith("walks/") for w in words)


def test_split_sizes_and_comp_subsets(tiny_corpus):
    s = _splits(tiny_corpus)
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == (64, 32, 32)
    assert not (set(s["train"]) & set(s["val"])) and not (set(s["val"]) & set(s["test"]))
    assert set(s["val_comp"]) <= set(s["val"]) and set(s["test_comp"]) <= set(s["test"])
    assert len(s["val_comp"]) >= 8 and len(s["test_comp"]) >= 8
    assert split_sizes(2000) == (1600, 200, 200) and split_sizes(400) == (320, 40, 40)
    split, role = assign(2000, 0)
    assert sum(r == "comp" for r in role) == 150 and all(r == "train" for s_, r in zip(split, role) if s_ == "train")


def test_held_out_combinations_never_in_train(tiny_corpus):
    anns = _annotations(tiny_corpus)
    s = _splits(tiny_corpus)
    comp = set(s["val_comp"]) | set(s["test_comp"])
    for cid, a in anns.items():
        seg_combos = {(g["action"], k, v) for g in a["segments"] for k, v in g["attributes"].items()}
        word_combos = {(a["segments"][w["segment"]]["action"], w["attribute"], w["value"])
                       for c in a["captions"] for w in c["words"]}
        has = bool((seg_combos | word_combos) & HELD_OUT_SET)
        assert has == (cid in comp), cid  # held-out combinations exactly in the comp clips, never in train
        assert a["compositional"] == (cid in comp)
        assert a["split"] == next(n for n in ("train", "val", "test") if cid in s[n])
    # and each comp split exercises several different held-out combinations
    seen = {tuple(h) for cid in comp for g in anns[cid]["segments"] for h in g.get("held_out", [])}
    assert len(seen) >= 3


def test_annotations_consistent_with_captions(tiny_corpus):
    anns = _annotations(tiny_corpus)
    reordered, before_after = 0, 0
    for cid, a in anns.items():
        spans = [g["span"] for g in a["segments"]]
        assert spans[0][0] == 0 and spans[-1][1] == a["length"] and 1 <= len(spans) <= 3
        assert all(x[1] == y[0] for x, y in zip(spans, spans[1:]))
        lines = (tiny_corpus / "texts" / f"{cid}.txt").read_text().splitlines()
        assert [c["text"] for c in a["captions"]] == [line.split("#")[0] for line in lines]
        for c in a["captions"]:
            assert sorted(c["order"]) == list(range(len(spans)))
            assert [st["segment"] for st in c["subtexts"]] == c["order"]
            for st in c["subtexts"]:
                assert c["text"][st["chars"][0]:st["chars"][1]] == st["text"] and st["span"] == spans[st["segment"]]
            for w in c["words"]:
                assert c["text"][w["char"]:w["char"] + len(w["surface"])] == w["surface"]
                g = a["segments"][w["segment"]]
                truth = g["action"] if w["attribute"] == "action" else g["attributes"].get(w["attribute"])
                assert w["value"] == truth and w["value"] in VALUES[w["attribute"]]
                assert ("hard_case" in w) == ("-clockwise" in w["surface"])
            assert sum(w["attribute"] == "action" for w in c["words"]) == len(spans)
            if "before" in c["template"] or "after G" in c["template"]:
                before_after += 1
                reordered += c["reordered"]
    assert before_after > 20 and 0.3 <= reordered / before_after <= 0.7  # word order is often not frame order


def test_meta(tiny_corpus):
    meta = json.loads((tiny_corpus / "meta.json").read_text())
    assert meta["seed"] == 0 and meta["num"] == 128 and meta["version"]
    assert {(h["action"], h["attribute"], h["value"]) for h in meta["held_out"]} == set(HELD_OUT_SET)
    for attribute, values in meta["vocabulary"].items():
        for value, forms in values.items():
            assert len(forms) >= 2, (attribute, value)
    assert "anti-clockwise" in meta["vocabulary"]["turn"]["counterclockwise"]
    assert "anti-clockwise" in meta["hard_cases"][HARD_CASE]
    assert "negative" in meta["conventions"]["root_angular_velocity"]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_deterministic_for_a_seed_and_any_worker_count(tmp_path):
    a = synthesize(tmp_path / "a", num=24, seed=5, progress=False, workers=1)
    synthesize(tmp_path / "b", num=24, seed=5, progress=False, workers=2)
    synthesize(tmp_path / "c", num=24, seed=6, progress=False, workers=1)
    fa, fb, fc = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert fa == fb  # byte-identical across runs and worker counts
    assert fa.keys() == fc.keys()
    assert fa["new_joint_vecs/000000.npy"] != fc["new_joint_vecs/000000.npy"]
    assert fa["texts/000003.txt"] != fc["texts/000003.txt"]
    assert a["splits"]["val"] == 6 and sum(a["splits"][k] for k in ("train", "val", "test")) == 24


def test_rewriting_a_smaller_corpus_removes_stale_clips(tmp_path):
    synthesize(tmp_path, num=12, seed=1, progress=False)
    synthesize(tmp_path, num=10, seed=1, progress=False)
    assert sorted(p.stem for p in (tmp_path / "new_joint_vecs").iterdir()) == [f"{i:06d}" for i in range(10)]
    assert check_dataset(tmp_path) == []


def test_rejects_an_empty_corpus(tmp_path):
    with pytest.raises(ValueError, match="num"):
        synthesize(tmp_path, num=0, seed=0, progress=False)
