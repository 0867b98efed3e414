"""EncoderFeatures: the cached and the freshly encoded path give the same features, in the promised shapes."""

from __future__ import annotations

import torch

from mate.generate.text import EncoderFeatures, TextBatch, TextFeatures


def test_batch_shapes_masks_and_dims(text_features):
    texts = ["a person walks forward", "someone waves the left hand slowly then turns clockwise quickly"]
    b = text_features(texts)
    assert isinstance(text_features, TextFeatures) and isinstance(b, TextBatch)
    assert b.sentence.shape == (2, text_features.sentence_dim) and b.sentence.dtype == torch.float32
    assert b.tokens.shape[0] == 2 and b.tokens.shape[2] == text_features.token_dim and b.tokens.dtype == torch.float32
    assert b.mask.dtype == torch.bool and b.mask.shape == b.tokens.shape[:2]
    assert b.mask[0].sum() < b.mask[1].sum() and bool(b.mask[1].all())  # the short caption is padded
    assert bool((b.tokens[~b.mask] == 0).all())


def test_cached_and_fresh_features_agree(minilm, text_features, train_set):
    cached = [train_set.pack.caption(int(k)).text for k in train_set.cap[:5]]
    assert all(t in text_features.cache.index for t in cached)
    fresh = EncoderFeatures(minilm)  # no cache: encodes every text
    a, b = text_features(cached), fresh(cached)
    assert (fresh.sentence_dim, fresh.token_dim) == (text_features.sentence_dim, text_features.token_dim)
    torch.testing.assert_close(a.sentence, b.sentence, atol=1e-5, rtol=1e-4)
    assert torch.equal(a.mask, b.mask)
    torch.testing.assert_close(a.tokens, b.tokens, atol=2e-3, rtol=2e-3)  # both rounded through float16


def test_a_text_gets_the_same_features_alone_in_a_mixed_batch_and_repeated(minilm):
    feats = EncoderFeatures(minilm, memo=2)
    first = feats(["a person kicks with the right leg"])
    mixed = feats(["someone jumps", "a person kicks with the right leg", "someone jumps", "a person squats"])
    width = int(first.mask.sum())
    assert torch.equal(mixed.sentence[1], first.sentence[0]) and torch.equal(mixed.sentence[0], mixed.sentence[2])
    assert torch.equal(mixed.tokens[1, :width], first.tokens[0, :width])
    assert len(feats._memo) == 2  # bounded memo, least recently used dropped


def test_encoder_left_in_training_mode_still_gives_frozen_features(minilm):
    feats = EncoderFeatures(minilm, memo=0)
    ref = feats(["a person runs backward"]).sentence
    minilm.train()
    try:
        again = feats(["a person runs backward"]).sentence
        assert minilm.training  # the caller's mode is restored
    finally:
        minilm.eval()
    assert torch.equal(ref, again)
