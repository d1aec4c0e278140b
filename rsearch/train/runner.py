"""`rsearch train`: run one configuration, in-process (1 worker) or on Ray Train (N workers),
and leave summary.json, epochs.parquet and checkpoint.pt in the output folder."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from rsearch import memory, storage
from rsearch import metrics as M
from rsearch.errors import UserError
from rsearch.noise import small_minival_warning
from rsearch.ray_session import init_ray
from rsearch.train.checkpoint import CHECKPOINT_FILE, load_checkpoint, same_run, save_checkpoint
from rsearch.train.config import TrainConfig
from rsearch.train.environment import training_environment
from rsearch.train.loop import load_splits, train_epochs

SUMMARY_FILE = "summary.json"
EPOCHS_FILE = "epochs.parquet"
RAY_TRAIN_RUN = "ray_train"  # the N-worker run's folder in --output (Ray Train V2 restores by name)


def preflight(cfg: TrainConfig, *, local_gpu: bool = True, check_memory: bool = False):
    """Everything that can be wrong with the input, checked before any folder is written.
    Returns (data split info: sizes, minival fingerprint; the loaded splits, for reuse).
    `local_gpu=False` where the GPUs are on cluster workers, not on this (driver) machine.
    `check_memory`: refuse a run whose estimated memory exceeds what this machine has free
    (it trains here)."""
    workers = cfg.loader_workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise UserError(f"--loader-workers: expected 0 or more, got {workers!r}")
    if cfg.device.startswith("cuda") and local_gpu and not torch.cuda.is_available():
        raise UserError("--gpu: a GPU was requested but torch sees no CUDA device on this machine")
    if check_memory:
        _check_memory(cfg)  # before the data: rendering it may take long, and memory of its own
    splits = load_splits(cfg)
    if len(splits.train) < cfg.recipe.batch_size:
        raise UserError(
            f"--batch-size: {cfg.recipe.batch_size} exceeds the training split "
            f"({len(splits.train)} images); expected at most {len(splits.train)}"
        )
    info = dict(splits.info)
    info.update(num_classes=splits.num_classes, in_chans=splits.in_chans)
    return info, splits


def _check_memory(cfg: TrainConfig) -> None:
    """UserError when one training step would need more memory than is free (rsearch.memory)."""
    # The class count of a folder or Parquet source is known only once it is read: its head is
    # counted at the smallest (2 classes), so this never refuses a run that fits.
    classes = {"synthetic": cfg.data.num_classes, "fashion-mnist": 10}.get(cfg.data.source, 2)
    memory.check_training(cfg, classes, 1 if cfg.data.source == "fashion-mnist" else 3)


def prepare_output(output: Path, resume: bool) -> dict | None:
    """Refuse to overwrite a finished or interrupted run; return the checkpoint to resume from."""
    ckpt = output / CHECKPOINT_FILE
    storage.check_writable_folder(output, "--output")  # before an epoch is trained, not after
    if resume and not ckpt.exists() and (output / RAY_TRAIN_RUN).is_dir():
        return None  # an interrupted N-worker run: Ray Train restores it from its own storage
    if resume:
        if not ckpt.exists():
            raise UserError(
                f"--resume: no {CHECKPOINT_FILE} in {output}; "
                "expected the --output of an earlier run"
            )
        return load_checkpoint(ckpt)
    if output.exists() and any(output.iterdir()):
        raise UserError(
            f"--output: {output} is not empty; choose a new folder, "
            "or pass --resume to continue the run in it"
        )
    return None


def run_training(
    cfg: TrainConfig,
    output: str | os.PathLike,
    *,
    resume: bool = False,
    show_progress: bool = True,
    ray_address: str | None = None,
    retrained_from: dict | None = None,
) -> dict:
    """Train `cfg` into `output`; `retrained_from` ({experiment, trial_id}: rsearch train
    --from-trial) is kept in summary.json, so an export's card names the trial."""
    output = Path(output).expanduser()
    on_cluster = cfg.workers > 1 and bool(ray_address or os.environ.get("RAY_ADDRESS"))
    data_info, splits = preflight(cfg, local_gpu=not on_cluster, check_memory=not on_cluster)
    state = prepare_output(output, resume)
    if state is not None and same_run(state["config"]) != same_run(cfg.to_dict()):
        changed = ", ".join(_differences(same_run(state["config"]), same_run(cfg.to_dict()))[:3])
        raise UserError(
            f"--resume: the arguments differ from the interrupted run's ({changed}); "
            "pass the same arguments"
        )
    # After every input check: a warning never precedes an error.
    warning = small_minival_warning(int(data_info.get(M.MINIVAL_SIZE, 0)))
    if warning and show_progress:
        print(warning, file=sys.stderr, flush=True)
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if cfg.workers == 1:
        history = _run_in_process(cfg, output, state, show_progress, splits)
    else:
        history = _run_ray_train(cfg, output, ray_address)
    summary = _summary(cfg, data_info, history, time.perf_counter() - started)
    # the in-process loop trains with this process's threads (Ray Train workers: their own)
    threads = torch.get_num_threads() if cfg.workers == 1 else None
    summary["environment"] = training_environment(threads, gpu=cfg.device.startswith("cuda"))
    if retrained_from is not None:
        summary["retrained_from"] = retrained_from
    _write_json(output / SUMMARY_FILE, summary)
    return summary


