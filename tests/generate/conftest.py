"""Shared, session-scoped real things for the generator tests: the tiny corpus's pack, the bundled MiniLM and its
features for every training caption (computed once through mate.text.cached, as the pipeline does)."""

from __future__ import annotations

import pytest

from mate.config import resolve


def tiny_config(**over):
    """The tiny profile plus overrides given as keyword arguments with '__' for '.' (gen__patch=1)."""
    return resolve({k.replace("__", "."): v for k, v in over.items()}, profile="tiny")


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread):
    """Every generator test module runs on one thread (tests/conftest.py says why)."""
    yield


@pytest.fixture(scope="session")
def gen_workspace(tmp_path_factory):
    return tmp_path_factory.mktemp("gen_ws")


@pytest.fixture(scope="session")
def gen_pack(tiny_corpus, gen_workspace):
    from mate.data.pack import open_pack

    return open_pack(tiny_corpus, gen_workspace, progress=False)


@pytest.fixture(scope="session")
def train_set(gen_pack):
    from mate.data.dataset import MotionDataset

    return MotionDataset(gen_pack, "train")


@pytest.fixture(scope="session")
def text_features(minilm, train_set, gen_workspace):
    from mate.generate.text import EncoderFeatures
    from mate.text.cached import frozen_features

    captions = [train_set.pack.caption(int(k)).text for k in train_set.cap]
    return EncoderFeatures(minilm, frozen_features(minilm, captions, gen_workspace, progress=False))
