"""One alignment run, end to end: localize, build word occurrences, train the rows, measure, write the artifact.

Used by `mate align` and (later) as the first stage of a trial; it reports through `report(metrics, ckpt)` and
knows nothing of Ray or MLflow.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mate.errors import UserError
from mate.evaluate.truth import load_pairs
from mate.loop import resolve_device

from . import measures
from .batches import collate, sample_batch
from .items import build_items, false_negative_rate, prototype_vocab
from .localize import localize
from .model import Aligner
from .prior import segment_token_range, token_lengths, token_span
from .trainer import fit

ROWS_FILE = "aligned_rows.safetensors"


@torch.no_grad()
def _clip_features(aligner, pack, clip_ids, max_len: int | None = None, batch: int = 64,
                   unit: int | None = None) -> torch.Tensor:
    """Unit clip features of whole clips (cropped to a multiple of `unit` rows, at most `max_len`; both default to
    the dataset family's), padded into batches: the motion encoder gives a clip the same feature alone or padded, so
    batching only saves time."""
    max_len = pack.spec.max_motion_len if max_len is None else max_len
    unit = pack.spec.unit_len if unit is None else unit
    feats = []
    for s in range(0, len(clip_ids), batch):
        xs = [pack.normalize(pack.motion(cid)) for cid in clip_ids[s : s + batch]]
        lengths = [max(unit, min(max_len, len(x)) // unit * unit) for x in xs]
        motion = torch.zeros(len(xs), max(lengths), pack.dim)
        for i, (x, n) in enumerate(zip(xs, lengths)):
            motion[i, : min(n, len(x))] = torch.from_numpy(x[:n])
        device = next(aligner.parameters()).device
        feats.append(aligner.motion(motion.to(device), torch.tensor(lengths, device=device)).clip.cpu())
    return torch.nn.functional.normalize(torch.cat(feats), dim=-1)


@torch.no_grad()
def _sentences(aligner, texts) -> torch.Tensor:
    out = [aligner.sent_proj(aligner.encoder(texts[i : i + 128]).sentence).cpu() for i in range(0, len(texts), 128)]
    return torch.nn.functional.normalize(torch.cat(out), dim=-1)


def retrieval_r1(aligner, pack, split: str, limit: int = 320) -> float:
    """R@1 of sentence vs clip features among 32-item batches (one caption per clip)."""
    ids = pack.split(split)[:limit]
    if len(ids) < 32:
        return float("nan")
    texts = [pack.captions(c)[0].text for c in ids]
    clips, sents = _clip_features(aligner, pack, ids), _sentences(aligner, texts)
    hits = []
    for s in range(0, len(ids) - 31, 32):
        sim = sents[s : s + 32] @ clips[s : s + 32].T
        hits.append((sim.argmax(1) == torch.arange(32)).float().mean())
    return float(torch.stack(hits).mean())


@torch.no_grad()
def attention_in_span(aligner, pack, truth_items, limit: int = 256, seed: int = 0) -> float:
    """Share of a word's attention mass inside its annotated span (words of multi-sub-text captions)."""
    multi = np.flatnonzero(truth_items.num_subtexts >= 2)
    if len(multi) == 0:
        return float("nan")
    idx = np.random.default_rng(seed).choice(multi, size=min(limit, len(multi)), replace=False)
    shares = []
    for s in range(0, len(idx), 64):
        b = collate(pack, truth_items, idx[s : s + 64], encoder=aligner.encoder)
        _, extra = aligner.terms(b, {"align": 1.0})
        att = extra["attention"].cpu()  # (B, L) over tokens
        lo, hi = segment_token_range(b["spans"], token_lengths(b["lengths"]))  # the prior's own rule
        grid = torch.arange(att.shape[1])[None]
        inside = (grid >= lo[:, None]) & (grid < hi[:, None])
        shares.append((att * inside).sum(1))
    return float(torch.cat(shares).mean())


def word_pair_score(aligner, pack):
    def score(clip_ids, texts):
        return (_clip_features(aligner, pack, clip_ids) * _sentences(aligner, list(texts))).sum(-1).numpy()

    return score


def run_align(cfg, data_dir, workspace, out, *, report: Callable | None = None, resume_dir=None,
              progress: bool = True, log: Callable[[str], None] = print) -> dict[str, float]:
    from mate.data.pack import open_pack
    from mate.text.encoder import TextEncoder

    start = time.perf_counter()
    out = Path(out)
    seed = cfg.seed_for("align")
    torch.manual_seed(seed)
    pack = open_pack(data_dir, workspace, progress=progress)
    encoder = TextEncoder.load(cfg["encoder.path"], cfg["encoder.family"])
    loc = localize(pack, encoder, cfg, workspace, splits=("train", "val", "test"), progress=progress)
    # the annotated spans (synthetic corpus only), for align/attn_in_span; localize wants the base encoder
    truth_loc = (localize(pack, encoder, cfg, workspace, splits=("val", "test"), progress=False, spans="truth")
                 if (Path(data_dir) / "annotations.jsonl").is_file() else None)
    train = build_items(pack, encoder, loc, cfg, "train")
    vocab_size = cfg["align.prototype_vocab"]
    if vocab_size != "all" and not vocab_size.isdigit():
        raise UserError(f"align.prototype_vocab must be 'all' or a positive number, got {vocab_size!r}")
    vocab = prototype_vocab(train, vocab_size if vocab_size == "all" else int(vocab_size))
    base_pairs = {split: load_pairs(data_dir, split) for split in ("val", "test")}
    before = {s: measures.pair_cosines(encoder, p) for s, p in base_pairs.items()}
    if cfg["align.enabled"]:
        encoder.set_trainable_rows(encoder.token_ids(train.texts))
    aligner = Aligner(encoder, pack.dim, hidden=cfg["align.hidden"], heads=cfg["align.heads"],
                      num_proto_words=len(vocab), prototypes_per_word=cfg["align.prototypes_per_word"],
                      prior=cfg["align.prior"], prior_mode=cfg["align.prior_mode"],
                      sigma_scale=cfg["align.sigma_scale"], prior_strength=cfg["align.prior_strength"],
                      temperature=cfg["align.temperature"]).to(resolve_device())  # trains where the trial's GPU is
    batch = cfg["align.batch"]
    steps = cfg["align.steps"] or max(1, math.ceil(len(train) / batch))

    def make_batches(epoch: int):
        rng = np.random.default_rng([seed, epoch])
        for _ in range(steps):
            yield collate(pack, train, sample_batch(train, batch, rng), encoder=encoder, prototypes=vocab, rng=rng)

    def evaluate(model) -> dict[str, float]:
        return {"align/val_r1": retrieval_r1(model, pack, "val"), **measures.row_drift(encoder.rows)}

    metrics: dict[str, float] = {}
    if cfg["align.enabled"]:
        log(f"align: {len(train)} word occurrences, {len(vocab)} prototype words, "
            f"{len(encoder.rows.ids) if encoder.rows is not None else 0} trainable rows, {steps} steps/epoch")
        history = fit(aligner, make_batches, cfg, report=report, evaluate=evaluate, checkpoint_dir=out / "checkpoint",
                      resume_dir=resume_dir, progress=progress, seed=seed)
        metrics.update(history[-1] if history else {})
    aligner.to("cpu").eval()  # the closing measures, the saved rows and the plots read CPU tensors
    metrics["align/false_neg_rate"] = _false_negative_rate(train, data_dir, seed)
    for split, prefix in (("val", "val/"), ("test", "")):
        pairs = base_pairs[split]
        m = {**measures.pair_cosines(encoder, pairs),
             **measures.word_pair_accuracy(word_pair_score(aligner, pack), pairs)}
        if truth_loc is not None:
            truth = build_items(pack, encoder, truth_loc, cfg, split)
            m["align/attn_in_span"] = attention_in_span(aligner, pack, truth)
        m["align/r1"] = retrieval_r1(aligner, pack, split)
        metrics.update({prefix + k: v for k, v in m.items()})
        metrics.update({f"{prefix}{k}_base": v for k, v in before[split].items()})
    out.mkdir(parents=True, exist_ok=True)
    if encoder.rows is not None:
        encoder.aligned_rows().save(out / ROWS_FILE)
    _plots(aligner, pack, train, vocab, base_pairs["val"], out / "plots")
    metrics["cost/align_seconds"] = time.perf_counter() - start
    return metrics


def _false_negative_rate(train, data_dir, seed: int) -> float:
    from mate.evaluate.truth import load_annotations

    notes = load_annotations(data_dir)
    if notes is None or len(train) < 2:
        return float("nan")
    idx = sample_batch(train, min(256, len(train)), np.random.default_rng(seed))
    return float(false_negative_rate(train, idx, notes))


def _plots(aligner, pack, train, vocab, pairs, folder: Path) -> None:
    from . import plots

    with torch.no_grad():
        idx = np.flatnonzero(train.num_subtexts >= 2)[:4]
        if len(idx):
            b = collate(pack, train, idx, encoder=aligner.encoder)
            _, extra = aligner.terms(b, {"align": 1.0})
            prior = aligner.priors(b["spans"], b["lengths"], extra["attention"].shape[1])
            n_tok = token_lengths(b["lengths"])
            rows = [{"caption": b["text"][r], "word": b["word"][r], "attention": extra["attention"][r].numpy(),
                     "prior": None if prior is None else prior[r].numpy(),
                     "true": token_span(b["spans"][r], n_tokens=int(n_tok[r]))} for r in range(len(idx))]
            plots.attention(rows, folder / "attention.png")
    groups: dict[str, list[str]] = {}
    for p in pairs:
        if p["kind"] == "antonym" and p["attribute"] in ("turn", "limb", "speed"):
            groups.setdefault(p["value_a"], []).append(p["text_a"])
            groups.setdefault(p["value_b"], []).append(p["text_b"])
    if groups:  # the language model's own sentence features: what a downstream generator reads
        def lm(texts):
            with torch.no_grad():
                return aligner.encoder(texts).sentence.numpy()

        after = {k: lm(v[:60]) for k, v in groups.items()}
        rows = aligner.encoder.rows
        before = after
        if rows is not None:
            saved = rows.rows.detach().clone()
            rows.reset()
            before = {k: lm(v[:60]) for k, v in groups.items()}
            with torch.no_grad():
                rows.rows.copy_(saved)
        plots.projection(before, after, folder / "projection.png")
