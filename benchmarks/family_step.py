"""The paper's table 3 on this device: ResNet-RS against EfficientNet at similar accuracy, the
training-step time and the training memory of each pair, side by side in one run.

    pair                      paper (V100, batch 128)     TPU-v3   memory
    RS-350 @256 vs B6 @528    4.7 s vs 15.7 s  (3.3x)     2.7x     2.3x
    RS-420 @320 vs B7 @600    10.2 s vs 29.9 s (2.8x)     2.9x     1.8x

One training step = forward, cross-entropy loss, backward and an optimizer step (each
family's own: Nesterov SGD for ResNet-RS, RMSProp for EfficientNet), on fixed random
batches (this times the model, not the input pipeline), in bf16 autocast with channels_last
on CUDA. The batch is 128, or the largest power of two that fits both models of a pair
(the same for both: a ratio at equal batch). The two models of a pair alternate in
interleaved rounds (A B, B A, ...), each round a few steps synchronised at its ends, so
drift and other load hit both alike; the ratio is the median over rounds of
EfficientNet's step time over ResNet-RS's. Memory is torch.cuda.max_memory_allocated over
a step of each model alone (the weights, optimizer state, activations and workspace).

    python benchmarks/family_step.py --device cuda --json OUT/family_step.json
    python benchmarks/family_step.py --smoke     # CPU, tiny resolutions: checks the script runs

Needs torch and torchvision; never imports Ray.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks.common import check_device  # noqa: E402
from rsearch.architecture import EFFICIENTNET, Architecture  # noqa: E402
from rsearch.models import build, network_config  # noqa: E402
from rsearch.models.registry import EFFICIENTNET_PRESETS  # noqa: E402
from rsearch.recipe import preset  # noqa: E402
from rsearch.train.optim import make_optimizer  # noqa: E402

# (ResNet-RS depth, its resolution, EfficientNet preset, its resolution, the paper's ratios)
PAIRS = (
    (350, 256, "efficientnet-b6", 528, {"v100_speed": 3.3, "tpu_speed": 2.7, "memory": 2.3}),
    (420, 320, "efficientnet-b7", 600, {"v100_speed": 2.8, "tpu_speed": 2.9, "memory": 1.8}),
)
SMOKE_RESOLUTIONS = (32, 48)  # --smoke: every model at these sizes (the ResNet's, B's)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batch", type=int, default=128, help="the largest tried (default 128)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--steps", type=int, default=3, help="steps per model per round (default 3)")
    p.add_argument("--smoke", action="store_true", help="tiny resolutions and batch, on CPU")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    check_device(p, args)
    return args


class Stepper:
    """One model of a pair, ready to take training steps on a fixed batch."""

    def __init__(self, arch: Architecture, batch: int, device: torch.device, classes: int):
        name = "efficientnet" if arch.family == EFFICIENTNET else "rs"
        recipe = preset(name, depth=50 if arch.family == EFFICIENTNET else arch.depth)
        cfg = network_config(
            arch,
            num_classes=classes,
            in_chans=3,
            dropout=recipe.dropout,
            stochastic_depth=recipe.stochastic_depth,
        )
        self.name, self.arch, self.device = cfg.name, arch, device
        cuda = device.type == "cuda"
        self.model = build(cfg).to(device)
        self.format = torch.channels_last if cuda else torch.contiguous_format
        self.model = self.model.to(memory_format=self.format).train()
        self.optimizer = make_optimizer(self.model, recipe)
        shape = (batch, 3, arch.resolution, arch.resolution)
        self.x = torch.randn(shape, device=device).to(memory_format=self.format)
        self.y = torch.randint(0, classes, (batch,), device=device)
        self.autocast = torch.autocast(device.type, torch.bfloat16, enabled=cuda)

    def step(self) -> None:
        with self.autocast:
            loss = F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def timed(self, steps: int) -> float:
        """Seconds per step over `steps` back-to-back steps (synchronised at the ends)."""
        sync(self.device)
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        sync(self.device)
        return (time.perf_counter() - start) / steps


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory(arch: Architecture, batch: int, device: torch.device, classes: int) -> int | None:
    """max_memory_allocated over two training steps of this model alone (None on CPU)."""
    if device.type != "cuda":
        return None
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    stepper = Stepper(arch, batch, device, classes)
    stepper.step()
    stepper.step()
    sync(device)
    peak = torch.cuda.max_memory_allocated(device)
    del stepper
    torch.cuda.empty_cache()
    return int(peak)


def fitting_batch(archs, largest: int, device: torch.device, classes: int) -> int:
    """The largest power of two <= `largest` at which every model of the pair takes a step."""
    if device.type != "cuda":
        return largest  # the smoke run: nothing to fit
    batch = largest
    while batch >= 1:
        try:
            for arch in archs:
                peak_memory(arch, batch, device, classes)
            return batch
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            batch //= 2
    raise SystemExit("not even batch 1 fits on this device")


def measure_pair(resnet: Architecture, effnet: Architecture, args, device, classes) -> dict:
    batch = fitting_batch((resnet, effnet), args.batch, device, classes)
    memory = {a.family: peak_memory(a, batch, device, classes) for a in (resnet, effnet)}
    steppers = [Stepper(a, batch, device, classes) for a in (resnet, effnet)]
    for stepper in steppers:  # warm-up: cuDNN's autotuner, the allocator, lazy init
        stepper.timed(2)
    rounds = []
    for i in range(args.rounds):
        order = steppers if i % 2 == 0 else steppers[::-1]
        times = {s.arch.family: s.timed(args.steps) for s in order}
        rounds.append(times)
        print(
            f"  round {i + 1}: {steppers[0].name} {times[resnet.family]:.3f} s  "
            f"{steppers[1].name} {times[effnet.family]:.3f} s  "
            f"ratio {times[effnet.family] / times[resnet.family]:.2f}",
            flush=True,
        )
    ratios = [r[effnet.family] / r[resnet.family] for r in rounds]
    out = {
        "resnetrs": {"model": steppers[0].name, "resolution": resnet.resolution},
        "efficientnet": {"model": steppers[1].name, "resolution": effnet.resolution},
        "batch": batch,
        "step_s": {
            family: statistics.median(r[family] for r in rounds)
            for family in (resnet.family, effnet.family)
        },
        "speed_ratio": statistics.median(ratios),
        "speed_ratios": ratios,
        "memory_bytes": memory,
        "memory_ratio": (
            memory[effnet.family] / memory[resnet.family] if memory[resnet.family] else None
        ),
    }
    del steppers
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device("cpu" if args.smoke else args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    classes, pairs = 1000, []
    for depth, res, effnet, effnet_res, paper in PAIRS:
        if args.smoke:
            res, effnet_res = SMOKE_RESOLUTIONS
            args.batch, args.rounds, args.steps = min(args.batch, 4), min(args.rounds, 2), 1
        named = EFFICIENTNET_PRESETS[effnet]
        resnet = Architecture(depth, 1.0, res)
        efficient = Architecture(named.depth_mult, named.width_mult, effnet_res, EFFICIENTNET)
        print(f"RS-{depth} @{res} vs {effnet} @{effnet_res}", flush=True)
        figures = measure_pair(resnet, efficient, args, device, classes)
        figures["paper"] = paper
        pairs.append(figures)
        memory = figures["memory_ratio"]
        print(
            f"  speed ratio {figures['speed_ratio']:.2f}x (paper {paper['v100_speed']}x V100, "
            f"{paper['tpu_speed']}x TPU); memory ratio "
            + (f"{memory:.2f}x" if memory else "n/a (CPU)")
            + f" (paper {paper['memory']}x); batch {figures['batch']}",
            flush=True,
        )
    report = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "host": platform.node(),
        "smoke": args.smoke,
        "dtype": "bfloat16" if device.type == "cuda" else "float32",
        "pairs": pairs,
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
