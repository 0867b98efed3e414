"""Surface forms of every attribute value, each with its lemmatised tokens and universal POS tags.

Captions are composed from these, so every word's lemma and tag is known (HumanML3D's token field: verbs and nouns
lemmatised, except the word "left"; hyphens removed; only alphabetic tokens). Each value has at least two forms,
so a model must map several words to one kinematic meaning. "anti-clockwise" (and "counter-clockwise") is a
deliberate hard case: WordPiece splits it into `anti - clockwise`, so it shares the row of its antonym "clockwise".
"""

from __future__ import annotations

from dataclasses import dataclass

HARD_CASE = "shares_subtoken_with_antonym"


@dataclass(frozen=True)
class Form:
    text: str  # as written in the caption
    tokens: tuple[tuple[str, str], ...]  # (lemma, POS) for the token field
    kind: str = ""  # antonym swaps keep the kind ("to the left" <-> "to the right", "forwards" <-> "backwards")
    pre: bool = False  # may stand before the verb ("slowly walks")
    group: str = ""  # limb forms: "hand" (wave) or "leg" (kick)
    hard_case: str | None = None


@dataclass(frozen=True)
class Verb:
    finite: str  # "walks"
    gerund: str  # "walking"
    tokens: tuple[tuple[str, str], ...]


def _t(spec: str) -> tuple[tuple[str, str], ...]:
    """'to/ADP the/DET left/NOUN' -> (('to', 'ADP'), ...)."""
    return tuple(tuple(w.rsplit("/", 1)) for w in spec.split())  # type: ignore[misc]


def _v(finite: str, gerund: str, tokens: str) -> Verb:
    return Verb(finite, gerund, _t(tokens))


ACTION_FORMS: dict[str, tuple[Verb, ...]] = {
    "walk": (_v("walks", "walking", "walk/VERB"), _v("strides", "striding", "stride/VERB")),
    "run": (_v("runs", "running", "run/VERB"), _v("jogs", "jogging", "jog/VERB")),
    "jump": (_v("jumps", "jumping", "jump/VERB"), _v("leaps", "leaping", "leap/VERB"),
             _v("hops", "hopping", "hop/VERB")),
    "squat": (_v("squats", "squatting", "squat/VERB"), _v("crouches", "crouching", "crouch/VERB"),
              _v("squats down", "squatting down", "squat/VERB down/ADV")),
    "kick": (_v("kicks", "kicking", "kick/VERB"), _v("does a kick", "doing a kick", "do/VERB a/DET kick/NOUN")),
    "wave": (_v("waves", "waving", "wave/VERB"), _v("gives a wave", "giving a wave", "give/VERB a/DET wave/NOUN")),
    "turn": (_v("turns", "turning", "turn/VERB"), _v("rotates", "rotating", "rotate/VERB"),
             _v("pivots", "pivoting", "pivot/VERB")),
    "side-step": (_v("side-steps", "side-stepping", "sidestep/VERB"), _v("sidesteps", "sidestepping", "sidestep/VERB"),
                  _v("shuffles sideways", "shuffling sideways", "shuffle/VERB sideways/ADV")),
}

FORMS: dict[tuple[str, str], tuple[Form, ...]] = {
    ("turn", "clockwise"): (Form("clockwise", _t("clockwise/ADV"), "wise"),
                            Form("to the right", _t("to/ADP the/DET right/NOUN"), "phrase")),
    ("turn", "counterclockwise"): (
        Form("counterclockwise", _t("counterclockwise/ADV"), "wise"),
        Form("anticlockwise", _t("anticlockwise/ADV"), "wise"),
        Form("anti-clockwise", _t("anticlockwise/ADV"), "wise", hard_case=HARD_CASE),
        Form("counter-clockwise", _t("counterclockwise/ADV"), "wise", hard_case=HARD_CASE),
        Form("to the left", _t("to/ADP the/DET left/NOUN"), "phrase")),
    ("direction", "forward"): (Form("forward", _t("forward/ADV"), "bare"), Form("forwards", _t("forwards/ADV"), "s"),
                               Form("ahead", _t("ahead/ADV"), "bare")),
    ("direction", "backward"): (Form("backward", _t("backward/ADV"), "bare"),
                                Form("backwards", _t("backwards/ADV"), "s")),
    ("direction", "left"): (Form("to the left", _t("to/ADP the/DET left/NOUN"), "phrase"),
                            Form("leftward", _t("leftward/ADV"), "ward"), Form("left", _t("left/ADV"), "bare")),
    ("direction", "right"): (Form("to the right", _t("to/ADP the/DET right/NOUN"), "phrase"),
                             Form("rightward", _t("rightward/ADV"), "ward"), Form("right", _t("right/ADV"), "bare")),
    ("speed", "quickly"): (Form("quickly", _t("quickly/ADV"), pre=True), Form("fast", _t("fast/ADV")),
                           Form("rapidly", _t("rapidly/ADV"), pre=True), Form("swiftly", _t("swiftly/ADV"), pre=True)),
    ("speed", "slowly"): (Form("slowly", _t("slowly/ADV"), pre=True), Form("leisurely", _t("leisurely/ADV")),
                          Form("unhurriedly", _t("unhurriedly/ADV"), pre=True)),
}
for _value in ("left", "right"):
    FORMS[("limb", _value)] = tuple(
        Form(f"{_value} {noun}", _t(f"{_value}/ADJ {noun}/NOUN"), noun, group=group)
        for noun, group in (("hand", "hand"), ("arm", "hand"), ("leg", "leg"), ("foot", "leg")))

LIMB_GROUP = {"wave": "hand", "kick": "leg"}


def forms(attribute: str, value: str, *, group: str = "", pre: bool = False) -> tuple[Form, ...]:
    """The forms of a value usable in a slot (limb forms of the action's body part; pre-verb adverbs)."""
    out = FORMS[(attribute, value)]
    if group:
        out = tuple(f for f in out if f.group == group)
    if pre:
        out = tuple(f for f in out if f.pre)
    return out


def find_form(attribute: str, value: str, text: str) -> Form:
    for f in FORMS[(attribute, value)]:
        if f.text == text:
            return f
    raise KeyError(f"{text!r} is not a form of {attribute}={value}")


def vocabulary() -> dict[str, dict[str, list[str]]]:
    """attribute -> value -> surface forms (what meta.json records)."""
    out: dict[str, dict[str, list[str]]] = {"action": {a: [v.finite for v in vs] for a, vs in ACTION_FORMS.items()}}
    for (attribute, value), fs in FORMS.items():
        out.setdefault(attribute, {})[value] = [f.text for f in fs]
    return out


def hard_cases() -> list[str]:
    return sorted({f.text for fs in FORMS.values() for f in fs if f.hard_case})
