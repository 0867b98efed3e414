"""The `mate` command: instant help, clear one-line errors, and the preview that users look at."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mate.cli import main


def test_help_imports_no_heavy_modules():
    code = ("import sys, mate.cli; mate.cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'numpy', 'matplotlib', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_preview_renders_the_real_clip(hml_sample, tmp_path):
    out = tmp_path / "clip.gif"
    assert main(["data", "preview", str(hml_sample), "012314", "--out", str(out), "--title", "real clip"]) == 0
    gif = Image.open(out)
    # one frame per feature row at 20 fps (Pillow merges identical consecutive frames, adding their durations)
    durations = []
    for i in range(gif.n_frames):
        gif.seek(i)
        durations.append(gif.info["duration"])
    assert gif.n_frames > 150 and abs(sum(durations) - 170 * 50) <= 170
    gif.seek(0)
    first = np.asarray(gif.convert("L"), dtype=np.int16)
    gif.seek(120)
    later = np.asarray(gif.convert("L"), dtype=np.int16)
    assert (first < 128).sum() > 200  # strokes of the figure are drawn
    assert np.abs(first - later).sum() > 0  # and it moves


def test_preview_errors_name_the_file(hml_sample, tmp_path, capsys):
    assert main(["data", "preview", str(hml_sample), "999999", "--out", str(tmp_path / "x.gif")]) == 2
    err = capsys.readouterr().err
    assert "999999.npy: no such clip" in err and "Traceback" not in err
    bad = tmp_path / "ds" / "new_joint_vecs"
    bad.mkdir(parents=True)
    (bad / "000001.npy").write_bytes(b"not an npy file")
    assert main(["data", "preview", str(tmp_path / "ds"), "000001", "--out", str(tmp_path / "y.gif")]) == 2
    assert "000001.npy: unreadable .npy" in capsys.readouterr().err


def test_config_errors_exit_2(capsys):
    assert main(["config", "seedd=1"]) == 2
    assert "unknown config key 'seedd' (did you mean 'seed'?)" in capsys.readouterr().err
    assert main(["config", "profile=tiny", "seed=4"]) == 0
    out = capsys.readouterr().out
    assert "profile: tiny" in out and "seed: 4" in out and "data.num_clips: 128" in out


def test_config_keys_set_the_test_only_keys_apart_and_marked(capsys):
    from mate.config import KEYS, TEST_ONLY

    assert TEST_ONLY == {k for k in KEYS if k.startswith("debug.")} and TEST_ONLY
    assert main(["config", "--keys"]) == 0
    lines = capsys.readouterr().out.splitlines()
    marker = next(i for i, line in enumerate(lines) if line.startswith("# test-only keys"))
    listed = {line.split()[0] for line in lines if line and not line.startswith("#")}
    assert listed == set(KEYS)  # every key once
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            test_only = line.split()[0] in TEST_ONLY
            assert (i > marker and "[test-only]" in line) == test_only, line
    assert main(["config"]) == 0
    assert "debug" not in capsys.readouterr().out  # unset test keys stay out of a resolved config
    assert main(["config", "debug.nan_epoch=3"]) == 0
    assert "nan_epoch: 3" in capsys.readouterr().out


def test_synth_command_is_idempotent_and_guards_other_folders(tmp_path, capsys):
    out = tmp_path / "corpus"
    assert main(["data", "synth", "--out", str(out), "--num", "40", "--seed", "3", "--quiet"]) == 0
    stamp = (out / "meta.json").stat().st_mtime_ns
    assert main(["data", "synth", "--out", str(out), "--num", "40", "--seed", "3", "--quiet"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert (out / "meta.json").stat().st_mtime_ns == stamp  # not rewritten
    assert main(["data", "synth", "--out", str(out), "--num", "40", "--seed", "4", "--quiet"]) == 2
    assert "holds something else (pass --force" in capsys.readouterr().err
