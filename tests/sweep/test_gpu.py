"""A trial's GPU share on this CPU machine: the cap is a no-op without CUDA, NVML reports nothing without a GPU, and
CUDA's out-of-memory error becomes a message that names the packing to lower."""

from __future__ import annotations

import torch

from mate.sweep.gpu import GpuMonitor, is_oom, limit_memory, oom_message


def test_without_cuda_the_cap_and_the_monitor_do_nothing(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # what Ray sets for a trial given a (logical) GPU
    assert limit_memory(0.5) is (torch.cuda.is_available())
    assert limit_memory(1.0) is False and limit_memory(0.0) is False
    import importlib.util

    readable = torch.cuda.is_available() and importlib.util.find_spec("pynvml") is not None
    assert (GpuMonitor().sample() != {}) == readable  # figures exactly where NVML can read the trial's GPU
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
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
