"""Guo et al.'s T2M evaluator: the published checkpoint layout (random weights stand in for the real ones), the text
input as Guo's dataset builds it, and the motion input (evaluator normalisation, packing order, padding)."""

from __future__ import annotations

import hashlib
import pickle
import shutil

import numpy as np
import pytest
import torch

from mate.data.captions import read_captions
from mate.errors import UserError
from mate.evaluate.guo import (
    MAX_MOTION_LENGTH,
    POS_ENUMERATOR,
    VIP_LISTS,
    GuoEvaluator,
    GuoEvaluatorError,
    WordVectors,
    build_modules,
    pad_tokens,
)
from mate.evaluate.guo.fixtures import write_random_checkpoint

VOCAB = ("a", "man", "kick", "with", "his", "left", "leg", "the", "stand", "person", "foot", "or", "is", "fly", "he",
         "go", "back", "to", "their", "walk", "forward", "slowly", "turn", "around")


@pytest.fixture(scope="module")
def eval_stats(hml_sample):
    return (np.load(hml_sample / "evaluator_meta" / "mean.npy"), np.load(hml_sample / "evaluator_meta" / "std.npy"))


@pytest.fixture(scope="module")
def official(tmp_path_factory, eval_stats):
    """A random t2m evaluator written in the published layout, and the networks it was written from."""
    root = tmp_path_factory.mktemp("official") / "checkpoints"
    modules = write_random_checkpoint(root, "t2m", seed=0, vocab_words=VOCAB, mean=eval_stats[0], std=eval_stats[1])
    return root, modules


@pytest.fixture(scope="module")
def ev(official):
    return GuoEvaluator.load(official[0], "t2m")


@pytest.fixture(scope="module")
def clip(hml_sample):
    return np.load(hml_sample / "new_joint_vecs" / "012314.npy")


def _ckpt(root, ds="t2m"):
    return root / ds / "text_mot_match" / "model" / "finest.tar"


def _copy_tree(src, dst):
    shutil.copytree(src, dst)
    return dst


# ------------------------------------------------------------------------------------------- architecture / layout

# The published finest.tar's state dicts (HumanML3D), key -> shape, written out from the released model definitions.
_GRU = lambda h, i: {f"gru.{w}_{d}{r}": s  # noqa: E731
                     for r in ("", "_reverse")
                     for w, d, s in (("weight", "ih_l0", (3 * h, i)), ("weight", "hh_l0", (3 * h, h)),
                                     ("bias", "ih_l0", (3 * h,)), ("bias", "hh_l0", (3 * h,)))}
PUBLISHED_T2M = {
    "text_encoder": {"hidden": (2, 1, 512), "pos_emb.weight": (300, 15), "pos_emb.bias": (300,),
                     "input_emb.weight": (512, 300), "input_emb.bias": (512,), **_GRU(512, 512),
                     "output_net.0.weight": (512, 1024), "output_net.0.bias": (512,), "output_net.1.weight": (512,),
                     "output_net.1.bias": (512,), "output_net.3.weight": (512, 512), "output_net.3.bias": (512,)},
    "movement_encoder": {"main.0.weight": (512, 259, 4), "main.0.bias": (512,), "main.3.weight": (512, 512, 4),
                         "main.3.bias": (512,), "out_net.weight": (512, 512), "out_net.bias": (512,)},
    "motion_encoder": {"hidden": (2, 1, 1024), "input_emb.weight": (1024, 512), "input_emb.bias": (1024,),
                       **_GRU(1024, 1024), "output_net.0.weight": (1024, 2048), "output_net.0.bias": (1024,),
                       "output_net.1.weight": (1024,), "output_net.1.bias": (1024,),
                       "output_net.3.weight": (512, 1024), "output_net.3.bias": (512,)},
}


def test_state_dicts_have_the_published_keys_and_shapes():
    mods = build_modules(263)
    for name, expected in PUBLISHED_T2M.items():
        got = {k: tuple(v.shape) for k, v in mods[name].state_dict().items()}
        assert got == expected, name
    assert tuple(build_modules(251)["movement_encoder"].state_dict()["main.0.weight"].shape) == (512, 247, 4)


def test_checkpoint_layout_on_disk(official):
    root, _ = official
    ckpt = torch.load(_ckpt(root), map_location="cpu", weights_only=True)
    assert {"text_encoder", "movement_encoder", "motion_encoder", "epoch"} <= set(ckpt)
    for f in ("our_vab_data.npy", "our_vab_words.pkl", "our_vab_idx.pkl"):
        assert (root / "glove" / f).is_file()
    assert (root / "t2m" / "Comp_v6_KLD005" / "meta" / "mean.npy").is_file()


