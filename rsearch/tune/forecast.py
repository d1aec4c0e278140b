"""What a search will cost before it runs: training GPU-hours per regime and per scheduler rung,
and the wall time on a cluster of N GPUs. `rsearch tune --dry-run` prints it.

Per trial: GPU-seconds = images trained x (1 / img/s per GPU), where img/s comes from a fit of
training throughput against forward FLOPs per image (so 3 x forward FLOPs per image, forward
plus backward, at a sustained FLOP rate). The fit is measured here when the trials' GPUs are
present (a few timed training steps of the smallest, median and largest architecture), else it
is the declared fit below or --throughput, and the forecast says so ("estimate from FLOPs").
CPU trials get a forecast from --throughput only: there is no declared CPU fit, and timing CPU
training steps on a shared machine took minutes (1m43s for smoke.yaml's three tiny models).

Assumptions, printed with the figures:
- a trial of W workers trains at W x the fitted per-GPU rate (linear data-parallel scaling);
- successive halving lets ceil(N / rf^k) of N trials past the k-th rung (asynchronous
  promotion and Pareto ASHA's front let a few more through), and survivors cost the mean of
  the regime's trained trials;
- over-budget configurations train nothing; without --measure-latency the latency budget is
  not applied, so the figures are an upper bound;
- wall time: regimes one after another; in a regime, trials start in grid order on the first
  free slot (list scheduling), a slot being one trial's GPUs, each trial taking its expected
  epochs.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import time
from dataclasses import dataclass

import numpy as np

from rsearch import metrics as M
from rsearch.architecture import RESNETRS
from rsearch.errors import UserError
from rsearch.models import build, network_config
from rsearch.recipe import Recipe

MEASURED = "measured"
FLOPS_ESTIMATE = "flops-estimate"

# Training throughput measured on one H100 (DESIGN.md section 3: bf16 autocast, channels_last,
# synthetic tensors, eager, batch 256, RS-200 batch 128; timm 1.0.29, torch 2.11), with each
# model's forward GFLOPs per image as rsearch.cost.model_cost counts the same ResNet-RS
# (1000 classes). Effective training rate 61-78 TFLOP/s (3 x FLOPs x img/s). The H200 has the
# H100's compute (more memory bandwidth): the fit is used for both. torch.compile made RS-50
# 1.76x faster (7,871 img/s) - measured on one model only, so not applied: conservative.
DECLARED_POINTS = (
    ("resnetrs-50 @160", 4.557259, 4479.0),
    ("resnetrs-101 @192", 12.024316, 2165.0),
    ("resnetrs-200 @256", 40.186774, 624.0),
)
IMAGENET_TRAIN = 1_281_167  # ImageNet-1k's train set: the imagefolder layout's usual data
FASHION_MNIST_TRAIN = 60_000
SAMPLE_STEPS, SAMPLE_WARMUP = 5, 3  # timed / untimed training steps per sampled architecture


@dataclass(frozen=True)
class Fit:
    """img/s per GPU = k x (forward GFLOPs per image) ** exponent (exponent -1: a constant
    FLOP rate)."""

    k: float
    exponent: float
    source: str  # MEASURED | FLOPS_ESTIMATE
    basis: str  # where the fit comes from, in words

    def images_per_second(self, flops: float) -> float:
        return self.k * (flops / 1e9) ** self.exponent

    def to_dict(self) -> dict:
        return {
            "img_per_s": f"{self.k:.6g} x GFLOPs^{self.exponent:.4g}",
            "k": self.k,
            "exponent": self.exponent,
            "basis": self.basis,
        }


def fit_points(points, source: str, basis: str) -> Fit:
    """A power law through (label, forward GFLOPs, img/s) points, least squares in log-log;
    one distinct FLOP count fixes a constant FLOP rate instead."""
    gflops = np.array([p[1] for p in points], dtype=float)
    rate = np.array([p[2] for p in points], dtype=float)
    if np.ptp(np.log(gflops)) < 1e-6:
        return Fit(float(np.mean(rate * gflops)), -1.0, source, basis)
    slope, intercept = np.polyfit(np.log(gflops), np.log(rate), 1)
    return Fit(float(np.exp(intercept)), float(slope), source, basis)


DECLARED_FIT = fit_points(
    DECLARED_POINTS,
    FLOPS_ESTIMATE,
    "H100 eager bf16 training steps, DESIGN.md section 3: "
    + ", ".join(f"{name} {ips:,.0f} img/s" for name, _, ips in DECLARED_POINTS),
)


def throughput_fit(tflops: float) -> Fit:
    """--throughput: a sustained training rate in TFLOP/s per GPU (3 x forward FLOPs x img/s)."""
    if not tflops > 0:
        raise UserError(f"--throughput: expected a number > 0, got {tflops!r}")
    return Fit(tflops * 1e3 / 3, -1.0, FLOPS_ESTIMATE, f"--throughput {tflops:g} TFLOP/s per GPU")


# --- FLOPs without building the large models ------------------------------------------------


def count_costs(archs, num_classes: int, in_chans: int) -> dict:
    """{arch key: {params, flops, columns}} of every architecture, as rsearch.cost.model_cost
    counts them. A ResNet-RS's cost is linear in its blocks per stage (every block of a stage
    after the first is the same), so one two-blocks-per-stage model per width, built once on the
    meta device and run once per resolution, counts every depth: model_cost of all 175
    architectures of the paper's grid takes minutes (RS-400 at 448 px alone 1.3 s), this 2 s."""
    from rsearch.cost import model_cost  # torch, only where costs are counted

    out, per_width = {}, {}
    for arch in archs:
        cfg = network_config(arch, num_classes=num_classes, in_chans=in_chans)
        if arch.family != RESNETRS:  # EfficientNet presets: few, counted whole
            counted = model_cost(cfg, arch.resolution)
        else:
            two = dataclasses.replace(cfg, layers=(2, 2, 2, 2), name="")
            if two not in per_width:
                per_width[two] = _TwoBlockModel(two)
            counted = per_width[two].cost(cfg.layers, arch.resolution)
        out[arch.key] = {
            **arch.columns(),
            M.MODEL: cfg.name,
            M.PARAMS: int(counted[M.PARAMS]),
            M.FLOPS: int(counted[M.FLOPS]),
        }
    return out


