"""Optimizer, per-iteration LR schedule and weight EMA of the training recipe."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from rsearch.recipe import Recipe


def make_optimizer(
    model: nn.Module, recipe: Recipe, *, graph_safe: bool = False
) -> torch.optim.Optimizer:
    """The recipe's optimizer; no weight decay on BN parameters and biases (the 1-d tensors).

    `graph_safe`: an update a CUDA graph can capture, reading its LR from a device tensor
    (train/step.py GraphStep installs it): SGD as torch's fused kernel, one launch for all
    tensors; RMSprop as foreach with `capturable` (its step count stays on the device).

    SGD with (Nesterov) momentum for ResNet-RS. RMSProp for EfficientNet, with the official
    code's decay 0.9 (torch's alpha) and epsilon 1e-3 (utils.build_optimizer); torch adds
    epsilon outside the square root where TF adds it inside, and starts the mean square at
    0 where TF starts it at 1 -- the warm-up covers the early steps this changes.
    """
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": recipe.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if recipe.optimizer == "rmsprop":
        capturable = graph_safe and _on_cuda(model)  # torch supports it on CUDA only
        return torch.optim.RMSprop(
            groups,
            lr=recipe.peak_lr(),
            alpha=0.9,
            eps=1e-3,
            momentum=recipe.momentum,
            **({"foreach": True, "capturable": capturable} if graph_safe else {}),
        )
    return torch.optim.SGD(
        groups,
        lr=recipe.peak_lr(),
        momentum=recipe.momentum,
        nesterov=recipe.nesterov and recipe.momentum > 0,
        **({"fused": True} if graph_safe else {}),
    )


def _on_cuda(model: nn.Module) -> bool:
    return any(p.is_cuda for p in model.parameters())


class LRSchedule:
    """Linear warmup, then cosine decay to 0, the baseline's step decay or EfficientNet's
    staircase exponential decay; stepped per iteration.

    Warmup is the recipe's `warmup_epochs`, but at most a fifth of the run so that short
    regimes (a few epochs) still spend most of their steps at a useful LR.
    """

    def __init__(self, recipe: Recipe, steps_per_epoch: int, epochs: int):
        self.peak = recipe.peak_lr()
        self.kind = recipe.schedule
        self.total = max(1, steps_per_epoch * epochs)
        self.warmup = int(min(recipe.warmup_epochs * steps_per_epoch, 0.2 * self.total))
        self.decay_rate = recipe.lr_decay_rate
        self.decay_steps = recipe.lr_decay_epochs * steps_per_epoch

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return self.peak * (step + 1) / self.warmup
        if self.kind == "exponential":
            # tf.train.exponential_decay(staircase=True), counted from the end of warm-up so
            # that the LR reaches the peak (the official code counts from step 0 instead)
            decays = math.floor((step - self.warmup) / self.decay_steps)
            return self.peak * self.decay_rate**decays
        progress = (step - self.warmup) / max(1, self.total - self.warmup)
        if self.kind == "cosine":
            return 0.5 * self.peak * (1 + math.cos(math.pi * min(progress, 1.0)))
        return self.peak * 0.1 ** sum(progress >= m for m in (0.3, 0.6, 0.9))


class WeightEMA:
    """Exponential moving average of parameters and buffers; evaluation uses the EMA copy.

    The decay warms up as min(decay, (1 + t) / (10 + t)) like the official code, so short
    runs are not dominated by the random initialisation.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        self.blend(model, 1.0 - self.decay_at(step))

    @torch.no_grad()
    def blend(self, model: nn.Module, weight: float | torch.Tensor) -> None:
        """EMA += weight x (model - EMA).  A tensor `weight` is read on the device when the
        kernel runs (what a CUDA graph needs: a float would be frozen into it)."""
        ema_float, src_float, ema_other, src_other = [], [], [], []
        for target, value in zip(self.module.state_dict().values(), model.state_dict().values()):
            floating = target.dtype.is_floating_point
            (ema_float if floating else ema_other).append(target)
            (src_float if floating else src_other).append(value)
        if ema_other:
            torch._foreach_copy_(ema_other, src_other)  # e.g. BN's num_batches_tracked
        if isinstance(weight, torch.Tensor):
            # the tensor-weight overload (no .item()); on CUDA it runs one lerp per tensor,
            # which costs nothing inside a replayed graph
            weight = [weight] * len(ema_float)
        torch._foreach_lerp_(ema_float, src_float, weight)  # a float weight: one fused kernel
