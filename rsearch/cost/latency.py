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
- `warmup` untimed calls after the model is built;
- then `repeats` rounds, each one `torch.utils.benchmark.Timer.blocked_autorange` of at
  least `min_run_time` seconds: calls are timed in blocks long enough that the timer's
  own overhead is negligible, and the Timer synchronises the GPU around each block. One
  figure per round is the per-call time of its fastest block (rounds.py interleaves the
  rounds of many architectures, so a burst of load hits them alike);
- latency_ms is the fastest round's figure (load only adds time; see `summarize`),
  latency_median_ms the median round, latency_spread_ms the rounds' interquartile range
  (the spread of the blocks when there is one round) and latency_noise that spread
  relative to the median; latency_p95_ms is over every block;
- threads sets torch.set_num_threads for the measurement (restored afterwards), which
  makes CPU figures comparable between machines; threads_used records what ran.

Backends: "torch" runs the module as above. "onnxruntime" exports the network to ONNX
(float32, the random weights) and times ONNX Runtime's CPU execution provider on the same
batch (threads: its intra-op pool, operators run one after another), for a search whose
deployment target serves ONNX; the figure then carries ONNX Runtime's version.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import time
from dataclasses import asdict, dataclass

import torch

from rsearch import metrics as M
from rsearch.bounds import LATENCY_FIELDS, MIN_COMPILED_WARMUP, FieldError
from rsearch.cost.onnx import INPUT, cpu_session, onnxruntime_version, to_onnx
from rsearch.cost.static import check_resolution
from rsearch.models import ResNetConfig, build

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class LatencyMethod:
    """How a latency figure was measured; stored beside every figure."""

    device: str = "cpu"  # "cpu" | "cuda"
    dtype: str = "float32"  # "float32" | "bfloat16" (autocast)
    batch_size: int = 1  # images per forward call
    warmup: int = 3  # untimed calls before timing (compilation happens here)
    repeats: int = 10  # timed rounds (interleaved across architectures); the figure is the fastest
    min_run_time: float = 0.05  # seconds of timed calls per round (Timer.blocked_autorange)
    channels_last: bool = False  # model and input in channels-last memory format
    compile: bool = False  # torch.compile the model
    cuda_graphs: bool = False  # replay a captured CUDA graph ("reduce-overhead" when compiled)
    threads: int | None = None  # torch.set_num_threads during the measurement (CPU)
    backend: str = "torch"  # "torch" | "onnxruntime" (CPU execution provider, float32)

    def __post_init__(self):
        # FieldErrors name the field; the space schema and `rsearch cost` name the key or flag.
        for name, bound in LATENCY_FIELDS.items():
            value = getattr(self, name)
            if not (name == "threads" and value is None):
                bound.check(name, value)
        if self.cuda_graphs and self.device != "cuda":
            raise FieldError("cuda_graphs", "false with device cpu (CUDA graphs need cuda)", True)
        if (self.compile or self.cuda_graphs) and self.warmup < MIN_COMPILED_WARMUP:
            raise FieldError(
                "warmup",
                f"at least {MIN_COMPILED_WARMUP} with compile or cuda_graphs",
                self.warmup,
            )
        if self.backend == "onnxruntime":
            self._check_onnxruntime_method()

    def _check_onnxruntime_method(self) -> None:
        """ONNX Runtime's CPU provider runs float32 graphs; torch's own switches do not apply."""
        fixed = {"device": "cpu", "dtype": "float32"}
        for name, value in fixed.items():
            if getattr(self, name) != value:
                raise FieldError(name, f"{value} with backend onnxruntime", getattr(self, name))
        for name in ("compile", "cuda_graphs", "channels_last"):
            if getattr(self, name):
                raise FieldError(name, "false with backend onnxruntime (a torch option)", True)

    @property
    def compile_mode(self) -> str | None:
        if not self.compile:
            return None
        return "reduce-overhead" if self.cuda_graphs else "default"

    @property
    def clock(self) -> str:
        """ "thread_cpu" for one CPU thread: the calling thread's CPU time (time.thread_time), which
        time slices given to other processes do not inflate; "wall" otherwise (threads of a pool,
        or a GPU, whose work the calling thread's CPU time does not see)."""
        return "thread_cpu" if self.device == "cpu" and self.threads == 1 else "wall"

    def key(self) -> str:
        """Stable, human-readable string: every field, in declaration order. The backend only
        when it is not torch, so that torch figures cached before backends existed stay valid."""
        fields = asdict(self)
        if fields["backend"] == "torch":
            del fields["backend"]
        return ";".join(f"{k}={'' if v is None else v}" for k, v in fields.items())

    def describe(self) -> dict:
        """The method as a flat dict (plus the resolved compile mode), stored beside a figure."""
        return {**asdict(self), "compile_mode": self.compile_mode, "clock": self.clock}


def check_device(device: str) -> None:
    """FieldError (field "device") when `device` cannot run here."""
    LATENCY_FIELDS["device"].check("device", device)
    if device == "cuda" and not torch.cuda.is_available():
        raise FieldError("device", "cpu (no CUDA GPU is visible to torch here)", device)


@functools.cache
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
    """ "NVIDIA H100 80GB HBM3" / the CPU model string."""
    check_device(device)
    return torch.cuda.get_device_name() if device == "cuda" else _cpu_name()


def percentile(values, q: float) -> float:
    """The q-quantile of `values` with linear interpolation (numpy's default)."""
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