class _TwoBlockModel:
    """A ResNet-RS with two blocks per stage on the meta device: its params and FLOPs, and those
    of each stage's second block (the block every further one of that stage repeats)."""

    BATCH = 2  # as model_cost: training-mode BN needs more than one value per channel

    def __init__(self, cfg):
        self.cfg, self.model = cfg, build(cfg, "meta").train()
        self.stages = [getattr(self.model, f"layer{s + 1}") for s in range(4)]
        self.params = sum(p.numel() for p in self.model.parameters())
        self.block_params = [sum(p.numel() for p in st[1].parameters()) for st in self.stages]
        self.flops: dict[int, tuple[int, list[int]]] = {}  # resolution -> (total, per block)

    def cost(self, layers, resolution: int) -> dict:
        if resolution not in self.flops:
            self.flops[resolution] = self._count(resolution)
        total, blocks = self.flops[resolution]
        extra = [n - 2 for n in layers]  # blocks beyond (or short of) the counted two
        return {
            M.PARAMS: self.params + sum(e * b for e, b in zip(extra, self.block_params)),
            M.FLOPS: total + sum(e * b for e, b in zip(extra, blocks)),
        }

    def _count(self, resolution: int) -> tuple[int, list[int]]:
        import torch  # torch, only where costs are counted (this module is on the CLI's path)
        from torch.utils.flop_counter import FlopCounterMode

        from rsearch.cost import check_resolution

        size = check_resolution(resolution)
        x = torch.empty(self.BATCH, self.cfg.in_chans, size, size, device="meta")
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            self.model(x)
        # per-module counts are keyed by the module's path under the root's class name
        per_module = counter.get_flop_counts()
        root = type(self.model).__name__
        blocks = [sum(per_module[f"{root}.layer{s + 1}.1"].values()) for s in range(4)]
        return counter.get_total_flops() // self.BATCH, [b // self.BATCH for b in blocks]


