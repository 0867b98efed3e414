"""The offline, deterministic segmenter: connectives and verb phrases, then temporal reordering.

How a caption is cut (each cut starts a new clause; connectives are stripped from the sub-texts' edges):
- sequence connectives: "then", "and then", "after that/this/which", "afterwards", "followed by", "next",
  "finally", "and finally", "eventually", "subsequently", "later", a full stop or semicolon inside the caption;
- "and" or a comma in front of a verb phrase ("walks forward, turns left, and jumps"; "and he turns"), but not in
  front of a word that only continues a phrase ("up and down", "left and right", "hands and knees"); after a comma
  a gerund continues the clause ("dances, spinning around") unless the clause itself is a list of gerunds;
- "before" / "after" / "once" in front of a clause (a verb, or an action noun: "after a jump"), at the start of the
  caption (then the clause runs to the comma, or to the subject of the main clause) or in its middle.
Simultaneous actions stay together: "while", "whilst", "as", "when" never cut, "and" in front of a gerund inside
such a clause does not cut, and a clause saying "simultaneously" or "at the same time" joins the one before it.

Temporal order: every clause is a main clause or attached to one. "X after Y", "X once Y", "X, before that Y" and a
leading "after Y, X" / "once Y, X" put Y before X; "X before Y" and a leading "before Y, X" put Y after X. Clauses
continuing an attached clause with a gerund ("before standing up and running away") stay attached to it. The result
lists, for each main clause in reading order, the clauses attached before it, itself, the clauses attached after it.

Bump RULES_VERSION whenever a change can alter an answer: it keys the segmentation cache.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .base import FUNCTION_WORDS, Segmentation, Segmenter, SubText, content_words, make_subtext

RULES_VERSION = "rules-1"

_TOKEN = re.compile(r"[A-Za-z0-9]+(?:['\u2019-][A-Za-z0-9]+)*|[,.;:!?]")

# Motion (and a few everyday) verbs in their base form; inflected forms are generated.
_VERB_BASES = """
walk run jog sprint jump leap hop skip squat crouch kneel kick wave turn rotate spin twirl pivot step sidestep
side-step shuffle stride march pace stroll strut limp tiptoe stagger stumble trip fall sit stand lie lay rise get go
come move bend lean lift raise lower drop throw toss catch pick put place grab hold carry push pull punch hit strike jab
swing shake nod bow clap stretch reach touch tap stomp stamp climb crawl roll slide dance twist circle wander return
stop pause begin start continue proceed repeat perform do make take bring look glance face crossover cross
extend fold open close flap flail wiggle wobble sway rock balance lunge skate ski swim drink eat wipe brush scratch
point salute wash fix play juggle bounce dribble shoot block dodge duck kneel settle slow speed hurry back rest
straighten stoop squat jiggle hug cartwheel flip somersault spar box fight shrug sneak creep hunch tilt rub pat
lie sit stand walk remain stay keep try land hang swat give
sway jolt hurl pound cover uncover lay""".split()

_IRREGULAR = """ran fell sat stood lay lain rose risen got went came gone did done made took taken brought threw thrown
caught held struck swung shook put hit knelt leapt slid stuck began begun kept left""".split()


def _forms(base: str) -> set[str]:
    out = {base}
    if re.search(r"(s|sh|ch|x|z|[^aeiou]o)$", base):  # does, goes, stretches
        out.add(base + "es")
    elif re.search(r"[^aeiou]y$", base):
        out.add(base[:-1] + "ies")
    else:
        out.add(base + "s")
    stem = base[:-1] if base.endswith("e") and not base.endswith(("ee", "ye", "oe")) else base
    out |= {stem + "ing", stem + "ed" if not base.endswith("e") else base + "d"}
    if re.search(r"[aeiou][bdgklmnprt]$", base):  # both spellings: a wrong one never occurs in text
        out |= {base + base[-1] + "ing", base + base[-1] + "ed"}  # hop -> hopping, squat -> squatting
    if base.endswith("ie"):
        out.add(base[:-2] + "ying")
    if re.search(r"[^aeiou]y$", base):
        out.add(base[:-1] + "ied")
    return out


_FINITE: set[str] = set()  # -s forms and past forms
_GERUND: set[str] = set()
_BASE: set[str] = set(_VERB_BASES)
for _b in _VERB_BASES:
    for _f in _forms(_b):
        if _f.endswith("ing"):
            _GERUND.add(_f)
        elif _f != _b:
            _FINITE.add(_f)
_FINITE.update(w for w in _IRREGULAR if w != "left")
_NOT_VERBS = {"something", "anything", "nothing", "everything", "ceiling", "railing", "clothing", "evening",
              "morning", "string", "thing", "things", "king", "ring", "wing", "building", "backs", "backed"}
_GERUND -= _NOT_VERBS
_FINITE -= _NOT_VERBS

# Nouns of actions: "followed by a jump", "after a kick".
_ACTION_NOUNS = {"jump", "hop", "leap", "kick", "wave", "turn", "spin", "step", "squat", "punch", "walk", "run",
                 "jog", "stretch", "bow", "cartwheel", "handstand", "flip", "somersault", "lunge", "pause", "rest",
                 "crouch", "dance", "twirl", "pivot", "throw", "clap", "sprint", "stride", "shuffle", "sidestep"}
_TIME_NOUNS = {"while", "moment", "pause", "second", "seconds", "bit", "time", "beat", "delay", "short", "brief", "few"}
_SUBJECT_PRONOUNS = {"he", "she", "they", "someone", "somebody", "we", "i", "it"}
_SUBJECT_NOUNS = {"person", "man", "woman", "figure", "guy", "lady", "boy", "girl", "human", "individual",
                  "character", "subject", "people", "child", "kid", "player", "dancer"}
_DETS = {"a", "an", "the", "this", "that", "his", "her", "their"}
_AUX = {"is", "are", "was", "were", "be", "been", "being", "am", "has", "have", "had"}
_SKIP_ADVERBS = {"then", "also", "again", "slowly", "quickly", "finally", "immediately", "suddenly", "carefully",
                 "gently", "repeatedly", "briskly", "rapidly", "swiftly", "slightly", "just", "now", "further",
                 "eventually", "afterwards", "later", "next", "lastly", "subsequently"}
_SEQ_WORDS = {"then", "finally", "afterwards", "afterward", "eventually", "subsequently", "lastly", "later"}
_SIMULTANEOUS_WORDS = {"while", "whilst", "as", "when", "whilest"}
_STOPS = {".", ";", "!", "?", ":"}
_JUMP_FORMS = {f for b in ("jump", "leap", "hop") for f in _forms(b)} | {"leapt"}
_SPIN_FORMS = {f for b in ("spin", "turn", "twist", "rotate", "twirl", "pivot") for f in _forms(b)}


@dataclass(frozen=True)
class _Tok:
    w: str  # lowercased text
    start: int
    end: int

    @property
    def punct(self) -> bool:
        return not self.w[0].isalnum()


def _tokens(text: str) -> list[_Tok]:
    return [_Tok(m.group(0).lower(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _adverb(w: str) -> bool:
    """A manner adverb that may stand between a connective and its verb ("and slowly walks")."""
    return len(w) > 4 and w.endswith("ly") and w not in ("family", "belly", "jelly", "rally")


def is_finite(w: str) -> bool:
    return w in _FINITE


def is_gerund(w: str) -> bool:
    return w in _GERUND


def is_verb(w: str) -> bool:
    return w in _FINITE or w in _GERUND or w in _BASE


# Clause roles (the marker of the cut that starts a clause).
MAIN = "main"  # a clause of its own, in reading order
CONT = "cont"  # "and"/comma continuation: a main clause, or part of the attached group before it (gerunds)
PRE = "pre"  # attached before the last main clause ("X after Y", "X once Y", "X, before that Y")
POST = "post"  # attached after the last main clause ("X before Y")
LEAD_PRE = "lead_pre"  # leading "after Y" / "once Y": attached before the next main clause
LEAD_POST = "lead_post"  # leading "before Y": attached after the next main clause


class _Cutter:
    def __init__(self, toks: list[_Tok]):
        self.t = toks
        self.n = len(toks)
        self.cuts: list[tuple[int, str]] = [(0, MAIN)]  # (first token of the clause, role)
        self.sentence_starts = {0}  # tokens that begin a sentence (the scope of a leading "before")

    def word(self, i: int) -> str:
        return self.t[i].w if 0 <= i < self.n else ""

    def next_word(self, i: int, skip: set[str] = _SKIP_ADVERBS) -> int:
        """Index of the first word at or after i that is not a skippable adverb (n if none)."""
        while i < self.n and (self.t[i].w in skip or (skip is _SKIP_ADVERBS and _adverb(self.t[i].w))):
            i += 1
        return i

    def clause_start(self) -> int:
        return self.cuts[-1][0]

    def clause_role(self) -> str:
        return self.cuts[-1][1]

    def clause_words(self, end: int) -> list[str]:
        return [t.w for t in self.t[self.clause_start():end] if not t.punct]

    def clause_has_verb(self, end: int) -> bool:
        ws = self.clause_words(end)
        return any(is_finite(w) or is_gerund(w) for w in ws) or any(
            w in _BASE and i > 0 and ws[i - 1] in _SUBJECT_PRONOUNS | {"to"} for i, w in enumerate(ws)) or any(
            w in _ACTION_NOUNS for w in ws)

    def clause_first_verb(self, end: int) -> str:
        ws = self.clause_words(end)
        for i, w in enumerate(ws):
            if is_finite(w) or is_gerund(w):
                if is_gerund(w) and i > 0 and ws[i - 1] in _AUX:
                    return "finite"
                return "gerund" if is_gerund(w) else "finite"
        return ""

    def last_verb(self, end: int) -> str:
        ws = self.clause_words(end)
        return next((w for w in reversed(ws) if is_finite(w) or is_gerund(w)), "")

    def simultaneous(self, end: int) -> bool:
        return any(w in _SIMULTANEOUS_WORDS for w in self.clause_words(end))

    def starts_clause(self, i: int, *, gerund_ok: bool = True, base_ok: bool = True) -> bool:
        """Whether a verb phrase (or a subject and its verb) starts at token i (adverbs skipped)."""
        j = self.next_word(i)
        w = self.word(j)
        if is_finite(w) or (gerund_ok and is_gerund(w)):
            return True
        if base_ok and w in _BASE and self.word(j + 1) not in ("and", "or") and self.t[j - 1].w not in _DETS:
            return True
        return self.subject_at(j)

    def subject_at(self, j: int) -> bool:
        """A subject followed by a verb: "he turns", "the man sits", "they then walk"."""
        w = self.word(j)
        if w in _SUBJECT_PRONOUNS - {"it"}:
            k = self.next_word(j + 1, _SKIP_ADVERBS | _AUX)
            return is_verb(self.word(k))
        if w in _DETS and self.word(j + 1) in _SUBJECT_NOUNS:
            k = self.next_word(j + 2, _SKIP_ADVERBS | _AUX)
            return is_verb(self.word(k))
        return False

    def clause_follows(self, i: int) -> bool:
        """After "before"/"after"/"once" at i-1: a clause (verb or subject), or an action noun ("after a jump")."""
        j = self.next_word(i)
        w = self.word(j)
        if is_verb(w) or self.subject_at(j):
            return True
        if w in _DETS | {"one", "two", "three", "several", "some", "quick", "short", "big", "small", "few"}:
            k = j + 1
            while k < self.n and not self.t[k].punct and self.word(k) not in _ACTION_NOUNS and k < j + 4:
                k += 1
            return self.word(k) in _ACTION_NOUNS and self.word(j + 1) not in _TIME_NOUNS
        return False

    def leading(self, i: int) -> bool:
        """Whether token i begins its sentence (nothing but connectives before it in the clause)."""
        before = [t.w for t in self.t[self.clause_start():i] if not t.punct]
        lead_words = ("and", "then", "but", "so", "first", "firstly", "now")
        return all(w in lead_words for w in before) and self.clause_role() == MAIN

    def cut(self, i: int, role: str) -> None:
        if i <= self.clause_start():  # a connective at the very start of a clause only sets its role
            if role != CONT:
                self.cuts[-1] = (self.cuts[-1][0], role)
            return
        self.cuts.append((i, role))

    def run(self) -> list[tuple[int, int, str, bool]]:
        t = self.t
        i = 0
        while i < self.n:
            w = t[i].w
            nxt = self.word(i + 1)
            lead_clause = self.clause_role() in (LEAD_PRE, LEAD_POST)
            if w in _STOPS:
                if i + 1 < self.n:
                    self.cut(i + 1, MAIN)
                    self.sentence_starts.add(i + 1)
            elif w == ",":
                if lead_clause and self.clause_has_verb(i):
                    self.cut(i + 1, MAIN)
                elif self.clause_has_verb(i) and nxt not in ("and", "then", "or") and self.starts_clause(
                        i + 1, gerund_ok=self.clause_first_verb(i) == "gerund"):
                    self.cut(i + 1, CONT)
            elif w in _SEQ_WORDS:
                if i > 0 and not (w == "then" and self.word(i - 1) in ("since", "until")):
                    self.cut(i, MAIN)
            elif w == "next" and nxt not in ("to",):
                self.cut(i, MAIN)
            elif w == "followed" and nxt == "by":
                self.cut(i, MAIN)
            elif w == "and":
                j = self.next_word(i + 1)
                if self.word(i + 1) in _SEQ_WORDS | {"next"}:
                    pass  # the connective itself cuts
                elif self.clause_has_verb(i):
                    vj = self.word(j)
                    if vj in _SPIN_FORMS and self.last_verb(i) in _JUMP_FORMS:
                        pass  # "jumps and spins clockwise": one jumping turn
                    elif is_gerund(vj):
                        if self.clause_first_verb(i) == "gerund" and not self.simultaneous(i):
                            self.cut(i, CONT)
                    elif self.starts_clause(i + 1, gerund_ok=False):
                        self.cut(i, CONT)
            elif w in ("after", "before"):
                if nxt in ("that", "this", "which", "so") or (nxt == "doing" and self.word(i + 2) == "so"):
                    if w == "after":
                        self.cut(i, MAIN)
                    else:
                        self.cut(i, PRE)
                elif w == "after" and nxt in _TIME_NOUNS | {"a", "some"} and self.word(i + 2) in _TIME_NOUNS:
                    self.cut(i, MAIN)
                elif self.clause_follows(i + 1):
                    if self.leading(i):
                        self.cut(i, LEAD_PRE if w == "after" else LEAD_POST)
                    else:
                        self.cut(i, PRE if w == "after" else POST)
            elif w == "once":
                if self.leading(i) and self.clause_follows(i + 1):
                    self.cut(i, LEAD_PRE)
                elif i > 0 and (self.subject_at(i + 1) or self.word(i + 1) in _SUBJECT_PRONOUNS - {"it"}
                                or is_finite(nxt) or is_gerund(nxt)):
                    self.cut(i, PRE)
            elif lead_clause and not t[i].punct and i > self.clause_start() + 1 and self.clause_has_verb(i) and (
                    self.subject_at(i)):
                self.cut(i, MAIN)  # "after jogging the person stretches": the main clause begins at its subject
            i += 1
        bounds = []
        for k, (s, role) in enumerate(self.cuts):
            e = self.cuts[k + 1][0] if k + 1 < len(self.cuts) else self.n
            bounds.append((s, e, role, s in self.sentence_starts))
        return bounds


def _has_content(caption: str, start: int, end: int) -> bool:
    return bool(content_words(caption[start:end]))


def _simultaneous_marker(text: str) -> bool:
    low = text.lower()
    return "simultaneously" in low or "at the same time" in low or "concurrently" in low


def split(caption: str) -> list[SubText]:
    """The caption's sub-texts in temporal order (at least one; the whole caption when nothing cuts)."""
    toks = _tokens(caption)
    if not toks:
        return [SubText(caption, 0, len(caption))]
    clauses = _Cutter(toks).run()
    # [start char, end char, role, first verb is a gerund, begins a sentence]
    items = []
    for s, e, role, sentence in clauses:
        words_ = [t for t in toks[s:e] if not t.punct]
        if not words_:
            continue
        items.append([words_[0].start, words_[-1].end, role, _first_verb_is_gerund(words_), sentence])
    # Join clauses without content words, and "simultaneously"/"at the same time" clauses, to a neighbour.
    merged: list[list] = []
    for it in items:
        text = caption[it[0]:it[1]]
        if merged and (_simultaneous_marker(text) and it[2] == CONT or not _has_content(caption, it[0], it[1])):
            merged[-1][1] = it[1]
            continue
        if merged and not _has_content(caption, merged[-1][0], merged[-1][1]):
            merged[-1][1] = it[1]
            merged[-1][2] = it[2] if merged[-1][2] == MAIN else merged[-1][2]
            continue
        merged.append(it)
    if not merged:
        return [make_subtext(caption, 0, len(caption))]
    order = _temporal(merged)
    return [make_subtext(caption, merged[k][0], merged[k][1]) for k in order]


