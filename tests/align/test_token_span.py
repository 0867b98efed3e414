"""One row -> token span rule: the prior's support, align/attn_in_span's span and the plotted true span are the same
tokens (`mate.align.prior.segment_token_range` / `token_span`); before, attn_in_span and the plot took every token a
span touched (floor / ceil), a wider span than the prior's nearest-token one."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import mate.align.run as R
from mate.align.prior import gaussian_prior, segment_token_range, token_lengths, token_span

# (span [s, e) in rows, clip length in rows): off-grid bounds both ways, halves, a span shorter than a token, one
# that runs past the last whole token, and one of a clip whose last rows make no whole token
CASES = [((6, 18), 48), ((5, 19), 48), ((8, 24), 48), ((2, 14), 48), ((9, 11), 48), ((0, 3), 48), ((30, 47), 48),
         ((13, 29), 40), ((1, 42), 42), ((17, 18), 24)]


def _prior_support(span, length) -> set[int]:
    n_tok = token_lengths([length])
    g = gaussian_prior([list(span)], n_tok, "binary", 1.0)
    return set(torch.nonzero(g[0]).flatten().tolist())


def test_token_span_is_the_prior_support():
    for span, length in CASES:
        lo, hi = token_span(span, n_tokens=int(token_lengths([length])[0]))
        assert set(range(lo, hi)) == _prior_support(span, length), span
        vec = segment_token_range([list(span)], token_lengths([length]))
        assert (int(vec[0][0]), int(vec[1][0])) == (lo, hi)


def test_token_span_rounds_to_the_nearest_token():
    # token 1 (rows 4-7) has its second half inside: out; token 4 (rows 16-19) its first half: in (halves go to the
    # earlier span, so adjacent spans' tokens tile the grid)
    assert token_span((6, 18)) == (2, 5)
    assert token_span((7, 17)) == (2, 4)  # tokens 1 and 4 have one row inside each: both out
    assert token_span((8, 24)) == (2, 6) and token_span((0, 196)) == (0, 49)
    assert token_span((3, 5)) == (1, 2)  # rounds to nothing: the token of its centre
    assert token_span((30, 47), n_tokens=10) == (8, 10)  # clamped to the valid tokens


class _Aligner:
    """attention_in_span's view of an Aligner: `terms` gives a fixed attention; `priors` the binary prior."""

    encoder = object()

    def __init__(self, att: torch.Tensor):
        self.att = att

    def terms(self, batch, weights):
        return None, {"attention": self.att[: len(batch["spans"])]}

    def priors(self, spans, lengths, num_tokens):
        return gaussian_prior(spans, token_lengths(lengths), "binary", 1.0, num_tokens=num_tokens)


def _batch(monkeypatch, span, length):
    batch = {"spans": torch.tensor([list(span)]), "lengths": torch.tensor([length]), "text": ["t"], "word": ["w"]}
    monkeypatch.setattr(R, "collate", lambda *a, **k: batch)
    return SimpleNamespace(num_subtexts=np.array([2], np.int16))


def test_attention_in_span_counts_exactly_the_prior_support(monkeypatch):
    """All attention on token tau: attn_in_span is 1 exactly when the prior covers tau (floor/ceil also counted the
    tokens a span only touches, e.g. token 1 of rows [6, 18), token 0 of [2, 14) and token 7 of [13, 29))."""
    for span, length in CASES:
        items = _batch(monkeypatch, span, length)
        big_l = int(token_lengths([length])[0]) + 2  # padded grid, as in a batch with longer clips
        counted = set()
        for tau in range(big_l):
            att = torch.zeros(1, big_l)
            att[0, tau] = 1.0
            share = R.attention_in_span(_Aligner(att), None, items, limit=1)
            assert share in (0.0, 1.0)
            if share == 1.0:
                counted.add(tau)
        assert counted == _prior_support(span, length), span


def test_plotted_true_span_is_the_prior_support(monkeypatch, tmp_path):
    import mate.align.plots as plots

    got = []
    monkeypatch.setattr(plots, "attention", lambda rows, path: got.extend(rows))
    for span, length in CASES:
        items = _batch(monkeypatch, span, length)
        big_l = int(token_lengths([length])[0])
        got.clear()
        R._plots(_Aligner(torch.full((1, big_l), 1.0 / big_l)), None, items, None, [], tmp_path)
        lo, hi = got[0]["true"]
        assert set(range(lo, hi)) == _prior_support(span, length) == set(np.flatnonzero(got[0]["prior"]).tolist())


@pytest.mark.parametrize("unit", [2, 4, 8])
def test_a_token_is_inside_when_most_of_its_rows_are(unit):
    """Spans of at least a token: token t is in when more than half its rows are, or exactly its first half (the
    span ends mid-token); shorter spans get one token. Adjacent spans' tokens tile the grid."""
    for s in range(0, 40):
        for e in range(s + 1, 48):
            lo, hi = token_span((s, e), unit, n_tokens=100)
            if e - s < unit:
                assert hi - lo == 1
                continue
            overlap = {t: min(e, (t + 1) * unit) - max(s, t * unit) for t in range(100)}
            inside = {t for t, o in overlap.items() if 2 * o > unit or (2 * o == unit and t * unit >= s)}
            assert set(range(lo, hi)) == inside, (s, e)
            for c in range(e + unit, 60):  # the next span [e, c)
                assert token_span((e, c), unit, n_tokens=100)[0] == hi