# --- the scheduler's rungs ------------------------------------------------------------------


def rung_epochs(sched, regime: int) -> list[int]:
    """The epochs at which the regime's scheduler compares trials, the regime's end last."""
    from rsearch.tune.pareto_asha import rung_epochs as pareto_rungs  # Ray, for a pareto_asha space

    if sched.kind == "pareto_asha":
        rungs = pareto_rungs(regime, sched.grace_fraction, sched.reduction_factor)
    elif sched.kind == "asha":
        rungs = _asha_rungs(min(int(sched.grace_period), regime), regime, sched.reduction_factor)
    else:
        rungs = []
    return [*(r for r in rungs if r < regime), regime]  # a rung rounded up to the end is the end


def _asha_rungs(grace: int, max_t: int, rf: float) -> list[int]:
    """Ray's ASHAScheduler milestones (one bracket): grace x rf^k for k < log(max_t/grace)/log(rf)
    + 1; a trial is judged at its first report at or past one, so at ceil(milestone) epochs."""
    count = int(math.log(max_t / grace) / math.log(rf) + 1)
    return sorted({math.ceil(grace * rf**k) for k in range(count) if grace * rf**k < max_t})


def rung_trials(trials: int, rungs: int, rf: float | None) -> list[int]:
    """Trials that reach each of `rungs` rungs (the last: the regime's end): successive halving
    keeps 1/rf past every rung but the last."""
    if rf is None:
        return [trials] * rungs
    return [math.ceil(trials / rf**k) if trials else 0 for k in range(rungs)]


