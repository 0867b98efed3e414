"""Captions composed from templates, with their HumanML3D token field and their ground truth.

A caption describes the clip's segments in one sentence. Sequencing uses "then", "after that", "before" and "after";
half of the before/after templates put the clauses in an order different from the motion's ("before jumping, a
man walks"; "a man jumps after walking"), so word order is not frame order. Every clause is a sub-text of one
segment, and every motion word (action verb, turn/direction/speed/limb form) is recorded with its character offset,
attribute, value and segment: the ground truth that partition and word-level measures are scored against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .vocab import ACTION_FORMS, LIMB_GROUP, Form, _t, forms

P_MENTION = 0.93  # a non-default attribute is named in a caption with this probability
P_FORWARD = 0.35  # "forward" for actions that go forward anyway (walk, run, kick)

SUBJECTS = (  # (subject, later reference, possessive)
    ("a person", "the person", "their"), ("a man", "he", "his"), ("a woman", "she", "her"),
    ("someone", "the person", "their"), ("the man", "he", "his"), ("a figure", "the figure", "its"),
)
_TAGS = {"a": "DET", "the": "DET", "person": "NOUN", "man": "NOUN", "woman": "NOUN", "figure": "NOUN",
         "someone": "PRON", "he": "PRON", "she": "PRON", "his": "DET", "her": "DET", "their": "DET", "its": "DET",
         "then": "ADV", "and": "CCONJ", "after": "ADP", "before": "ADP", "that": "PRON", "first": "ADV",
         "is": "AUX", "with": "ADP", "in": "ADP", "circle": "NOUN", "while": "SCONJ"}

# (template, weight): S subject, R later reference, Fk finite clause of segment k, Gk gerund clause.
TEMPLATES = {
    1: (("S Fa", 3.0), ("S is Ga", 1.0)),
    2: (("S Fa , then Fb", 2.0), ("S Fa and then Fb", 2.0), ("S Fa . after that , R Fb", 1.0),
        ("S first Fa , then Fb", 1.0), ("S Fa before Gb", 1.5), ("before Gb , S Fa", 1.5),
        ("after Ga , S Fb", 1.5), ("S Fb after Ga", 1.5)),
    3: (("S Fa , then Fb , then Fc", 1.0), ("S Fa , Fb , and then Fc", 1.0),
        ("S Fa , then Fb , and after that Fc", 1.0), ("S Fb after Ga , then Fc", 1.0),
        ("after Ga , S Fb and then Fc", 1.0), ("S Fa , then Fc after Gb", 1.0), ("before Gc , S Fa and then Fb", 1.0),
        ("S Fa and then Fb before Gc", 1.0), ("S Fa before Gb , then Fc", 1.0)),
}
_ATTACH = {"S", "R", "is", "first"}  # words that belong to the clause after them


@dataclass
class Piece:
    text: str
    tokens: tuple[tuple[str, str], ...]
    word: tuple[str, str] | None = None  # (attribute, value) of a motion word
    hard_case: str | None = None
    segment: int | None = None


def _lit(text: str) -> Piece:
    return Piece(text, tuple((w, _TAGS[w]) for w in text.split()))


def _form(f: Form, attribute: str, value: str) -> Piece:
    return Piece(f.text, f.tokens, (attribute, value), f.hard_case)


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def clause(rng: np.random.Generator, action: str, attributes: dict, gerund: bool, poss: str) -> list[Piece]:
    """The pieces of one clause (verb first, unless a speed adverb leads) describing one segment."""
    verb = _pick(rng, ACTION_FORMS[action])
    head = [Piece(verb.gerund if gerund else verb.finite, verb.tokens, ("action", action))]
    mods: list[list[Piece]] = []
    speed_pre = speed_post = None
    if "speed" in attributes and rng.random() < P_MENTION:
        value = attributes["speed"]
        pre = forms("speed", value, pre=True)
        if rng.random() < 0.25 and pre:
            speed_pre = _form(_pick(rng, pre), "speed", value)  # "slowly walks"
        else:
            speed_post = _form(_pick(rng, forms("speed", value)), "speed", value)
    direction = attributes.get("direction")
    if direction:
        default = direction == "forward" and action in ("walk", "run", "kick")
        if rng.random() < (P_FORWARD if default else P_MENTION):
            mods.append([_form(_pick(rng, forms("direction", direction)), "direction", direction)])
    turn = attributes.get("turn")
    if turn and rng.random() < P_MENTION:
        t = _form(_pick(rng, forms("turn", turn)), "turn", turn)
        if action == "walk":
            circle = _lit("in a circle")
            mods.append([circle, t] if rng.random() < 0.5 else [t, circle])
        elif action == "jump":
            link = _pick(rng, (("and", "spinning" if gerund else "spins", "spin"), ("while", "spinning", "spin"),
                               ("and", "turning" if gerund else "turns", "turn")))
            mods.append([Piece(f"{link[0]} {link[1]}", _t(f"{link[0]}/{_TAGS[link[0]]} {link[2]}/VERB")), t])
        else:
            mods.append([t])
    limb = attributes.get("limb")
    if limb and rng.random() < P_MENTION:
        f = _pick(rng, forms("limb", limb, group=LIMB_GROUP[action]))
        limb_phrase = [_lit(poss), _form(f, "limb", limb)]
        if verb.finite in ("waves", "kicks") and rng.random() < 0.5:
            mods.insert(0, limb_phrase)  # "waves his left hand"
        else:
            mods.append([_lit("with")] + limb_phrase)  # "kicks forward with the left leg"
    if speed_post is not None:
        mods.insert(len(mods) if rng.random() < 0.7 else 0, [speed_post])
    return ([speed_pre] if speed_pre else []) + head + [p for m in mods for p in m]


def _assemble(pieces: list[Piece], capital: bool, period: bool) -> tuple[str, list[int]]:
    text, starts = "", []
    for i, p in enumerate(pieces):
        if p.text in (",", "."):
            starts.append(len(text))
            text += p.text
            continue
        if text:
            text += " "
        w = p.text
        if (i == 0 and capital) or (capital and i > 0 and pieces[i - 1].text == "."):
            w = w[0].upper() + w[1:]
        starts.append(len(text))
        text += w
    if period:
        text += "."
    return text, starts


def caption(rng: np.random.Generator, segments: list[tuple[str, dict]], template: str | None = None) -> dict:
    """One caption of a clip whose segments are (action, attributes), in frame order.

    Returns text, tokens (HumanML3D's `word/POS ...` field), template, order (segment indices in textual order),
    subtexts [{text, segment, chars}] and words [{surface, char, attribute, value, segment[, hard_case]}].
    """
    k = len(segments)
    if template is None:
        options = TEMPLATES[k]
        w = np.array([x[1] for x in options])
        template = options[int(rng.choice(len(options), p=w / w.sum()))][0]
    subject, ref, poss = _pick(rng, SUBJECTS)
    pieces: list[Piece] = []
    pending: list[Piece] = []  # subject/adverb words that attach to the next clause
    for tok in template.split():
        if tok in ("S", "R"):
            pending.append(_lit(subject if tok == "S" else ref))
        elif tok in ("is", "first"):
            pending.append(_lit(tok))
        elif tok[0] in "FG" and len(tok) == 2:
            seg = "abc".index(tok[1])
            action, attributes = segments[seg]
            cl = pending + clause(rng, action, attributes, tok[0] == "G", poss)
            for p in cl:
                p.segment = seg
            pieces += cl
            pending = []
        else:
            pieces.append(_lit(tok) if tok not in (",", ".") else Piece(tok, ()))
    capital = rng.random() < 0.35
    text, starts = _assemble(pieces, capital, period=rng.random() < 0.5)
    subtexts, words, order = [], [], []
    for i, p in enumerate(pieces):
        if p.segment is not None and (i == 0 or pieces[i - 1].segment != p.segment):
            j = i
            while j + 1 < len(pieces) and pieces[j + 1].segment == p.segment:
                j += 1
            a, b = starts[i], starts[j] + len(pieces[j].text)
            subtexts.append({"text": text[a:b], "segment": p.segment, "chars": [a, b]})
            order.append(p.segment)
        if p.word is not None:
            w = {"surface": text[starts[i]:starts[i] + len(p.text)], "char": starts[i], "attribute": p.word[0],
                 "value": p.word[1], "segment": p.segment}
            if p.hard_case:
                w["hard_case"] = p.hard_case
            words.append(w)
    tokens = " ".join(f"{lemma.lower()}/{pos}" for p in pieces for lemma, pos in p.tokens)
    return {"text": text, "tokens": tokens, "template": template, "order": order, "subtexts": subtexts,
            "words": words}


def captions(rng: np.random.Generator, segments: list[tuple[str, dict]], count: int = 3) -> list[dict]:
    """`count` different captions of one clip, on different templates where there are enough."""
    options = TEMPLATES[len(segments)]
    w = np.array([x[1] for x in options])
    order = rng.choice(len(options), size=len(options), replace=False, p=w / w.sum())
    out, seen = [], set()
    for attempt in range(count * 6):
        c = caption(rng, segments, options[int(order[attempt % len(order)])][0])
        if c["text"] not in seen:
            seen.add(c["text"])
            out.append(c)
        if len(out) == count:
            break
    return out
