"""The training loop as `rsearch train` runs it, eager against recipe.cuda_graphs (and the
device JPEG pipeline), on one device: does the captured step train the same model?

Runs the same small config (ResNet-RS depth 26, width 0.25, the synthetic scenes or a JPEG
ImageFolder) through rsearch.train.loop.train_epochs, with DataLoader workers, in three ways:
eager; cuda_graphs; cuda_graphs with data.decode device (with --jpeg), and a cuda_graphs run
interrupted after its first epoch and resumed from the checkpoint written through a file.
Prints each epoch's training loss and minival accuracy per run, the largest relative
difference of the loss from the eager run, and the images/s of the last epoch.  On a CPU the
graph is not captured (the same step uncaptured): the runs then agree to the bit.

    python benchmarks/train_check.py --device cuda --json OUT/train_check.json [--jpeg DIR]
    python benchmarks/train_check.py                # CPU: checks the script runs

Needs torch and torchvision; never imports Ray.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import torch  # noqa: E402

from benchmarks.common import check_device  # noqa: E402
from rsearch.data import DataConfig  # noqa: E402
from rsearch.recipe import preset  # noqa: E402
from rsearch.train import TrainConfig, train_epochs  # noqa: E402
from rsearch.train.checkpoint import save_checkpoint  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, help="default: 32 on CPU, 256 on CUDA")
    p.add_argument("--train-size", type=int, help="synthetic images (default: 600 CPU, 20000 CUDA)")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--workers", type=int, help="DataLoader workers (default: 1 CPU, 8 CUDA)")
    p.add_argument("--jpeg", metavar="DIR", help="a JPEG ImageFolder: adds the device-decoded run")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    cuda = args.device == "cuda"
    check_device(p, args)
    args.batch = args.batch or (256 if cuda else 32)
    args.train_size = args.train_size or (20000 if cuda else 600)
    args.workers = args.workers if args.workers is not None else (8 if cuda else 1)
    return args


def config(args, cache: str, *, cuda_graphs: bool = False, jpeg: bool = False) -> TrainConfig:
    """The check's run: synthetic scenes, or (jpeg) the --jpeg folder decoded on the device."""
    recipe = preset("rs", depth=26, batch_size=args.batch, base_lr=0.4, dropout=0.1)
    if jpeg:
        data = DataConfig(
            source="imagefolder", data_dir=args.jpeg, minival_fraction=0.05, decode="device"
        )
    else:
        data = DataConfig(
            train_size=args.train_size, test_size=0, minival_fraction=0.05, cache_dir=cache
        )
    return TrainConfig(
        depth=26,
        width=0.25,
        resolution=args.resolution,
        epochs=args.epochs,
        recipe=recipe.replace(cuda_graphs=cuda_graphs),
        data=data,
        device=args.device,
        loader_workers=args.workers,
        eval_test=False,
    )


def run(cfg: TrainConfig, resume_after: int | None = None) -> list[dict]:
    """Epoch metrics; with `resume_after`, the run stops there and continues from a file."""
    rows, state = [], None
    for epoch in train_epochs(cfg):
        rows.append(epoch.metrics)
        if resume_after is not None and len(rows) == resume_after:
            with tempfile.TemporaryDirectory() as folder:
                path = save_checkpoint(epoch.state(), Path(folder) / "checkpoint.pt")
                state = torch.load(path, weights_only=True)
            break
    if state is not None:
        rows += [e.metrics for e in train_epochs(cfg, resume=state)]
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    cache = tempfile.mkdtemp(prefix="rsearch-train-check-")
    runs = {
        "eager": lambda: run(config(args, cache)),
        "cuda_graphs": lambda: run(config(args, cache, cuda_graphs=True)),
        "cuda_graphs_resumed": lambda: run(config(args, cache, cuda_graphs=True), resume_after=1),
    }
    if args.jpeg:
        runs["cuda_graphs_device_jpeg"] = lambda: run(
            config(args, cache, cuda_graphs=True, jpeg=True)
        )
    results = {}
    for name, go in runs.items():
        start = time.perf_counter()
        rows = go()
        results[name] = {"epochs": rows, "seconds": time.perf_counter() - start}
        losses = " ".join(f"{r['train_loss']:.5f}" for r in rows)
        top1 = " ".join(f"{r['minival_top1']:.3f}" for r in rows)
        print(
            f"{name:>24}: loss {losses} | minival {top1} | last epoch "
            f"{rows[-1]['img_per_s']:.0f} img/s | {results[name]['seconds']:.1f} s",
            flush=True,
        )
    eager = [r["train_loss"] for r in results["eager"]["epochs"]]
    for name in ("cuda_graphs", "cuda_graphs_resumed"):
        other = [r["train_loss"] for r in results[name]["epochs"]]
        worst = max(abs(a - b) / abs(a) for a, b in zip(eager, other))
        results[name]["max_rel_loss_diff_vs_eager"] = worst
        print(f"{name}: largest relative loss difference from eager {worst:.2e}")
    if args.json:
        env = {
            "device_name": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
            "torch": torch.__version__,
            "ray_imported": "ray" in sys.modules,
        }
        Path(args.json).write_text(
            json.dumps({"args": vars(args), "runs": results, "environment": env}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
