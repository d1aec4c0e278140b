"""Resized crops of a batch: torchvision's call per image vs rsearch's batched matrix products
(rsearch/data/resized_crop.py, what the device JPEG pipeline uses on CUDA).

Prints, side by side in interleaved rounds, images/s of each and their ratio, and the host's
own time per batch (the time to issue the work, before waiting for the device: what bounds
a GPU pipeline driven from one Python thread); then how far the two methods' images differ
(on CUDA both resize in float32: at most one grey level; on a CPU torchvision's uint8
resize rounds between its passes) and, on CUDA, whether the batched call makes the host
wait for the GPU.

    python benchmarks/resized_crop.py                        # CPU, small
    python benchmarks/resized_crop.py --device cuda --batch 256 --size 160 --source 320

Needs torch and torchvision only; never imports Ray.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import torch  # noqa: E402
from torchvision.transforms import InterpolationMode, v2  # noqa: E402
from torchvision.transforms.v2 import functional as F  # noqa: E402

from benchmarks.common import check_device  # noqa: E402
from rsearch.data.resized_crop import resized_crops  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=64, help="output side (the training resolution)")
    p.add_argument("--source", type=int, default=128, help="mean source image side")
    p.add_argument("--shapes", type=int, default=8, help="distinct source shapes in a batch")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5, help="batches per round and method")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    check_device(p, args)
    return args


def make_batch(args, device):
    """uint8 images of --shapes sizes around --source, with training's crop boxes."""
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    crop = v2.RandomResizedCrop(args.size, scale=(0.08, 1.0))
    images, boxes = [], []
    for i in range(args.batch):
        k = i % args.shapes
        height, width = args.source - 8 * k, args.source + 6 * k
        image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=gen)
        box = crop.make_params([image])
        images.append(image.to(device))
        boxes.append([box["top"], box["left"], box["height"], box["width"]])
    return images, boxes


def per_image(images, boxes, size):
    return torch.stack(
        [
            F.resized_crop(
                image, *box, [size, size], interpolation=InterpolationMode.BICUBIC, antialias=True
            )
            for image, box in zip(images, boxes)
        ]
    )


def timed(fn, args, device) -> tuple[float, float]:
    """(images/s, host ms per batch) over --repeats batches."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(args.repeats):
        fn()
    issued = time.perf_counter()
    sync()
    end = time.perf_counter()
    return args.batch * args.repeats / (end - start), 1e3 * (issued - start) / args.repeats


def host_syncs(fn) -> str:
    """'none', or the first place where fn makes the host wait for the GPU."""
    torch.cuda.set_sync_debug_mode("error")
    try:
        fn()
        return "none"
    except RuntimeError as error:
        return str(error).splitlines()[0]
    finally:
        torch.cuda.set_sync_debug_mode("default")


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    images, boxes = make_batch(args, device)
    methods = {
        "per_image": lambda: per_image(images, boxes, args.size),
        "batched": lambda: resized_crops(images, boxes, args.size),
    }
    outputs = {name: fn() for name, fn in methods.items()}  # warm-up (kernels load, ...)
    difference = (outputs["batched"].int() - outputs["per_image"].int()).abs()
    agreement = {
        "max_abs_difference": int(difference.max()),
        "fraction_differing": float((difference > 0).float().mean()),
        # does the batched call make the host wait for the GPU? (it should not)
        "host_syncs": host_syncs(methods["batched"]) if device.type == "cuda" else None,
    }
    rates = {name: [] for name in methods}
    host = {name: [] for name in methods}
    for _ in range(args.rounds):
        for name, fn in methods.items():
            rate, host_ms = timed(fn, args, device)
            rates[name].append(rate)
            host[name].append(host_ms)
    median = {name: statistics.median(values) for name, values in rates.items()}
    host_median = {name: statistics.median(values) for name, values in host.items()}
    ratios = [b / p for b, p in zip(rates["batched"], rates["per_image"])]
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(
        f"{args.batch} images ~{args.source} px ({args.shapes} shapes) -> {args.size} px, "
        f"{name}, {args.rounds} interleaved rounds of {args.repeats} batches"
    )
    for method in methods:
        print(
            f"  {method:<10} {median[method]:10.1f} img/s  host {host_median[method]:7.2f} ms/batch"
        )
    print(
        f"  batched vs per_image: max |difference| {agreement['max_abs_difference']}, "
        f"{100 * agreement['fraction_differing']:.3f}% of pixels differ"
        + ("" if agreement["host_syncs"] is None else f"; host syncs: {agreement['host_syncs']}")
    )
    print(
        f"  ratio batched/per_image {statistics.median(ratios):.2f} (rounds: "
        + ", ".join(f"{r:.2f}" for r in ratios)
        + ")"
    )
    if args.json:
        record = {
            "args": vars(args),
            "device_name": name,
            "torch": torch.__version__,
            "img_s": median,
            "host_ms_per_batch": host_median,
            "ratio_median": statistics.median(ratios),
            "agreement": agreement,
            "rounds": {"img_s": rates, "host_ms": host, "ratio": ratios},
        }
        Path(args.json).write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
