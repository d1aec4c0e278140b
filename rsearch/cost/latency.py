"""Measured inference latency, always reported together with the method that produced it.

A latency figure is meaningless without its method (DESIGN.md section 3), so every
result dict carries the method's fields, the device name and the torch version.

Method (LatencyMethod):
- the model is built with random weights, put in eval() mode and run under
  torch.inference_mode() on a batch of random images;
- dtype "bfloat16" runs under torch.autocast (weights stay float32, BN in float32),
  the way the trainer runs it; "float32" runs plain;
- channels_last converts the model and the input to channels-last memory format;
- compile wraps the model in torch.compile (default mode, or "reduce-overhead" -
  Inductor's CUDA graphs - when cuda_graphs is also set);
- cuda_graphs without compile captures the eager forward once in a torch.cuda.CUDAGraph
  and replays it (static input buffer, copied into before each call);
- `warmup` untimed calls, then `repeats` timed calls; each call is timed on its own
  with time.perf_counter(), with torch.cuda.synchronize() before and after on CUDA,
  so a figure is the wall time a caller waits for one batch;
- latency_ms is the median, latency_p95_ms the 95th percentile (linear interpolation);
- threads sets torch.set_num_threads for the measurement (restored afterwards), which
  makes CPU figures comparable between machines; threads_used records what ran.
"""
from __future__ import annotations

import functools
import platform
import time
from dataclasses import asdict, dataclass

import torch

from rsearch.errors import UserError
from rsearch.models import ResNetConfig, build

from rsearch.cost.static import check_resolution

DEVICES = ("cpu", "cuda")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class LatencyMethod:
    """How a latency figure was measured; stored beside every figure."""

    device: str = "cpu"  # "cpu" | "cuda"
    dtype: str = "float32"  # "float32" | "bfloat16" (autocast)
    batch_size: int = 1  # images per forward call
    warmup: int = 3  # untimed calls before timing (compilation happens here)
    repeats: int = 10  # timed calls; median and p95 are taken over these
    channels_last: bool = False  # model and input in channels-last memory format
    compile: bool = False  # torch.compile the model
    cuda_graphs: bool = False  # replay a captured CUDA graph ("reduce-overhead" when compiled)
    threads: int | None = None  # torch.set_num_threads during the measurement (CPU)

    def __post_init__(self):
        if self.device not in DEVICES:
            raise UserError(f"--device: must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.dtype not in DTYPES:
            raise UserError(f"--dtype: must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        for name, low in (("batch_size", 1), ("warmup", 0), ("repeats", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                flag = "--batch" if name == "batch_size" else f"--{name}"
                raise UserError(f"{flag}: must be an integer >= {low}, got {value!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise UserError(f"--threads: must be an integer >= 1, got {self.threads!r}")
        if self.cuda_graphs and self.device != "cuda":
            raise UserError("--cuda-graphs: needs --device cuda")
        if (self.compile or self.cuda_graphs) and self.warmup < 3:
            # Compilation and CUDA-graph recording happen in the first calls; never time them.
            raise UserError(f"--warmup: must be >= 3 with --compile or --cuda-graphs, got {self.warmup}")

    @property
    def compile_mode(self) -> str | None:
        if not self.compile:
            return None
        return "reduce-overhead" if self.cuda_graphs else "default"

    def key(self) -> str:
        """Stable, human-readable string: every field, in declaration order."""
        return ";".join(f"{k}={'' if v is None else v}" for k, v in asdict(self).items())

    def describe(self) -> dict:
        """The method as a flat dict (plus the resolved compile mode), for storing beside a figure."""
        return {**asdict(self), "compile_mode": self.compile_mode}


def check_device(device: str) -> None:
    """UserError naming --device when it cannot run here."""
    if device not in DEVICES:
        raise UserError(f"--device: must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device: cuda requested but no CUDA GPU is visible to torch; use --device cpu")


@functools.lru_cache(maxsize=None)
def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def device_name(device: str) -> str:
    """"NVIDIA H100 80GB HBM3" / the CPU model string."""
    check_device(device)
    return torch.cuda.get_device_name() if device == "cuda" else _cpu_name()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _graphed(model: torch.nn.Module, example: torch.Tensor, warmup: int, autocast):
    """Capture `model(example)` in a CUDA graph; return a callable that replays it."""
    static_in = example.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream), autocast():
        for _ in range(max(warmup, 3)):  # warm up on a side stream before capture, as the docs ask
            model(static_in)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), autocast():
        static_out = model(static_in)

    def run(x):
        static_in.copy_(x)
        graph.replay()
        return static_out

    return run


def measure_latency(cfg: ResNetConfig, resolution: int, method: LatencyMethod) -> dict:
    """Time inference of `cfg` at `resolution` with `method`; see the module docstring."""
    resolution = check_resolution(resolution)
    check_device(method.device)
    device = torch.device(method.device)
    cuda = device.type == "cuda"
    old_threads = torch.get_num_threads()
    if method.threads is not None:
        torch.set_num_threads(method.threads)
    try:
        memory_format = torch.channels_last if method.channels_last else torch.contiguous_format
        model = build(cfg, device).eval().to(memory_format=memory_format)
        x = torch.randn(method.batch_size, cfg.in_chans, resolution, resolution, device=device)
        x = x.contiguous(memory_format=memory_format)
        use_autocast = method.dtype != "float32"

        def autocast():
            # The autocast weight cache must be off while capturing a CUDA graph (torch docs).
            return torch.autocast(device.type, dtype=DTYPES[method.dtype], enabled=use_autocast,
                                  cache_enabled=not method.cuda_graphs)

        with torch.inference_mode():
            if method.compile:
                forward = torch.compile(model, mode=method.compile_mode)
            elif method.cuda_graphs:
                forward = _graphed(model, x, method.warmup, autocast)
            else:
                forward = model

            def call():
                with autocast():
                    return forward(x)

            for _ in range(method.warmup):
                call()
            times = []
            for _ in range(method.repeats):
                if cuda:
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
                call()
                if cuda:
                    torch.cuda.synchronize(device)
                times.append((time.perf_counter() - start) * 1e3)
        threads_used = torch.get_num_threads()
    finally:
        torch.set_num_threads(old_threads)
    median = _percentile(times, 0.5)
    return {
        "latency_ms": median,
        "latency_p95_ms": _percentile(times, 0.95),
        "latency_min_ms": min(times),
        "images_per_s": method.batch_size * 1e3 / median,
        "resolution": resolution,
        "device_name": device_name(method.device),
        "torch": torch.__version__,
        "threads_used": threads_used if not cuda else None,
        **method.describe(),
    }
