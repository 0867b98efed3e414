"""Random stand-ins for the published evaluator files, written in exactly the published layout.

For tests and demos: the platform cannot ship Guo et al.'s weights or GloVe vectors, so code paths that load them are
exercised on randomly initialised networks and a small random vocabulary. The numbers such an evaluator gives mean
nothing.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from .loader import CHECKPOINT_SUBPATH, DATASETS, MEAN_FILE, META_SUBDIRS, STD_FILE, canonical_dataset
from .modules import WORD_DIM, build_modules
from .vocab import EOS, GLOVE_DATA, GLOVE_DIRNAME, GLOVE_IDX, GLOVE_WORDS, SOS, UNK

DEFAULT_WORDS = ("a", "the", "person", "man", "walk", "run", "jump", "kick", "turn", "left", "right", "leg", "hand",
                 "forward", "slowly", "quickly", "and", "then", "with", "his", "their", "stand", "foot")


def write_random_glove(glove_dir: str | os.PathLike, words: Iterable[str] = DEFAULT_WORDS, seed: int = 0,
                       dim: int = WORD_DIM) -> Path:
    """our_vab_data.npy / our_vab_words.pkl / our_vab_idx.pkl with random vectors for `words` plus sos, eos, unk."""
    d = Path(glove_dir)
    d.mkdir(parents=True, exist_ok=True)
    vocab = list(dict.fromkeys([*words, SOS, EOS, UNK]))
    vectors = np.random.default_rng(seed).standard_normal((len(vocab), dim)).astype(np.float32)
    np.save(d / GLOVE_DATA, vectors)
    with open(d / GLOVE_WORDS, "wb") as f:
        pickle.dump(vocab, f)
    with open(d / GLOVE_IDX, "wb") as f:
        pickle.dump({w: i for i, w in enumerate(vocab)}, f)
    return d


def write_random_checkpoint(official_dir: str | os.PathLike, dataset: str = "t2m", seed: int = 0,
                            vocab_words: Iterable[str] | None = None, mean=None, std=None,
                            epoch: int = 0) -> dict[str, torch.nn.Module]:
    """Write a randomly initialised evaluator for `dataset` into `official_dir` in the published layout:
    `<dataset>/text_mot_match/model/finest.tar` (with optimizer states, `epoch` and `iter` as training saves them),
    `glove/` (random vectors for `vocab_words`, default a small motion vocabulary) and
    `<dataset>/Comp_v6_KLD005/meta/{mean,std}.npy` (`mean`/`std`, default zeros/ones).

    Returns the in-memory networks that were saved, keyed as in the checkpoint.
    """
    dataset = canonical_dataset(dataset)
    dim = DATASETS[dataset]
    root = Path(official_dir)
    torch.manual_seed(seed)
    modules = build_modules(dim)
    for m in modules.values():
        m.eval()
    ckpt_path = root.joinpath(dataset, *CHECKPOINT_SUBPATH)
    ckpt_path.parent.mkdir(parents=True, exist_ok=True)
    opt_text = torch.optim.Adam(modules["text_encoder"].parameters(), lr=1e-4)
    opt_motion = torch.optim.Adam(list(modules["motion_encoder"].parameters())
                                  + list(modules["movement_encoder"].parameters()), lr=1e-4)
    torch.save({name: m.state_dict() for name, m in modules.items()}
               | {"opt_text_encoder": opt_text.state_dict(), "opt_motion_encoder": opt_motion.state_dict(),
                  "epoch": int(epoch), "iter": 0}, ckpt_path)

    write_random_glove(root / GLOVE_DIRNAME, DEFAULT_WORDS if vocab_words is None else vocab_words, seed=seed)

    meta = root / dataset / META_SUBDIRS[0]
    meta.mkdir(parents=True, exist_ok=True)
    np.save(meta / MEAN_FILE, np.zeros(dim, np.float32) if mean is None else np.asarray(mean))
    np.save(meta / STD_FILE, np.ones(dim, np.float32) if std is None else np.asarray(std))
    return modules