def test_pos_enumerator_and_vip_lists():
    assert list(POS_ENUMERATOR) == ["VERB", "NOUN", "DET", "ADP", "NUM", "AUX", "PRON", "ADJ", "ADV", "Loc_VIP",
                                    "Body_VIP", "Obj_VIP", "Act_VIP", "Desc_VIP", "OTHER"]
    assert list(POS_ENUMERATOR.values()) == list(range(15))
    assert list(VIP_LISTS) == ["Loc_VIP", "Body_VIP", "Obj_VIP", "Act_VIP", "Desc_VIP"]
    assert [len(v) for v in VIP_LISTS.values()] == [12, 13, 10, 35, 12]  # Act lists 'dance' twice, as published
    seen = {}
    for cls, words in VIP_LISTS.items():
        for w in words:
            assert seen.setdefault(w, cls) == cls, f"{w} in two VIP lists"


# ----------------------------------------------------------------------------------------------------- round trip


def test_loaded_evaluator_equals_in_memory_modules(official, ev, eval_stats, clip, hml_caption_file):
    root, modules = official
    mem = GuoEvaluator(modules, WordVectors.load(root / "glove"), *eval_stats, dataset="t2m")
    assert ev.sha == hashlib.sha256(_ckpt(root).read_bytes()).hexdigest()
    assert ev.epoch == 0 and ev.dim_pose == 263 and ev.info()["sha"] == ev.sha
    for name in modules:
        for k, v in modules[name].state_dict().items():
            assert torch.equal(ev.modules[name].state_dict()[k], v), (name, k)
    caps = [c.tokens for c in read_captions(hml_caption_file)]
    np.testing.assert_array_equal(ev.text_embeddings(caps), mem.text_embeddings(caps))
    motions, lengths = [clip, clip[:100], clip[30:90]], [48, 40, 24]
    out = ev.motion_embeddings(motions, lengths)
    assert out.shape == (3, 512) and out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_array_equal(out, mem.motion_embeddings(motions, lengths))


def test_meta_and_glove_may_live_elsewhere(official, tmp_path, ev):
    root, _ = official
    # MoMask / T2M-GPT keep glove/ beside checkpoints/, and MDM names the statistics t2m_mean.npy / t2m_std.npy
    mdm = tmp_path / "dataset"
    mdm.mkdir()
    shutil.copy(root / "t2m" / "Comp_v6_KLD005" / "meta" / "mean.npy", mdm / "t2m_mean.npy")
    shutil.copy(root / "t2m" / "Comp_v6_KLD005" / "meta" / "std.npy", mdm / "t2m_std.npy")
    ck = tmp_path / "checkpoints"
    (ck / "t2m" / "text_mot_match" / "model").mkdir(parents=True)
    shutil.copy(_ckpt(root), _ckpt(ck))
    shutil.copytree(root / "glove", tmp_path / "glove")
    other = GuoEvaluator.load(ck, "humanml3d", meta_dir=mdm)
    assert other.sha == ev.sha and other.vocab.source == str(tmp_path / "glove")
    np.testing.assert_array_equal(other.mean, ev.mean)
    other = GuoEvaluator.load(ck, "t2m", meta_dir=mdm, glove_dir=root / "glove")
    assert other.vocab.source == str(root / "glove")


# ------------------------------------------------------------------------------------------------------- errors


def _raises(match, fn, *a, **kw):
    with pytest.raises(GuoEvaluatorError, match=match) as info:
        fn(*a, **kw)
    assert isinstance(info.value, UserError)
    assert info.value.__cause__ is None  # no chained torch/pickle traceback
    assert info.value.__suppress_context__ or info.value.__context__ is None
    return str(info.value)


def test_missing_key_names_the_file_and_the_key(official, tmp_path):
    root = _copy_tree(official[0], tmp_path / "ck")
    ckpt = torch.load(_ckpt(root), map_location="cpu", weights_only=True)
    del ckpt["text_encoder"]["output_net.3.bias"]
    ckpt["motion_encoder"]["extra.weight"] = torch.zeros(3)
    torch.save(ckpt, _ckpt(root))
    msg = _raises("does not fit", GuoEvaluator.load, root, "t2m")
    assert str(_ckpt(root)) in msg
    assert "text_encoder is missing 'output_net.3.bias'" in msg
    assert "motion_encoder has unexpected 'extra.weight'" in msg


