"""Paper-size training steps on one GPU: steps per second, peak memory and GPU utilisation for the scoring
evaluator, the motion tokenizer, the masked base transformer (the trial's generator) and a randomly initialised
text encoder with trainable rows (the alignment's language-model pass), then the generator run by one process
against two at once on the same GPU (what `--gpus-per-trial 0.5` packs).

Needs only PyTorch and transformers (a GPU machine may have nothing else): `PYTHONPATH=platform python
bench/gpu_stages.py [--seconds 20] [--out gpu.json] [--trial]` (`--trial` then runs a whole tiny trial on the device,
the check of every stage's device placement; it also needs matplotlib). The data are random tensors of HumanML3D's
shapes (263 channels, clips up to 196 rows, 4x temporal downsampling): throughput does not depend on their values. The
sizes are the `paper` profile's (mate.config), so the figures are what a paper-profile trial's stages cost; `mate
sweep --dry-run` reads its per-stage step times from the table this prints (STEP_SECONDS in mate.sweep.cost).
On a machine without CUDA it runs a few steps on the CPU, as a check that the script works, and says so.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from mate.config import resolve  # noqa: E402
from mate.evaluate.retrieval.model import RetrievalModel  # noqa: E402
from mate.generate.masked_model import MaskedTransformer  # noqa: E402
from mate.generate.text import TextBatch  # noqa: E402
from mate.generate.tokenizer.train import build_model  # noqa: E402

DIM, MAX_LEN, TEXT_DIM, TEXT_LEN = 263, 196, 512, 24


def paper_config(kind: str = "masked"):
    return resolve({"profile": "paper", "gen.kind": kind, "gen.cond": "tokens"})


def gpu_utilisation() -> float | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10)
        return float(out.stdout.split()[0])
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return None


def timed(step, seconds: float, device: torch.device, warmup: int = 3) -> dict[str, float]:
    """Steps per second of `step()` over about `seconds`, its peak memory and the GPU's utilisation mid-way."""
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    n, util, t0 = 0, None, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
        if util is None and time.perf_counter() - t0 > seconds / 2 and device.type == "cuda":
            util = gpu_utilisation()
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return {"steps_per_s": n / dt, "step_seconds": dt / n, "steps": n, "peak_gib": peak, "gpu_util": util}


