"""MATE's training items on real tiny corpora: localization (model and annotated spans, cache, fallbacks, timed
captions), word occurrences (sampling, lemmas, repeated words), prototype vocabulary, false-negative masks against
the synthetic annotations, and batching."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from mate.align import words as W
from mate.align.batches import collate, crop_window, sample_batch
from mate.align.items import (PrototypeVocab, build_items, caption_words, false_negative_counts, false_negative_rate,
                              meaning_absent, prototype_vocab, same_caption, same_word)
from mate.align.localize import KINDS, localization_iou, localize
from mate.config import resolve
from mate.data.pack import open_pack
from mate.errors import UserError
from mate.evaluate.partition import equal_split
from mate.evaluate.truth import load_annotations

TRUTH = ["profile=tiny", "segment.backend=truth"]


pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def tiny(tiny_corpus, tmp_path_factory, minilm):
    ws = tmp_path_factory.mktemp("ws-items")
    pack = open_pack(tiny_corpus, ws, progress=False)
    cfg = resolve(TRUTH)
    loc = localize(pack, minilm, cfg, ws, progress=False)
    return ws, pack, cfg, loc, load_annotations(tiny_corpus)


@pytest.fixture(scope="module")
def train_items(tiny, minilm):
    _, pack, cfg, loc, _ = tiny
    return {s: build_items(pack, minilm, loc, cfg, "train", word_sampling=s) for s in W.SAMPLINGS}


EXTRA = [  # appended to one train clip of a copy of the tiny corpus (rules backend: not in the annotations)
    "a person walks forward then walks backward#a/DET person/NOUN walk/VERB forward/ADV then/ADV walk/VERB "
    "backward/ADV#0.0#0.0",
    "a person jumps and then squats#a/DET person/NOUN jump/VERB and/CCONJ then/ADV squat/VERB#0.5#6.0",  # rows 10:120
    "a person kicks then waves#a/DET person/NOUN kick/VERB then/ADV wave/VERB#0.0#0.5",  # rows 0:10, too short
    "someone is there#someone/PRON is/AUX there/ADV#0.0#0.0",  # no motion word
]


@pytest.fixture(scope="module")
def edited(tiny_corpus, tmp_path_factory, minilm):
    """A copy of the tiny corpus with EXTRA captions on a train clip of >= 130 rows, localized with the rules."""
    root = tmp_path_factory.mktemp("edited") / "corpus"
    shutil.copytree(tiny_corpus, root)
    ws = tmp_path_factory.mktemp("ws-edited")
    first = open_pack(root, ws, progress=False)
    clip = next(c for c in first.split("train") if first.lengths[first.index(c)] >= 130)
    with open(root / "texts" / f"{clip}.txt", "a") as f:
        f.write("".join(line + "\n" for line in EXTRA))
    pack = open_pack(root, ws, progress=False)
    cfg = resolve(["profile=tiny"])
    loc = localize(pack, minilm, cfg, ws, progress=False)
    return ws, pack, cfg, loc, clip


# ------------------------------------------------------------------------------------------- localization


def test_annotated_spans_reproduce_the_truth_exactly(tiny, minilm):
    ws, pack, cfg, _, notes = tiny
    loc = localize(pack, minilm, cfg, ws, progress=False, spans="truth")
    assert loc.counts["truth"] == loc.counts["captions"] == int(pack.cap_ptr[-1])
    for (cid, j), entries in loc.items():
        cap = notes[cid]["captions"][j]
        subs = sorted(cap["subtexts"], key=lambda s: (s["segment"], s["chars"][0]))
        assert [(e[0], e[1], e[2], e[3], e[4]) for e in entries] == [
            (s["text"], *s["chars"], *s["span"]) for s in subs]
    assert localization_iou(loc, pack, notes)["iou"] == 1.0


def test_model_partition_overlaps_annotated_segments(tiny):
    _, pack, _, loc, notes = tiny
    assert loc.counts["partition"] > 100 and loc.counts["short"] == 0
    assert loc.meta["segment"][0] == "truth" and len(loc.meta["evaluator"]) == 64
    for (cid, j), entries in loc.items():
        k = int(pack.cap_ptr[pack.index(cid)]) + j
        a, b = (int(v) for v in pack.cap_rows[k])
        rows = [(e[3], e[4]) for e in entries]
        assert rows[0][0] == a and rows[-1][1] == b  # contiguous cover of the caption's rows, in temporal order
        assert all(r0[1] == r1[0] for r0, r1 in zip(rows, rows[1:])) and all(s < e for s, e in rows)
        if len(entries) >= 2:  # at least align.min_segment (2) tokens each
            assert all(e - s >= 8 for s, e in rows[:-1])
        text = pack.caption(k).text
        assert all(text[e[1]:e[2]] == e[0] for e in entries)
    found = localization_iou(loc, pack, notes)
    print(f"\nlocalization IoU, tiny evaluator (2 epochs): {found}")
    assert found["captions"] > 100 and found["iou"] > 0.5


def test_localization_is_cached_once_per_dataset(tiny, minilm):
    ws, pack, cfg, loc, _ = tiny
    spans = loc.path / "spans.npz"
    stamp = spans.stat().st_mtime_ns
    again = localize(pack, minilm, cfg, ws, splits=["test"], progress=False)
    assert again.path == loc.path and spans.stat().st_mtime_ns == stamp
    assert set(again) == {(cid, j) for cid in pack.split("test") for j in range(len(pack.captions(cid)))}
    assert all(again[k] == loc[k] for k in again)
    other = localize(pack, minilm, cfg, ws, progress=False, min_len=3)
    assert other.path != loc.path and other.meta["min_len"] == 3


def test_short_captions_fall_back_to_the_equal_split(tiny, minilm):
    ws, pack, cfg, _, _ = tiny
    loc = localize(pack, minilm, cfg, ws, progress=False, min_len=40)  # 2 x 40 tokens = 320 rows: every clip short
    assert loc.counts["partition"] == 0 and loc.counts["short"] > 100
    for (cid, j), entries in loc.items():
        if len(entries) >= 2:
            k = int(pack.cap_ptr[pack.index(cid)]) + j
            a, b = (int(v) for v in pack.cap_rows[k])
            assert [(e[3], e[4]) for e in entries] == [(a + s, a + e) for s, e in equal_split(b - a, len(entries))]


def test_timed_captions_use_their_sub_clip(edited):
    _, pack, _, loc, clip = edited
    n = len(pack.captions(clip))
    timed = loc[(clip, n - 3)]  # "a person jumps and then squats", 0.5 s to 6.0 s
    assert [e[0] for e in timed] == ["a person jumps", "squats"]
    assert timed[0][3] == 10 and timed[-1][4] == 120 and timed[0][4] == timed[1][3]
    short = loc[(clip, n - 2)]  # rows 0:10 cannot hold 2 segments of 2 tokens
    assert [(e[3], e[4]) for e in short] == [(0, 5), (5, 10)]
    assert loc.counts["short"] == 1
    assert set(KINDS) <= set(loc.counts)


# ---------------------------------------------------------------------------------------------- items


def test_caption_words_match_the_encoder(tiny, minilm):
    _, pack, _, _, _ = tiny
    texts = [pack.caption(k).text for k in range(int(pack.cap_ptr[-1]))] + ["a person's left-hand waves, twice!"]
    assert caption_words(minilm, texts, batch=50) == [minilm.words(t) for t in texts]


def test_repeated_words_are_separate_occurrences_with_their_own_segments(edited, minilm):
    _, pack, cfg, loc, clip = edited
    items = build_items(pack, minilm, loc, cfg, "train")
    k = int(pack.cap_ptr[pack.index(clip)]) + len(pack.captions(clip)) - 4
    occ = [items.occurrence(m) for m in np.nonzero(items.caption == k)[0]]
    assert [o["word"] for o in occ] == ["walks", "forward", "walks", "backward"]
    walks = [o for o in occ if o["word"] == "walks"]
    assert [o["subtext"] for o in walks] == [0, 1] and walks[0]["span"][1] == walks[1]["span"][0]
    assert walks[0]["lemma"] == walks[1]["lemma"] == "walk" and walks[0]["char"] != walks[1]["char"]
    timed = np.nonzero(items.caption == k + 1)[0]
    assert {tuple(items.rows[m]) for m in timed} == {(10, 120)}
    assert [items.surface(m) for m in timed] == ["jumps", "squats"]
    assert items.stats["captions_without_words"] == 1  # "someone is there"
    assert not (items.caption == k + 3).any() and not (items.caption == k + 2).any()  # none; too short for the split
    content = build_items(pack, minilm, loc, cfg, "train", word_sampling="content")
    assert [content.surface(m) for m in np.nonzero(content.caption == k + 3)[0]] == ["there"]


def test_word_sampling_filters_as_documented(train_items):
    every, content, motion = (train_items[s] for s in ("all", "content", "motion"))
    assert len(every) > len(content) > len(motion) > 0
    assert {content.pos(m) for m in range(len(content))} <= W.CONTENT_POS
    assert {every.pos(m) for m in range(len(every))} - W.CONTENT_POS  # DET, ADP, ... under `all`
    lemmas = {motion.lemma(m) for m in range(len(motion))}
    assert not lemmas & W.MOTION_STOP and {"person", "man"} <= {content.lemma(m) for m in range(len(content))}
    assert every.stats["occurrences"] == every.stats["words"] == len(every)  # every word of every caption
    assert every.stats["pos_guessed"] == 0  # the token field aligns everywhere on the synthetic corpus
    assert every.nbytes < 400 * len(every)
    # lemmas come from the token field: "striding" -> stride, "anti-clockwise" -> anticlockwise
    pairs = {(every.surface(m), every.lemma(m)) for m in range(len(every))}
    assert ("striding", "stride") in pairs or ("strides", "stride") in pairs
    # one caption contributes each of its words once per occurrence
    m = int(np.nonzero(every.subtext >= 0)[0][0])
    assert every.subtext[m] < every.num_subtexts[m]


def test_whole_split_without_eligible_words_is_an_error(tiny, minilm, monkeypatch):
    _, pack, cfg, loc, _ = tiny
    monkeypatch.setattr(W, "eligible", lambda *a: False)
    with pytest.raises(UserError, match="no eligible word"):
        build_items(pack, minilm, loc, cfg, "val")


def test_lemmas_pos_alignment_and_synonyms():
    assert [W.rule_lemma(w) for w in "walks striding jogging crouches side-steps ran feet left quickly".split()] == \
        ["walk", "stride", "jog", "crouch", "sidestep", "run", "foot", "left", "quickly"]
    toks = [("a", "DET"), ("person", "NOUN"), ("s", "PART"), ("left", "ADJ"), ("hand", "NOUN"), ("wave", "VERB")]
    assert W.align_tokens("a person's left hand waves".split(), toks) == [0, 1, 3, 4, 5]
    assert W.align_tokens(["he", "ran"], [("he", "PRON"), ("run", "VERB")]) == [0, 1]
    same = {W.canonical(w) for w in ("counterclockwise", "anticlockwise", "anti-clockwise", "counter-clockwise")}
    assert same == {"counterclockwise"}
    assert {W.canonical(w) for w in ("quickly", "fast", "rapidly", "swiftly")} == {"quickly"}
    assert W.canonical("clockwise") != W.canonical("anticlockwise")
    classes = W.meaning_classes("the man turn to the left then squat down".split())
    assert classes[5] == {"left", "counterclockwise"} and classes[8] == {"squat", "down"}


def test_real_humanml3d_token_fields_align(hml_caption_file):
    from mate.data.captions import read_captions
    from mate.text.encoder import WORD_RE

    for cap in read_captions(hml_caption_file):
        words = [m.group(0) for m in WORD_RE.finditer(cap.text)]
        match = W.align_tokens(words, cap.tokens)
        assert None not in match and match == sorted(match)
        got = {w: cap.tokens[t] for w, t in zip(words, match)}
        assert got.get("kicks", ("kick", "VERB")) == ("kick", "VERB") and got["left"][0] == "left"
        kept = [w for w, t in zip(words, match) if W.eligible(cap.tokens[t][0], w, cap.tokens[t][1], "motion")]
        assert "left" in kept and "leg" in kept or "foot" in kept
        assert not {"a", "man", "person", "his", "is", "with"} & set(kept)


# ---------------------------------------------------------------------------------- prototypes and masks


def test_prototype_vocab_is_the_most_frequent_train_lemmas(train_items, tiny, minilm):
    items = train_items["motion"]
    vocab = prototype_vocab(items, 5)
    counts = np.bincount(items.lemma_id)
    assert len(vocab) == 5 and list(vocab.counts) == sorted(counts, reverse=True)[:5]
    idx = vocab.indices(items)
    inside = np.isin(np.array(items.lemmas)[items.lemma_id], vocab.words)
    assert (idx[~inside] == -1).all() and (idx[inside] >= 0).all()
    assert all(vocab.words[idx[m]] == items.lemma(m) for m in np.nonzero(inside)[0])
    every = prototype_vocab(items, "all")
    assert len(every) == len(set(items.lemma_id.tolist())) and (every.indices(items) >= 0).all()
    _, pack, cfg, loc, _ = tiny
    with pytest.raises(ValueError, match="train"):
        prototype_vocab(build_items(pack, minilm, loc, cfg, "val"), "all")
    with pytest.raises(UserError):
        prototype_vocab(items, "many")


def test_same_word_and_absent_masks(train_items):
    items = train_items["content"]
    by_lemma = {}
    for m in range(len(items)):
        by_lemma.setdefault(items.lemma(m), m)
    pick = [by_lemma[w] for w in ("walk", "stride", "jog", "anticlockwise", "counterclockwise", "clockwise")
            if w in by_lemma]
    same = same_word(items, pick)
    names = [items.lemma(m) for m in pick]
    assert same[names.index("walk"), names.index("stride")] and not same[names.index("walk"), names.index("jog")]
    idx = sample_batch(items, 64, np.random.default_rng(0))
    absent = meaning_absent(items, idx)
    assert (absent == absent.T).all() and not absent.diagonal().any()
    assert not (absent & same_word(items, idx)).any()  # the same word is never absent
    assert not (absent & same_caption(items, idx)).any()
    naive = meaning_absent(items, idx, surface=True)
    assert absent.sum() < naive.sum()  # classes merge synonyms: fewer pairs pass as negatives


def test_false_negative_rate_is_about_zero_with_the_synonym_map(train_items, tiny):
    notes = tiny[4]
    rates = {}
    for sampling in ("content", "motion"):
        items = train_items[sampling]
        rng = np.random.default_rng(0)
        batches = [sample_batch(items, 64, rng) for _ in range(10)]
        for surface in (False, True):
            for level in ("caption", "motion"):
                f = p = 0
                for idx in batches:
                    a, b = false_negative_counts(items, idx, notes, surface=surface, level=level)
                    f, p = f + a, p + b
                rates[sampling, "surface" if surface else "classes", level] = f / p
    print("\nfalse-negative rates:", {k: round(v, 4) for k, v in rates.items()})
    for sampling in ("content", "motion"):
        assert rates[sampling, "classes", "caption"] < 0.005
        assert rates[sampling, "surface", "caption"] > 0.1
        assert rates[sampling, "classes", "motion"] < rates[sampling, "surface", "motion"]
    items = train_items["motion"]
    assert false_negative_rate(items, batches[0], notes) == pytest.approx(
        np.divide(*false_negative_counts(items, batches[0], notes)))


# ---------------------------------------------------------------------------------------------- batching


def test_sample_batch_is_uniform_over_occurrences(train_items):
    items = train_items["motion"]
    idx = sample_batch(items, 32, np.random.default_rng(1))
    assert len(set(idx.tolist())) == 32 and idx.max() < len(items)
    counts = np.bincount(np.concatenate([sample_batch(items, 32, np.random.default_rng(s)) for s in range(400)]),
                         minlength=len(items))
    # every occurrence equally likely (no per-caption or per-word weighting): Poisson-like counts, variance ~ mean
    assert 0.8 < counts.var() / counts.mean() < 1.2
    assert len(sample_batch(items, len(items) + 5, np.random.default_rng(0))) == len(items) + 5


def test_crop_keeps_the_segment():
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = int(rng.integers(0, 50))
        b = a + int(rng.integers(20, 300))
        s = int(rng.integers(a, b - 1))
        e = int(rng.integers(s + 1, b + 1))
        o, end = crop_window((a, b), (s, e), 196, 4, rng if rng.random() < 0.5 else None)
        n = end - o
        assert a <= o and end <= b and n % 4 == 0 and n == min(196, (b - a) // 4 * 4)
        if e - s <= n:
            assert o <= s and e <= end
        else:
            assert s <= o and end <= e


def test_collate_feeds_the_encoder_and_the_prior(train_items, tiny, minilm):
    _, pack, _, _, _ = tiny
    items = train_items["motion"]
    vocab = prototype_vocab(items, 10)
    idx = sample_batch(items, 16, np.random.default_rng(3))
    batch = collate(pack, items, idx, encoder=minilm, prototypes=vocab, rng=np.random.default_rng(4))
    b = len(idx)
    assert batch["motion"].shape[0] == b and batch["motion"].shape[2] == pack.dim
    assert (batch["lengths"] % 4 == 0).all() and (batch["lengths"] <= 196).all()
    assert batch["mask"].sum(1).tolist() == batch["lengths"].tolist()
    spans = batch["spans"]
    assert ((spans[:, 0] < spans[:, 1]) & (spans[:, 1] <= batch["lengths"])).all()
    # the spans are the items' segments shifted by the crop (cut where the crop ends inside them)
    shifted = torch.from_numpy(items.span[idx].astype(np.int64)) - batch["start"][:, None]
    assert (spans == torch.minimum(shifted.clamp(min=0), batch["lengths"][:, None])).all()
    ids = batch["tokenized"]["input_ids"]
    for r, m in enumerate(idx):
        got = ids[r, batch["positions"][r][batch["pos_mask"][r]]]
        word = minilm.tokenizer.decode(got).replace(" ", "")
        assert word == items.surface(m).replace(" ", "")
        row = pack.normalize(pack.motion(int(items.clip[m]), int(batch["start"][r]),
                                         int(batch["start"][r] + batch["lengths"][r])))
        assert torch.allclose(batch["motion"][r, : batch["lengths"][r]], torch.from_numpy(row.astype(np.float32)),
                              atol=1e-5)
    assert batch["proto"].tolist() == vocab.indices(items, idx).tolist()
    for key in ("same_word", "same_caption", "absent"):
        assert batch[key].shape == (b, b) and batch[key].dtype == torch.bool
    again = collate(pack, items, idx)  # no rng: deterministic crops
    assert torch.equal(again["start"], collate(pack, items, idx)["start"]) and (again["proto"] == -1).all()
    assert isinstance(vocab, PrototypeVocab)


def test_items_crop_by_the_config_data_keys(tiny, minilm):
    """data.max_len and data.unit_len reach the alignment's batches through the items (crops of at most 64 rows, a
    multiple of 8); unset, the items crop as the dataset family does (196, 4)."""
    _, pack, _, loc, _ = tiny
    items = build_items(pack, minilm, loc, resolve(TRUTH + ["data.max_len=64", "data.unit_len=8"]), "train")
    assert (items.max_len, items.unit) == (64, 8)
    idx = sample_batch(items, 32, np.random.default_rng(0))
    for rng in (None, np.random.default_rng(1)):
        batch = collate(pack, items, idx, rng=rng)
        assert (batch["lengths"] <= 64).all() and (batch["lengths"] % 8 == 0).all() and (batch["lengths"] == 64).any()
        assert ((batch["spans"][:, 0] < batch["spans"][:, 1]) & (batch["spans"][:, 1] <= batch["lengths"])).all()
    plain = build_items(pack, minilm, loc, resolve(TRUTH), "train")
    assert (plain.max_len, plain.unit) == (196, 4)
    assert (collate(pack, plain, idx)["lengths"] > 64).any()
    assert (collate(pack, items, idx, max_len=196, unit=4)["lengths"] > 64).any()  # explicit arguments win


def test_clip_features_crop_to_the_family_or_the_given_limit(tiny):
    from mate.align.run import _clip_features

    _, pack, _, _, _ = tiny
    seen = []

    class Motion:
        def __call__(self, motion, lengths):
            seen.append(lengths.tolist())
            return type("Out", (), {"clip": torch.ones(len(lengths), 3)})()

    aligner = type("A", (), {"motion": Motion(), "parameters": lambda self: iter([torch.zeros(1)])})()  # on the CPU
    ids = pack.split("train")[:40]
    _clip_features(aligner, pack, ids)
    rows = [min(196, int(pack.lengths[pack.index(c)])) // 4 * 4 for c in ids]
    assert seen[0] == rows
    seen.clear()
    _clip_features(aligner, pack, ids, max_len=64, unit=8)
    assert seen[0] == [min(64, int(pack.lengths[pack.index(c)])) // 8 * 8 for c in ids]
