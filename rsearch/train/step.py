"""The training step: forward, loss, backward, optimizer and EMA, as one unit the loop calls.

    step = EagerStep(parts, device)      # or GraphStep(parts, device) with recipe.cuda_graphs
    for i, (x, y) in enumerate(loader):
        step(x, y, global_step)          # no host sync: the loss is summed on the device
    loss_sum = step.take_loss_sum()      # read once per epoch

EagerStep is the step op by op from Python: any device, DDP, every recipe.

GraphStep records the whole step once in a CUDA graph and replays it: one launch per step
instead of thousands of kernel launches from Python, which bound a fast GPU's step at small
per-image cost.  What a replay cannot do is read a Python number, so everything that changes
from step to step lives on the device: the batch is copied into static buffers, the LR and
the EMA weight are device tensors written before each replay, SGD is torch's fused kernel
reading that LR tensor (RMSprop: foreach with `capturable`), and the EMA is a tensor-weight
lerp.  The schedule, the weight-decay groups and the EMA warm-up are the recipe's, computed
on the host exactly as EagerStep computes them.  The first WARMUP_STEPS steps run uncaptured
(real steps on real batches: they let cuDNN autotune, create the momentum buffers and let
torch.compile compile); the next is captured and every later one replayed.  Without CUDA
(tests, a CPU run with cuda_graphs set) GraphStep runs the same body uncaptured, so its
arithmetic is checked against EagerStep on any machine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from rsearch.train.optim import LRSchedule, WeightEMA

WARMUP_STEPS = 3  # uncaptured steps before the capture (DDP would need 11; it is not captured)


@dataclass
class StepParts:
    model: nn.Module  # what is trained (compiled or DDP-wrapped)
    core: nn.Module  # the bare model: the EMA's source
    optimizer: torch.optim.Optimizer
    criterion: nn.Module
    schedule: LRSchedule
    ema: WeightEMA | None
    prepare: Callable  # (x, y) as the loader gives them -> normalised device tensors
    autocast: Callable  # (cache_enabled=True) -> a context manager


class EagerStep:
    def __init__(self, parts: StepParts, device: torch.device):
        self.parts = parts
        self.loss_sum = torch.zeros((), device=device, dtype=torch.float64)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, step: int) -> None:
        p = self.parts
        x, y = p.prepare(x, y)
        lr = p.schedule(step)
        for group in p.optimizer.param_groups:
            group["lr"] = lr
        with p.autocast():
            loss = p.criterion(p.model(x), y)
        p.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        p.optimizer.step()
        if p.ema is not None:
            p.ema.update(p.core, step)
        self.loss_sum += loss.detach()

    def take_loss_sum(self) -> torch.Tensor:
        """The training loss summed since the last call (a device tensor); restarts the sum."""
        total = self.loss_sum.clone()
        self.loss_sum.zero_()  # in place: a captured graph keeps adding into this tensor
        return total


class GraphStep(EagerStep):
    """The step captured in a CUDA graph (`capture`: on CUDA) or run uncaptured."""

    def __init__(self, parts: StepParts, device: torch.device, *, capture: bool | None = None):
        super().__init__(parts, device)
        self.device = device
        self.capture = device.type == "cuda" if capture is None else capture
        self.lr = torch.zeros((), device=device)
        self.ema_weight = torch.zeros((), device=device)
        self.inputs: tuple[torch.Tensor, torch.Tensor] | None = None  # the static batch
        self.graph: torch.cuda.CUDAGraph | None = None
        self.uncaptured_steps = 0

    def __call__(self, x: torch.Tensor, y: torch.Tensor, step: int) -> None:
        p = self.parts
        self.lr.fill_(p.schedule(step))
        if p.ema is not None:
            self.ema_weight.fill_(1.0 - p.ema.decay_at(step))
        self._load(x, y)
        if self.graph is not None:
            self.graph.replay()
            return
        # (Re)installed until the capture: a restored checkpoint brings back a float LR.
        for group in p.optimizer.param_groups:
            group["lr"] = self.lr
        if self.capture and self.uncaptured_steps >= WARMUP_STEPS:
            self.graph = self._record()
            self.graph.replay()  # recording ran nothing: this step happens now
            return
        with self._side_stream():
            p.optimizer.zero_grad(set_to_none=True)
            self._body()
        self.uncaptured_steps += 1

    def _load(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Copy the batch into the static buffers the graph reads."""
        if self.inputs is None:
            self.inputs = tuple(torch.empty_like(t, device=self.device) for t in (x, y))
        for buffer, t in zip(self.inputs, (x, y)):
            if buffer.shape != t.shape or buffer.dtype != t.dtype:
                raise RuntimeError(
                    f"cuda_graphs: every training batch must have one shape and dtype (the "
                    f"graph's static input is {tuple(buffer.shape)} {buffer.dtype}, got "
                    f"{tuple(t.shape)} {t.dtype})"
                )
            buffer.copy_(t, non_blocking=True)

    def _body(self) -> None:
        p = self.parts
        x, y = p.prepare(*self.inputs)
        # The autocast cache would hold casts made during recording, invalid on replay.
        with p.autocast(cache_enabled=False):
            loss = p.criterion(p.model(x), y)
        loss.backward()  # gradients are written, not accumulated: set to None before
        p.optimizer.step()
        if p.ema is not None:
            p.ema.blend(p.core, self.ema_weight)
        self.loss_sum += loss.detach()

    def _record(self) -> torch.cuda.CUDAGraph:
        # Gradients set to None: backward allocates them from the graph's memory pool, and
        # every replay writes them afresh (the PyTorch docs' whole-network capture).
        self.parts.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        # thread_local: the DataLoader's pin-memory thread keeps allocating pinned buffers
        # while this thread records (the default "global" mode would forbid that)
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self._body()
        return graph

    @contextlib.contextmanager
    def _side_stream(self):
        """Uncaptured CUDA steps before a capture run on a side stream (as torch's docs
        require, so that lazily created state is not tied to the capture's stream)."""
        if not (self.capture and self.device.type == "cuda"):
            yield
            return
        current = torch.cuda.current_stream(self.device)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(current)
        with torch.cuda.stream(side):
            yield
        current.wait_stream(side)
