"""The aligned-rows artifact: saved, applied, exported to a folder that plain `transformers` loads; frozen caches."""

from __future__ import annotations

import pytest
import torch
import transformers

from mate.cli import main
from mate.text.artifact import AlignedRows, ArtifactError
from mate.text.cached import frozen_features
from mate.text.encoder import TextEncoder
from mate.text.families import default_model_path

from .tiny_models import build_tiny

CAPTIONS = ["a person walks forward quickly then turns clockwise.",
            "someone jumps backward and kicks with the left leg"]


def _aligned(path, seed=0) -> TextEncoder:
    """An encoder whose caption rows were moved (as training would), deterministically."""
    enc = TextEncoder.load(path)
    rows = enc.set_trainable_rows(enc.token_ids(CAPTIONS))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        rows.rows.add_(0.5 * rows.rows.std() * torch.randn(rows.rows.shape, generator=gen))
    return enc


@pytest.fixture(scope="module", params=["minilm", "bert", "distilbert", "clip", "t5"])
def model_path(request, tmp_path_factory):
    if request.param == "minilm":
        return default_model_path()
    return build_tiny(request.param, tmp_path_factory.mktemp(request.param))


def _plain_hidden(model, batch) -> torch.Tensor:
    """Token features from a model loaded by plain transformers (a T5 AutoModel is encoder-decoder)."""
    core = model.encoder if isinstance(model, transformers.T5Model) else model
    with torch.no_grad():
        return core(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state


def test_export_loads_with_plain_transformers(model_path, tmp_path):
    enc = _aligned(model_path)
    art = enc.aligned_rows().save(tmp_path / "aligned_rows.safetensors")
    assert main(["export", str(art), "--out", str(tmp_path / "hf")]) == 0
    plain = transformers.AutoModel.from_pretrained(tmp_path / "hf").eval()
    tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    batch = tok(CAPTIONS, padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = enc(CAPTIONS).tokens
        base = TextEncoder.load(model_path)(CAPTIONS).tokens
    theirs = _plain_hidden(plain, batch)
    mask = batch["attention_mask"].bool()
    assert (theirs - ours)[mask].abs().max() <= 1e-5
    assert (base - ours)[mask].abs().max() > 1e-3  # and the export really carries the aligned rows


def test_rows_file_applies_to_the_base_model(model_path, tmp_path):
    enc = _aligned(model_path, seed=1)
    enc.aligned_rows().save(tmp_path / "a.safetensors")
    assert main(["export", str(tmp_path / "a.safetensors"), "--out", str(tmp_path / "rows"), "--format", "rows"]) == 0
    rows = AlignedRows.load(tmp_path / "rows")  # a folder holding aligned_rows.safetensors
    assert torch.equal(rows.token_ids, enc.rows.ids) and torch.equal(rows.rows, enc.rows.rows.detach())
    # MoMask/MDM-style code: load its own copy of the base model and write the rows into the input table.
    own = TextEncoder.load(model_path).model
    patched = rows.apply_to(own)
    assert not torch.equal(patched.get_input_embeddings().weight, own.get_input_embeddings().weight)
    batch = enc.tokenize(CAPTIONS)
    with torch.no_grad():
        got = patched(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        assert (got - enc(CAPTIONS).tokens).abs().max() <= 1e-5
    # applied to a fresh TextEncoder it reproduces the aligned sentence features too
    again = rows.apply_to(TextEncoder.load(model_path))
    assert torch.allclose(again(CAPTIONS).sentence, enc(CAPTIONS).sentence, atol=1e-6)


def test_artifact_refuses_the_wrong_model(tmp_path):
    bert = build_tiny("bert", tmp_path / "bert")
    rows = _aligned(bert).aligned_rows()
    with pytest.raises(ArtifactError, match="for a bert model, not clip"):
        rows.apply_to(TextEncoder.load(build_tiny("clip", tmp_path / "clip")))
    with pytest.raises(ArtifactError, match="embedding rows; these aligned rows are for a vocabulary"):
        rows.apply_to(TextEncoder.load().model)
    other = build_tiny("bert", tmp_path / "bert2", seed=1)  # same architecture, other weights
    with pytest.raises(ArtifactError, match="trained on"):
        rows.apply_to(TextEncoder.load(other))
    with pytest.raises(ArtifactError, match="is not the base model"):
        rows.export_hf(tmp_path / "out", base_path=other)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(ArtifactError, match="junk.safetensors: not an aligned-rows"):
        AlignedRows.load(tmp_path / "junk.safetensors")


def test_export_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing.safetensors"), "--out", str(tmp_path / "o")]) == 2
    assert "missing.safetensors: no such aligned-rows file" in capsys.readouterr().err


def test_frozen_features_are_computed_once(tmp_path):
    enc = TextEncoder.load(build_tiny("bert", tmp_path / "m"))
    caps = CAPTIONS + [CAPTIONS[0]]  # duplicates are stored once
    first = frozen_features(enc, caps, tmp_path / "ws", progress=False)
    stamp = first.path.stat().st_mtime_ns
    second = frozen_features(enc, caps, tmp_path / "ws", progress=False)
    assert second.path == first.path and second.path.stat().st_mtime_ns == stamp
    assert len(second.captions) == 2 and torch.equal(second.sentence, first.sentence)
    direct = enc.encode(CAPTIONS)
    assert torch.allclose(second.sentence, direct.sentence, atol=1e-6)
    toks, mask = second.padded([0, 1])
    assert torch.allclose(toks[mask], direct.tokens[direct.mask], atol=1e-2)  # stored as float16
    rows = enc.set_trainable_rows(enc.token_ids(CAPTIONS))
    same = frozen_features(enc, caps, tmp_path / "ws", progress=False)  # rows selected but unchanged: new key
    assert same.path != first.path and torch.allclose(same.sentence, first.sentence, atol=1e-6)
    with torch.no_grad():
        # not a constant: LayerNorm would remove it
        rows.rows.add_(torch.randn(rows.rows.shape, generator=torch.Generator().manual_seed(0)))
    moved = frozen_features(enc, caps, tmp_path / "ws", progress=False)  # aligned rows: their own entry
    assert moved.path not in (first.path, same.path)
    assert torch.allclose(moved.sentence, enc.encode(CAPTIONS).sentence, atol=1e-6)
    assert not torch.allclose(moved.sentence, first.sentence, atol=1e-3)
