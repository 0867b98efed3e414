"""A trial's GPU share: the memory cap binds exactly where CUDA is there and only for a fraction of a GPU, NVML reads
the trial's GPU where it can and reports nothing elsewhere, and CUDA's out-of-memory error becomes a message that
names the packing to lower. Each host runs the half it can: a CPU host the no-CUDA tests, a GPU host the CUDA ones."""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest
import torch

from mate.sweep.gpu import GpuMonitor, is_oom, limit_memory, oom_message

CUDA = torch.cuda.is_available()


class NoDriverNvml:
    """pynvml installed (the cluster extra) on a host without an NVIDIA driver: it imports, and nvmlInit raises."""

    class NVMLError(Exception):
        pass

    def nvmlInit(self):
        raise self.NVMLError("Driver Not Loaded")


@pytest.mark.skipif(CUDA, reason="a CUDA host: the with-CUDA tests cover it")
def test_without_cuda_the_cap_and_the_monitor_do_nothing(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # what Ray sets for a trial given a (logical) GPU
    assert limit_memory(0.5) is False and limit_memory(1.0) is False and limit_memory(0.0) is False
    monkeypatch.setitem(sys.modules, "pynvml", NoDriverNvml())
    monitor = GpuMonitor()
    assert monitor.handle is None and monitor.sample() == {}
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed: `import pynvml` raises ImportError
    assert GpuMonitor().sample() == {}


@pytest.mark.skipif(not CUDA, reason="no CUDA here")
def test_with_cuda_a_fraction_caps_the_allocator_and_a_whole_gpu_is_not_capped():
    assert limit_memory(1.0) is False and limit_memory(0.0) is False
    free, total = torch.cuda.mem_get_info()
    over = int(0.55 * total)  # more than a half share, less than the GPU
    try:
        assert limit_memory(0.5) is True
        with pytest.raises(torch.cuda.OutOfMemoryError):
            torch.empty(over, dtype=torch.uint8, device="cuda")
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)  # the rest of the session gets the whole GPU back
    if free > over + 2**30:  # the GPU itself has room for it: the cap, not the GPU, refused it above
        x = torch.empty(over, dtype=torch.uint8, device="cuda")
        del x
        torch.cuda.empty_cache()


@pytest.mark.skipif(not CUDA or importlib.util.find_spec("pynvml") is None, reason="needs CUDA and pynvml")
def test_with_a_gpu_the_monitor_reads_the_trials_gpu_and_nothing_without_one(monkeypatch):
    torch.zeros(1, device="cuda")  # a CUDA context: the GPU has memory in use
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0] or "0")
    got = GpuMonitor().sample()
    assert set(got) == {"sys/gpu_util", "sys/gpu_mem", "sys/gpu_mem_frac"}, got
    assert 0 <= got["sys/gpu_util"] <= 100 and got["sys/gpu_mem"] > 0 and 0 < got["sys/gpu_mem_frac"] <= 1, got
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")  # no GPU given to this process
    assert GpuMonitor().sample() == {}


def test_an_out_of_memory_error_names_the_packing_to_lower():
    assert is_oom(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_oom(RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"))
    assert not is_oom(RuntimeError("shape mismatch")) and not is_oom(MemoryError())
    half = oom_message(0.5)
    assert "0.5 GPU per trial (2 a GPU)" in half and "--gpus-per-trial 1" in half
    assert "--gpus-per-trial 0.5" in oom_message(0.25) and "4 a GPU" in oom_message(0.25)
    assert "gen.batch" in oom_message(1.0)


def test_an_nvml_error_mid_trial_stops_the_readings_not_the_trial():
    """NVML cannot run here (no GPU, no pynvml): a stand-in module whose reads fail as a driver hiccup does."""

    class FailingNvml:
        class NVMLError(Exception):
            pass

        def nvmlDeviceGetUtilizationRates(self, handle):
            raise self.NVMLError("Unknown Error")

    monitor = GpuMonitor()
    monitor.handle, monitor.nvml = object(), FailingNvml()
    assert monitor.sample() == {} and monitor.handle is None and monitor.sample() == {}
