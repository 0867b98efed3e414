"""Words of a caption as MATE's training items see them: lemma, POS, eligibility, and meaning classes.

- Lemma and POS come from the caption's own `word/POS` token field (HumanML3D's, and the synthetic corpus's) when the
  field aligns with the words (`align_tokens`, a small edit-distance alignment: HumanML3D drops punctuation and
  hyphens and may split "person's"); a word the field does not cover gets `rule_lemma` (a small suffix lemmatiser
  with an irregular table) and `guess_pos` (closed-class lists, then suffixes; counted as guessed by the caller).
- Word sampling (`align.word_sampling`, docs/method.md §5): `all` every word; `content` the POS tags in CONTENT_POS;
  `motion` content words minus MOTION_STOP (subject nouns, light verbs, time connectives).
- Meaning classes: L_cross may only pair word j with motion i when the meaning of w_j is absent from caption i.
  "Absent" is judged on classes, not surface strings: `canonical(lemma)` merges synonyms (built from
  `mate.data.synth.vocab`'s surface forms per value, plus common HumanML3D synonyms), and multi-word forms
  (PHRASES: "to the left" also means counterclockwise, "squats down" squat, "does a kick" kick, "shuffles
  sideways" side-step) add their value's class to their content words. Merging more only drops negatives; a missing
  merge makes a false negative, which `mate.align.items.false_negative_rate` measures on the synthetic corpus.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

CONTENT_POS = frozenset({"VERB", "NOUN", "ADJ", "ADV"})
SAMPLINGS = ("all", "content", "motion")

# Content words that carry no motion meaning: the subject nouns of captions, light verbs, time connectives.
MOTION_STOP = frozenset("""
person man woman someone somebody figure body human guy lady boy girl individual people character subject child kid
he she they it him her them one someone's
a an the
be do have get make
then first firstly next again finally lastly also afterwards afterward later eventually subsequently meanwhile
simultaneously still just there here now so too very really once soon already
same time while moment second seconds bit
""".split())

# Closed classes for POS guessing (only for words the token field does not cover).
_GUESS = {
    "DET": "a an the this that these those his her their its my your our some any each both every another no".split(),
    "PRON": ("he she they it him them someone somebody something anything nothing everything himself herself "
             "themselves itself i you we me us one").split(),
    "ADP": ("to of with in on at from into onto for by about over under around across through behind beside between "
            "toward towards along upon within without against above below near past before after during").split(),
    "CCONJ": "and or but nor yet".split(),
    "SCONJ": "while whilst as when if because until though although whether".split(),
    "AUX": "is are was were be been being am has have had will would can could should may might must".split(),
    "PART": "not to 's".split(),
    "ADV": ("then forward forwards backward backwards back up down again away around clockwise counterclockwise "
            "anticlockwise sideways ahead once twice also still just there here now first next later").split(),
    "NUM": "zero two three four five six seven eight nine ten".split(),
}
_GUESS_POS = {w: tag for tag, ws in _GUESS.items() for w in ws}

IRREGULAR = {
    "ran": "run", "went": "go", "gone": "go", "goes": "go", "sat": "sit", "stood": "stand", "fell": "fall",
    "fallen": "fall", "threw": "throw", "thrown": "throw", "took": "take", "taken": "take", "got": "get",
    "gotten": "get", "came": "come", "did": "do", "does": "do", "done": "do", "made": "make", "held": "hold",
    "caught": "catch", "swung": "swing", "shook": "shake", "shaken": "shake", "knelt": "kneel", "leapt": "leap",
    "slid": "slide", "began": "begin", "begun": "begin", "kept": "keep", "rose": "rise", "risen": "rise",
    "struck": "strike", "brought": "bring", "stuck": "stick", "bent": "bend", "spun": "spin", "hung": "hang",
    "lay": "lie", "lain": "lie", "lying": "lie", "is": "be", "are": "be", "was": "be", "were": "be", "been": "be",
    "am": "be", "has": "have", "had": "have", "feet": "foot", "men": "man", "women": "woman", "people": "person",
    "children": "child", "teeth": "tooth", "its": "its", "his": "his", "this": "this", "as": "as", "us": "us",
    "towards": "towards", "sideways": "sideways", "always": "always", "ways": "way",
}
_NO_S = ("ss", "us", "is", "ous", "wards", "ways", "ics")


@lru_cache(maxsize=65536)
def normalize_word(word: str) -> str:
    """Lowercase, hyphens and apostrophes removed (HumanML3D's token field writes "anticlockwise", "sidestep")."""
    return re.sub(r"[^a-z0-9]", "", word.lower())


def _undouble(stem: str) -> str:
    if len(stem) >= 3 and stem[-1] == stem[-2] and stem[-1] not in "lsz" and stem[-1] not in "aeiou":
        return stem[:-1]
    return stem


def _restore_e(stem: str) -> str:
    """waving -> wave, striding -> stride, dancing -> dance (consonant-vowel-consonant, or a final c/v/z)."""
    if stem.endswith(("c", "v", "z")) and len(stem) >= 3:
        return stem + "e"
    if (len(stem) >= 3 and stem[-1] not in "aeiouwxy" and stem[-2] in "aeiou" and stem[-3] not in "aeiou"
            and len(stem) <= 5 and not stem.endswith(("en", "er", "on", "it", "et", "al"))):
        return stem + "e"
    return stem


@lru_cache(maxsize=65536)
def rule_lemma(word: str) -> str:
    """A small rule lemmatiser for words the token field does not cover: irregular table, then -ies/-es/-s,
    -ing and -ed with consonant undoubling and e-restoration. "left" stays "left" (HumanML3D's convention);
    -ly adverbs stay as they are."""
    w = normalize_word(word)
    if not w or w.isdigit():
        return w
    if w in IRREGULAR:
        return IRREGULAR[w]
    if w == "left" or w.endswith("ly"):
        return w
    if w.endswith("ing") and len(w) >= 6:
        stem = w[:-3]
        un = _undouble(stem)
        return un if un != stem else _restore_e(stem)
    if w.endswith("ied") and len(w) >= 5:
        return w[:-3] + "y"
    if w.endswith("ed") and len(w) >= 5:
        stem = w[:-2]
        un = _undouble(stem)
        if un != stem:
            return un
        if stem.endswith("e"):  # "freed"
            return stem
        return _restore_e(stem)
    if w.endswith("ies") and len(w) >= 5:
        return w[:-3] + "y"
    if w.endswith("es") and len(w) >= 4 and re.search(r"(ss|sh|ch|x|z)es$", w):
        return w[:-2]
    if w.endswith("s") and len(w) >= 4 and not w.endswith(_NO_S):
        return w[:-1]
    return w


def guess_pos(word: str) -> str:
    """A universal POS tag for a word without a token-field tag: closed classes, digits, then suffixes
    (-ly ADV, -ing/-ed VERB), else NOUN."""
    w = word.lower()
    n = normalize_word(w)
    if w in _GUESS_POS or n in _GUESS_POS:
        return _GUESS_POS.get(w) or _GUESS_POS[n]
    if n.isdigit():
        return "NUM"
    if n.endswith("ly"):
        return "ADV"
    if n.endswith(("ing", "ed")) and len(n) >= 5:
        return "VERB"
    if n in _VERBS or rule_lemma(n) in _VERBS:
        return "VERB"
    return "NOUN"


@lru_cache(maxsize=262144)
def compatible(surface: str, lemma: str) -> bool:
    """Whether a token-field lemma can be the lemma of a surface word (equal after normalising, the rule lemma,
    the irregular table, or a common prefix of >= 3 letters, all of the shorter one when it is shorter)."""
    s, lem = normalize_word(surface), normalize_word(lemma)
    if not s or not lem:
        return False
    if s == lem or rule_lemma(s) == lem or IRREGULAR.get(s) == lem:
        return True
    k = 0
    for a, b in zip(s, lem):
        if a != b:
            break
        k += 1
    return k >= min(3, len(s), len(lem))


def align_tokens(words: Sequence[str], tokens: Sequence[tuple[str, str]]) -> list[int | None]:
    """For each word, the index of its token-field entry, or None when none aligns.

    Equal counts with every pair compatible: position by position (the usual case). Otherwise an edit-distance
    alignment (substitution 0 when compatible, 1 otherwise; a skipped word or token costs 1); an incompatible
    substitution is kept only when the counts are equal (a 1:1 field with an irregular lemma, like "ran/run")."""
    n, m = len(words), len(tokens)
    if n == m and all(compatible(w, t[0]) for w, t in zip(words, tokens)):
        return list(range(n))
    comp = [[compatible(w, t[0]) for t in tokens] for w in words]
    inf = n + m + 1
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    back = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        for j in range(m + 1):
            if i == 0 and j == 0:
                cost[0][0] = 0
                continue
            best, move = inf, 0
            if i and j:
                c = cost[i - 1][j - 1] + (0 if comp[i - 1][j - 1] else 1)
                if c < best:
                    best, move = c, 1
            if i and cost[i - 1][j] + 1 < best:
                best, move = cost[i - 1][j] + 1, 2
            if j and cost[i][j - 1] + 1 < best:
                best, move = cost[i][j - 1] + 1, 3
            cost[i][j], back[i][j] = best, move
    out: list[int | None] = [None] * n
    i, j = n, m
    while i or j:
        move = back[i][j]
        if move == 1:
            if comp[i - 1][j - 1] or n == m:
                out[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif move == 2:
            i -= 1
        else:
            j -= 1
    return out


def eligible(lemma: str, surface: str, pos: str, sampling: str) -> bool:
    """Whether a word occurrence is a training item under `align.word_sampling`."""
    if sampling == "all":
        return True
    if sampling not in SAMPLINGS:
        raise ValueError(f"word sampling must be one of {', '.join(SAMPLINGS)}; got {sampling!r}")
    if pos not in CONTENT_POS:
        return False
    if sampling == "content":
        return True
    return lemma not in MOTION_STOP and surface.lower() not in MOTION_STOP


# ----------------------------------------------------------------------------------------------- meaning classes

# Common HumanML3D synonyms (lemmas, hyphens removed), first = the class name; the synthetic vocabulary is merged in
# by `synonym_map`. Generous on purpose: a merge too many only loses an L_cross negative, a merge too few makes a
# false negative.
HUMANML3D_SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("walk", "stride", "stroll", "strut", "amble", "pace", "march"),
    ("run", "jog", "sprint", "dash"),
    ("jump", "leap", "hop"),
    ("squat", "crouch"),
    ("turn", "rotate", "pivot", "spin", "twirl"),
    ("sidestep", "sidesteps"),
    ("counterclockwise", "anticlockwise", "counterclock", "anticlock"),
    ("clockwise",),
    ("quickly", "fast", "rapidly", "swiftly", "quick", "speedily", "hurriedly", "briskly", "rapid", "swift"),
    ("slowly", "slow", "leisurely", "unhurriedly"),
    ("forward", "forwards", "ahead", "onward", "onwards"),
    ("backward", "backwards", "back", "rearward", "rearwards"),
    ("left", "leftward", "leftwards"),
    ("right", "rightward", "rightwards"),
    ("throw", "toss", "hurl", "fling", "pitch"),
    ("punch", "jab", "strike", "hit"),
    ("raise", "lift"),
    ("grab", "grasp", "seize"),
    ("stumble", "stagger", "trip"),
    ("climb", "ascend"),
    ("bend", "lean", "stoop"),
    ("person", "man", "woman", "someone", "somebody", "figure", "human", "guy", "lady", "boy", "girl", "individual",
     "people", "character", "subject"),
)

# Multi-word forms whose content words also carry another class: (lemma pattern, class). A pattern element is a
# set of lemmas; the synthetic vocabulary's multi-word forms are added by `phrases()`.
_EXTRA_PHRASES: tuple[tuple[tuple[frozenset[str], ...], str], ...] = (
    ((frozenset({"turn", "rotate", "pivot", "spin"}), frozenset({"left"})), "counterclockwise"),
    ((frozenset({"turn", "rotate", "pivot", "spin"}), frozenset({"right"})), "clockwise"),
    ((frozenset({"to"}), frozenset({"his", "her", "their", "the"}), frozenset({"left"})), "counterclockwise"),
    ((frozenset({"to"}), frozenset({"his", "her", "their", "the"}), frozenset({"right"})), "clockwise"),
    ((frozenset({"step"}), frozenset({"sideways", "side"})), "sidestep"),
    ((frozenset({"walk", "move", "step"}), frozenset({"sideways"})), "sidestep"),
)

# Body-part nouns of limb forms ("left hand"): they say which limb group, not the left/right value.
BODY_PARTS = frozenset("hand hands arm arms leg legs foot feet knee knees elbow head shoulder hip".split())

_VERBS = frozenset("""walk run jog sprint jump leap hop skip squat crouch kneel kick wave turn rotate spin twirl pivot
step sidestep shuffle stride march pace stroll strut limp tiptoe stagger stumble trip fall sit stand lie rise get go
come move bend lean lift raise lower drop throw toss catch pick put place grab hold carry push pull punch hit strike jab
swing shake nod bow clap stretch reach touch tap stomp climb crawl roll slide dance twist circle wander return stop
pause begin start continue perform do make take bring look face cross extend fold open close flap wiggle sway rock
balance lunge skate swim drink eat wipe brush scratch point salute wash play juggle bounce shoot block dodge duck
give""".split())

# The class names of the synthetic vocabulary's values (hyphens removed like every lemma).
def value_class(attribute: str, value: str) -> str:
    """The meaning class of an annotated (attribute, value): its value, normalised ("side-step" -> "sidestep")."""
    return normalize_word(value)


def _function(lemma: str) -> bool:
    return _GUESS_POS.get(lemma) in ("DET", "PRON", "ADP", "CCONJ", "SCONJ", "AUX", "PART")


@lru_cache(maxsize=1)
def synonym_map() -> dict[str, str]:
    """lemma -> class name: HumanML3D_SYNONYMS plus every single-word form of `mate.data.synth.vocab` (its
    token-field lemma and the rule lemma of its surface) mapped to its value's class."""
    from mate.data.synth import vocab as V

    out: dict[str, str] = {}
    for group in HUMANML3D_SYNONYMS:
        for w in group:
            out.setdefault(w, group[0])

    def add(surface: str, lemmas: Sequence[str], cls: str) -> None:
        for key in {normalize_word(surface), rule_lemma(surface), *lemmas}:
            if key:
                out.setdefault(key, cls)  # the hand list wins where both name a word (they agree)

    for action, verbs in V.ACTION_FORMS.items():
        cls = value_class("action", action)
        for verb in verbs:
            content = [lemma for lemma, p in verb.tokens if p in CONTENT_POS and not _function(lemma)]
            if len(content) == 1 and len(verb.finite.split()) == 1:
                add(verb.finite, content, cls)
                add(verb.gerund, content, cls)
    for (attribute, value), forms in V.FORMS.items():
        cls = value_class(attribute, value)
        for form in forms:
            if len(form.tokens) == 1:
                add(form.text, [form.tokens[0][0]], cls)
    out.setdefault("sidestep", "sidestep")
    return out


def canonical(lemma: str) -> str:
    """The class of a lemma (itself when it has no synonym)."""
    key = normalize_word(lemma)
    return synonym_map().get(key, key)


@lru_cache(maxsize=1)
def phrases() -> tuple[tuple[tuple[frozenset[str], ...], str], ...]:
    """Multi-word forms as (lemma pattern, class): the synthetic vocabulary's (each verb's token-field lemmas,
    each attribute form's) plus _EXTRA_PHRASES."""
    from mate.data.synth import vocab as V

    out: list[tuple[tuple[frozenset[str], ...], str]] = list(_EXTRA_PHRASES)
    for action, verbs in V.ACTION_FORMS.items():
        for verb in verbs:
            if len(verb.tokens) > 1:
                pattern = tuple(frozenset({normalize_word(lemma)}) for lemma, _ in verb.tokens)
                out.append((pattern, value_class("action", action)))
    for (attribute, value), forms in V.FORMS.items():
        for form in forms:
            if len(form.tokens) > 1:
                pattern = tuple(frozenset({normalize_word(lemma)}) for lemma, _ in form.tokens)
                out.append((pattern, value_class(attribute, value)))
    return tuple(dict.fromkeys(out))


@lru_cache(maxsize=65536)
def carries_phrase_class(lemma: str) -> bool:
    """Whether a word inside a multi-word form takes the form's class: content words, not function words and not
    the body-part nouns of limb forms."""
    return not _function(lemma) and lemma not in BODY_PARTS and lemma not in ("a", "an", "the")


def meaning_classes(lemmas: Sequence[str]) -> list[set[str]]:
    """Each word's meaning classes in a caption given as its lemma sequence: its canonical class, plus the class of
    every multi-word form it is a content word of."""
    norm = [normalize_word(lemma) for lemma in lemmas]
    out = [{canonical(lemma)} if lemma else set() for lemma in norm]
    starts = _phrase_starts()
    for i, first in enumerate(norm):
        for pattern, cls in starts.get(first, ()):
            k = len(pattern)
            if i + k <= len(norm) and all(norm[i + j] in pattern[j] for j in range(1, k)):
                for j in range(k):
                    if carries_phrase_class(norm[i + j]):
                        out[i + j].add(cls)
    return out


@lru_cache(maxsize=1)
def _phrase_starts() -> dict[str, list]:
    """phrases() indexed by the lemmas that may start them."""
    out: dict[str, list] = {}
    for pattern, cls in phrases():
        for first in pattern[0]:
            out.setdefault(first, []).append((pattern, cls))
    return out
