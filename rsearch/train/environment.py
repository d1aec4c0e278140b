"""What a run's numbers depend on besides its configuration: the machine and torch's kernels.

Training is bit-identical again only on the same CPU (or GPU), torch build and thread count:
the kernels' summation order follows the instruction set (torch's CPU capability, oneDNN's
ISA) and the number of threads, and a short run at a high LR turns those last-bit
differences into points of accuracy (measured on the quickstart: 68.1% with 1 thread,
48.9% with 2, 52.7% with oneDNN limited to AVX2, same code and data).  So every result
records where it was trained.
"""

from __future__ import annotations

import torch

from rsearch.cost.latency import device_name


def training_environment(threads: int | None, gpu: bool = False) -> dict:
    """The CPU, its kernel set, torch's build, the torch threads a run uses (None: set by
    each Ray Train worker) and, for a run on a GPU, its name (`gpu`: only a process that
    uses the GPU anyway asks: asking starts a CUDA context)."""
    return {
        "cpu": device_name("cpu"),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "torch_threads": threads,
        **({"gpu": device_name("cuda")} if gpu else {}),
    }
