"""Items, sub-clips, length filter, crops, normalisation and collation over a pack of real-clip data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mate.data.dataset import MotionDataset, collate, make_loader
from mate.data.pack import open_pack

from .test_pack import make_dataset

WHOLE = "a man kicks#a/DET man/NOUN kick/VERB#0.0#0.0\n"


@pytest.fixture
def pack(tmp_path, hml_sample):
    # clips of 39, 40, 170, 199, 200, 120 (train) | 100, 90 (val) | 80, 60 (test) rows
    extra = ("he walks#he/PRON walk/VERB#0.5#3.0\n"  # rows [10, 60): 50 -> cropped to 48
             "he turns#he/PRON turn/VERB#nan#nan\n"  # nan = the whole clip
             "he stops#he/PRON stop/VERB#1.0#2.5\n")  # rows [20, 50): 30 rows, below 40: dropped
    root = make_dataset(tmp_path / "ds", hml_sample, None, n=10, lengths=[39, 40, 170, 199, 200, 120, 100, 90, 80, 60],
                        extra_lines=extra)
    (root / "train.txt").write_text("\n".join(f"{i:06d}" for i in range(6)) + "\n")
    (root / "val.txt").write_text("000006\n000007\n")
    (root / "test.txt").write_text("000008\n000009\n")
    return open_pack(root, tmp_path / "ws", progress=False)


def test_items_follow_the_t2m_rules(pack):
    ds = MotionDataset(pack, "train", random_crop=False)
    items = [ds[i] for i in range(len(ds))]
    by_clip: dict[str, list] = {}
    for it in items:
        by_clip.setdefault(it["id"], []).append(it)
    # 39 and 200 rows fail 40 <= rows < 200; the others are kept. The 200-row clip's 50-row sub-clip goes too: the
    # T2M loaders drop a clip that fails the filter before they look at its captions.
    assert sorted(by_clip) == ["000001", "000002", "000003", "000005"]
    for cid, its in by_clip.items():
        texts = [it["text"] for it in its]
        assert "he stops" not in texts  # its 30-row sub-clip is too short
        assert texts.count("a man kicks") == 1 and texts.count("he turns") == 1
        n = int(pack.lengths[pack.index(cid)])
        whole = [it for it in its if it["text"] in ("a man kicks", "he turns")]
        assert all(it["length"] == min(196, n // 4 * 4) for it in whole)  # nan times = whole clip
        sub = [it for it in its if it["text"] == "he walks"]
        if n >= 60:
            assert len(sub) == 1 and sub[0]["length"] == 48 and 10 <= sub[0]["start"] <= 12
        else:  # the 40-row clip: rows [10, 40) are 30, too short
            assert sub == []
    assert by_clip["000001"][0]["length"] == 40 and by_clip["000003"][0]["length"] == 196
    assert all(it["length"] % 4 == 0 and it["length"] <= 196 and it["motion"].shape == (it["length"], 263)
               for it in items)
    assert len(ds) == 2 + 3 * 3


def test_sub_clip_rows_and_normalisation(pack):
    ds = MotionDataset(pack, "val", random_crop=True, seed=3)
    raw = MotionDataset(pack, "val", random_crop=True, seed=3, normalize=False)
    for i in range(len(ds)):
        it, r = ds[i], raw[i]
        a, b = it["start"], it["start"] + it["length"]
        clip = pack.motion(it["id"])
        np.testing.assert_array_equal(r["motion"], clip[a:b])
        np.testing.assert_allclose(it["motion"], (clip[a:b] - pack.mean) / pack.std, rtol=1e-6, atol=1e-6)
        assert it["motion"].dtype == np.float32
        if it["text"] == "he walks":
            assert 10 <= a and b <= 60  # the crop stays inside the caption's sub-clip


def test_random_crops_are_seeded(pack):
    a, b = MotionDataset(pack, "train", seed=1), MotionDataset(pack, "train", seed=1)
    starts = [a[i]["start"] for i in range(len(a))]
    assert starts == [b[i]["start"] for i in range(len(b))]
    a.set_epoch(1)
    other = [MotionDataset(pack, "train", seed=2)[i]["start"] for i in range(len(a))]
    assert [a[i]["start"] for i in range(len(a))] != starts and other != starts  # new epoch / seed: new crops
    np.testing.assert_array_equal(a.rows, b.rows)


def test_collate_pads_and_masks(pack):
    ds = MotionDataset(pack, "train", random_crop=False)
    batch_items = [ds[i] for i in (0, 3, 6)]
    batch = collate(batch_items)
    lengths = [it["length"] for it in batch_items]
    assert batch["motion"].dtype == torch.float32 and batch["motion"].shape == (3, max(lengths), 263)
    assert batch["lengths"].tolist() == lengths and batch["mask"].dtype == torch.bool
    for i, n in enumerate(lengths):
        assert batch["mask"][i].sum() == n and batch["mask"][i, :n].all()
        np.testing.assert_array_equal(batch["motion"][i, :n].numpy(), batch_items[i]["motion"])
        assert (batch["motion"][i, n:] == 0).all()
    assert batch["text"] == [it["text"] for it in batch_items] and batch["ids"] == [it["id"] for it in batch_items]
    assert batch["tokens"][0][0] == (batch_items[0]["tokens"][0])


def test_loader_is_the_same_with_worker_processes(pack):
    ds = MotionDataset(pack, "train", seed=5)
    serial = list(make_loader(ds, batch_size=4, seed=7))
    parallel = list(make_loader(ds, batch_size=4, seed=7, num_workers=2))
    assert sum(len(b["ids"]) for b in serial) == len(ds)
    for s, p in zip(serial, parallel):
        assert s["ids"] == p["ids"] and torch.equal(s["motion"], p["motion"]) and torch.equal(s["mask"], p["mask"])


def test_kit_min_length_is_24(tmp_path):
    root = tmp_path / "kit"
    (root / "new_joint_vecs").mkdir(parents=True)
    (root / "texts").mkdir()
    for cid, n in (("a", 23), ("b", 24), ("c", 30)):
        np.save(root / "new_joint_vecs" / f"{cid}.npy", np.ones((n, 251), np.float32))
        (root / "texts" / f"{cid}.txt").write_text(WHOLE)
    np.save(root / "Mean.npy", np.zeros(251, np.float32))
    np.save(root / "Std.npy", np.full(251, 2.0, np.float32))
    for s in ("train", "val", "test"):
        (root / f"{s}.txt").write_text("a\nb\nc\n")
    ds = MotionDataset(open_pack(root, tmp_path / "ws", progress=False), "train")
    assert [ds[i]["id"] for i in range(len(ds))] == ["b", "c"] and [ds[i]["length"] for i in range(2)] == [24, 28]
    assert np.allclose(ds[0]["motion"], 0.5)


def test_tiny_synthetic_corpus_through_the_pack(tiny_corpus, tmp_path):
    pack = open_pack(tiny_corpus, tmp_path / "ws", progress=False)
    assert set(pack.splits) == {"train", "val", "test", "val_comp", "test_comp"}
    assert set(pack.split("test_comp")) <= set(pack.split("test")) and len(pack.split("val")) >= 32
    for split in pack.splits:
        ds = MotionDataset(pack, split, seed=0)
        batch = collate([ds[i] for i in range(min(len(ds), 16))])
        assert len(ds) >= len(pack.split(split))  # every clip yields at least one caption item
        assert batch["motion"].shape[2] == 263 and (batch["lengths"] % 4 == 0).all() and batch["lengths"].max() <= 196


# ------------------------------------------------------------------ data.max_len / data.unit_len / data.kind / min_len


def test_config_data_keys_default_to_the_dataset_family(pack):
    from mate.config import resolve

    cfg = resolve(profile="tiny")
    assert cfg["data.max_len"] is None and cfg["data.unit_len"] is None and cfg["data.kind"] == "auto"
    ds = MotionDataset.from_config(pack, "train", cfg, random_crop=False)
    plain = MotionDataset(pack, "train", random_crop=False)
    assert (ds.max_motion_len, ds.unit_len, ds.min_len) == (196, 4, 40)
    assert [ds[i]["length"] for i in range(len(ds))] == [plain[i]["length"] for i in range(len(plain))]
    assert ds.random_crop is False and MotionDataset.from_config(pack, "train", cfg).random_crop is True
    assert MotionDataset.from_config(pack, "train", cfg).seed == cfg.seed_for("data")


def test_config_max_len_and_unit_len_set_the_crops(pack):
    from mate.config import resolve

    ds = MotionDataset.from_config(pack, "train", resolve(["data.max_len=96", "data.unit_len=8"]), random_crop=False)
    lengths = [ds[i]["length"] for i in range(len(ds))]
    assert max(lengths) == 96 and all(n % 8 == 0 and n <= 96 for n in lengths)
    assert 48 in lengths  # the 50-row timed sub-clip: 48 rows under either unit, under the 96-row limit
    assert 40 in lengths  # the 40-row clip: a multiple of 8 already
    ds = MotionDataset.from_config(pack, "train", resolve(["data.unit_len=16"]), random_crop=False)
    assert ds.max_motion_len == 192  # the family's 196, cut to the unit
    assert sorted({ds[i]["length"] for i in range(len(ds))}) == [32, 48, 112, 160, 192]  # 40, 50, 120, 170, 199 rows


def test_config_min_len_filters(pack):
    from mate.config import resolve

    base = MotionDataset.from_config(pack, "train", resolve())
    ds = MotionDataset.from_config(pack, "train", resolve(["data.min_len=100"]))
    assert ds.min_len == 100 and 0 < len(ds) < len(base)
    assert all(ds[i]["length"] >= 96 for i in range(len(ds)))


def test_config_kind_must_match_the_data(pack):
    from mate.config import ConfigError, resolve

    assert MotionDataset.from_config(pack, "train", resolve(["data.kind=humanml3d"])).unit_len == 4
    with pytest.raises(ConfigError, match="data.kind=kit but the dataset is humanml3d"):
        MotionDataset.from_config(pack, "train", resolve(["data.kind=kit"]))


@pytest.mark.parametrize("over, message", [
    (["data.max_len=130"], "data.max_len=130 must be a positive multiple of the crop unit 4"),
    (["data.max_len=4", "data.unit_len=8"], "data.max_len=4 must be a positive multiple of the crop unit 8"),
])
def test_config_crop_keys_that_cannot_be_honoured_are_errors(pack, over, message):
    from mate.config import ConfigError, resolve

    with pytest.raises(ConfigError, match=message):
        MotionDataset.from_config(pack, "train", resolve(over))
    with pytest.raises(ConfigError, match="at least 1"):
        resolve(["data.unit_len=0"])