def test_not_an_evaluator_checkpoint(official, tmp_path):
    root = _copy_tree(official[0], tmp_path / "ck")
    torch.save({"model": {}, "epoch": 3}, _ckpt(root))
    msg = _raises("not a Guo et al. evaluator checkpoint", GuoEvaluator.load, root)
    assert str(_ckpt(root)) in msg and "'text_encoder'" in msg
    _ckpt(root).write_bytes(b"this is not a checkpoint")
    assert str(_ckpt(root)) in _raises("cannot read as a torch checkpoint", GuoEvaluator.load, root)


def test_wrong_dimension_dataset(official, tmp_path):
    root = _copy_tree(official[0], tmp_path / "ck")
    (root / "kit" / "text_mot_match" / "model").mkdir(parents=True)
    shutil.copy(_ckpt(root), _ckpt(root, "kit"))  # a HumanML3D checkpoint where KIT-ML's belongs
    (root / "kit" / "Comp_v6_KLD005" / "meta").mkdir(parents=True)
    np.save(root / "kit" / "Comp_v6_KLD005" / "meta" / "mean.npy", np.zeros(251))
    np.save(root / "kit" / "Comp_v6_KLD005" / "meta" / "std.npy", np.ones(251))
    msg = _raises("main.0.weight has shape", GuoEvaluator.load, root, "kit")
    assert "263-dim" in msg and "'t2m'" in msg and str(_ckpt(root, "kit")) in msg


def test_missing_folder_and_files(official, tmp_path):
    _raises("does not exist", GuoEvaluator.load, tmp_path / "nowhere")
    _raises("unknown dataset", GuoEvaluator.load, official[0], "babel")
    msg = _raises("does not exist", GuoEvaluator.load, official[0], "kit")
    assert "dataset='t2m'?" in msg  # the folder holds the other dataset's evaluator
    root = _copy_tree(official[0], tmp_path / "ck")
    (root / "glove" / "our_vab_idx.pkl").unlink()
    _raises("lacks our_vab_idx.pkl", GuoEvaluator.load, root)
    shutil.rmtree(root / "glove")
    _raises("no word-vector folder", GuoEvaluator.load, root)
    _raises("meta folder", GuoEvaluator.load, official[0], meta_dir=tmp_path)
    root2 = _copy_tree(official[0], tmp_path / "ck2")
    shutil.rmtree(root2 / "t2m" / "Comp_v6_KLD005")
    _raises("no evaluator normalisation statistics", GuoEvaluator.load, root2)
    np.save(tmp_path / "mean.npy", np.zeros(251))
    np.save(tmp_path / "std.npy", np.ones(251))
    _raises(r"shape \(251,\), expected \(263,\)", GuoEvaluator.load, official[0], meta_dir=tmp_path)


def test_glove_pickles_are_read_without_building_objects(official, tmp_path):
    root = _copy_tree(official[0], tmp_path / "ck")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (root / "glove" / "our_vab_words.pkl").write_bytes(pickle.dumps([Evil()]))
    _raises("not a pickled word list", GuoEvaluator.load, root)


def test_bad_motion_inputs(ev, clip):
    _raises(r"reads \(T, 263\)", ev.motion_embeddings, [clip[:, :251]])
    _raises("shorter than the evaluator's unit", ev.motion_embeddings, [clip], [3])
    _raises("exceeds", ev.motion_embeddings, [clip[:40]], [44])
    _raises("2 lengths", ev.motion_embeddings, [clip], [40, 40])
    _raises("both mean and std", ev.motion_embeddings, [clip], mean=np.zeros(263))
    _raises(r"generator's std has shape \(251,\)", ev.motion_embeddings, [clip], mean=np.zeros(263), std=np.ones(251))
    _raises("is a string", ev.text_embeddings, ["a man walks forward"])


# ----------------------------------------------------------------------------------------------------------- text


@pytest.fixture(scope="module")
def real_captions(hml_caption_file):
    return read_captions(hml_caption_file)


