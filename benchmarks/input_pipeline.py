"""Input pipeline vs training step: is the data side fast enough to keep the model busy?

Default mode prints, for one config:
  pipeline  images/s the training loader delivers (read/decode + random resized crop,
            flip, RandAugment, collate; N loader worker processes), timed from the first
            batch on so worker start-up is not counted;
  step      images/s one training step consumes (rsearch ResNet-RS forward, cross-entropy,
            backward, SGD) on pre-made tensors on the device;
  ratio     pipeline / step (>= 1: the pipeline keeps up).

--e2e mode prints the same training step fed by the real loader (host-to-device copy,
uint8 -> float normalisation on the device) against the step on pre-made tensors, and
the ratio (the design target is >= 0.95).  One loader serves many epochs back to back
(make_loader(epochs=...)), so workers start once and keep prefetching across epoch
boundaries; the loader-fed windows start after a warm-up of warmup + 2 x workers
batches so work the workers did before the clock started does not count.

    python benchmarks/input_pipeline.py                                   # CPU, tiny
    python benchmarks/input_pipeline.py --e2e --device cuda --model resnetrs-50 --resolution 160 \\
        --batch 256 --dtype bfloat16 --channels-last --workers 16 --json e2e.json
    python benchmarks/input_pipeline.py --prepare-jpeg /tmp/jpeg ...  # synthetic scenes as a
                                                                     # JPEG ImageFolder (decoding)
    python benchmarks/input_pipeline.py --prepare-jpeg /tmp/jpeg --decode device --e2e \\
        --cuda-graphs --compile --device cuda ...  # nvJPEG + grouped augmentation on the GPU,
                                                   # feeding the CUDA-graph step

--decode device: the workers only read the files and draw each sample's augmentation; the
batch is decoded and augmented on the device (rsearch.data.device_jpeg), the same images as
the CPU workers make.  --cuda-graphs: the step is rsearch's CUDA-graph step (fused SGD, EMA).

Needs torch and torchvision only; never imports Ray.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torchvision.io import encode_jpeg  # noqa: E402

from benchmarks.common import (  # noqa: E402
    add_device_args,
    check_device,
    rsearch_graph_step,
    setup_device,
)
from rsearch.data import DataConfig, load_data, make_loader  # noqa: E402
from rsearch.data.device_jpeg import DeviceAugment  # noqa: E402
from rsearch.data.device_jpeg import collate as device_jpeg_collate  # noqa: E402
from rsearch.data.synthetic import render  # noqa: E402
from rsearch.models import build, model_config  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--source",
        default="synthetic",
        choices=("synthetic", "fashion-mnist", "imagefolder", "parquet"),
    )
    p.add_argument("--data-dir")
    p.add_argument(
        "--train-size", type=int, help="synthetic: images rendered (default: 512 CPU, 10240 CUDA)"
    )
    p.add_argument(
        "--prepare-jpeg",
        metavar="DIR",
        help="write the synthetic training scenes as DIR/train/<class>/*.jpg (once) and read that "
        "ImageFolder, so JPEG decoding is part of the pipeline",
    )
    p.add_argument(
        "--jpeg-size", type=int, default=320, help="--prepare-jpeg image side (default 320)"
    )
    p.add_argument(
        "--prepare-only", action="store_true", help="write the --prepare-jpeg folder and stop"
    )
    p.add_argument("--resolution", type=int, help="default: 32 on CPU, 160 on CUDA")
    p.add_argument("--batch", type=int, help="default: 32 on CPU, 256 on CUDA")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    p.add_argument(
        "--transfer",
        choices=("uint8", "float"),
        default="uint8",
        help="what crosses from workers to the device: uint8 (normalised on the device) or float",
    )
    p.add_argument(
        "--randaugment", type=int, nargs=2, default=(2, 10), metavar=("OPS", "MAGNITUDE")
    )
    p.add_argument(
        "--model",
        default=None,
        help="default: resnetrs-26 (width 0.25) on CPU, resnetrs-50 on CUDA",
    )
    p.add_argument(
        "--width", type=float, help="width multiplier (default 0.25 on CPU, 1.0 on CUDA)"
    )
    add_device_args(
        p,
        compile_help="torch.compile the model",
        threads_help="torch.set_num_threads in the main process",
    )
    p.add_argument(
        "--steps", type=int, help="timed batches/steps per measurement (default: 8 CPU, 50 CUDA)"
    )
    p.add_argument("--warmup", type=int, help="untimed steps first (default: 2 CPU, 10 CUDA)")
    p.add_argument(
        "--rounds", type=int, default=3, help="timed windows per measurement (default 3)"
    )
    p.add_argument(
        "--e2e", action="store_true", help="real-loader training step vs synthetic-tensor step"
    )
    p.add_argument(
        "--decode",
        choices=("cpu", "device"),
        default="cpu",
        help="cpu: loader workers decode and augment each image (default); device: workers "
        "read the JPEG files and draw the augmentation, the batch is decoded (nvJPEG on CUDA) "
        "and augmented on the device, RandAugment by groups (rsearch.data.device_jpeg); needs "
        "a JPEG ImageFolder (--prepare-jpeg or --source imagefolder)",
    )
    p.add_argument(
        "--cuda-graphs",
        action="store_true",
        help="the step as recipe.cuda_graphs runs it: fused SGD and the weight EMA, captured "
        "in one CUDA graph (uncaptured on CPU)",
    )
    p.add_argument(
        "--cache-dir", help="synthetic render cache (default: $RSEARCH_CACHE or ~/.cache/rsearch)"
    )
    p.add_argument("--json", metavar="PATH", help="write every number and the config here")
    args = p.parse_args(argv)
    check_device(p, args)
    if args.prepare_only and not args.prepare_jpeg:
        p.error("--prepare-only: only with --prepare-jpeg DIR")
    if args.decode == "device":
        if not (args.prepare_jpeg or args.source == "imagefolder"):
            p.error(
                "--decode device: needs a JPEG ImageFolder (--prepare-jpeg DIR or --source "
                "imagefolder --data-dir DIR)"
            )
        if args.transfer != "uint8":
            p.error(
                "--decode device: the device makes uint8 batches; --transfer float does not apply"
            )
    cuda = args.device == "cuda"
    args.resolution = args.resolution or (160 if cuda else 32)
    args.batch = args.batch or (256 if cuda else 32)
    args.steps = args.steps or (50 if cuda else 8)
    args.warmup = args.warmup if args.warmup is not None else (10 if cuda else 2)
    args.model = args.model or ("resnetrs-50" if cuda else "resnetrs-26")
    args.width = args.width or (1.0 if cuda else 0.25)
    args.train_size = args.train_size or (10240 if cuda else 512)
    return args


HOST_PARTS = ("loader_wait", "device_augment", "step")  # Measure.host
JPEG_CHUNK = 250  # scenes a process renders at a time (10 classes, balanced per chunk)


def prepare_jpeg(folder: Path, args) -> None:
    """Render the synthetic training scenes at --jpeg-size and save them as an ImageFolder,
    in chunks across the CPU's cores: one process renders and encodes about 60 scenes/s at
    320 px, so 10,240 of them took minutes of a lent GPU machine's time in one process."""
    if (folder / "train" / ".complete").exists():
        return
    chunks = [
        (folder, start, min(start + JPEG_CHUNK, args.train_size), args.jpeg_size)
        for start in range(0, args.train_size, JPEG_CHUNK)
    ]
    cores = len(os.sched_getaffinity(0))  # the cores this process may use, not the host's
    with ProcessPoolExecutor(max_workers=min(len(chunks), cores)) as pool:
        for _ in pool.map(_write_jpeg_chunk, chunks):
            pass
    (folder / "train" / ".complete").write_text("")


