"""Training-step throughput: rsearch's ResNet-RS against timm's resnetrs* on the same config.

One training step = forward, cross-entropy loss, backward, SGD (LR 0.1 x batch/256, Nesterov
momentum 0.9, weight decay 4e-5) step, on a few fixed batches of random images, cycled (synthetic
tensors: this measures the model, not the input pipeline).  Both models are built in
the same process from the same weights (timm's, loaded into rsearch's model: the layer
names line up), so they do the same arithmetic on the same numbers; equal final losses
confirm it.  After a warm-up they are timed in interleaved rounds.  On CPU the two
alternate step by step within a round (A B, B A, A B, ...; every step timed on its
own), so drift and load from other processes hit both alike; on CUDA each runs the
round's steps back to back (synchronised at the ends only, so the GPU queue stays
full) and the order flips every round.  Printed per round: images/s of each and their
ratio; at the end the median images/s, the median of the per-round ratios
rsearch/timm (the headline figure) and two load-resistant checks: the ratio of median
step times and of best step times.  On a shared CPU, --threads 1 gives steadier ratios.

    python benchmarks/model_step.py                          # CPU, resnetrs-50 @64, batch 16
    python benchmarks/model_step.py --device cuda --dtype bfloat16 --channels-last \\
        --resolution 160 --batch 256 [--compile] [--cuda-graphs] --json out.json

--cuda-graphs times rsearch's step as training runs it with recipe.cuda_graphs (the whole
step, fused SGD and the weight EMA included, captured in one CUDA graph) against timm's
plain step: the issue's "graph-captured step vs timm+compile" when given with --compile.
The final losses then differ (the EMA and the graph's own SGD kernel; the rsearch side
reports its window's mean loss).

Needs torch and timm; never imports Ray (runs on a bare GPU box with torch, torchvision,
timm and triton).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402

from benchmarks.common import (  # noqa: E402
    add_device_args,
    check_device,
    rsearch_graph_step,
    setup_device,
)
from rsearch.models import (  # noqa: E402
    build,
    model_config,
    parse_model_name,
    regularization_defaults,
)
from rsearch.train.step import WARMUP_STEPS  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model", default="resnetrs-50", help="resnetrs-50 .. resnetrs-420 (default resnetrs-50)"
    )
    p.add_argument("--resolution", type=int, help="default: 64 on CPU, the paper's size on CUDA")
    p.add_argument("--batch", type=int, help="default: 16 on CPU, 256 on CUDA")
    p.add_argument("--rounds", type=int, default=9, help="interleaved rounds (default 9)")
    p.add_argument(
        "--steps", type=int, help="timed steps per model per round (default: 4 CPU, 20 CUDA)"
    )
    p.add_argument(
        "--warmup", type=int, help="untimed steps per model first (default: 2 CPU, 10 CUDA)"
    )
    p.add_argument(
        "--interleave",
        choices=("step", "round"),
        help="alternate the models every step (CPU default) or every round (CUDA default)",
    )
    p.add_argument("--classes", type=int, default=1000)
    add_device_args(
        p,
        compile_help="torch.compile both models (default mode)",
        threads_help="torch.set_num_threads (CPU)",
    )
    p.add_argument(
        "--cuda-graphs",
        action="store_true",
        help="rsearch's step as training runs it with recipe.cuda_graphs: forward, backward, "
        "fused SGD and EMA captured in one CUDA graph (train/step.py; uncaptured on CPU); "
        "timm's stays the plain step",
    )
    p.add_argument(
        "--no-capture",
        action="store_true",
        help="with --cuda-graphs: the same step uncaptured (fused SGD, EMA, static buffers "
        "without the graph): run it beside --cuda-graphs to see what the graph alone gives",
    )
    p.add_argument(
        "--pool", type=int, default=4, help="distinct synthetic batches, cycled (default 4)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="write every number and the environment here")
    args = p.parse_args(argv)
    for name in ("resolution", "batch", "rounds", "steps", "warmup", "pool", "threads"):
        value = getattr(args, name)
        low = 32 if name == "resolution" else 0 if name == "warmup" else 1
        if value is not None and value < low:
            p.error(f"--{name}: must be >= {low}, got {value}")
    cuda = args.device == "cuda"
    depth, _ = parse_model_name(args.model)
    if args.resolution is None:
        args.resolution = regularization_defaults(depth)["image_size"] if cuda else 64
    args.batch = args.batch or (256 if cuda else 16)
    args.steps = args.steps or (20 if cuda else 4)
    args.interleave = args.interleave or ("round" if cuda else "step")
    args.warmup = args.warmup if args.warmup is not None else (10 if cuda else 2)
    check_device(p, args)
    if args.no_capture and not args.cuda_graphs:
        p.error("--no-capture: only with --cuda-graphs")
    if args.cuda_graphs and cuda and not args.no_capture and args.warmup <= WARMUP_STEPS:
        # the capture (a synchronize, a cache flush) must happen before the clock starts
        p.error(
            f"--warmup: expected more than {WARMUP_STEPS} with --cuda-graphs, got {args.warmup}"
        )
    return args, depth


def make_models(args, depth):
    import timm  # optional (the test extra): only this benchmark needs it

    cfg = model_config(model=args.model, num_classes=args.classes)
    if not cfg.rs or depth not in (50, 101, 152, 200, 270, 350, 420):
        sys.exit(f"--model: timm has resnetrs50..420 only, got {args.model!r}")
    torch.manual_seed(args.seed)
    ours = build(cfg)
    theirs = timm.create_model(f"resnetrs{depth}", num_classes=args.classes)
    counts = {
        name: sum(p.numel() for p in m.parameters())
        for name, m in (("rsearch", ours), ("timm", theirs))
    }
    if counts["rsearch"] != counts["timm"]:
        sys.exit(f"parameter counts differ: {counts}")
    # The same weights in both (layer names line up with timm's): the two runs then do the
    # same arithmetic on the same numbers, so value-dependent speed (denormals) cannot
    # favour either, and equal final losses double as a check that the models agree.
    ours.load_state_dict(theirs.state_dict())
    return {"rsearch": ours, "timm": theirs}, counts["rsearch"]


class Stepper:
    """One model, its optimizer and a fixed batch; `run(n)` times n training steps."""

    def __init__(self, model, args, device):
        fmt = torch.channels_last if args.channels_last else torch.contiguous_format
        self.model = model.to(device, memory_format=fmt).train()
        self.forward = torch.compile(self.model) if args.compile else self.model
        # The RS recipe's optimizer: peak LR 0.1 x batch / 256 (no schedule: speed only).
        self.opt = torch.optim.SGD(
            self.model.parameters(),
            lr=0.1 * args.batch / 256,
            momentum=0.9,
            nesterov=True,
            weight_decay=4e-5,
        )
        # A few fixed batches of random images and labels, cycled: the same data for both
        # models, and a loss that does not collapse to zero as on one memorised batch.
        gen = torch.Generator().manual_seed(args.seed)
        self.batches = [
            (
                torch.randn(args.batch, 3, args.resolution, args.resolution, generator=gen)
                .to(device)
                .contiguous(memory_format=fmt),
                torch.randint(0, args.classes, (args.batch,), generator=gen).to(device),
            )
            for _ in range(args.pool)
        ]
        self.steps = 0
        self.device = device
        self.dtype = torch.bfloat16 if args.dtype == "bfloat16" else torch.float32
        self.autocast = args.dtype != "float32"
        self.loss = float("nan")

    def step(self):
        x, y = self.batches[self.steps % len(self.batches)]
        self.steps += 1
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.autocast):
            loss = F.cross_entropy(self.forward(x), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss

    def run(self, steps: int) -> float:
        """Seconds for `steps` steps, synchronised on CUDA."""
        self.sync()
        start = time.perf_counter()
        for _ in range(steps):
            loss = self.step()
        self.sync()
        elapsed = time.perf_counter() - start
        self.loss = self.last_loss(loss, steps)
        return elapsed

    def last_loss(self, loss, steps: int) -> float:
        return float(loss.detach())

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


class GraphStepper(Stepper):
    """rsearch's training step as `recipe.cuda_graphs` runs it (benchmarks.common)."""

    def __init__(self, model, args, device):
        super().__init__(model, args, device)
        self.graph_step = rsearch_graph_step(
            self.model,
            self.forward,
            batch=args.batch,
            device=device,
            autocast_dtype=self.dtype if self.autocast else None,
            capture=False if args.no_capture else None,
        )

    def step(self):
        x, y = self.batches[self.steps % len(self.batches)]
        self.graph_step(x, y, self.steps)
        self.steps += 1

    def last_loss(self, loss, steps: int) -> float:
        return float(self.graph_step.take_loss_sum()) / steps  # the window's mean