@contextlib.contextmanager
def _torch_threads(threads: int | None):
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Runner:
    """One architecture built, warmed up and ready to be timed round after round."""

    def __init__(self, cfg: ResNetConfig, resolution: int, method: LatencyMethod):
        self.resolution = check_resolution(resolution)
        check_device(method.device)
        self.method = method
        self.params = 0
        self.calls_per_block = 1
        self.threads_used = None
        with _torch_threads(method.threads):
            self._call = self._build(cfg)
            with torch.inference_mode():
                for _ in range(method.warmup):
                    self._call()
            self.threads_used = self.threads_used or torch.get_num_threads()

    def _build(self, cfg: ResNetConfig):
        if self.method.backend == "onnxruntime":
            return self._build_onnxruntime(cfg)
        method, device = self.method, torch.device(self.method.device)
        memory_format = torch.channels_last if method.channels_last else torch.contiguous_format
        model = build(cfg, device).eval().to(memory_format=memory_format)
        self.params = sum(p.numel() for p in model.parameters())
        x = torch.randn(
            method.batch_size, cfg.in_chans, self.resolution, self.resolution, device=device
        )
        x = x.contiguous(memory_format=memory_format)
        use_autocast = method.dtype != "float32"

        def autocast():
            # The autocast weight cache must be off while capturing a CUDA graph (torch docs).
            return torch.autocast(
                device.type,
                dtype=DTYPES[method.dtype],
                enabled=use_autocast,
                cache_enabled=not method.cuda_graphs,
            )

        with torch.inference_mode():
            if method.compile:
                forward = torch.compile(model, mode=method.compile_mode)
            elif method.cuda_graphs:
                forward = _graphed(model, x, method.warmup, autocast)
            else:
                forward = model

        def call():
            with torch.inference_mode(), autocast():
                return forward(x)

        return call

    def _build_onnxruntime(self, cfg: ResNetConfig):
        """The network exported to ONNX (in memory) and a CPU session of ONNX Runtime on it."""
        model = build(cfg, torch.device("cpu")).eval()
        self.params = sum(p.numel() for p in model.parameters())
        x = torch.randn(self.method.batch_size, cfg.in_chans, self.resolution, self.resolution)
        threads = self.method.threads or torch.get_num_threads()
        session = cpu_session(to_onnx(model, x), threads)
        del model  # the session holds its own copy of the weights
        feed = {INPUT: x.numpy()}
        self.threads_used = threads  # ONNX Runtime's pool, not torch's

        def call():
            return session.run(None, feed)

        return call

    def release(self) -> None:
        """Free the model; what describes the measurement stays."""
        self._call = None

    def time_round(self) -> list[float]:
        """Per-call milliseconds of each block of one blocked_autorange round."""
        # Imported when timing: it loads torch's C++-extension machinery (which warns on a
        # machine without a CUDA runtime), which nothing else here needs.
        from torch.utils.benchmark import Timer

        clock = {"timer": time.thread_time} if self.method.clock == "thread_cpu" else {}
        timer = Timer(
            stmt="call()",
            globals={"call": self._call},
            num_threads=self.method.threads or torch.get_num_threads(),
            **clock,
        )
        measurement = timer.blocked_autorange(min_run_time=self.method.min_run_time)
        self.calls_per_block = measurement.number_per_run
        return [t * 1e3 for t in measurement.times]


def round_figure(block_ms: list[float]) -> float:
    """One round's figure: the per-call time of its fastest block (the least disturbed one)."""
    return min(block_ms)


def summarize(rounds: list[list[float]], calls_per_block: int = 1) -> dict:
    """Statistics of one architecture's rounds (each a list of per-call block times in ms).

    latency_ms is the fastest round's figure: load only ever adds time, so the fastest of
    many short blocks is the figure least moved by other processes (the rule timeit's docs
    give, and the one benchmarks/latency_stability.py measured as the most stable)."""
    figures = [round_figure(r) for r in rounds]
    blocks = [t for r in rounds for t in r]
    median = percentile(figures, 0.5)
    spread = (
        percentile(figures, 0.75) - percentile(figures, 0.25)
        if len(figures) > 1
        else percentile(blocks, 0.75) - percentile(blocks, 0.25)
    )
    return {
        M.LATENCY_MS: min(figures),
        M.LATENCY_MEDIAN_MS: median,
        M.LATENCY_P95_MS: percentile(blocks, 0.95),
        M.LATENCY_MIN_MS: min(blocks),
        M.LATENCY_SPREAD_MS: spread,
        M.LATENCY_NOISE: spread / median if median > 0 else 0.0,
        M.LATENCY_ROUNDS: len(rounds),
        M.LATENCY_RUNS: len(blocks) * calls_per_block,
    }


def conditions(method: LatencyMethod) -> dict:
    """What the machine was doing when a figure was measured (stored with it in the cache)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    backend = {"onnxruntime": onnxruntime_version()} if method.backend == "onnxruntime" else {}
    return {
        "device_name": device_name(method.device),
        "torch": torch.__version__,
        **backend,
        "measured_at": time.time(),
        "load_1m": load,
        "cpu_count": os.cpu_count(),
    }


def describe_result(rounds: list[list[float]], runner: Runner) -> dict:
    """A storable result: the statistics of `runner`'s rounds, its method, the conditions."""
    method = runner.method
    stats = summarize(rounds, runner.calls_per_block)
    return {
        **stats,
        "images_per_s": method.batch_size * 1e3 / stats[M.LATENCY_MS],
        M.RESOLUTION: runner.resolution,
        "threads_used": None if method.device == "cuda" else runner.threads_used,
        **conditions(method),
        **method.describe(),
    }


def measure_latency(cfg: ResNetConfig, resolution: int, method: LatencyMethod) -> dict:
    """Time inference of `cfg` at `resolution` with `method` (`repeats` rounds); see the
    module docstring."""
    runner = Runner(cfg, resolution, method)
    rounds = [runner.time_round() for _ in range(method.repeats)]
    return describe_result(rounds, runner)