# --- the forecast ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """What the forecast needs of the space besides its architectures."""

    regimes: list[int]
    scheduler: object  # rsearch.space.schema.SchedulerSpec
    workers: int
    gpus_per_worker: float
    batch_size: int  # global batch of a trial
    train_images: int  # images a trial trains on per epoch (before the batch rounding)
    max_concurrent: int | None

    @property
    def gpus_per_trial(self) -> float:
        # a CPU space's "device" is one worker (its cores): the same arithmetic, other unit
        return self.workers * (self.gpus_per_worker or 1)

    @property
    def epoch_images(self) -> int:
        return max(1, self.train_images // self.batch_size) * self.batch_size


def trial_slots(gpus: int, setting: Setting) -> int:
    """Trials that run at once on `gpus` GPUs (at most search.max_concurrent); a cluster that
    cannot hold one trial is an error, as Tune would wait for it forever."""
    if gpus < setting.gpus_per_trial:
        raise UserError(
            f"--gpus: expected at least one trial's {setting.gpus_per_trial:g} GPUs "
            f"(resources: {setting.workers} workers x {setting.gpus_per_worker:g} GPU), got {gpus}"
        )
    slots = int(gpus // setting.gpus_per_trial)
    return min(slots, setting.max_concurrent) if setting.max_concurrent else slots


def forecast(flops: list[float], setting: Setting, fit: Fit, gpus: int) -> dict:
    """The forecast object of `rsearch tune --dry-run --json`: `flops` is the forward FLOPs per
    image of every trial the search trains in a regime (over-budget ones left out), in the
    order Tune starts them."""
    slots = trial_slots(gpus, setting)
    # one trial's epoch: GPU-seconds (all its GPUs) and wall seconds
    epoch_gpu_s = [setting.epoch_images / fit.images_per_second(f) for f in flops]
    regimes = [_regime(r, epoch_gpu_s, setting, slots) for r in setting.regimes]
    return {
        "source": fit.source,
        "fit": fit.to_dict(),
        "images_per_epoch": setting.epoch_images,
        "gpus": gpus,
        "gpus_per_trial": setting.gpus_per_trial,
        "concurrent_trials": slots,
        "regimes": regimes,
        "gpu_hours": sum(r["gpu_hours"] for r in regimes),
        "wall_hours": sum(r["wall_hours"] for r in regimes),
    }


def _regime(regime: int, epoch_gpu_s: list[float], setting: Setting, slots: int) -> dict:
    sched = setting.scheduler
    epochs = rung_epochs(sched, regime)
    rf = float(sched.reduction_factor) if len(epochs) > 1 else None
    trials = rung_trials(len(epoch_gpu_s), len(epochs), rf)
    mean_epoch = float(np.mean(epoch_gpu_s)) if epoch_gpu_s else 0.0
    rungs, previous = [], 0
    for epoch, n in zip(epochs, trials):
        trained = epoch - previous  # epochs each of the n trials trains between two rungs
        rungs.append(
            {
                "epoch": epoch,
                "trials": n,
                "epochs": trained,
                "gpu_hours": n * trained * mean_epoch / 3600,
            }
        )
        previous = epoch
    # a trial's expected epochs: every rung segment, weighted by the chance of reaching it
    expected = sum(r["trials"] * r["epochs"] for r in rungs) / max(1, len(epoch_gpu_s))
    wall_s = [expected * s / setting.gpus_per_trial for s in epoch_gpu_s]
    return {
        "epochs": regime,
        "trials": len(epoch_gpu_s),
        "rungs": rungs,
        "gpu_hours": sum(r["gpu_hours"] for r in rungs),
        "wall_hours": list_schedule(wall_s, slots) / 3600,
    }


def list_schedule(durations: list[float], slots: int) -> float:
    """Makespan of `durations` started in order, each on the first slot to come free."""
    free = [0.0] * max(1, min(slots, len(durations)))
    for d in durations:
        heapq.heapreplace(free, free[0] + d)
    return max(free) if durations else 0.0


def _hours(h: float) -> str:
    """Hours to read: thousands separated when large, three significant digits when small."""
    return f"{h:,.0f}" if h >= 100 else f"{h:.3g}"


def describe(fc: dict, upper_bound: bool) -> list[str]:
    """The dry run's text lines of a forecast."""
    fit = fc["fit"]
    if fc["source"] == FLOPS_ESTIMATE:
        head = f"forecast (estimate from FLOPs: img/s per GPU = {fit['img_per_s']}; {fit['basis']})"
    else:
        head = f"forecast (measured here: img/s per GPU = {fit['img_per_s']}; {fit['basis']})"
    lines = [
        head,
        f"  {fc['images_per_epoch']:,} images per epoch; {fc['gpus']} GPUs, "
        f"{fc['gpus_per_trial']:g} per trial, trials at once: {fc['concurrent_trials']}",
    ]
    for r in fc["regimes"]:
        rungs = ", ".join(
            f"{x['trials']} to epoch {x['epoch']} (+{x['epochs']}: {_hours(x['gpu_hours'])} GPU-h)"
            for x in r["rungs"]
        )
        gpu_h, wall_h = _hours(r["gpu_hours"]), _hours(r["wall_hours"])
        lines.append(
            f"  {r['epochs']} epochs: {r['trials']} trials trained, {gpu_h} GPU-h, "
            f"wall {wall_h} h; rungs: {rungs}"
        )
    bound = " (upper bound: latency budget not applied; --measure-latency)" if upper_bound else ""
    lines.append(
        f"  total {_hours(fc['gpu_hours'])} GPU-hours, {_hours(fc['wall_hours'])} h wall on "
        f"{fc['gpus']} GPUs{bound}"
    )
    return lines


# --- what the forecast reads of the space, and the measured fit -----------------------------


def setting_of(space, train_images: int) -> Setting:
    from rsearch.tune.plan import first_value  # Ray (the plan's Tune domains)

    batch = space.recipe.get("batch_size")
    res = space.resources
    return Setting(
        regimes=list(space.epochs),
        scheduler=space.search.scheduler,
        workers=int(res.workers),
        gpus_per_worker=float(res.gpus_per_worker),
        batch_size=int(Recipe().batch_size if batch is None else first_value(batch)),
        train_images=train_images,
        max_concurrent=space.search.max_concurrent,
    )


def train_images(space, override: int | None) -> tuple[int, str]:
    """(images a trial trains on per epoch before batching, where that figure comes from): the
    training split less the minival split. Counted from the data where it is reachable from
    here (file names or labels only); --train-size, else ImageNet-1k's size, where it is not."""
    from rsearch.data.config import DataConfig  # the data package loads torch

    data = dict(space.data)
    fraction = float(data.get("minival_fraction", DataConfig.minival_fraction))
    if override is not None:
        total, note = override, "--train-size"
    elif data.get("source", "synthetic") == "synthetic":
        total, note = int(data.get("train_size", DataConfig.train_size)), "data.train_size"
    elif data.get("source") == "fashion-mnist":
        total, note = FASHION_MNIST_TRAIN, "Fashion-MNIST's train set"
    else:
        total, note = _listed_train_size(data)
    return total - round(total * fraction), note


def _listed_train_size(data: dict) -> tuple[int, str]:
    from rsearch.data.config import DataConfig  # the data package loads torch
    from rsearch.data.load import MIN_IMAGE_SIZE, open_sources

    try:
        train, _ = open_sources(DataConfig(**data), MIN_IMAGE_SIZE)  # lists files / labels only
        return len(train.labels), "counted in the data"
    except (UserError, OSError):
        return (
            IMAGENET_TRAIN,
            "ImageNet-1k's train set assumed: the data is not here (--train-size)",
        )


def sample(archs, costs: dict) -> list:
    """The smallest, median and largest architecture by FLOPs (distinct ones)."""
    ranked = sorted(archs, key=lambda a: costs[a.key][M.FLOPS])
    picks = {0, len(ranked) // 2, len(ranked) - 1} if ranked else set()
    return [ranked[i] for i in sorted(picks)]


def measure_fit(archs, costs: dict, setting: Setting, ctx, device: str) -> Fit:
    """A fit of img/s per GPU against FLOPs from a few timed training steps of the sampled
    architectures, at their resolution and a worker's batch, on `device`."""
    batch = max(1, setting.batch_size // setting.workers)
    points, names = [], []
    for arch in sample(archs, costs):
        rate, used = _step_rate(arch, ctx, batch, device)
        points.append((arch.key, costs[arch.key][M.FLOPS] / 1e9, rate))
        names.append(
            f"{costs[arch.key][M.MODEL]} @{arch.resolution} {rate:,.0f} img/s (batch {used})"
        )
    return fit_points(points, MEASURED, f"{device} training steps: " + ", ".join(names))


def _step_rate(arch, ctx, batch: int, device: str) -> tuple[float, int]:
    """(img/s, batch used) of SGD training steps. The batch is cut to what rsearch.memory's
    estimate says fits in 80% of the device's free memory (a worker's 512 images of RS-400 at
    448 px need terabytes), then halved on an out-of-memory error: the rate at a smaller batch
    is a slight underestimate."""
    import torch  # torch, only where steps are timed

    from rsearch.memory import available_bytes, training_estimate

    free = available_bytes(device)
    if free is not None:
        cfg = network_config(arch, num_classes=ctx.num_classes, in_chans=ctx.in_chans)
        estimate = training_estimate(cfg, arch.resolution, batch, bf16=device == "cuda")
        batch = max(1, min(batch, estimate.max_batch(int(free * 0.8))))
    while True:
        try:
            return _timed_steps(arch, ctx, batch, device), batch
        except torch.cuda.OutOfMemoryError:
            if batch == 1:
                raise
            batch //= 2
            torch.cuda.empty_cache()


def _timed_steps(arch, ctx, batch: int, device: str) -> float:
    import torch  # torch, only where steps are timed
    import torch.nn.functional as F

    cfg = network_config(arch, num_classes=ctx.num_classes, in_chans=ctx.in_chans)
    cuda = device == "cuda"
    # the trial's own step on a GPU: bf16 autocast, channels_last (rsearch.train.loop)
    fmt = torch.channels_last if cuda else torch.contiguous_format
    model = build(cfg, device).train().to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    x = torch.randn(batch, ctx.in_chans, arch.resolution, arch.resolution, device=device)
    x = x.contiguous(memory_format=fmt)
    y = torch.randint(0, ctx.num_classes, (batch,), device=device)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(SAMPLE_WARMUP):
        step()
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(SAMPLE_STEPS):
        step()
    if cuda:
        torch.cuda.synchronize()
    return SAMPLE_STEPS * batch / (time.perf_counter() - start)