def test_tokenisation_of_a_real_caption(ev, real_captions):
    # a/DET man/NOUN kick/VERB something/PRON or/CCONJ someone/PRON with/ADP his/DET left/ADJ leg/NOUN
    c = real_captions[0]
    padded, n = pad_tokens(c.tokens)
    assert n == len(c.tokens) + 2 == 12 and len(padded) == 22
    assert padded[0] == ("sos", "OTHER") and padded[11] == ("eos", "OTHER")
    assert padded[12:] == [("unk", "OTHER")] * 10
    vecs, ohot, n2 = ev.vocab.encode(c.tokens)
    assert vecs.shape == (22, 300) and ohot.shape == (22, 15) and n2 == 12
    assert (ohot.sum(1) == 1).all()
    cls = [list(POS_ENUMERATOR)[i] for i in ohot.argmax(1)]
    assert cls[:12] == ["OTHER",  # sos
                        "DET", "NOUN",
                        "Act_VIP",  # kick/VERB is an action word
                        "OTHER",  # something: not in the vocabulary -> unk/OTHER
                        "OTHER",  # or/CCONJ: CCONJ is not among the 15 classes
                        "OTHER",  # someone: unknown
                        "ADP", "DET",
                        "Loc_VIP",  # left/ADJ
                        "Body_VIP",  # leg/NOUN
                        "OTHER"]  # eos
    assert cls[12:] == ["OTHER"] * 10
    v = ev.vocab
    row = lambda w: v.vectors[v.word2idx[w]]  # noqa: E731
    np.testing.assert_array_equal(vecs[0], row("sos"))
    np.testing.assert_array_equal(vecs[3], row("kick"))
    np.testing.assert_array_equal(vecs[4], row("unk"))  # something
    np.testing.assert_array_equal(vecs[11], row("eos"))
    np.testing.assert_array_equal(vecs[12:], np.tile(row("unk"), (10, 1)))

    c3 = real_captions[3]  # he/PRON is/AUX fly/VERB kick/NOUN with/ADP his/DET left/ADJ leg/NOUN
    cls3 = [list(POS_ENUMERATOR)[i] for i in ev.vocab.encode(c3.tokens)[1].argmax(1)][1:9]
    assert cls3 == ["PRON", "AUX", "VERB", "Act_VIP", "ADP", "DET", "Loc_VIP", "Body_VIP"]


def test_vip_override_only_for_known_words(tmp_path):
    from mate.evaluate.guo.fixtures import write_random_glove

    v = WordVectors.load(write_random_glove(tmp_path / "glove", ["man"]))
    _, ohot, _ = v.encode([("kick", "VERB"), ("man", "NOUN"), ("slowly", "ADV")])
    assert list(ohot.argmax(1)[1:4]) == [POS_ENUMERATOR["OTHER"], POS_ENUMERATOR["NOUN"], POS_ENUMERATOR["OTHER"]]


def test_long_captions_are_cut_to_20_tokens(ev):
    toks = [("walk", "VERB")] * 25
    padded, n = pad_tokens(toks)
    assert n == 22 and len(padded) == 22 and padded[-1] == ("eos", "OTHER") and padded[0] == ("sos", "OTHER")
    # 20 or more tokens all give the same input
    np.testing.assert_array_equal(ev.text_embeddings([toks]), ev.text_embeddings([toks[:20]]))


def test_text_embeddings_keep_input_order(ev, real_captions):
    # (word, POS) pairs, a Caption object, 'word/POS' strings
    caps = [c.tokens for c in real_captions[:3]] + [real_captions[3], [("walk", "VERB")],
                                                     ["turn/VERB", "around/ADV", "slowly/ADV"]]
    whole = ev.text_embeddings(caps)
    single = np.concatenate([ev.text_embeddings([c]) for c in caps])
    np.testing.assert_allclose(whole, single, atol=1e-5, rtol=0)
    np.testing.assert_allclose(ev.text_embeddings(caps[::-1]), whole[::-1], atol=1e-5, rtol=0)
    np.testing.assert_allclose(ev.text_embeddings(caps, batch_size=2), whole, atol=1e-5, rtol=0)
    assert ev.text_embeddings([]).shape == (0, 512)


# --------------------------------------------------------------------------------------------------------- motion


