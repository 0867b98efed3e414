"""The evaluator's text input: GloVe word vectors and POS one-hots, built from a caption's `word/POS` tokens the way
Guo et al.'s dataset builds them.

- The POS one-hot has 15 classes (`POS_ENUMERATOR`): nine universal POS tags, five "VIP" classes and OTHER. A tag not
  in the table (CCONJ, PROPN, PART, SCONJ, …) is OTHER.
- A word in one of the VIP lists takes that list's class instead of its tagged POS (lists checked in the order Loc,
  Body, Obj, Act, Desc; first match wins). This applies only to words the vocabulary knows.
- A word the vocabulary does not know becomes `unk` with POS OTHER.
- A caption is cut to `MAX_TEXT_LEN` (20) tokens, wrapped in `sos/OTHER` … `eos/OTHER`, and padded with `unk/OTHER`
  to 22 positions; its length (what the GRU reads) counts sos and eos.

Word vectors come from the published GloVe subset in `glove/`: `our_vab_data.npy` (N x 300 float array),
`our_vab_words.pkl` (the N words, a pickled list) and `our_vab_idx.pkl` (word -> row, a pickled dict). The pickles
are read with an unpickler that builds plain containers, strings and numbers only, never arbitrary objects.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from mate.errors import UserError

POS_ENUMERATOR: dict[str, int] = {
    "VERB": 0,
    "NOUN": 1,
    "DET": 2,
    "ADP": 3,
    "NUM": 4,
    "AUX": 5,
    "PRON": 6,
    "ADJ": 7,
    "ADV": 8,
    "Loc_VIP": 9,
    "Body_VIP": 10,
    "Obj_VIP": 11,
    "Act_VIP": 12,
    "Desc_VIP": 13,
    "OTHER": 14,
}

LOC_VIP = ("left", "right", "clockwise", "counterclockwise", "anticlockwise", "forward", "back", "backward", "up",
           "down", "straight", "curve")
BODY_VIP = ("arm", "chin", "foot", "feet", "face", "hand", "mouth", "leg", "waist", "eye", "knee", "shoulder", "thigh")
OBJ_VIP = ("stair", "dumbbell", "chair", "window", "floor", "car", "ball", "handrail", "baseball", "basketball")
# 'dance' is listed twice in the published list; a tuple keeps that harmlessly.
ACT_VIP = ("walk", "run", "swing", "pick", "bring", "kick", "put", "squat", "throw", "hop", "dance", "jump", "turn",
           "stumble", "dance", "stop", "sit", "lift", "lower", "raise", "wash", "stand", "kneel", "stroll", "rub",
           "bend", "balance", "flap", "jog", "shuffle", "lean", "rotate", "spin", "spread", "climb")
DESC_VIP = ("slowly", "carefully", "fast", "careful", "slow", "quickly", "happy", "angry", "sad", "happily", "angrily",
            "sadly")

# Checked in this order; the first list holding the word decides its class.
VIP_LISTS: dict[str, tuple[str, ...]] = {
    "Loc_VIP": LOC_VIP,
    "Body_VIP": BODY_VIP,
    "Obj_VIP": OBJ_VIP,
    "Act_VIP": ACT_VIP,
    "Desc_VIP": DESC_VIP,
}

MAX_TEXT_LEN = 20  # caption tokens kept; sos and eos come on top
SOS, EOS, UNK, OTHER = "sos", "eos", "unk", "OTHER"

GLOVE_DIRNAME = "glove"
GLOVE_PREFIX = "our_vab"
GLOVE_DATA = f"{GLOVE_PREFIX}_data.npy"
GLOVE_WORDS = f"{GLOVE_PREFIX}_words.pkl"
GLOVE_IDX = f"{GLOVE_PREFIX}_idx.pkl"
GLOVE_FILES = (GLOVE_DATA, GLOVE_WORDS, GLOVE_IDX)


class GuoEvaluatorError(UserError):
    """A missing or malformed evaluator folder, checkpoint, word-vector file or input."""


def pos_index(word: str, pos: str, known: bool = True) -> int:
    """The POS class of a token: OTHER for an unknown word, else its VIP class if listed, else its tag (or OTHER)."""
    if not known:
        return POS_ENUMERATOR[OTHER]
    for cls, words in VIP_LISTS.items():
        if word in words:
            return POS_ENUMERATOR[cls]
    return POS_ENUMERATOR.get(pos, POS_ENUMERATOR[OTHER])


def _as_pair(tok) -> tuple[str, str]:
    if isinstance(tok, str):
        word, sep, pos = tok.rpartition("/")
        if not sep:
            raise GuoEvaluatorError(f"token {tok!r} is not word/POS")
        return word, pos
    word, pos = tok
    return str(word), str(pos)


def pad_tokens(tokens: Iterable, max_text_len: int = MAX_TEXT_LEN) -> tuple[list[tuple[str, str]], int]:
    """Guo's caption layout: the first `max_text_len` tokens between sos and eos, unk-padded to max_text_len + 2.

    `tokens` are (word, POS) pairs (`Caption.tokens`) or 'word/POS' strings. Returns the padded tokens and the length
    the GRU reads (with sos and eos).
    """
    toks = [_as_pair(t) for t in tokens][:max_text_len]
    toks = [(SOS, OTHER), *toks, (EOS, OTHER)]
    n = len(toks)
    return toks + [(UNK, OTHER)] * (max_text_len + 2 - n), n


class _PlainUnpickler(pickle.Unpickler):
    """Builds lists, dicts, tuples, strings and numbers (numpy scalars included); refuses any other class."""

    _ALLOWED = {
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "dtype"), ("builtins", "set"), ("builtins", "frozenset"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to build {module}.{name}")


def _load_plain_pickle(path: Path):
    try:
        return _PlainUnpickler(io.BytesIO(path.read_bytes())).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError,
            KeyError) as e:
        raise GuoEvaluatorError(f"{path}: not a pickled word list/dict like the published GloVe files ({e})") from None


class WordVectors:
    """The evaluator's GloVe vocabulary: word -> 300-d vector."""

    def __init__(self, vectors: np.ndarray, word2idx: dict[str, int], source: str = "<memory>"):
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise GuoEvaluatorError(f"{source}: word vectors must be a 2-D array, got shape {vectors.shape}")
        if UNK not in word2idx:
            raise GuoEvaluatorError(f"{source}: the vocabulary has no {UNK!r} word (unknown words map to it)")
        bad = [w for w, i in word2idx.items()
               if not isinstance(i, (int, np.integer)) or not 0 <= int(i) < len(vectors)]
        if bad:
            raise GuoEvaluatorError(f"{source}: {len(bad)} words have no row among the {len(vectors)} vectors "
                                    f"(first: {bad[0]!r} -> {word2idx[bad[0]]!r})")
        self.vectors = vectors
        self.word2idx = {str(w): int(i) for w, i in word2idx.items()}
        self.source = source

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def __len__(self) -> int:
        return len(self.word2idx)

    def __contains__(self, word: str) -> bool:
        return word in self.word2idx

    @classmethod
    def load(cls, glove_dir: str | os.PathLike) -> WordVectors:
        """Read our_vab_data.npy / our_vab_words.pkl / our_vab_idx.pkl from `glove_dir`."""
        d = Path(glove_dir)
        if not d.is_dir():
            raise GuoEvaluatorError(f"word-vector folder {d} does not exist (it should hold {', '.join(GLOVE_FILES)})")
        missing = [f for f in GLOVE_FILES if not (d / f).is_file()]
        if missing:
            raise GuoEvaluatorError(f"word-vector folder {d} lacks {', '.join(missing)}")
        try:
            vectors = np.load(d / GLOVE_DATA, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise GuoEvaluatorError(f"{d / GLOVE_DATA}: not a numeric .npy array ({e})") from None
        words = _load_plain_pickle(d / GLOVE_WORDS)
        word2idx = _load_plain_pickle(d / GLOVE_IDX)
        if not isinstance(word2idx, dict):
            raise GuoEvaluatorError(f"{d / GLOVE_IDX}: expected a word -> row dict, got {type(word2idx).__name__}")
        if not isinstance(words, (list, tuple)):
            raise GuoEvaluatorError(f"{d / GLOVE_WORDS}: expected a list of words, got {type(words).__name__}")
        # The published vectoriser keys its table by the word list, looking rows up through the index.
        absent = [w for w in words if w not in word2idx]
        if absent:
            raise GuoEvaluatorError(f"{d / GLOVE_WORDS}: {len(absent)} words have no row in {GLOVE_IDX} "
                                    f"(first: {absent[0]!r})")
        return cls(vectors, {w: word2idx[w] for w in words}, source=str(d))

    def lookup(self, word: str, pos: str) -> tuple[np.ndarray, int]:
        """(vector, POS class) of one token; an unknown word is unk/OTHER."""
        if word in self.word2idx:
            return self.vectors[self.word2idx[word]], pos_index(word, pos, known=True)
        return self.vectors[self.word2idx[UNK]], POS_ENUMERATOR[OTHER]

    def encode(self, tokens: Sequence, max_text_len: int = MAX_TEXT_LEN) -> tuple[np.ndarray, np.ndarray, int]:
        """One caption -> word vectors (22, 300) float32, POS one-hots (22, 15) float32, length (with sos/eos)."""
        padded, n = pad_tokens(tokens, max_text_len)
        vecs = np.empty((len(padded), self.dim), np.float32)
        ohot = np.zeros((len(padded), len(POS_ENUMERATOR)), np.float32)
        for i, (w, p) in enumerate(padded):
            vecs[i], cls = self.lookup(w, p)
            ohot[i, cls] = 1.0
        return vecs, ohot, n

    def encode_batch(self, captions: Sequence, max_text_len: int = MAX_TEXT_LEN):
        """Many captions -> (N, 22, 300), (N, 22, 15), lengths (N,) int64. A caption is a token list or has .tokens."""
        toks = [getattr(c, "tokens", c) for c in captions]
        for i, t in enumerate(toks):
            if isinstance(t, str):
                raise GuoEvaluatorError(f"caption {i} is a string ({t[:40]!r}); the evaluator reads word/POS tokens "
                                        "(Caption.tokens, as the HumanML3D texts files give them)")
        out = [self.encode(t, max_text_len) for t in toks]
        if not out:
            return (np.zeros((0, max_text_len + 2, self.dim), np.float32),
                    np.zeros((0, max_text_len + 2, len(POS_ENUMERATOR)), np.float32), np.zeros(0, np.int64))
        return (np.stack([o[0] for o in out]), np.stack([o[1] for o in out]),
                np.array([o[2] for o in out], dtype=np.int64))
