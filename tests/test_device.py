"""One place chooses the device (`mate.loop.resolve_device`: the trial's GPU when CUDA is there, else the CPU):
no other module calls `.cuda()` or names a device to train on, and batches reach a model on its device whatever
nests them."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from mate.loop import resolve_device, to_device

PLATFORM = Path(__file__).resolve().parents[1] / "platform" / "mate"
CHOICE = re.compile(r"""\.cuda\(|torch\.device\(\s*["']cuda|device\s*=\s*["'](?:cpu|cuda)|\.to\(\s*["']cuda""")


def test_no_module_but_the_loop_chooses_a_device():
    found = [f"{p.relative_to(PLATFORM)}:{i}: {line.strip()}"
             for p in sorted(PLATFORM.rglob("*.py")) if p.name != "loop.py"
             for i, line in enumerate(p.read_text().splitlines(), 1) if CHOICE.search(line.split("#")[0])]
    assert not found, "choose devices through mate.loop.resolve_device:\n" + "\n".join(found)


def test_the_pattern_catches_what_it_forbids():
    for bad in ('model.cuda()', 'x = torch.device("cuda")', 'Loop(t, o, p, device="cpu")', 'x.to("cuda:0")'):
        assert CHOICE.search(bad), bad
    for fine in ('state = torch.load(p, map_location="cpu")', 'model.to("cpu")', 'if device.type == "cuda":'):
        assert not CHOICE.search(fine), fine


def test_batches_of_any_shape_follow_the_device():
    class Encoding(dict):  # what a tokenizer returns: a mapping with its own .to
        def to(self, device):
            return Encoding({k: v.to(device) for k, v in self.items()})

    batch = {"motion": torch.zeros(2, 3), "texts": ["a", "b"], "tok": Encoding(ids=torch.ones(2)),
             "pair": (torch.zeros(1), 3)}
    moved = to_device(batch, "meta")
    assert moved["motion"].device.type == "meta" and moved["tok"]["ids"].device.type == "meta"
    assert moved["texts"] == ["a", "b"] and moved["pair"][0].device.type == "meta" and moved["pair"][1] == 3
    assert resolve_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu").type == "cpu" and resolve_device("auto") == resolve_device()
