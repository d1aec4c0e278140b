"""Batch norm over the global batch of all data-parallel workers, on any device.

torch's SyncBatchNorm runs on GPUs only (DDP refuses it on CPU modules). With N workers of
batch B/N, plain BN would normalise with per-worker statistics and the data-parallel run
would drift from the single-worker one.  This module all-reduces the per-channel sums with
the autograd-aware `torch.distributed.nn.all_reduce`, so the backward pass sums the
statistics' gradients across workers too: the exact gradients of BN over the global batch.
On GPUs rsearch uses torch's fused SyncBatchNorm instead.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn as dist_nn
from torch import nn


class GlobalBatchNorm2d(nn.BatchNorm2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not dist.is_initialized() or dist.get_world_size() == 1:
            return super().forward(x)
        local_count = x.numel() // x.shape[1]
        sums = torch.cat(
            [x.sum((0, 2, 3)), (x * x).sum((0, 2, 3)), x.new_full((1,), float(local_count))]
        )
        sums = dist_nn.all_reduce(sums)  # differentiable: backward all-reduces the gradients
        c = x.shape[1]
        count = sums[-1]
        mean = sums[:c] / count
        var = (sums[c : 2 * c] / count - mean * mean).clamp_min(0)
        with torch.no_grad():
            self.num_batches_tracked += 1
            unbiased = var * (count / (count - 1))
            self.running_mean.lerp_(mean.detach(), self.momentum)
            self.running_var.lerp_(unbiased.detach(), self.momentum)
        scale = self.weight * torch.rsqrt(var + self.eps)
        shift = self.bias - mean * scale
        return x * scale.view(1, c, 1, 1) + shift.view(1, c, 1, 1)


def convert_global_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d with GlobalBatchNorm2d, keeping parameters and buffers."""
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, GlobalBatchNorm2d):
        converted = GlobalBatchNorm2d(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
            device=module.weight.device,
            dtype=module.weight.dtype,
        )
        converted.load_state_dict(module.state_dict())
        return converted
    for name, child in module.named_children():
        module.add_module(name, convert_global_batchnorm(child))
    return module