def _write_jpeg_chunk(chunk: tuple[Path, int, int, int]) -> None:
    """Scenes start..stop-1 (seeded by start, classes balanced within the chunk) as JPEGs."""
    folder, start, stop, size = chunk
    torch.set_num_threads(1)  # one process per core already
    images, labels = render(stop - start, 10, size, seed=start)
    for i, (image, label) in enumerate(zip(images, labels), start):
        target = folder / "train" / f"class{label:02d}"
        target.mkdir(parents=True, exist_ok=True)
        (target / f"{i:06d}.jpg").write_bytes(
            encode_jpeg(torch.from_numpy(image), quality=90).numpy().tobytes()
        )


def data_config(args) -> DataConfig:
    if args.prepare_jpeg:
        return DataConfig(
            source="imagefolder",
            data_dir=args.prepare_jpeg,
            verify_images="none",
            decode=args.decode,
        )
    return DataConfig(
        source=args.source,
        data_dir=args.data_dir,
        train_size=args.train_size,
        test_size=0,
        cache_dir=args.cache_dir,
        decode=args.decode,
    )


class Step:
    """Model + optimizer; `__call__(x, y)` runs one training step."""

    def __init__(self, args, num_classes: int, in_chans: int, device: torch.device):
        self.fmt = torch.channels_last if args.channels_last else torch.contiguous_format
        torch.manual_seed(0)
        model = build(
            model_config(
                model=args.model, width=args.width, num_classes=num_classes, in_chans=in_chans
            )
        )
        self.model = model.to(device, memory_format=self.fmt).train()
        self.forward = torch.compile(self.model) if args.compile else self.model
        self.opt = torch.optim.SGD(
            self.model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=4e-5
        )
        self.device, self.autocast = device, args.dtype == "bfloat16"
        self.graph_step, self.steps = None, 0
        if args.cuda_graphs:
            self.graph_step = rsearch_graph_step(
                self.model,
                self.forward,
                batch=args.batch,
                device=device,
                autocast_dtype=torch.bfloat16 if self.autocast else None,
            )

    def __call__(self, x, y):
        if self.graph_step is not None:
            self.graph_step(x, y, self.steps)
            self.steps += 1
            return None
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            loss = F.cross_entropy(self.forward(x), y, label_smoothing=0.1)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


