"""`mate report`: a sweep's report built from the MLflow store only. The store is made here the way the sweep's Tune
callback writes it (no Ray): a parent run, six child runs over two factors and two seeds with per-epoch metrics, a
real PNG and GIF per trial, one FAILED run with its error, one stopped early, best.yaml on the parent."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest
import yaml

from mate.errors import UserError
from mate.sweep.mlflow_report import add_parser, build_report
from mate.sweep.report_runs import better, varied_params

pytestmark = pytest.mark.slow  # over ~10 s (README: `-m "not slow"` for a quick check)

SWEEP = "abl-prior"
OBJECTIVE = "val/probe/word_pair_acc"
# (trial id, align.sigma_scale, align.prior, seed, outcome); the objective grows with sigma, binary is worse
TRIALS = [
    ("t0001", 0.5, "gaussian_full", 0, "ok"),
    ("t0002", 0.5, "gaussian_full", 1, "ok"),
    ("t0003", 2.0, "gaussian_full", 0, "ok"),
    ("t0004", 2.0, "gaussian_full", 1, "early"),
    ("t0005", 2.0, "binary", 0, "ok"),
    ("t0006", 0.5, "binary", 1, "failed"),
]
EPOCHS = 3
ERROR = "RuntimeError: debug.fail_epoch=2: injected failure in epoch 2"


def _objective(sigma: float, prior: str, seed: int, epoch: int) -> float:
    return 0.3 + 0.1 * sigma - (0.1 if prior == "binary" else 0.0) + 0.01 * seed + 0.02 * epoch


def _png(path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.6, 1.2), dpi=50)
    fig.subplots().imshow([[0, 1, 2], [2, 1, 0]])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def _gif(path: Path) -> None:
    from PIL import Image

    frames = [Image.new("RGB", (24, 24), (40 * i, 90, 200 - 40 * i)) for i in range(3)]
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _make_store(ws: Path) -> dict:
    from mate.config import resolve
    from mate.tracking import Tracker, default_uri

    uri = default_uri(ws)
    tracker = Tracker(uri, ws)
    exp = tracker.experiment(SWEEP)
    parent = tracker.run(exp, {"sweep": SWEEP, "mate.role": "parent"}, name=SWEEP)
    tracker.log_params(parent, {"space": "search_spaces/ablation_prior.yaml", "evaluator.sha": "abc123"})
    runs, configs = {}, {}
    for tid, sigma, prior, seed, outcome in TRIALS:
        config = resolve([f"seed={seed}", f"align.sigma_scale={sigma}", f"align.prior={prior}", "profile=tiny"])
        configs[tid] = config.to_dict()
        run = tracker.run(exp, {"sweep": SWEEP, "trial_id": tid}, name=f"{SWEEP}-{tid}", parent_run_id=parent)
        tracker.log_params(run, configs[tid])
        last = {"ok": EPOCHS, "early": 2, "failed": 1}[outcome]
        for epoch in range(1, last + 1):
            acc = _objective(sigma, prior, seed, epoch)
            tracker.log_metrics(run, {OBJECTIVE: acc, "val/eval/fid": 5.0 - acc, "val/eval/r_precision_top3": acc / 2,
                                      "gen/loss": 1.0 / epoch, "gen/epoch": epoch}, step=epoch)
        if outcome != "failed":
            tracker.log_metrics(run, {"eval/fid": 4.5 - acc, "eval/fid_ci95": 0.12, "eval/r_precision_top3": acc / 2,
                                      "eval/r_precision_top3_ci95": 0.01, "probe/word_pair_acc": acc,
                                      "probe/word_pair_acc_comp": acc - 0.05, "cost/trial_seconds": 12.5 + seed,
                                      "align/attn_in_span": 0.7}, step=last)
        folder = ws / "trials" / tid
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps({"eval/fid": 1.0}))
        (folder / "run.json").write_text(json.dumps({"config": configs[tid]}))
        _png(folder / "plots" / "attention_prior.png")
        _gif(folder / "previews" / "walk_forward.gif")
        for name in ("metrics.json", "run.json"):
            tracker.log_artifact(run, folder / name)
        for name in ("plots", "previews"):
            tracker.log_artifacts(run, folder / name, name)
        if outcome == "failed":
            tracker.set_tags(run, {"mate.error": ERROR})
            tracker.finish(run, "FAILED")
        else:
            tracker.set_tags(run, {"mate.stopped_early": str(outcome == "early").lower(), "mate.evaluator_sha": "abc"})
            tracker.finish(run, "FINISHED")
        runs[tid] = run
    best = "t0003"  # sigma 2.0, gaussian, seed 0 ran all epochs; t0004 (seed 1) was stopped early
    doc = {"sweep": SWEEP, "trial": best, "metric": OBJECTIVE, "mode": "max",
           "value": _objective(2.0, "gaussian_full", 0, EPOCHS), "seed": 0, "git_sha": "deadbeef",
           "command": "mate train --config best.yaml", "config": configs[best]}
    (ws / "best.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    tracker.log_artifact(parent, ws / "best.yaml")
    tracker.finish(parent, "FINISHED")
    return {"uri": uri, "tracker": tracker, "parent": parent, "runs": runs, "best": best, "experiment": exp}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    ws = tmp_path_factory.mktemp("report_ws")
    made = _make_store(ws)
    out = ws / "out"
    made.update(ws=ws, out=out, html=build_report(made["uri"], SWEEP, out, workspace=ws, log=lambda *_: None))
    return made


def _md_rows(md: str) -> tuple[list[str], list[list[str]]]:
    """The trial table of report.md: header and rows (cells split on unescaped pipes)."""
    block = md.split("## Trials", 1)[1].split("\n## ", 1)[0]
    lines = [x for x in block.splitlines() if x.startswith("|")]
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", x)[1:-1]] for x in lines]
    return cells[0], cells[2:]


def _referenced(out: Path) -> tuple[set[str], set[str]]:
    md = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    return set(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)), set(re.findall(r"<img src='([^']+)'", page))


def test_table_has_one_row_per_trial_with_varied_params_and_intervals(store):
    head, rows = _md_rows((store["out"] / "report.md").read_text())
    assert len(rows) == len(TRIALS)
    assert {"align.sigma_scale", "align.prior", "seed", OBJECTIVE, "eval/fid", "error"} <= set(head)
    assert "gen.layers" not in head and "profile" not in head  # constant keys stay out of the table
    by_trial = {r[0].replace(" ★", ""): dict(zip(head, r)) for r in rows}
    assert set(by_trial) == {t[0] for t in TRIALS}
    for tid, sigma, prior, seed, outcome in TRIALS:
        row = by_trial[tid]
        assert float(row["align.sigma_scale"]) == sigma and row["align.prior"] == prior and row["seed"] == str(seed)
        if outcome == "failed":
            assert row["status"] == "FAILED" and row["error"] == ERROR and row["eval/fid"] == ""
        else:
            assert row["status"] == ("FINISHED (stopped early)" if outcome == "early" else "FINISHED")
            assert re.fullmatch(r"[\d.]+ ± 0\.12", row["eval/fid"]), row["eval/fid"]
            assert "±" in row["eval/r_precision_top3"] and row["error"] == ""
            last = {"ok": EPOCHS, "early": 2}[outcome]
            assert float(row[OBJECTIVE]) == pytest.approx(_objective(sigma, prior, seed, last), abs=1e-3)
    assert [r[0] for r in rows if r[0].endswith("★")] == [f"{store['best']} ★"]
    page = (store["out"] / "report.html").read_text()
    assert "<tr class=\"failed\">" in page and ERROR in page and "± 0.12" in page


def test_every_referenced_image_exists_and_opens(store):
    from PIL import Image

    out = store["out"]
    in_md, in_html = _referenced(out)
    assert in_md == in_html and in_md
    for ref in in_md:
        path = out / ref
        assert path.is_file() and path.stat().st_size > 0, ref
        with Image.open(path) as im:
            im.load()
            assert im.size[0] > 10 and im.size[1] > 10, ref
    expected = {"img/ablation_align.sigma_scale.png", "img/ablation_align.prior.png", "img/parallel_coordinates.png",
                "img/objective_per_epoch.png", "img/best_learning_curves.png",
                "best/plots/attention_prior.png", "best/previews/walk_forward.gif"}
    assert expected <= in_md
    with Image.open(out / "best/previews/walk_forward.gif") as gif:
        assert gif.n_frames == 3  # the trial's GIF, downloaded as it was logged


def test_best_trial_section_and_ablation_means(store):
    md = (store["out"] / "report.md").read_text()
    best = md.split("## Best trial", 1)[1]
    assert f"Trial **{store['best']}**" in best and "best.yaml on the parent run" in best
    assert "| **align.sigma_scale** | 2.0 |" in best and "| **align.prior** | gaussian_full |" in best
    assert "mate train --config best.yaml" in best
    # sigma 0.5 with the gaussian prior: seeds 0 and 1 give 0.41 and 0.42 -> 0.415 ± t_{0.975,1} * 0.00707 / sqrt(2)
    curves = md.split("## Ablation curves", 1)[1].split("## Parallel", 1)[0]
    row = next(x for x in curves.splitlines() if x.startswith("| align.prior=gaussian_full | 0.5 | " + OBJECTIVE))
    mean, half = map(float, re.search(r"\| ([\d.]+) ± ([\d.]+) \| 2 \|", row).groups())
    assert mean == pytest.approx(0.415, abs=1e-3) and half == pytest.approx(12.706 * 0.005, rel=0.02)


def test_report_lands_on_the_parent_run(store):
    client = store["tracker"].client
    parent = store["parent"]
    top = {f.path for f in client.list_artifacts(parent, "report")}
    assert {"report/report.md", "report/report.html", "report/img", "report/best"} <= top
    imgs = {f.path for f in client.list_artifacts(parent, "report/img")}
    assert "report/img/parallel_coordinates.png" in imgs
    gifs = {f.path for f in client.list_artifacts(parent, "report/best/previews")}
    assert gifs == {"report/best/previews/walk_forward.gif"}
    assert client.get_run(parent).info.status == "FINISHED"  # logging the report does not reopen the run


def _cli(argv: list[str]) -> int:
    """`mate report …` through the CLI when it knows the command, else through this module's parser."""
    from mate.cli import build_parser, main

    choices = next(a.choices for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    if "report" in choices:
        return main(argv)
    parser = argparse.ArgumentParser(prog="mate")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:  # what mate.cli.main does with it
        import sys

        print(f"mate: error: {exc}", file=sys.stderr)
        return 2


def test_cli_writes_the_report_and_names_what_exists(store, capsys):
    ws = store["ws"]
    assert _cli(["report", SWEEP, "--workspace", str(ws), "--no-log"]) == 0
    default_out = ws / "reports" / SWEEP
    assert (default_out / "report.html").is_file() and (default_out / "report.md").is_file()
    capsys.readouterr()
    assert _cli(["report", "no-such-sweep", "--workspace", str(ws)]) == 2
    err = capsys.readouterr().err
    assert "no-such-sweep" in err and SWEEP in err and len(err.strip().splitlines()) == 1


def test_clear_errors(store, tmp_path):
    with pytest.raises(UserError, match=rf"'typo'.*does not exist.*{SWEEP}"):
        build_report(store["uri"], "typo", tmp_path / "a", log=lambda *_: None)
    tracker = store["tracker"]
    empty = tracker.experiment("empty-sweep")
    tracker.finish(tracker.run(empty, {"sweep": "empty-sweep", "mate.role": "parent"}, name="empty-sweep"))
    with pytest.raises(UserError, match=r"'empty-sweep'.*no trial runs.*1 run\(s\): empty-sweep \(FINISHED\)"):
        build_report(store["uri"], "empty-sweep", tmp_path / "b", log=lambda *_: None)
    missing = tmp_path / "nowhere" / "mlflow.db"
    with pytest.raises(UserError, match="no MLflow store"):
        build_report(f"sqlite:///{missing}", SWEEP, tmp_path / "c", log=lambda *_: None)
    assert not missing.parent.exists()  # a report never creates a store


def test_search_without_best_yaml(store, tmp_path):
    """A TPE-like experiment: one continuous factor, one seed each, a KILLED run, no best.yaml: the default objective,
    the best FINISHED run, points without bands."""
    tracker = store["tracker"]
    exp = tracker.experiment("tpe")
    parent = tracker.run(exp, {"sweep": "tpe", "mate.role": "parent"}, name="tpe")
    values = {"a": (0.31, 0.2, "FINISHED"), "b": (1.7, 0.5, "FINISHED"), "c": (0.9, 0.4, "FINISHED"),
              "d": (3.3, 0.9, "KILLED")}
    for tid, (sigma, acc, status) in values.items():
        run = tracker.run(exp, {"sweep": "tpe", "trial_id": tid}, name=f"tpe-{tid}", parent_run_id=parent)
        tracker.log_params(run, {"seed": 7, "align.sigma_scale": sigma, "profile": "tiny"})
        for epoch in (1, 2):
            tracker.log_metrics(run, {OBJECTIVE: acc - 0.1 / epoch}, step=epoch)
        tracker.finish(run, status)
    html_path = build_report(store["uri"], "tpe", tmp_path / "tpe", log_to_parent=False, log=lambda *_: None)
    md = (html_path.parent / "report.md").read_text()
    head, rows = _md_rows(md)
    assert len(rows) == 4 and "align.sigma_scale" in head and "profile" not in head and "eval/fid" not in head
    assert "no best.yaml on the parent run" in md and "Trial **b**" in md  # 0.45 beats 0.35, 0.15; d was KILLED
    assert next(r for r in rows if r[0] == "d")[1] == "KILLED"
    curves = md.split("## Ablation curves", 1)[1].split("## Parallel", 1)[0]
    assert "| - | 1.7 | " + OBJECTIVE + " | 0.45 | 1 |" in curves and not re.search(r"\d ± \d", curves)
    assert (html_path.parent / "img" / "ablation_align.sigma_scale.png").is_file()
    assert not tracker.client.list_artifacts(parent)  # log_to_parent=False writes nothing to MLflow


def test_helpers():
    assert better("val/eval/fid") == "min" and better("val/probe/word_pair_acc") == "max"
    assert better("val/eval/r_precision_top3") == "max" and better("cost/trial_seconds") == "min"

    class T:
        def __init__(self, params):
            self.params = params

    runs = [T({"a": "1", "b": "x", "c": "z"}), T({"a": "2", "b": "x"}), T({})]
    assert varied_params(runs) == ["a", "c"]