def _reference_motion_embeddings(ev, raw, lengths, mean, std):
    """The published recipe, written out: normalise with the evaluator's statistics, zero-pad to 196, sort the batch
    by length (longest first), movement-encode without the foot contacts, motion-encode packed to length // 4."""
    x = np.zeros((len(raw), MAX_MOTION_LENGTH, 263), np.float32)
    for i, (m, n) in enumerate(zip(raw, lengths)):
        x[i, :n] = (m[:n] - mean) / std
    order = np.argsort(lengths)[::-1].copy()
    with torch.no_grad():
        mov = ev.modules["movement_encoder"](torch.from_numpy(x[order][..., :-4]))
        emb = ev.modules["motion_encoder"](mov, torch.from_numpy(np.asarray(lengths)[order] // 4)).numpy()
    out = np.empty_like(emb)
    out[order] = emb
    return out


def test_motion_embeddings_follow_the_published_recipe_in_input_order(ev, clip, eval_stats):
    rng = np.random.default_rng(0)
    motions = [clip, clip[20:120], clip[::-1].copy(), clip[5:57], clip + rng.normal(0, 0.01, clip.shape)]
    lengths = [40, 48, 32, 20, 44]  # short: the 1024-wide GRU on CPU costs per step
    out = ev.motion_embeddings(motions, lengths)
    ref = _reference_motion_embeddings(ev, motions, lengths, *eval_stats)
    np.testing.assert_allclose(out, ref, atol=1e-5, rtol=0)
    # invariant to batching and order: one at a time, shuffled, small batches, padded arrays
    single = np.concatenate([ev.motion_embeddings([m], [n]) for m, n in zip(motions, lengths)])
    np.testing.assert_allclose(single, out, atol=1e-5, rtol=0)
    perm = rng.permutation(len(motions))
    np.testing.assert_allclose(ev.motion_embeddings([motions[i] for i in perm], [lengths[i] for i in perm]),
                               out[perm], atol=1e-5, rtol=0)
    np.testing.assert_allclose(ev.motion_embeddings(motions, lengths, batch_size=2), out, atol=1e-5, rtol=0)
    stacked = np.zeros((len(motions), 200, 263), np.float32)
    for i, (m, n) in enumerate(zip(motions, lengths)):
        stacked[i, :n] = m[:n]
        stacked[i, n:] = 123.0  # whatever lies past a length is never read
    np.testing.assert_allclose(ev.motion_embeddings(stacked, lengths), out, atol=1e-5, rtol=0)
    # a full-length (196) clip next to shorter ones is unaffected too
    full = np.concatenate([clip, clip[:26]])
    a = ev.motion_embeddings([full, clip[:40]], [196, 40])
    np.testing.assert_allclose(a[0], ev.motion_embeddings([full], [196])[0], atol=1e-5, rtol=0)


def test_lengths_are_cut_to_multiples_of_four(ev, clip):
    np.testing.assert_allclose(ev.motion_embeddings([clip], [51]), ev.motion_embeddings([clip[:48]]), atol=1e-6)
    np.testing.assert_allclose(ev.motion_embeddings([clip[:43]]), ev.motion_embeddings([clip], [40]), atol=1e-6)


def test_renormalisation_uses_the_evaluator_statistics(ev, clip, eval_stats, hml_sample):
    eval_mean, eval_std = eval_stats
    gen_mean, gen_std = np.load(hml_sample / "Mean.npy"), np.load(hml_sample / "Std.npy")
    # the evaluator's std is the dataset's with the root (0..3) and foot-contact (259..262) groups divided by 25
    np.testing.assert_allclose(gen_std[:4] / eval_std[:4], 25, rtol=0.02)
    np.testing.assert_allclose(gen_std[-4:] / eval_std[-4:], 25, rtol=0.02)
    np.testing.assert_allclose(ev.mean, eval_mean) and np.testing.assert_allclose(ev.std, eval_std)

    gen_out = (clip - gen_mean) / gen_std  # what a generator trained on the dataset's statistics emits
    np.testing.assert_allclose(ev.renormalize(gen_out, gen_mean, gen_std), (clip - eval_mean) / eval_std,
                               atol=1e-5, rtol=1e-6)
    np.testing.assert_allclose(ev.normalize(clip), (clip - eval_mean) / eval_std, atol=1e-9)
    raw = ev.motion_embeddings([clip], [32])
    np.testing.assert_allclose(ev.motion_embeddings([gen_out], [32], mean=gen_mean, std=gen_std), raw,
                               atol=1e-5, rtol=0)
    # and it matters: normalising with the dataset's statistics instead gives a different embedding
    wrong = GuoEvaluator(ev.modules, ev.vocab, gen_mean, gen_std, dataset="t2m")
    assert not np.allclose(wrong.motion_embeddings([clip], [32]), raw, atol=1e-3)


# ------------------------------------------------------------------------------------------------------------ KIT


def test_kit_loads_with_its_own_layout(tmp_path, clip):
    root = tmp_path / "checkpoints"
    modules = write_random_checkpoint(root, "kit", seed=1)
    assert (root / "kit" / "text_mot_match" / "model" / "finest.tar").is_file()
    kit = GuoEvaluator.load(root, "kit")
    assert kit.dataset == "kit" and kit.dim_pose == 251
    m = clip[:, :251]
    out = kit.motion_embeddings([m, m[:64]], [48, 24])
    assert out.shape == (2, 512) and np.isfinite(out).all()
    mem = GuoEvaluator(modules, kit.vocab, kit.mean, kit.std, dataset="kit")
    np.testing.assert_array_equal(out, mem.motion_embeddings([m, m[:64]], [48, 24]))
    _raises(r"reads \(T, 251\)", kit.motion_embeddings, [clip])
    _raises("does not exist", GuoEvaluator.load, root, "t2m")
