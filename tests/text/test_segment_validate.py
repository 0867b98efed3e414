"""Validation of an answer (spans, invented words, coverage, overlap, temporal order), defensive parsing of an LLM's
JSON, and the agreement measures on hand-made cases."""

from __future__ import annotations

import pytest

from mate.text.segment.agreement import Reference, agreement, reference_from_subtexts
from mate.text.segment.base import Invalid, Segmentation, SubText, order_constraints, validate
from mate.text.segment.llm import parse_answer

CAP = "A person walks forward, then turns around slowly."


def test_valid_answer_is_located_modulo_case_punctuation_and_whitespace():
    subs = validate(CAP, ["a person walks  FORWARD", "Turns around slowly."])
    assert [s.text for s in subs] == ["A person walks forward", "turns around slowly"]
    assert all(CAP[s.start:s.end] == s.text for s in subs)


def test_connectives_may_be_left_out_at_the_edges_only():
    cap = "the man kicks and then quickly jumps"
    assert [s.text for s in validate(cap, ["the man kicks", "quickly jumps"])] == ["the man kicks", "quickly jumps"]
    assert [s.text for s in validate(cap, ["the man kicks and", "then quickly jumps"])] == [
        "the man kicks and", "then quickly jumps"]
    with pytest.raises(Invalid) as err:
        validate(cap, ["the man kicks quickly jumps"])
    assert err.value.reason == "not_span"


@pytest.mark.parametrize("answer, reason", [
    ([], "empty"),
    (["", "turns around slowly"], "empty"),
    (["a person walks forward", "then spins around slowly"], "invented"),
    (["a person walks forward"], "missing"),
    (["walks forward turns", "around slowly"], "not_span"),
    (["a person walks forward", "walks forward", "turns around slowly"], "overlap"),
])
def test_invalid_answers(answer, reason):
    with pytest.raises(Invalid) as err:
        validate(CAP, answer)
    assert err.value.reason == reason


def test_repeated_phrases_take_distinct_occurrences():
    cap = "a person walks forward then walks forward again"
    subs = validate(cap, ["walks forward again", "a person walks forward"][::-1])
    assert subs[0].start == 0 and subs[1].start > subs[0].end


@pytest.mark.parametrize("caption, good, bad", [
    ("a man sits after walking", ["walking", "a man sits"], ["a man sits", "walking"]),
    ("after walking, a man sits", ["walking", "a man sits"], ["a man sits", "walking"]),
    ("a man walks before sitting", ["a man walks", "sitting"], ["sitting", "a man walks"]),
    ("before sitting, a man walks", ["a man walks", "sitting"], ["sitting", "a man walks"]),
    ("a man walks. after that he sits", ["a man walks", "he sits"], ["he sits", "a man walks"]),
])
def test_before_after_order_is_checked(caption, good, bad):
    assert [s.text for s in validate(caption, good)] == good
    with pytest.raises(Invalid) as err:
        validate(caption, bad)
    assert err.value.reason == "order"


def test_order_constraints_ignore_a_single_subtext():
    assert order_constraints("a man sits after walking")
    assert [s.text for s in validate("a man sits after walking", ["a man sits after walking"])]


@pytest.mark.parametrize("content, expected", [
    ('{"subtexts": ["a", "b"]}', ["a", "b"]),
    ('```json\n{"subtexts": ["a"]}\n```', ["a"]),
    ('Here you go: {"sub_texts": ["a", "b"]} Hope it helps', ["a", "b"]),
    ('["a", "b"]', ["a", "b"]),
    ('{"result": [{"text": "a"}, {"text": "b"}]}', ["a", "b"]),
])
def test_parse_answer_is_defensive(content, expected):
    assert parse_answer(content) == expected


@pytest.mark.parametrize("content", [None, "", "no json here", '{"subtexts": "a"}', '{"a": [], "b": []}',
                                     '{"subtexts": [1, 2]}', '{"subtexts": []}', "42"])
def test_parse_answer_rejects_malformed(content):
    with pytest.raises(Invalid) as err:
        parse_answer(content)
    assert err.value.reason == "malformed"


def _seg(caption: str, *parts: str) -> Segmentation:
    subs = []
    for p in parts:
        a = caption.index(p)
        subs.append(SubText(p, a, a + len(p)))
    return Segmentation(caption, tuple(subs), "test")


def test_agreement_measures():
    cap = "a man sits down after walking forward"
    tokens = [("a", "DET"), ("man", "NOUN"), ("sit", "VERB"), ("down", "ADV"), ("after", "ADP"),
              ("walk", "VERB"), ("forward", "ADV")]
    ref = reference_from_subtexts(cap, ["walking forward", "a man sits down"], tokens)
    assert ref.count == 2
    assert sorted(k for _, k in ref.words) == [0, 0, 1, 1]  # man (subject) and after are not motion words
    good = {cap: _seg(cap, "walking forward", "a man sits down")}
    assert agreement(good, [ref]) == {"segment/count_agreement": 1.0, "segment/word_agreement": 1.0}
    reading_order = {cap: _seg(cap, "a man sits down", "walking forward")}  # right cut, wrong time order
    assert agreement(reading_order, [ref]) == {"segment/count_agreement": 1.0, "segment/word_agreement": 0.0}
    merged = {cap: _seg(cap, cap)}
    assert agreement(merged, [ref]) == {"segment/count_agreement": 0.0, "segment/word_agreement": 0.5}
    assert agreement({}, [ref]) == {"segment/count_agreement": 0.0, "segment/word_agreement": 0.0}
    two = [ref, Reference("x y", 1, ((0, 0), (2, 0)))]
    both = {**good, "x y": _seg("x y", "x y")}
    assert agreement(both, two)["segment/word_agreement"] == 1.0


def test_time_phrases_after_read_as_then():
    cap = "a man walks, after a while he sits down"
    assert [s.text for s in validate(cap, ["a man walks", "a while he sits down"])] == ["a man walks",
                                                                                       "a while he sits down"]
    with pytest.raises(Invalid):
        validate(cap, ["a while he sits down", "a man walks"])
