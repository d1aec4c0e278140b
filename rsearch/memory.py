"""Will it fit? Memory a training run or a latency measurement needs, checked before allocating.

The estimate is counted on the meta device (rsearch.cost.static: nothing is allocated)
and compared with what the device has free now, so a configuration that cannot fit is
refused in seconds with a one-line error, instead of a MemoryError traceback or the
kernel's OOM killer after minutes of work:

- training, per worker: the activations autograd keeps for the backward pass x batch
  (x 0.5 under bf16 autocast), plus the weights, their gradients, the SGD momentum and
  the EMA copy (4 x the float32 parameters; + 1 copy for DDP's gradient buckets, + 0.5
  for autocast's bf16 weight copies);
- inference (latency): the most activations alive at once x batch, plus the input batch,
  the weights and buffers.

It errs low (transient workspaces, allocator overhead and the eval pass are left out), so
it refuses only what cannot fit; one it admits may still be close. On CPU it came out 1-20%
under the peak RSS of the real run (tests/test_cost.py measures one of each kind).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from rsearch.cost.static import inference_activation_bytes, model_cost
from rsearch.errors import UserError
from rsearch.models import build

FLOAT32 = 4  # bytes


@dataclass(frozen=True)
class Estimate:
    """Bytes one process needs: `fixed` whatever the batch, plus `per_image` x `batch_size`."""

    fixed: int  # weights (and gradients, optimizer state)
    per_image: int  # activations (and the input) of one image
    batch_size: int
    fixed_is: str = "weights"  # what `fixed` holds, for the message

    @property
    def total(self) -> int:
        return self.fixed + self.per_image * self.batch_size

    def max_batch(self, available: int) -> int:
        """The largest batch that fits in `available` bytes (0: not even one image)."""
        return max(0, (available - self.fixed) // max(1, self.per_image))


def training_estimate(
    cfg,
    resolution: int,
    batch_size: int,
    *,
    momentum: bool = True,
    ema: bool = True,
    bf16: bool = False,
    ddp: bool = False,
) -> Estimate:
    """One training worker of `cfg` (a ResNetConfig) at `resolution` px with `batch_size` images
    per step. bf16: autocast on (the trainer's default on GPU); ddp: more than one worker."""
    cost = model_cost(cfg, resolution)
    # weights + gradients (+ momentum) (+ EMA copy) (+ DDP buckets) (+ bf16 weight copies)
    copies = 2 + momentum + ema + ddp + (0.5 if bf16 else 0)
    activations = cost["activation_bytes"] // 2 if bf16 else cost["activation_bytes"]
    return Estimate(
        fixed=int(cost["params"] * FLOAT32 * copies),
        per_image=activations,
        batch_size=batch_size,
        fixed_is="weights, gradients and optimizer state",
    )


def inference_estimate(cfg, resolution: int, batch_size: int, *, bf16: bool = False) -> Estimate:
    """A latency measurement of `cfg` at `resolution` px on batches of `batch_size` images."""
    model = build(cfg, "meta")
    weights = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    activations = inference_activation_bytes(cfg, resolution)
    image = cfg.in_chans * resolution * resolution * FLOAT32
    return Estimate(
        fixed=int(weights * (1.5 if bf16 else 1)),
        per_image=(activations // 2 if bf16 else activations) + image,
        batch_size=batch_size,
    )


def available_bytes(device: str = "cpu") -> int | None:
    """Bytes that can be allocated on `device` now; None where that cannot be told.

    "cuda" / "cuda:N": the GPU's free memory. "cpu": the kernel's MemAvailable (free plus
    reclaimable cache), within this container's cgroup limit, where the OOM killer acts
    whatever the host has free, and within this process's address-space limit (ulimit -v)."""
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            return None
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    found = [
        value
        for value in (_meminfo_available(), _cgroup_available(), _address_space_left())
        if value is not None
    ]
    return min(found) if found else None


def _address_space_left() -> int | None:
    try:
        import resource  # Unix only: elsewhere there is no address-space limit to read

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/statm") as f:
            mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError):
        return None
    return max(0, limit - mapped)


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:  # not Linux: free pages only (an underestimate: caches are not counted)
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


# (limit, usage, memory.stat key of reclaimable file cache) for cgroup v2, then v1
_CGROUPS = (
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current", "inactive_file"),
    (
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        "total_inactive_file",
    ),
)


def _cgroup_available() -> int | None:
    for limit_file, usage_file, cache_key in _CGROUPS:
        try:
            with open(limit_file) as f:
                limit = f.read().strip()
            with open(usage_file) as f:
                usage = int(f.read())
        except (OSError, ValueError):
            continue
        if not limit.isdigit():
            return None  # "max": no limit
        stat_file = os.path.join(os.path.dirname(usage_file), "memory.stat")
        return (
            int(limit) - usage + _stat(stat_file, cache_key)
        )  # inactive file cache is reclaimed first
    return None


def _stat(path: str, key: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


def human_size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # unreachable


def check_fits(
    estimate: Estimate,
    device: str,
    *,
    doing: str,
    batch_flag: str,
    resolution_flag: str = "--resolution",
    processes: int = 1,
) -> None:
    """A UserError when `processes` x `estimate` exceeds what `device` has free, naming the
    need, what is available and what to lower. `doing` says what needs it, e.g. "training
    resnetrs-50 at 224 px in batches of 256"; the batch `batch_flag` sets is split over the
    `processes` (data-parallel workers on this machine). Nothing is checked where the free
    memory cannot be told."""
    available = available_bytes(device)
    if available is None:
        return
    needed = estimate.total * processes
    if needed <= available:
        return
    share = available // processes
    largest = estimate.max_batch(share) * processes
    lower = (
        f"a batch of at most {largest} at this resolution, or a lower {resolution_flag}"
        if largest
        else f"a lower {resolution_flag} or a smaller model"
    )
    each = "" if processes == 1 else f" in each of {processes} processes"
    where = device if device.startswith("cuda") else "this machine"
    parts = (
        f"{human_size(estimate.per_image)} per image x {estimate.batch_size} "
        f"+ {human_size(estimate.fixed)} of {estimate.fixed_is}{each}"
    )
    raise UserError(
        f"{batch_flag}: {doing} needs about {human_size(needed)} of memory ({parts}), "
        f"more than the {human_size(available)} available on {where}; expected {lower}"
    )


def check_training(
    cfg,
    num_classes: int,
    in_chans: int,
    *,
    batch_flag: str = "--batch-size",
    resolution_flag: str = "--resolution",
) -> None:
    """A UserError when one training step of `cfg` (a TrainConfig) needs more memory than this
    machine (or its GPU) has free, counting every data-parallel worker that shares it."""
    gpu = cfg.device.startswith("cuda")
    if gpu and cfg.workers > 1:
        # Ray Train's workers each take a GPU; asking for free GPU memory here would hold one
        return
    estimate = training_estimate(
        cfg.model(num_classes, in_chans),
        cfg.resolution,
        cfg.per_worker_batch,
        momentum=cfg.recipe.momentum > 0,
        ema=cfg.recipe.ema_decay > 0,
        bf16=gpu and cfg.recipe.bf16,
        ddp=cfg.workers > 1,
    )
    check_fits(
        estimate,
        cfg.device,
        batch_flag=batch_flag,
        resolution_flag=resolution_flag,
        processes=1 if gpu else cfg.workers,
        doing=f"training depth {cfg.depth} width {cfg.width:g} at {cfg.resolution} px in batches "
        f"of {cfg.recipe.batch_size}" + (f" over {cfg.workers} workers" if cfg.workers > 1 else ""),
    )
