"""Which device the model runs on: the CPU, or a CUDA GPU when torch can use one."""

from __future__ import annotations


def cuda_available() -> bool:
    """True when torch can use a CUDA GPU. Without an NVIDIA driver on the machine (no ``nvidia-smi``, no
    /proc/driver/nvidia) it is False without importing torch (~190 MB and a second of start-up)."""
    import os
    import shutil

    if not (shutil.which("nvidia-smi") or os.path.exists("/proc/driver/nvidia/version")):
        return False
    import torch

    return torch.cuda.is_available()


def pick_device(device: str = "auto") -> str:
    if device in ("auto", None):
        return "cuda" if cuda_available() else "cpu"
    if device == "cuda" and not cuda_available():
        from explainer.core.errors import UserError

        raise UserError("--device cuda was asked for, but no usable CUDA GPU was found; use --device cpu.")
    if device not in ("cpu", "cuda"):
        from explainer.core.errors import UserError

        raise UserError(f"Unknown device '{device}'; use cpu, cuda or auto.")
    return device


def device_label(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return f"cuda ({torch.cuda.get_device_name(0)})"
    return "cpu"