class Measure:
    """The three rates, each over windows of `args.steps` batches, in images/s."""

    def __init__(self, step: Step, splits, args, device, normalize):
        self.step, self.splits, self.args, self.device, self.normalize = (
            step,
            splits,
            args,
            device,
            normalize,
        )
        gen = torch.Generator().manual_seed(0)
        x = torch.randint(
            0,
            256,
            (args.batch, splits.in_chans, args.resolution, args.resolution),
            dtype=torch.uint8,
            generator=gen,
        )
        self.x = normalize(x.to(device)).contiguous(memory_format=step.fmt)
        self.y = torch.randint(0, splits.num_classes, (args.batch,), generator=gen).to(device)
        self.stream = None
        # Host seconds per part of a fed step, per window: where the time goes when the fed
        # rate falls short (workers too slow, or this thread too busy to keep the GPU fed)
        self.host = dict.fromkeys(HOST_PARTS, 0.0)
        self.host_windows: list[dict[str, float]] = []

    def _timed(self, one, steps) -> float:
        self.step.sync()
        start = time.perf_counter()
        for _ in range(steps):
            one()
        self.step.sync()
        return self.args.batch * steps / (time.perf_counter() - start)

    def synthetic_step(self) -> float:
        """The training step on tensors already on the device."""
        return self._timed(lambda: self.step(self.x, self.y), self.args.steps)

    def start_stream(self, fed: bool) -> None:
        """One loader over many epochs (prefetching runs on across epoch boundaries, as a
        multi-epoch training loader does), warmed up long enough that the batches the workers
        prepared before the clock starts are used up: windows then measure the steady state."""
        train, collate = self.splits.train, None
        if self.args.decode == "device":  # load_data made it an EncodedSampleSet
            collate, self.augment = device_jpeg_collate, DeviceAugment(train, self.device)
        loader = make_loader(
            train,
            self.args.batch,
            train=True,
            seed=0,
            epoch=0,
            epochs=10**6,
            num_workers=self.args.workers,
            pin_memory=self.device.type == "cuda" and collate is None,  # nvJPEG reads host bytes
            collate=collate,
        )
        self.stream = iter(loader)
        one = self._fed_step if fed else self._next_batch
        self._timed(one, self.args.warmup + 2 * self.args.workers)

    def _next_batch(self):
        """The loader's next batch; with --decode device, decoded and augmented there."""
        start = time.perf_counter()
        x, y = next(self.stream)
        waited = time.perf_counter()
        self.host["loader_wait"] += waited - start
        if self.args.decode == "device":
            x = self.augment(*x)
            self.host["device_augment"] += time.perf_counter() - waited
        return x, y

    def _fed_step(self):
        x, y = self._next_batch()
        start = time.perf_counter()
        x = x.to(self.device, non_blocking=True)
        x = (self.normalize(x) if x.dtype == torch.uint8 else x).contiguous(
            memory_format=self.step.fmt
        )
        self.step(x, y.to(self.device, non_blocking=True))
        self.host["step"] += time.perf_counter() - start

    def _window(self, one) -> float:
        """One timed window of the loader-fed work; its host time per batch is kept."""
        self.host = dict.fromkeys(HOST_PARTS, 0.0)
        rate = self._timed(one, self.args.steps)
        self.host_windows.append({k: 1e3 * v / self.args.steps for k, v in self.host.items()})
        return rate

    def pipeline(self) -> float:
        """Loader output alone (no model)."""
        return self._window(self._next_batch)

    def e2e_step(self) -> float:
        """The training step fed by the real loader: copy, normalise on the device, step."""
        return self._window(self._fed_step)


