"""The validator: clean data passes; each corruption is found and blamed on the right file; never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mate.data.check import check_dataset, format_report, main

from .test_pack import make_dataset


@pytest.fixture(scope="module")
def clean(tmp_path_factory, shared_dir) -> Path:
    sample = shared_dir / "data" / "humanml3d-sample"
    caption = shared_dir / "data" / "humanml3d-caption-format" / "000000.txt"
    root = make_dataset(tmp_path_factory.mktemp("clean") / "ds", sample, caption, n=8)
    # the real clip itself, with the real caption file, and a joints file of the matching shape
    shutil.copy(sample / "new_joint_vecs" / "012314.npy", root / "new_joint_vecs" / "012314.npy")
    shutil.copy(caption, root / "texts" / "012314.txt")
    (root / "new_joints").mkdir()
    shutil.copy(sample / "new_joints" / "012314.npy", root / "new_joints" / "012314.npy")
    with open(root / "train.txt", "a") as f:
        f.write("012314\n")
    (root / "test_comp.txt").write_text("000007\n")
    return root


@pytest.fixture
def ds(clean, tmp_path) -> Path:
    return shutil.copytree(clean, tmp_path / "ds")


def test_clean_dataset_with_the_real_clip_and_captions_passes(clean, capsys):
    assert check_dataset(clean) == []
    assert main(clean) == 0
    assert "no problems found" in capsys.readouterr().out


def test_tiny_synthetic_corpus_passes(request):
    if not hasattr(pytest.importorskip("mate.data.synth"), "synthesize"):
        pytest.skip("mate.data.synth.synthesize is not written yet")
    corpus = request.getfixturevalue("tiny_corpus")
    problems = check_dataset(corpus)
    assert problems == [], format_report(problems, corpus)


def _save(rel, arr):
    return lambda d: np.save(d / rel, arr)


def _append(rel, text):
    def f(d):
        with open(d / rel, "a") as fh:
            fh.write(text)
    return f


def _truncate(d):
    p = d / "new_joint_vecs" / "000002.npy"
    p.write_bytes(p.read_bytes()[:-1000])


def _missing_motion(d):
    _append("train.txt", "999999\n")(d)
    shutil.copy(d / "texts" / "000000.txt", d / "texts" / "999999.txt")


def _too_short(d):
    np.save(d / "new_joint_vecs" / "000004.npy", _CLIP[:39])
    (d / "texts" / "000004.txt").write_text("a man kicks#a/DET man/NOUN kick/VERB#0.0#0.0\n")  # no span past row 39


_CLIP = np.random.default_rng(0).normal(size=(80, 263)).astype(np.float32)
_NAN = _CLIP.copy()
_NAN[5, 7] = np.nan
_INF = _CLIP.copy()
_INF[70, 0] = -np.inf

CORRUPTIONS = {
    # name: (corrupt(dataset), the file to blame, problem code, fragment of the message)
    "missing_texts_folder": (lambda d: shutil.rmtree(d / "texts"), "texts", "missing_folder", "missing folder"),
    "missing_val_split": (lambda d: (d / "val.txt").unlink(), "val.txt", "missing_split", "missing split"),
    "empty_val_split": (lambda d: (d / "val.txt").write_text("\n"), "val.txt", "empty_split", "no ids"),
    "missing_mean": (lambda d: (d / "Mean.npy").unlink(), "Mean.npy", "missing_stats", "missing"),
    "id_without_motion": (_missing_motion, "new_joint_vecs/999999.npy", "missing_motion", "listed in train.txt"),
    "id_without_text": (lambda d: (d / "texts" / "000002.txt").unlink(), "texts/000002.txt", "missing_text",
                        "no caption file"),
    "width_not_263_or_251": (_save("new_joint_vecs/000001.npy", _CLIP[:, :200]), "new_joint_vecs/000001.npy",
                             "width", "width 200"),
    "width_inconsistent_with_mean": (_save("new_joint_vecs/000001.npy", _CLIP[:, :251]), "new_joint_vecs/000001.npy",
                                     "width", "differs from the dataset's 263"),
    "nan_in_motion": (_save("new_joint_vecs/000003.npy", _NAN), "new_joint_vecs/000003.npy", "nonfinite",
                      "1 NaN/Inf values in 1 rows (first row 5)"),
    "inf_in_motion": (_save("new_joint_vecs/000003.npy", _INF), "new_joint_vecs/000003.npy", "nonfinite", "row 70"),
    "too_short": (_too_short, "new_joint_vecs/000004.npy", "too_short",
                  "39 rows is shorter than humanml3d's minimum 40"),
    "too_long": (_save("new_joint_vecs/000004.npy", np.concatenate([_CLIP] * 3)), "new_joint_vecs/000004.npy",
                 "too_long", "240 rows"),
    "garbage_npy": (lambda d: (d / "new_joint_vecs" / "000005.npy").write_bytes(b"not numpy"),
                    "new_joint_vecs/000005.npy", "corrupt", "unreadable .npy"),
    "truncated_npy": (_truncate, "new_joint_vecs/000002.npy", "corrupt", "unreadable"),
    "wrong_ndim": (_save("new_joint_vecs/000006.npy", _CLIP[:66].reshape(66, 263, 1)), "new_joint_vecs/000006.npy",
                   "ndim", "2-D"),
    "integer_dtype": (_save("new_joint_vecs/000006.npy", _CLIP.astype(np.int32)), "new_joint_vecs/000006.npy",
                      "dtype", "int32"),
    "malformed_caption": (lambda d: (d / "texts" / "000001.txt").write_text(
        "fine#fine/ADJ#0.0#0.0\nstill fine#still/ADV fine/ADJ#0.0#0.0\na man kicks#a/DET man kick/VERB#0.0#0.0\n"),
        "texts/000001.txt", "caption_syntax", "line 3: token 'man'"),
    "empty_caption_file": (lambda d: (d / "texts" / "000001.txt").write_text("\n"), "texts/000001.txt",
                           "empty_captions", "no captions"),
    "undecodable_caption_file": (lambda d: (d / "texts" / "000001.txt").write_bytes(b"\xff\xfe\x00"),
                                 "texts/000001.txt", "caption_syntax", "UTF-8"),
    "std_shape_mismatch": (_save("Std.npy", np.ones(251, np.float32)), "Std.npy", "stats_shape", "differs from Mean"),
    "zero_std": (lambda d: np.save(d / "Std.npy", np.where(np.arange(263) == 9, 0, np.load(d / "Std.npy"))),
                 "Std.npy", "std_nonpositive", "index 9"),
    "nan_std": (lambda d: np.save(d / "Std.npy", np.where(np.arange(263) == 9, np.nan, np.load(d / "Std.npy"))),
                "Std.npy", "stats_nonfinite", "NaN/Inf"),
    "duplicate_id": (_append("train.txt", "000001\n"), "train.txt", "duplicate_id", "000001 is listed 2 times"),
    "id_in_two_splits": (_append("val.txt", "000000\n"), "val.txt", "split_overlap", "000000 is also in train.txt"),
    "comp_not_subset": (_append("test_comp.txt", "000005\n"), "test_comp.txt", "comp_not_subset", "not in test.txt"),
    "span_end_before_start": (_append("texts/000003.txt", "he waits#he/PRON wait/VERB#2.0#1.0\n"),
                              "texts/000003.txt", "bad_span", "ends before it starts"),
    "span_beyond_clip": (_append("texts/000003.txt", "he waits#he/PRON wait/VERB#1.0#30.0\n"), "texts/000003.txt",
                         "bad_span", "ends at row 600, beyond the clip"),
    "joints_shape": (_save("new_joints/012314.npy", np.zeros((169, 22, 3), np.float32)), "new_joints/012314.npy",
                     "joints_shape", "(170, 22, 3)"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_each_corruption_is_found_in_the_right_file(ds, name):
    corrupt, rel, code, fragment = CORRUPTIONS[name]
    corrupt(ds)
    problems = check_dataset(ds)
    assert problems, f"{name} not detected"
    assert {p.path for p in problems} == {ds / rel}, format_report(problems, ds)  # blamed on that file alone
    assert code in {p.code for p in problems}
    assert any(fragment in p.message for p in problems), format_report(problems, ds)
    assert rel in format_report(problems, ds)


def test_every_problem_is_reported_at_once(ds, capsys):
    for name in ("nan_in_motion", "malformed_caption", "duplicate_id", "zero_std", "id_without_text", "too_short"):
        CORRUPTIONS[name][0](ds)
    problems = check_dataset(ds)
    assert {p.code for p in problems} >= {"nonfinite", "caption_syntax", "duplicate_id", "std_nonpositive",
                                          "missing_text", "too_short"}
    assert main(ds) == 2
    out = capsys.readouterr().out
    assert "new_joint_vecs/000003.npy: 1 NaN/Inf" in out and f"{len(problems) - 1} problems and 1 warning in" in out


def test_clips_the_loaders_skip_are_warnings(ds, capsys):
    """Real HumanML3D has clips shorter than 40 rows; every loader skips them, so they warn rather than fail."""
    CORRUPTIONS["too_short"][0](ds)
    problems = check_dataset(ds)
    assert problems and all(p.severity == "warning" for p in problems)
    assert main(ds) == 0
    out = capsys.readouterr().out
    assert "new_joint_vecs/000004.npy: warning:" in out and "0 problems and 1 warning" in out
    assert main(ds, strict=True) == 2


def test_nonexistent_path_or_file_is_a_report_not_a_traceback(tmp_path, capsys):
    assert main(tmp_path / "nope") == 2
    assert "dataset folder does not exist" in capsys.readouterr().out
    (tmp_path / "f").write_text("x")
    assert [p.code for p in check_dataset(tmp_path / "f")] == ["missing_dataset"]
    empty = tmp_path / "empty"
    empty.mkdir()
    codes = sorted(p.code for p in check_dataset(empty))
    assert codes == sorted(["missing_folder"] * 2 + ["missing_stats"] * 2 + ["missing_split"] * 3)
