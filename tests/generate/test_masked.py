"""The MoMask-style generator (gen.kind=masked) on the tiny corpus: sampling rules (lengths, seeds, independence of
the other texts), the training loss it learns from, and storage (a saved run carries its tokenizer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mate.config import ConfigError
from mate.generate.base import Generator, make_generator
from mate.generate.base import CHECKPOINT
from mate.generate.tokenizer import TokenizerMismatch, train_or_load

from .conftest import tiny_config

TEXTS = ["a person walks forward", "someone jumps in place", "a person turns clockwise"]


def _gen(tok, text_features, **over):
    cfg = tiny_config(gen__kind="masked", **over)
    return make_generator(cfg, 263, (text_features.sentence_dim, text_features.token_dim), tokenizer=tok)


@pytest.fixture(scope="module")
def tok(gen_pack, tmp_path_factory):
    return train_or_load(gen_pack, tiny_config(), tmp_path_factory.mktemp("masked_tok"), progress=False)


@pytest.fixture(scope="module")
def trained(tok, train_set, text_features, tmp_path_factory):
    ckpt = tmp_path_factory.mktemp("masked_ckpt")
    gen = _gen(tok, text_features)
    history = gen.fit(train_set, text_features, checkpoint_dir=ckpt)
    return gen, history, ckpt


def test_training_lowers_the_loss_and_reports_token_accuracy(tok, train_set, text_features):
    gen = _gen(tok, text_features, gen__epochs=6, gen__steps=4, gen__lr=3e-3)
    history = gen.fit(train_set, text_features)
    assert history[-1]["gen/loss"] < history[0]["gen/loss"]
    assert {"gen/loss_base", "gen/loss_res", "gen/acc_base", "gen/acc_res"} <= set(history[-1])
    assert history[-1]["gen/loss"] == pytest.approx(history[-1]["gen/loss_base"] + history[-1]["gen/loss_res"])


def test_lengths_round_up_to_whole_tokens_and_are_cropped(trained):
    gen, _, _ = trained
    out = gen.sample(TEXTS[:2], [21, 8], n=2, seed=0)
    assert [[m.shape for m in per] for per in out] == [[(21, 263)] * 2, [(8, 263)] * 2]
    assert all(np.isfinite(m).all() for per in out for m in per)
    with pytest.raises(ValueError, match="at least 1 frame"):
        gen.sample(TEXTS[:1], [0])


def test_sampling_is_seeded_and_a_sample_does_not_depend_on_the_other_texts(trained):
    gen, _, _ = trained
    alone = gen.sample(TEXTS[:1], 24, n=2, seed=5)[0]
    mixed = gen.sample([TEXTS[2], TEXTS[0], TEXTS[1]], [40, 24, 24], n=2, seed=5)
    again = gen.sample(TEXTS[:1], 24, n=2, seed=5)[0]
    assert all(np.array_equal(a, b) for a, b in zip(alone, again))
    other = gen.sample([TEXTS[1], TEXTS[0]], [24, 24], n=2, seed=5)[1]  # the same text at another index
    assert not np.allclose(alone[0], other[0])  # (i, k) seeds the noise: its place in the call matters
    assert np.allclose(mixed[1][0], gen.sample([TEXTS[2], TEXTS[0]], [40, 24], n=2, seed=5)[1][0], atol=1e-6)
    assert not np.allclose(alone[0], alone[1])  # two samples of one text differ
    greedy = _gen(gen.tokenizer, gen.text, gen__temperature=0.0)
    greedy.nets.load_state_dict(gen.nets.state_dict())
    g = greedy.sample(TEXTS[:1], 24, n=2, seed=5, text=gen.text)[0]
    assert np.allclose(g[0], g[1])  # temperature 0: the most likely codes, no noise


def test_a_saved_generator_carries_its_tokenizer_and_a_checkpoint_names_it(trained, text_features, tmp_path):
    gen, _, ckpt = trained
    path = gen.save(tmp_path / "gen.pt")
    loaded = Generator.load(path, text_features)
    assert loaded.tokenizer.sha == gen.tokenizer.sha
    assert np.allclose(loaded.sample(TEXTS[:1], 16, seed=1)[0][0], gen.sample(TEXTS[:1], 16, seed=1)[0][0])
    from_ckpt = Generator.load(ckpt / CHECKPOINT, text_features)  # a trial's checkpoint: the tokenizer by sha
    assert from_ckpt.tokenizer.sha == gen.tokenizer.sha
    state = torch.load(path, weights_only=True)
    name = next(iter(state["tokenizer"]["weights"]))
    state["tokenizer"]["weights"][name] = state["tokenizer"]["weights"][name] + 1.0
    torch.save(state, tmp_path / "damaged.pt")
    with pytest.raises(TokenizerMismatch, match="damaged"):
        Generator.load(tmp_path / "damaged.pt", text_features)


def test_bad_settings_are_clear_errors(tok, text_features):
    with pytest.raises(ConfigError, match="needs the motion tokenizer"):
        make_generator(tiny_config(gen__kind="masked"), 263, (text_features.sentence_dim, text_features.token_dim))
    with pytest.raises(ConfigError, match="multiple of gen.heads"):
        _gen(tok, text_features, gen__hidden=30, gen__heads=4)
    with pytest.raises(ValueError, match="re-masking round"):
        _gen(tok, text_features).sample(TEXTS[:1], 8, steps=0, text=text_features)


def test_by_length_keeps_the_items_and_batch_sizes_and_pads_less():
    from mate.generate.base import by_length, epoch_batches

    lengths = np.random.default_rng(1).integers(1, 50, 500)
    drawn = list(epoch_batches(500, 32, 40, np.random.default_rng(0)))
    grouped = list(by_length(iter(drawn), lambda i: int(lengths[i]), np.random.default_rng(2), pool=8))
    assert [len(b) for b in grouped] == [len(b) for b in drawn]
    for a in range(0, 40, 8):  # the same items within each pool of batches, only regrouped
        assert sorted(np.concatenate(drawn[a : a + 8])) == sorted(np.concatenate(grouped[a : a + 8]))

    def fill(batches):  # real tokens / tokens of the batch padded to its longest item
        return np.mean([lengths[b].sum() / (len(b) * lengths[b].max()) for b in batches])

    assert fill(drawn) < 0.6 < 0.8 < fill(grouped)
    again = list(by_length(iter(drawn), lambda i: int(lengths[i]), np.random.default_rng(2), pool=8))
    assert all(np.array_equal(x, y) for x, y in zip(grouped, again))