def measure_all(measure: Measure, args) -> dict:
    """The step on synthetic tensors first (no loader exists yet, so no worker competes for
    the CPU), then the loader-fed rate (e2e) or the loader alone, in back-to-back windows."""
    for _ in range(args.warmup):
        measure.step(measure.x, measure.y)
    first, second = ("e2e", "synthetic_step") if args.e2e else ("pipeline", "step")
    rates = {second: [measure.synthetic_step() for _ in range(args.rounds)]}
    measure.start_stream(fed=args.e2e)
    rates[first] = [
        (measure.e2e_step if args.e2e else measure.pipeline)() for _ in range(args.rounds)
    ]
    for name in (second, first):
        print(
            f"{name:>15} windows: " + "  ".join(f"{r:9.1f}" for r in rates[name]) + " img/s",
            flush=True,
        )
    result = {name: statistics.median(values) for name, values in rates.items()}
    result["ratio"] = result[first] / result[second]
    result["windows"] = rates
    # milliseconds of this thread per batch, median over the windows, beside the GPU's step
    result["host_ms_per_batch"] = {
        part: statistics.median(w[part] for w in measure.host_windows) for part in HOST_PARTS
    }
    result["step_ms_per_batch"] = 1e3 * args.batch / result[second]
    print(
        "  host ms per batch: "
        + ", ".join(f"{k} {v:.2f}" for k, v in result["host_ms_per_batch"].items())
        + f" (the {second.replace('_', ' ')} takes {result['step_ms_per_batch']:.2f} ms a batch)",
        flush=True,
    )
    return result, first, second


def main(argv=None) -> int:
    args = parse_args(argv)
    device = setup_device(args)
    if args.prepare_jpeg:
        start = time.perf_counter()
        prepare_jpeg(Path(args.prepare_jpeg), args)
        print(
            f"JPEG ImageFolder ready in {args.prepare_jpeg} ({time.perf_counter() - start:.1f} s)",
            flush=True,
        )
        if args.prepare_only:
            return 0
    start = time.perf_counter()
    splits = load_data(
        data_config(args),
        resolution=args.resolution,
        randaugment_ops=args.randaugment[0],
        randaugment_magnitude=args.randaugment[1],
        normalize=args.transfer == "float",
    )
    load_s = time.perf_counter() - start
    normalize = splits.normalizer()
    step = Step(args, splits.num_classes, splits.in_chans, device)
    source = "imagefolder (JPEG from --prepare-jpeg)" if args.prepare_jpeg else args.source
    ops, magnitude = args.randaugment
    print(
        f"{source} @{args.resolution}: {len(splits.train)} training images "
        f"(loaded in {load_s:.1f} s); {args.model} w{args.width:g}, batch {args.batch}, "
        f"{args.device}, {args.dtype}"
        f"{', channels_last' if args.channels_last else ''}{', compile' if args.compile else ''}; "
        f"{args.workers} loader workers, {args.transfer} transfer, RandAugment {ops}/{magnitude}, "
        f"decoded and augmented on the {'device' if args.decode == 'device' else 'CPU'}"
        f"{', CUDA-graph step' if args.cuda_graphs else ''}; "
        f"{torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs",
        flush=True,
    )

    measure = Measure(step, splits, args, device, normalize)
    result, first, second = measure_all(measure, args)
    label = {
        "e2e": "end to end (real loader)",
        "synthetic_step": "step on synthetic tensors",
        "pipeline": "input pipeline",
        "step": "training step",
    }
    print(f"median of {args.rounds} windows of {args.steps} batches:")
    for name in (first, second):
        per_worker = (
            f" ({result[name] / max(args.workers, 1):.1f} per worker)" if name == "pipeline" else ""
        )
        print(f"  {label[name]:<27} {result[name]:10.1f} img/s{per_worker}")
    verdict = ""
    if not args.e2e and result["ratio"] < 1:
        verdict = "  (the pipeline is the bottleneck)"
    print(f"  ratio {first}/{second:<17} {result['ratio']:10.3f}{verdict}")
    if args.json:
        record = {
            "config": {k: v for k, v in vars(args).items()},
            "result": result,
            "load_s": load_s,
            "environment": {
                "device_name": torch.cuda.get_device_name()
                if device.type == "cuda"
                else platform.processor() or platform.machine(),
                "cpu_count": os.cpu_count(),
                "torch": torch.__version__,
                "python": platform.python_version(),
                "ray_imported": "ray" in sys.modules,
            },
            "train_size": len(splits.train),
        }
        Path(args.json).write_text(json.dumps(record, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
