"""Trainable word-embedding rows on each language-model family: only the chosen rows move, state stays small."""

from __future__ import annotations

import json

import pytest
import torch

from mate.text.encoder import TextEncoder
from mate.text.families import EncoderError, default_model_path

from .tiny_models import build_tiny

CAPTIONS = [
    "a person walks forward quickly then turns clockwise.",
    "someone jumps backward and kicks with the left leg",
    "a man waves his right hand slowly",
]
UNSEEN = "the woman squats"  # shares no content word with CAPTIONS


@pytest.fixture(scope="module", params=["minilm", "bert", "distilbert", "clip", "t5"])
def encoder_path(request, tmp_path_factory):
    if request.param == "minilm":
        return request.param, default_model_path()
    return request.param, build_tiny(request.param, tmp_path_factory.mktemp(request.param))


def _snapshot(enc: TextEncoder) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in enc.model.state_dict().items()}


def test_only_selected_rows_train(encoder_path):
    name, path = encoder_path
    enc = TextEncoder.load(path)
    assert enc.family == ("bert" if name == "minilm" else name)
    ids = enc.token_ids(CAPTIONS)
    assert ids and not set(ids) & set(enc.tokenizer.all_special_ids)
    base_table = enc.base_table.detach().clone()
    before = _snapshot(enc)
    unseen_before = enc([UNSEEN]).sentence.detach()
    seen_before = enc([CAPTIONS[0]]).sentence.detach()

    rows = enc.set_trainable_rows(ids)
    trainable = [p for p in enc.parameters() if p.requires_grad]
    assert len(trainable) == 1 and trainable[0] is rows.rows and rows.rows.shape == (len(ids), base_table.shape[1])
    opt = torch.optim.Adam(trainable, lr=0.05)
    target = torch.randn(len(CAPTIONS), enc([CAPTIONS[0]]).sentence.shape[-1])
    for _ in range(3):
        opt.zero_grad()
        out = enc(CAPTIONS)
        loss = ((out.sentence - target) ** 2).mean() + out.tokens.pow(2).mean()
        loss.backward()
        opt.step()

    # Optimizer state scales with the selected rows, not the vocabulary.
    state = opt.state[rows.rows]
    assert state["exp_avg"].shape == (len(ids), base_table.shape[1])
    assert sum(t.numel() for t in state.values() if t.ndim) == 2 * len(ids) * base_table.shape[1]
    assert len(ids) < base_table.shape[0]  # (MiniLM: 30522 rows in the table, a few dozen trained)

    # The selected rows moved; the frozen table and every other tensor are bitwise equal.
    moved = (rows.rows.detach() - base_table[ids]).abs().amax(1)
    assert (moved > 0).all()
    assert torch.equal(enc.base_table, base_table)
    after = {k: v for k, v in enc.model.state_dict().items()}
    for key, value in before.items():
        twin = after.get(key, after.get(key.replace("weight", "base.weight")))
        assert twin is not None and torch.equal(twin, value), key

    # Captions that use trained rows now encode differently; one with none of them does not.
    assert (enc([CAPTIONS[0]]).sentence - seen_before).abs().max() > 1e-4
    if not set(enc.token_ids([UNSEEN])) & set(ids):
        assert torch.allclose(enc([UNSEEN]).sentence, unseen_before, atol=1e-6)


def test_words_map_to_their_subtokens(encoder_path):
    _, path = encoder_path
    enc = TextEncoder.load(path)
    text = "a person walks anti-clockwise, then jumps."
    words = enc.words(text)
    assert [w.text for w in words] == ["a", "person", "walks", "anti-clockwise", "then", "jumps"]
    ids = enc.tokenize([text])["input_ids"][0]
    hyphenated = words[3]
    assert len(hyphenated.tokens) >= 2  # WordPiece/BPE split it: its row is the mean of several
    pieces = enc.tokenizer.convert_ids_to_tokens([int(ids[i]) for i in hyphenated.tokens])
    assert any("clockwise" in p for p in pieces)
    _, vecs = enc.word_vectors(text)
    table = enc.embedding(ids)
    assert torch.allclose(vecs[3], table[list(hyphenated.tokens)].mean(0))


def test_minilm_pools_like_sentence_transformers():
    """Our MiniLM sentence feature equals the sentence-transformers pipeline the package ships (mean + normalise)."""
    from sentence_transformers import SentenceTransformer

    enc = TextEncoder.load()
    ref = SentenceTransformer(str(default_model_path()), device="cpu").encode(CAPTIONS, convert_to_tensor=True)
    ours = enc.encode(CAPTIONS).sentence
    assert torch.allclose(ours, ref.cpu(), atol=1e-5)


def test_bad_encoder_input_is_one_clear_error(tmp_path):
    with pytest.raises(EncoderError, match="no such model folder"):
        TextEncoder.load(tmp_path / "nope")
    (tmp_path / "gpt").mkdir()
    (tmp_path / "gpt" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(EncoderError, match="model type 'gpt2' is not a supported encoder family"):
        TextEncoder.load(tmp_path / "gpt")
    with pytest.raises(EncoderError, match="unsupported encoder family 'llama'"):
        TextEncoder.load(None, family="llama")
    enc = TextEncoder.load()
    with pytest.raises(EncoderError, match="caption 1 is empty"):
        enc(["a person walks", "   "])
