"""The rule segmenter: connectives, simultaneous actions, temporal reordering, and its agreement with hand-made
expected sub-texts on captions it was not tuned on.

The fixture (`fixtures/segmentation_captions.jsonl`, 66 HumanML3D-style lines `caption#word/POS ...#0.0#0.0` with
their expected sub-texts in temporal order) was written before the rules, with connectives and orders the
synthetic templates do not use ("while", "as", "once", "and finally", "followed by", "first ... then", comma lists,
"before"/"after" in both positions, "next", "afterwards", simultaneity). Its figures were measured once the rules
were written and were not tuned on afterwards (the one miss, "winding up", is left as it is).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mate.data.captions import parse_line
from mate.text.segment import RuleSegmenter, validate
from mate.text.segment.agreement import agreement, disagreements, reference_from_subtexts
from mate.text.segment.rules import split

FIXTURE = Path(__file__).parent / "fixtures" / "segmentation_captions.jsonl"


def load_fixture():
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
    refs = []
    for r in rows:
        cap = parse_line(r["line"])
        refs.append(reference_from_subtexts(cap.text, r["subtexts"], cap.tokens))
    return rows, refs


def texts(caption: str) -> list[str]:
    return [s.text for s in split(caption)]


def test_fixture_is_well_formed():
    rows, refs = load_fixture()
    assert len(rows) >= 50
    multi = sum(1 for r in rows if len(r["subtexts"]) > 1)
    assert 35 <= multi < len(rows)  # mostly several actions, some single ones
    for r, ref in zip(rows, refs):
        cap = parse_line(r["line"])
        assert cap.whole and all(s in cap.text for s in r["subtexts"])
        assert ref.words, cap.text  # every caption has motion words to score
    used = " ".join(parse_line(r["line"]).text.lower() for r in rows)
    for connective in ("while", " as ", "once", "and finally", "followed by", "first", "before", "after", ", then",
                       "next", "afterwards", "simultaneously"):
        assert connective in used


def test_rule_agreement_on_the_hand_made_fixture(capsys):
    _, refs = load_fixture()
    pred = {s.caption: s for s in RuleSegmenter().segment([r.caption for r in refs])}
    m = agreement(pred, refs)
    wrong = disagreements(pred, refs)
    with capsys.disabled():
        print(f"\nrule segmenter on the hand-made fixture ({len(refs)} captions, "
              f"{sum(len(r.words) for r in refs)} motion words): count agreement {m['segment/count_agreement']:.3f}, "
              f"word agreement {m['segment/word_agreement']:.3f}; wrong: {[r.caption for r, _ in wrong]}")
    assert m["segment/word_agreement"] >= 0.80
    assert m["segment/count_agreement"] >= 0.80


def test_rule_agreement_on_the_synthetic_corpus(tiny_corpus, capsys):
    from mate.text.segment.truth import GroundTruthSegmenter

    truth = GroundTruthSegmenter(tiny_corpus)
    caps = [r.caption for r in truth.references]
    pred = {s.caption: s for s in RuleSegmenter().segment(caps)}
    m = agreement(pred, truth.references)
    with capsys.disabled():
        print(f"\nrule segmenter on the synthetic corpus ({len(caps)} captions): count agreement "
              f"{m['segment/count_agreement']:.3f}, word agreement {m['segment/word_agreement']:.3f}")
    assert m["segment/word_agreement"] >= 0.95 and m["segment/count_agreement"] >= 0.95
    reordered = [r for r in truth.references if truth.truth[r.caption].subtexts[0].start > 0]
    assert reordered and all(pred[r.caption].texts == truth.truth[r.caption].texts for r in reordered[:20])


@pytest.mark.parametrize("caption, expected", [
    # temporal reordering, both positions
    ("a person jumps before turning around", ["a person jumps", "turning around"]),
    ("before turning around, a person jumps.", ["a person jumps", "turning around"]),
    ("after walking forward, the man sits down", ["walking forward", "the man sits down"]),
    ("the man sits down after walking forward", ["walking forward", "the man sits down"]),
    ("the man sits down once he reaches the chair", ["he reaches the chair", "the man sits down"]),
    ("once he reaches the chair, the man sits down", ["he reaches the chair", "the man sits down"]),
    ("a person waves, but before that he bows", ["he bows", "a person waves"]),
    # sequence connectives
    ("a person walks forward, then turns left and then jumps.", ["a person walks forward", "turns left", "jumps"]),
    ("a man squats. after that, he stands up", ["a man squats", "he stands up"]),
    ("someone kicks, afterwards waves", ["someone kicks", "waves"]),
    ("a person runs followed by a jump", ["a person runs", "a jump"]),
    ("first the man crouches, next he jumps, and finally he lands", ["the man crouches", "he jumps", "he lands"]),
    ("a person walks forward, turns around, and walks back", ["a person walks forward", "turns around", "walks back"]),
    # phrases that continue, not new actions
    ("a person jumps up and down", ["a person jumps up and down"]),
    ("the man moves his arms left and right", ["the man moves his arms left and right"]),
    ("a person walks forward once and then stops", ["a person walks forward once", "stops"]),
    # simultaneous actions stay together
    ("a person walks forward while waving", ["a person walks forward while waving"]),
    ("someone spins as they jump", ["someone spins as they jump"]),
    ("a person hops whilst clapping and waving", ["a person hops whilst clapping and waving"]),
    ("a man walks and claps at the same time", ["a man walks and claps at the same time"]),
    # a single action
    ("A person kicks with the left leg.", ["A person kicks with the left leg"]),
])
def test_rules_cases(caption, expected):
    assert texts(caption) == expected


def test_subtexts_are_spans_in_temporal_order_and_pass_validation():
    rows, _ = load_fixture()
    for r in rows:
        caption = parse_line(r["line"]).text
        subs = split(caption)
        assert subs and all(caption[s.start:s.end] == s.text for s in subs)
        again = validate(caption, [s.text for s in subs])  # the rules' own answer is a valid answer
        assert [(s.start, s.end) for s in again] == [(s.start, s.end) for s in subs]


def test_rules_are_deterministic_and_keep_input_order():
    rows, refs = load_fixture()
    caps = [r.caption for r in refs]
    a, b = RuleSegmenter().segment(caps), RuleSegmenter().segment(list(caps))
    assert [s.to_json() for s in a] == [s.to_json() for s in b]
    assert [s.caption for s in a] == caps and all(s.backend == "rules" and not s.fell_back for s in a)
