"""torch's CUDA availability check on machines without the NVIDIA driver."""

from __future__ import annotations

import ctypes
import os

NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


def drop_nvml_check_without_driver() -> bool:
    """Drop PYTORCH_NVML_BASED_CUDA_CHECK where NVML's library cannot be loaded; True if dropped.

    Lightning sets the variable when imported, so that `torch.cuda.is_available()` asks NVML and
    leaves CUDA uninitialised before processes fork. Without the driver torch tries to load NVML
    again at every call, then asks the CUDA runtime anyway; Adam and AdamW make that call at every
    step (torch.optim's graph-capture health check), which cost 0.3 ms a step of an mlp on a 2-core
    CPU (docs/performance.md). With no driver the runtime's answer is all torch ever uses, so
    dropping the variable changes no answer, only the wasted attempt."""
    if os.environ.get(NVML_CHECK) != "1":
        return False
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        del os.environ[NVML_CHECK]
        return True
    return False
