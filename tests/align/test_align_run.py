"""A real `mate align` run (tiny): only the caption-vocabulary rows change, the export reproduces the aligned
features, and the run writes what it promises."""

from __future__ import annotations

import json

import pytest
import torch
import transformers

from mate.cli import main
from mate.text.artifact import AlignedRows
from mate.text.encoder import TextEncoder

pytestmark = pytest.mark.slow  # over ~10 s (README: `-m "not slow"` for a quick check)


@pytest.fixture(scope="module")
def run(tiny_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("align")
    out = root / "run"
    code = main(["align", "--data", str(tiny_corpus), "--workspace", str(root / "ws"), "--out", str(out), "--quiet",
                 "profile=tiny", "seed=1"])
    assert code == 0
    return out


def test_only_caption_vocabulary_rows_changed(run, tiny_corpus):
    rows = AlignedRows.load(run)
    base = TextEncoder.load()
    train_ids = set((tiny_corpus / "train.txt").read_text().split())
    captions = [line.split("#")[0] for cid in sorted(train_ids)
                for line in (tiny_corpus / "texts" / f"{cid}.txt").read_text().splitlines()]
    vocab = set(base.token_ids(captions))
    assert set(rows.token_ids.tolist()) <= vocab and len(rows.token_ids) > 10
    moved = (rows.rows - base.base_table[rows.token_ids]).abs().amax(1) > 0
    assert moved.float().mean() > 0.5  # trained rows moved
    aligned = rows.apply_to(base)
    table = aligned.rows.merged_table()
    others = torch.ones(len(table), dtype=torch.bool)
    others[rows.token_ids] = False
    assert torch.equal(table[others], base.base_table[others])  # every other row bitwise equal
    before = {k: v.clone() for k, v in TextEncoder.load().model.state_dict().items()}
    after = aligned.model.state_dict()
    for k, v in before.items():
        twin = after.get(k, after.get(k.replace("word_embeddings.weight", "word_embeddings.base.weight")))
        assert twin is not None and torch.equal(twin, v), k  # the frozen table and every layer untouched


def test_export_of_the_run_folder_reproduces_the_aligned_features(run, tmp_path):
    assert main(["export", str(run), "--out", str(tmp_path / "hf")]) == 0
    plain = transformers.AutoModel.from_pretrained(tmp_path / "hf").eval()
    tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    texts = ["a person waves their left hand", "someone turns clockwise quickly"]
    batch = tok(texts, padding=True, return_tensors="pt")
    aligned = AlignedRows.load(run).apply_to(TextEncoder.load())
    with torch.no_grad():
        theirs = plain(**batch).last_hidden_state
        ours = aligned(texts).tokens
    assert (theirs - ours)[batch["attention_mask"].bool()].abs().max() <= 1e-5


def test_run_writes_metrics_and_plots(run):
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("align/loss", "align/loss_sent", "align/val_r1", "align/row_cos", "val/align/pair_margin_turn",
                "val/align/word_pair_acc", "align/pair_cos_limb", "val/align/attn_in_span", "align/false_neg_rate"):
        assert key in metrics, key
    assert 0 < metrics["align/row_cos"] < 1  # the rows moved, and not to noise
    assert (run / "plots" / "attention.png").stat().st_size > 1000
    assert (run / "plots" / "projection.png").stat().st_size > 1000
    assert (run / "checkpoint" / "align.pt").is_file()


def test_bad_override_is_one_clear_error(tiny_corpus, tmp_path, capsys):
    assert main(["align", "--data", str(tiny_corpus), "--workspace", str(tmp_path), "profile=tiny",
                 "align.sigma_scle=2"]) == 2
    assert "unknown config key 'align.sigma_scle' (did you mean 'align.sigma_scale'?)" in capsys.readouterr().err
    assert main(["align", "--data", str(tiny_corpus), "--workspace", str(tmp_path), "profile=tiny",
                 "align.prior=cosine"]) == 2
    assert "'align.prior' must be one of none, binary, gaussian_segment, gaussian_full" in capsys.readouterr().err
