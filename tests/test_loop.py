"""The one training loop (mate.loop): kill-and-resume, the NaN, divergence and time checks, checkpoints, faults.

Tested once here on a small real torch task (a noisy linear regression with dropout, so that the loop's per-epoch
re-seeding matters); every trainer (evaluators, aligner, tokenizer, generators) runs on this loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mate.loop import Faults, Loop, Plan, Task


class Regression(Task):
    def __init__(self, scale: float = 1.0):
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Dropout(0.2), torch.nn.Linear(16, 1))
        g = np.random.default_rng(0)
        self.x = torch.tensor(g.normal(size=(64, 4)), dtype=torch.float32)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) * scale
        self.epochs_begun: list[int] = []

    def begin_epoch(self, epoch):
        self.epochs_begun.append(epoch)
        self.net.train()

    def batches(self, epoch):
        order = np.random.default_rng([7, epoch]).permutation(len(self.x))
        for s in range(0, len(order), 16):
            yield order[s : s + 16]

    def loss(self, idx):
        err = self.net(self.x[idx]) - self.y[idx]
        return (err**2).mean(), {"abs": err.abs().mean()}

    def state(self):
        return {"model": {k: v.clone() for k, v in self.net.state_dict().items()}}

    def load_state(self, state):
        self.net.load_state_dict(state["model"])


def make(tmp_path=None, task=None, **plan):
    task = task or Regression()
    opt = torch.optim.Adam(task.net.parameters(), lr=plan.pop("lr", 1e-2))
    ckpt = tmp_path / "reg.pt" if tmp_path is not None else None
    return task, Loop(task, opt, Plan("reg", plan.pop("epochs", 4), seed=3, **plan), checkpoint=ckpt, device="cpu")


def clean(history):
    return [{k: v for k, v in h.items() if "seconds" not in k} for h in history]


def test_a_killed_run_resumed_from_its_checkpoint_ends_where_a_straight_run_does(tmp_path):
    straight_task, straight = make()
    straight.fit()
    _, killed = make(tmp_path, faults=Faults(fail_epoch=3))
    with pytest.raises(RuntimeError, match="debug.fail_epoch=3"):
        killed.fit()
    assert torch.load(tmp_path / "reg.pt", weights_only=True)["epoch"] == 2
    task, resumed = make(tmp_path, faults=Faults(fail_epoch=3))  # a retry: the fault does not fire again
    assert len(resumed.resume(tmp_path)) == 2
    resumed.fit()
    assert task.epochs_begun == [2, 3]  # only the epochs the checkpoint lacked
    assert clean(resumed.history) == clean(straight.history)
    for a, b in zip(straight_task.net.state_dict().values(), task.net.state_dict().values()):
        assert torch.equal(a, b)
    assert resumed.history[-1]["reg/loss_abs"] > 0 and resumed.history[-1]["reg/epoch"] == 4


def test_each_epoch_is_yielded_after_its_checkpoint_is_on_disk(tmp_path):
    _, loop = make(tmp_path, epochs=3)
    seen = []
    for metrics in loop.run():
        saved = torch.load(tmp_path / "reg.pt", weights_only=True)
        seen.append((metrics["reg/epoch"], saved["epoch"], len(saved["history"])))
        assert loop.finished == (metrics["reg/epoch"] == 3)
    assert seen == [(1, 1, 1), (2, 2, 2), (3, 3, 3)]
    assert not list(tmp_path.glob(".*tmp"))  # written through a temporary name, nothing left behind


def test_a_nan_loss_stops_with_an_error_that_names_the_epoch_and_what_to_do(tmp_path):
    _, loop = make(tmp_path, faults=Faults(nan_epoch=2), hint="lower reg.lr")
    with pytest.raises(FloatingPointError,
                       match=r"reg: the loss became nan at epoch 2, step 1 \(injected.*lower reg\.lr"):
        loop.fit()
    _, loop = make(lr=1e30, epochs=3)  # a real blow-up, no injection
    with pytest.raises(FloatingPointError, match=r"(became (nan|inf))|diverged"):
        loop.fit()


def test_a_diverging_loss_is_stopped():
    task = Regression()
    _, loop = make(task=task, epochs=3)
    loop.fit()
    task.y = task.y * 1e4  # the targets jump: the loss is 1e8 x the first epoch's
    loop.plan = Plan("reg", 5, seed=3)
    with pytest.raises(FloatingPointError, match="diverged at epoch 4"):
        loop.fit()


def test_the_time_budget_stops_mid_epoch_and_a_stopped_run_stays_stopped(tmp_path):
    _, loop = make(tmp_path, max_seconds=0.0)
    history = loop.fit()
    assert len(history) == 1 and history[0]["reg/steps"] == 1 and history[0]["reg/stopped_early"] == 1.0
    task, again = make(tmp_path, max_seconds=0.0)
    again.resume(tmp_path)
    assert again.finished and again.fit() == history and task.epochs_begun == []


def test_a_missing_checkpoint_is_a_fresh_start(tmp_path):
    _, loop = make(tmp_path)
    assert loop.resume(tmp_path / "nothing-here") == [] and loop.epoch == 0 and not loop.resumed