def evaluator_step(cfg, device):
    model = RetrievalModel(DIM, TEXT_DIM, cfg["evaluator.hidden"], cfg["evaluator.dim"]).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["evaluator.lr"])
    b = cfg["evaluator.batch"]
    motion, lengths = torch.randn(b, MAX_LEN, DIM, device=device), torch.full((b,), MAX_LEN, device=device)
    tokens, mask = torch.randn(b, TEXT_LEN, TEXT_DIM, device=device), torch.ones(b, TEXT_LEN, dtype=torch.bool,
                                                                                device=device)

    def step():
        m = F.normalize(model.encode_motion(motion, lengths), dim=-1)
        t = F.normalize(model.encode_text(tokens, mask), dim=-1)
        loss = F.cross_entropy(t @ m.T / 0.07, torch.arange(b, device=device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def tokenizer_step(cfg, device):
    model = build_model(cfg, DIM).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["gen.vq_lr"])
    x = torch.randn(cfg["gen.vq_batch"], cfg["gen.vq_window"], DIM, device=device)

    def step():
        recon, _, commit = model(x)
        loss = F.smooth_l1_loss(recon, x) + 0.02 * commit
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def generator_step(cfg, device):
    shape = dict(cond="tokens", hidden=cfg["gen.hidden"], heads=cfg["gen.heads"], dropout=cfg["gen.dropout"])
    codes = cfg["gen.vq_codes"]
    net = MaskedTransformer(codes, TEXT_DIM, TEXT_DIM, layers=cfg["gen.layers"], **shape).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg["gen.lr"])
    b, n = cfg["gen.batch"], MAX_LEN // 4
    ids = torch.randint(0, codes, (b, n), device=device)
    valid = torch.ones(b, n, dtype=torch.bool, device=device)
    text = TextBatch(torch.randn(b, TEXT_DIM), torch.randn(b, TEXT_LEN, TEXT_DIM),
                     torch.ones(b, TEXT_LEN, dtype=torch.bool)).to(device)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else torch.autocast("cpu", enabled=False))

    def step():
        masked = torch.where(torch.rand(b, n, device=device) < 0.5, net.mask_id, ids)
        with autocast:
            logits = net(masked, valid, net.condition(text))
        loss = F.cross_entropy(logits.float().reshape(-1, codes), ids.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def encoder_step(cfg, device):
    """A CLIP-text-sized encoder (randomly initialised, as transformers builds it) with only its word-embedding
    matrix trainable, fed a batch of 64 captions of 24 tokens: the alignment's language-model pass."""
    from transformers import CLIPTextConfig, CLIPTextModel

    model = CLIPTextModel(CLIPTextConfig()).to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    rows = model.get_input_embeddings().weight
    rows.requires_grad_(True)
    opt = torch.optim.AdamW([rows], lr=cfg["align.row_lr"])
    ids = torch.randint(0, rows.shape[0], (cfg["align.batch"], TEXT_LEN), device=device)

    def step():
        out = model(input_ids=ids).last_hidden_state
        loss = out.pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _generator_worker(seconds: float, queue) -> None:
    device = torch.device("cuda")
    queue.put(timed(generator_step(paper_config(), device), seconds, device))


def packed(seconds: float) -> dict[str, float]:
    """The generator's throughput in one process, then in each of two processes sharing the GPU."""
    ctx = mp.get_context("spawn")
    out = {}
    for procs in (1, 2):
        queue = ctx.Queue()
        workers = [ctx.Process(target=_generator_worker, args=(seconds, queue)) for _ in range(procs)]
        for w in workers:
            w.start()
        rates = [queue.get(timeout=seconds * 10 + 300)["steps_per_s"] for _ in workers]
        for w in workers:
            w.join()
        out[f"{procs}_process_steps_per_s_each"] = sum(rates) / procs
        out[f"{procs}_process_steps_per_s_total"] = sum(rates)
    out["two_vs_one_total"] = out["2_process_steps_per_s_total"] / out["1_process_steps_per_s_total"]
    return out


def tiny_trial(root: Path) -> dict:
    """A whole `tiny` trial (evaluators, alignment, tokenizer, masked generator, scoring) on this machine's device,
    with a randomly initialised DistilBERT built here as the tests build theirs: the check that every stage runs on
    CUDA (CPU and GPU disagreeing on a tensor's device fails it). Needs the package's other runtime dependencies
    (matplotlib for the alignment's plots); without them it says which is missing."""
    import importlib.util

    missing = [m for m in ("matplotlib",) if importlib.util.find_spec(m) is None]
    if missing:
        return {"skipped": f"needs {', '.join(missing)}"}
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from mate.data.synth import synthesize
    from mate.pipeline import run_trial
    from tests.text.tiny_models import build_tiny

    model = build_tiny("distilbert", root / "model")
    synthesize(root / "corpus", num=128, seed=0, progress=False)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    metrics = run_trial(resolve({"profile": "tiny", "data.dir": str(root / "corpus"), "encoder.path": str(model),
                                 "gen.kind": "masked"}), workspace=root / "ws", out=root / "out", log=lambda s: None)
    return {"seconds": time.perf_counter() - t0, "eval/fid": metrics["eval/fid"],
            "cost/align_seconds": metrics.get("cost/align_seconds"),
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="timed seconds per stage")
    p.add_argument("--out", help="write the figures as JSON here")
    p.add_argument("--trial", action="store_true", help="then a whole tiny trial on the device (every stage's device "
                                                        "placement; needs matplotlib besides torch and transformers)")
    args = p.parse_args(argv)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    seconds = args.seconds if cuda else 1.0
    result = {"device": torch.cuda.get_device_name(0) if cuda else "cpu (a check of the script, not a figure)",
              "torch": torch.__version__, "stages": {}}
    cfg = paper_config()
    for name, make in (("evaluator", evaluator_step), ("tokenizer", tokenizer_step), ("generator", generator_step),
                       ("encoder_rows", encoder_step)):
        result["stages"][name] = timed(make(cfg, device), seconds, device, warmup=3 if cuda else 1)
        print(f"{name:13s} {result['stages'][name]['steps_per_s']:8.2f} steps/s  "
              f"peak {result['stages'][name]['peak_gib']:.2f} GiB  util {result['stages'][name]['gpu_util']}",
              flush=True)
        if cuda:
            torch.cuda.empty_cache()
    if cuda:
        result["packing"] = packed(seconds)
        print(json.dumps(result["packing"], indent=1))
    if args.trial:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="mate-gpu-trial-") as tmp:
            result["tiny_trial"] = tiny_trial(Path(tmp))
        print("tiny trial", json.dumps(result["tiny_trial"]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