def _first_verb_is_gerund(toks: list[_Tok]) -> bool:
    for t in toks:
        if is_finite(t.w):
            return False
        if is_gerund(t.w):
            return True
    return False


def _temporal(items: list[list]) -> list[int]:
    """Order clause indices: per main clause, [attached before] + [itself] + [attached after]; a leading "before Y"
    goes after the last main clause of its sentence ("before Y, X and then Z" -> X, Z, Y)."""
    groups: list[dict] = []  # {"pre": [...], "main": idx | None, "post": [...]}
    pending_pre: list[int] = []
    trailing: list[int] = []  # leading "before" clauses, placed when their sentence ends
    last_attached: tuple[str, list[int]] | None = None  # the list a gerund continuation joins

    def flush() -> None:
        if trailing:
            if not groups:
                groups.append({"pre": [], "main": None, "post": []})
            groups[-1]["post"].extend(trailing)
            trailing.clear()

    for k, (_, _, role, gerund, sentence) in enumerate(items):
        if sentence and k > 0:
            flush()
        if role in (LEAD_PRE, LEAD_POST):
            target = pending_pre if role == LEAD_PRE else trailing
            target.append(k)
            last_attached = ("lead", target)
        elif role in (PRE, POST) and groups:
            target = groups[-1]["pre"] if role == PRE else groups[-1]["post"]
            target.append(k)
            last_attached = ("mid", target)
        elif role == CONT and gerund and last_attached is not None:
            last_attached[1].append(k)
        else:  # a main clause (or a PRE/POST with nothing before it: read as main)
            groups.append({"pre": pending_pre, "main": k, "post": []})
            pending_pre = []
            last_attached = None
    if pending_pre:  # a leading clause never followed by a main one
        groups.append({"pre": pending_pre, "main": None, "post": []})
    flush()
    order: list[int] = []
    for g in groups:
        order += g["pre"] + ([g["main"]] if g["main"] is not None else []) + g["post"]
    return order


class RuleSegmenter(Segmenter):
    backend = "rules"
    model = "rules"
    version = RULES_VERSION

    def segment_iter(self, captions: list[str]) -> Iterator[tuple[int, Segmentation]]:
        for i, caption in enumerate(captions):
            yield i, self.one(caption)

    def one(self, caption: str, *, backend: str | None = None, fallback: str | None = None,
            detail: str = "") -> Segmentation:
        return Segmentation(caption, tuple(split(caption)), backend or self.backend, fallback, detail)


__all__ = ["RuleSegmenter", "RULES_VERSION", "split", "is_verb", "FUNCTION_WORDS"]