def environment(args) -> dict:
    import timm  # optional (the test extra): only this benchmark needs it

    try:
        commit = (
            subprocess.run(
                ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        commit = None
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return {
        "device_name": torch.cuda.get_device_name() if args.device == "cuda" else cpu,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": commit,
        "ray_imported": "ray" in sys.modules,
    }


def main(argv=None) -> int:
    args, depth = parse_args(argv)
    device = setup_device(args)
    models, params = make_models(args, depth)
    steppers = {
        name: (GraphStepper if args.cuda_graphs and name == "rsearch" else Stepper)(m, args, device)
        for name, m in models.items()
    }
    env = environment(args)
    print(
        f"{args.model} @{args.resolution}, batch {args.batch}, "
        f"{args.device} ({env['device_name']}), {args.dtype}"
        f"{', channels_last' if args.channels_last else ''}"
        f"{', compile' if args.compile else ', eager'}"
        f"{'; rsearch: CUDA-graph step with fused SGD and EMA' if args.cuda_graphs else ''}"
        f"{' (uncaptured)' if args.no_capture else ''}; "
        f"{params:,} params each; "
        f"torch {env['torch']}, timm {env['timm']}, {env['torch_threads']} threads",
        flush=True,
    )

    warm = {}
    for name, s in steppers.items():
        warm[name] = s.run(args.warmup) if args.warmup else 0.0
        print(f"warm-up {name}: {args.warmup} steps in {warm[name]:.1f} s", flush=True)

    # --interleave step: within a round the models alternate step by step (A B B A A B ...),
    # so load from other processes hits both alike (the CPU default).  --interleave round:
    # each model runs its `steps` back to back, synchronised only at the ends, so the GPU
    # queue stays full (the CUDA default); the order flips every round.
    rounds, step_times = [], {name: [] for name in steppers}
    print(f"{'round':>5} {'rsearch img/s':>14} {'timm img/s':>11} {'ratio':>7}")
    for r in range(args.rounds):
        spent = {name: 0.0 for name in steppers}
        blocks = args.steps if args.interleave == "step" else 1
        for i in range(blocks):
            order = ("rsearch", "timm") if (r + i) % 2 == 0 else ("timm", "rsearch")
            for name in order:
                t = steppers[name].run(args.steps // blocks)
                spent[name] += t
                step_times[name].append(t / (args.steps // blocks))
        ips = {name: args.batch * args.steps / spent[name] for name in steppers}
        ratio = ips["rsearch"] / ips["timm"]
        rounds.append(
            {"round": r, "rsearch_img_s": ips["rsearch"], "timm_img_s": ips["timm"], "ratio": ratio}
        )
        print(f"{r:>5} {ips['rsearch']:>14.1f} {ips['timm']:>11.1f} {ratio:>7.3f}", flush=True)

    med = {name: statistics.median(t) for name, t in step_times.items()}
    best = {name: min(t) for name, t in step_times.items()}
    summary = {
        "rsearch_img_s": statistics.median(x["rsearch_img_s"] for x in rounds),
        "timm_img_s": statistics.median(x["timm_img_s"] for x in rounds),
        "ratio_median": statistics.median(x["ratio"] for x in rounds),
        "ratio_min": min(x["ratio"] for x in rounds),
        "ratio_max": max(x["ratio"] for x in rounds),
        # Two estimators that resist load from other processes (it only ever adds time):
        "ratio_of_median_steps": med["timm"] / med["rsearch"],
        "ratio_of_best_steps": best["timm"] / best["rsearch"],
        "final_loss": {name: s.loss for name, s in steppers.items()},
    }
    print(
        f"median: rsearch {summary['rsearch_img_s']:.1f} img/s, "
        f"timm {summary['timm_img_s']:.1f} img/s, "
        f"ratio rsearch/timm {summary['ratio_median']:.3f} "
        f"(range {summary['ratio_min']:.3f}..{summary['ratio_max']:.3f} over {args.rounds} rounds; "
        f"per-step median {summary['ratio_of_median_steps']:.3f}, "
        f"best {summary['ratio_of_best_steps']:.3f})"
    )
    print(
        "final loss: "
        + ", ".join(f"{name} {loss:.6g}" for name, loss in summary["final_loss"].items())
        + (" (identical)" if len(set(summary["final_loss"].values())) == 1 else "")
    )
    if args.json:
        record = {
            "benchmark": "model_step",
            "args": vars(args),
            "params": params,
            "warmup_s": warm,
            "rounds": rounds,
            "step_s": step_times,
            "summary": summary,
            "environment": environment(args),
        }
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(tmp, path)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
