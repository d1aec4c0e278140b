"""Static cost of a model: parameters, FLOPs and training activation memory.

Everything here runs on the meta device: no weights are allocated and no arithmetic
is done, so ResNet-RS-420 at 320 px is counted in a couple of seconds on a laptop.

- params: every parameter of the model (BN running statistics are buffers, not counted).
- flops: 2 x multiply-accumulates of one forward pass of one image, as counted by
  torch's own `torch.utils.flop_counter.FlopCounterMode` (convolutions and matrix
  products; BN, activations, pooling and the SE gate's element-wise ops are not
  counted - the same convention as the paper and timm).
- activation_bytes: bytes autograd keeps for the backward pass after one training
  forward, per image, in float32 (distinct storages of saved tensors, weights
  excluded).  That is the activation part of training memory; it scales with batch
  size and about 0.5x in bf16 autocast.
- inference_activation_bytes: the most bytes of activations alive at once during one
  image's inference forward (eval mode, inference_mode, float32): what measuring latency
  needs beside the weights and the input (rsearch.memory).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from rsearch.bounds import FIELDS, FieldError
from rsearch.models import ResNetConfig, build

if TYPE_CHECKING:  # torchvision: only for the annotation
    from rsearch.models.efficientnet import EfficientNetConfig


def check_resolution(resolution) -> int:
    """`resolution` (an int, or its text) as an int within rsearch.bounds' rule for it; else a
    FieldError naming the field `resolution` (the caller's edge names its flag or key)."""
    value = resolution
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            value = None
    if not FIELDS["resolution"].accepts(value):
        raise FieldError("resolution", FIELDS["resolution"].expected(), resolution)
    return int(value)


def model_cost(cfg: ResNetConfig | EfficientNetConfig, resolution: int) -> dict:
    """{"params", "flops", "activation_bytes"} of `cfg` at `resolution` x `resolution`."""
    resolution = check_resolution(resolution)
    model = build(cfg, "meta").train()
    params = sum(p.numel() for p in model.parameters())
    weights = {t.untyped_storage()._cdata for t in (*model.parameters(), *model.buffers())}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage._cdata not in weights:
            saved[storage._cdata] = storage.nbytes()
        return t

    # Two images, halved: training-mode BN needs more than one value per channel, and at
    # the 32 px minimum the last stage is 1 x 1.  Conv/linear FLOPs are exactly linear in
    # the batch; saved activations are too, up to BN's per-channel statistics (bytes).
    batch = 2
    x = torch.empty(batch, cfg.in_chans, resolution, resolution, device="meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return {
        "params": int(params),
        "flops": int(counter.get_total_flops()) // batch,
        "activation_bytes": int(sum(saved.values())) // batch,
    }


class _LiveBytes(TorchDispatchMode):
    """The peak of the bytes held by tensors that ops create, while the mode is on.

    A storage counts from the op that allocates it until the last tensor on it is gone,
    as the allocator frees it on a real device; a view adds no bytes. Meta tensors are freed
    at the same points of the Python code as real ones, so the peak is the real run's."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self.tensors: dict[int, int] = {}  # storage -> tensors alive on it

    def _gone(self, storage: int, nbytes: int) -> None:
        self.tensors[storage] -= 1
        if not self.tensors[storage]:
            del self.tensors[storage]
            self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                storage = tensor.untyped_storage()
                key, nbytes = storage._cdata, storage.nbytes()
                if key not in self.tensors:
                    self.tensors[key] = 0
                    self.live += nbytes
                    self.peak = max(self.peak, self.live)
                self.tensors[key] += 1
                weakref.finalize(tensor, self._gone, key, nbytes)
        return out


def inference_activation_bytes(cfg: ResNetConfig, resolution: int) -> int:
    """The peak bytes of live activations during one image's float32 inference forward
    (weights and the input excluded; see the module docstring). Counted on the meta device."""
    resolution = check_resolution(resolution)
    model = build(cfg, "meta").eval()
    x = torch.empty(1, cfg.in_chans, resolution, resolution, device="meta")
    live = _LiveBytes()
    with torch.inference_mode(), live:
        model(x)
    return live.peak
