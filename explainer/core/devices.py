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


def cpu_features(cpuinfo: str = "/proc/cpuinfo") -> tuple[str, tuple[str, ...]]:
    """The CPU's name and its vector instruction sets (the ``avx*``, ``fma``, ``f16c``, ``amx*`` flags, sorted)
    as Linux reports them in ``cpuinfo``; elsewhere the platform's processor name and no flags. Kernels such as
    ONNX Runtime's pick their code by these flags: the same program can be several times faster on another CPU."""
    import platform

    name = platform.processor() or platform.machine()
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return name, ()
    name = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), name)
    flags = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), [])
    return name, tuple(sorted(f for f in flags if f.startswith(("avx", "fma", "f16c", "amx"))))


def cpu_label(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's name and its widest vector instructions, e.g. ``AMD EPYC (AVX-512)`` or ``… (AVX2)``."""
    name, flags = cpu_features(cpuinfo)
    widest = next(
        (label for flag, label in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX")) if flag in flags), None
    )
    return f"{name} ({widest})" if widest else name


def device_label(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return f"cuda ({torch.cuda.get_device_name(0)})"
    return "cpu"
