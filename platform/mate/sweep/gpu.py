"""A trial's share of a GPU: its memory cap, a clear error when it runs out, and the utilisation it reports.

Ray packs trials by logical fractions (`--gpus-per-trial 0.5`: two a GPU) but enforces nothing, so each trial caps
its own CUDA allocator at its share; a trial that needs more fails with CUDA's out-of-memory error, which we turn
into a message that names the fix instead of a retry loop nobody understands. NVML sees the whole device, not one
process: `sys/gpu_util` and `sys/gpu_mem` are the GPU's figures while the trial ran, shared with its neighbours.
"""

from __future__ import annotations

import os


def limit_memory(share: float) -> bool:
    """Cap this process's CUDA allocations at `share` of the device (0 < share < 1); False where there is no CUDA."""
    import torch

    if not (0 < share < 1) or not torch.cuda.is_available():
        return False
    torch.cuda.set_per_process_memory_fraction(share)
    return True


def is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "CUDA out of memory" in str(exc)


def oom_message(share: float) -> str:
    packed = f"{share:g} GPU per trial ({round(1 / share)} a GPU)" if 0 < share < 1 else f"{share:g} GPU per trial"
    bigger = min(1.0, share * 2) if share < 1 else share
    return (f"CUDA out of memory with {packed}: this trial needs more than its share of the GPU's memory; lower the "
            f"packing (--gpus-per-trial {bigger:g} or budget.gpus_per_trial in the space) or shrink gen.batch")


class GpuMonitor:
    """The GPU this process was given (Ray sets CUDA_VISIBLE_DEVICES), read through NVML; inert without one."""

    def __init__(self):
        self.handle = None
        try:
            import pynvml
        except ImportError:
            return
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
        if not visible:
            return
        try:
            pynvml.nvmlInit()
            self.handle = (pynvml.nvmlDeviceGetHandleByUUID(visible) if visible.startswith(("GPU-", "MIG-"))
                           else pynvml.nvmlDeviceGetHandleByIndex(int(visible)))
            self.nvml = pynvml
        except (pynvml.NVMLError, ValueError):
            self.handle = None

    def sample(self) -> dict[str, float]:
        """The figures now; nothing (and no further reads) once NVML fails: a driver hiccup or a GPU NVML cannot
        see (some MIG and container setups) must not end the trial it only observes."""
        if self.handle is None:
            return {}
        try:
            util = self.nvml.nvmlDeviceGetUtilizationRates(self.handle)
            mem = self.nvml.nvmlDeviceGetMemoryInfo(self.handle)
        except self.nvml.NVMLError:
            self.handle = None
            return {}
        return {"sys/gpu_util": float(util.gpu), "sys/gpu_mem": mem.used / 2**20,
                "sys/gpu_mem_frac": mem.used / mem.total}