def _differences(before: dict, now: dict, prefix: str = "") -> list[str]:
    """'key: old -> new' for every (nested) setting that differs."""
    out = []
    for key in sorted(set(before) | set(now)):
        a, b = before.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def _run_in_process(
    cfg: TrainConfig, output: Path, state: dict | None, show_progress: bool, splits
) -> list[dict]:
    progress = _ProgressLine(cfg.epochs) if show_progress else None
    history = list(state["history"]) if state else []
    for epoch in train_epochs(
        cfg, resume=state, progress=progress and progress.batch, splits=splits
    ):
        history.append(epoch.metrics)
        # Checkpoint then epoch table, each atomic: a kill loses at most the epoch in flight.
        save_checkpoint(epoch.state(), output / CHECKPOINT_FILE)
        write_epochs(output / EPOCHS_FILE, history)
        if progress:
            progress.epoch(epoch.metrics)
    return history


def _run_ray_train(cfg: TrainConfig, output: Path, ray_address: str | None) -> list[dict]:
    # Ray Train is loaded only by N-worker runs: a 1-worker `rsearch train` runs without Ray.
    from rsearch.train.distributed import fit_torch_trainer

    init_ray(ray_address)
    # The run is named after the output folder, so re-running with --resume restores it.
    result = fit_torch_trainer(cfg, name=RAY_TRAIN_RUN, storage_path=str(output.resolve()))
    with result.checkpoint.as_directory() as d:
        state = load_checkpoint(Path(d) / CHECKPOINT_FILE)
    save_checkpoint(state, output / CHECKPOINT_FILE)
    write_epochs(output / EPOCHS_FILE, state["history"])
    for row in state["history"]:
        print(_format_epoch(row, cfg.epochs), file=sys.stderr)
    return list(state["history"])


def _summary(cfg: TrainConfig, data_info: dict, history: list[dict], wall_s: float) -> dict:
    last = history[-1]
    return {
        M.MINIVAL_TOP1: last[M.MINIVAL_TOP1],
        M.MINIVAL_LOSS: last[M.MINIVAL_LOSS],
        M.TEST_TOP1: last.get(M.TEST_TOP1),
        M.TEST_LOSS: last.get(M.TEST_LOSS),
        "train_size": data_info["train_size"],
        M.MINIVAL_SIZE: data_info[M.MINIVAL_SIZE],
        "test_size": data_info.get("test_size"),
        "minival_fingerprint": data_info.get("minival_fingerprint"),
        "num_classes": data_info["num_classes"],
        M.EPOCHS: cfg.epochs,
        M.IMG_PER_S: sum(r[M.IMG_PER_S] for r in history) / len(history),
        M.WALL_S: wall_s,
        "config": cfg.to_dict(),
    }


def write_epochs(path: Path, history: list[dict]) -> None:
    table = pa.Table.from_pylist(history)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def _format_epoch(row: dict, epochs: int) -> str:
    text = (
        f"epoch {row[M.EPOCH]}/{epochs}  loss {row[M.TRAIN_LOSS]:.4f}"
        f"  minival top-1 {row[M.MINIVAL_TOP1]:.4f}  lr {row[M.LR]:.4g}"
        f"  {row[M.IMG_PER_S]:.0f} img/s  {row[M.EPOCH_SECONDS]:.1f}s"
    )
    if row.get(M.TEST_TOP1) is not None:
        text += f"  test top-1 {row[M.TEST_TOP1]:.4f}"
    return text


class _ProgressLine:
    """One line per epoch; on a terminal, a live batch counter too."""

    def __init__(self, epochs: int):
        self.epochs = epochs
        self.tty = sys.stderr.isatty()

    def batch(self, done: int, total: int) -> None:
        if self.tty and (done == total or done % 5 == 0):
            print(f"\r  batch {done}/{total}", end="", file=sys.stderr, flush=True)

    def epoch(self, row: dict) -> None:
        print(
            ("\r" if self.tty else "") + _format_epoch(row, self.epochs),
            file=sys.stderr,
            flush=True,
        )
