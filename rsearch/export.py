"""A trained model out of rsearch: the weights that were evaluated (the EMA's, where the recipe
keeps one), as a PyTorch state dict (`pt`), as weights timm's own ResNet-RS loads (`timm`), or
as ONNX checked against PyTorch with ONNX Runtime (`onnx`), each beside a `model.json` card.

The source is a trial of an experiment (its last checkpoint: trials keep one, see the README's
disk note) or an `rsearch train --output` folder. What is written appears whole or not at all:
the files go to a temporary folder beside the output, renamed into place at the end.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from rsearch import __version__
from rsearch import metrics as M
from rsearch.architecture import RESNETRS
from rsearch.cost import model_cost
from rsearch.cost.onnx import INPUT, OUTPUT, cpu_session, require_onnxruntime, to_onnx
from rsearch.errors import UserError
from rsearch.models import build
from rsearch.train.checkpoint import CHECKPOINT_FILE, load_checkpoint
from rsearch.train.config import TrainConfig

# The ResNet-RS depths timm ships (timm.create_model(f"resnetrs{depth}")), at width 1.
TIMM_DEPTHS = (50, 101, 152, 200, 270, 350, 420)
CARD_FILE = "model.json"
WEIGHT_FILES = {"pt": "model.pt", "timm": "pytorch_model.bin", "onnx": "model.onnx"}
ONNX_BATCH = 8  # images in the ONNX Runtime check
ONNX_TOLERANCE = 1e-3  # largest |logit difference| accepted between PyTorch and ONNX Runtime


@dataclass
class Source:
    """A trained model: its config, its checkpoint, and what was measured of it."""

    config: TrainConfig
    state: dict  # the checkpoint (rsearch.train.loop.Trainer.state)
    measured: dict  # minival/test top-1 and SEs, latency and its method, params, FLOPs
    trial_id: str | None
    origin: str  # where it came from, for the card


def evaluated_weights(state: dict) -> dict:
    """The weights the run evaluated: the EMA's where the recipe keeps one."""
    return state["ema"] if state.get("ema") is not None else state["model"]


def io_shape(weights: dict) -> tuple[int, int]:
    """(num_classes, in_chans) of a state dict: the classifier is its last 2-D weight, the stem
    its first 4-D one (both families)."""
    tensors = [v for v in weights.values() if isinstance(v, torch.Tensor)]
    classifier = [t for t in tensors if t.dim() == 2][-1]
    stem = next(t for t in tensors if t.dim() == 4)
    return int(classifier.shape[0]), int(stem.shape[1])


def model_of(source: Source) -> torch.nn.Module:
    """The network with the evaluated weights, in eval mode, on the CPU."""
    weights = evaluated_weights(source.state)
    num_classes, in_chans = io_shape(weights)
    model = build(source.config.model(num_classes, in_chans))
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:  # weights of another network than the config describes
        reason = str(exc).strip().splitlines()
        raise UserError(
            f"SOURCE: {source.origin}: the checkpoint's weights do not fit its config "
            f"({reason[1].strip()[:120] if len(reason) > 1 else reason[0][:120]})"
        ) from None
    return model.eval()


def timm_name(cfg: TrainConfig, in_chans: int) -> str:
    """The timm model whose state dict this one is, or a UserError saying why there is none."""
    arch = cfg.arch
    if (
        arch.family == RESNETRS
        and int(arch.depth) in TIMM_DEPTHS
        and arch.width == 1.0
        and cfg.recipe.resnet_d
        and cfg.recipe.se
        and in_chans == 3
    ):
        return f"resnetrs{int(arch.depth)}"
    raise UserError(
        f"--format timm: expected a ResNet-RS timm ships (depth "
        f"{', '.join(map(str, TIMM_DEPTHS))} at width 1, ResNet-D and SE on, 3 channels), got "
        f"{arch.family} {arch.key} ({in_chans} channel{'s' if in_chans != 1 else ''}"
        f"{'' if cfg.recipe.resnet_d and cfg.recipe.se else ', the baseline stem'}); "
        "use --format pt or onnx"
    )


def _standard_error(top1, size) -> float | None:
    if top1 is None or not size or (isinstance(top1, float) and math.isnan(top1)):
        return None
    return math.sqrt(max(top1 * (1 - top1), 0.0) / size)


def card(source: Source, fmt: str, model: torch.nn.Module, extra: dict) -> dict:
    """The model card: what the model is, how it was trained and on what, what was measured."""
    cfg = source.config
    num_classes, in_chans = io_shape(evaluated_weights(source.state))
    return {
        "format": fmt,
        "weights": WEIGHT_FILES[fmt],
        "architecture": {
            "family": cfg.family,
            "depth": cfg.depth,
            "width": cfg.width,
            "resolution": cfg.resolution,
            "num_classes": num_classes,
            "in_chans": in_chans,
        },
        "weights_are": "ema" if source.state.get("ema") is not None else "final",
        "recipe": cfg.to_dict()["recipe"],
        "data": cfg.to_dict()["data"],
        "epochs": cfg.epochs,
        "seed": cfg.seed,
        **source.measured,
        # a final model (train --from-trial) trained on its minival: that top-1 is no estimate
        "minival_held_out": not cfg.data.minival_in_train,
        M.PARAMS: sum(p.numel() for p in model.parameters()),
        "trial_id": source.trial_id,
        "source": source.origin,
        "versions": {
            "rsearch": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        **extra,
    }


def export(source: Source, out_dir: str | os.PathLike, fmt: str) -> dict:
    """Write the model in `fmt` and its card to `out_dir` (absent or empty), whole or not at
    all. Returns the card."""
    out = Path(out_dir).expanduser().resolve()  # a symlink: the folder it names
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"-o: {out} exists and is not an empty folder; choose a new one")
    model = model_of(source)
    num_classes, in_chans = io_shape(evaluated_weights(source.state))
    name = timm_name(source.config, in_chans) if fmt == "timm" else None
    staging = _staging_folder(out)
    try:
        extra = _write_weights(model, staging / WEIGHT_FILES[fmt], fmt, source, in_chans)
        if name is not None:
            extra["timm_model"] = name
        meta = card(source, fmt, model, extra)
        (staging / CARD_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n")
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return meta


def _staging_folder(out: Path) -> Path:
    """A new folder beside `out`, with the permissions a plain mkdir would give it (mkdtemp's
    are the owner's only), renamed to `out` once everything is written."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    except OSError as exc:
        raise UserError(f"-o: cannot write {out} ({exc.strerror or exc})") from None
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    return staging


def _write_weights(model, path: Path, fmt: str, source: Source, in_chans: int) -> dict:
    if fmt == "pt":
        # the state dict and the config that rebuilds the network (rsearch.models.build)
        torch.save({"state_dict": model.state_dict(), "config": source.config.to_dict()}, path)
        return {}
    if fmt == "timm":
        torch.save(model.state_dict(), path)
        return {}
    return _write_onnx(model, path, source.config.resolution, in_chans)


def _write_onnx(model, path: Path, resolution: int, in_chans: int) -> dict:
    """Export with a dynamic batch, then run one batch through ONNX Runtime (CPU) and PyTorch:
    the same top-1 for every image and logits within ONNX_TOLERANCE, else the export fails."""
    onnxruntime = require_onnxruntime("--format onnx")
    x = torch.randn(
        ONNX_BATCH, in_chans, resolution, resolution, generator=torch.Generator().manual_seed(0)
    )
    to_onnx(model, x, path)
    with torch.no_grad():
        expected = model(x).numpy()
    got = cpu_session(path).run([OUTPUT], {INPUT: x.numpy()})[0]
    max_diff = float(abs(expected - got).max())
    same_top1 = bool((expected.argmax(1) == got.argmax(1)).all())
    print(f"onnx: max |PyTorch - ONNX Runtime| = {max_diff:.2e} on {ONNX_BATCH} images")
    if not same_top1 or max_diff > ONNX_TOLERANCE:
        raise UserError(
            f"--format onnx: ONNX Runtime disagrees with PyTorch (max |difference| {max_diff:.2e}, "
            f"same top-1: {same_top1}); expected the same top-1 within {ONNX_TOLERANCE}"
        )
    return {
        "onnx_check": {
            "images": ONNX_BATCH,
            "max_abs_diff": max_diff,
            "same_top1": same_top1,
            "onnxruntime": onnxruntime.__version__,
        }
    }


# --- sources ----------------------------------------------------------------------------------


def from_train_output(folder: Path) -> Source:
    """An `rsearch train --output` folder: its checkpoint and summary.json."""
    try:
        summary = json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"SOURCE: {folder / 'summary.json'} is not readable JSON ({exc})") from None
    if not isinstance(summary, dict):
        raise UserError(f"SOURCE: {folder / 'summary.json'} is not an rsearch summary")
    state = _checkpoint(folder / CHECKPOINT_FILE)
    measured = {
        M.MINIVAL_TOP1: summary.get(M.MINIVAL_TOP1),
        M.MINIVAL_TOP1_SE: _standard_error(
            summary.get(M.MINIVAL_TOP1), summary.get(M.MINIVAL_SIZE)
        ),
        M.TEST_TOP1: summary.get(M.TEST_TOP1),
        "test_top1_se": _standard_error(summary.get(M.TEST_TOP1), summary.get("test_size")),
        M.LATENCY_MS: None,
        "latency_method": None,  # rsearch train measures no latency (rsearch cost --latency does)
    }
    config = TrainConfig.from_dict(state["config"])
    num_classes, in_chans = io_shape(evaluated_weights(state))
    counted = model_cost(config.model(num_classes, in_chans), config.resolution)
    measured = {**measured, M.FLOPS: counted[M.FLOPS]}
    # a final model of `rsearch train --from-trial` names the trial it re-trained
    origin = summary.get("retrained_from")
    trial_id = origin.get("trial_id") if isinstance(origin, dict) else None
    if trial_id is not None:
        measured["retrained_from"] = origin
    return Source(config, state, measured, trial_id, str(folder.resolve()))


def _checkpoint(path: Path, shown: str | None = None, flag: str = "SOURCE") -> dict:
    """A checkpoint that rebuilds a network: its config and weights, checked here (the rest of
    export trusts them). `shown`: where the file really is (a trial's, copied to `path`)."""
    shown = shown or str(path)
    if not path.is_file():
        raise UserError(
            f"{flag}: no {path.name} in {path.parent}; expected a finished run's folder"
        )
    try:
        state = load_checkpoint(path)
    except UserError as exc:  # load_checkpoint speaks of --resume and of the file it read
        message = str(exc).removeprefix("--resume: ").replace(str(path), shown)
        raise UserError(f"{flag}: {message}") from None
    try:
        TrainConfig.from_dict(state["config"])
        io_shape(evaluated_weights(state))
    except (KeyError, TypeError, ValueError, IndexError, StopIteration, AttributeError) as exc:
        raise UserError(
            f"{flag}: {shown} is not an rsearch checkpoint (no config and weights to rebuild "
            f"the network: {type(exc).__name__} {str(exc)[:80]})"
        ) from None
    return state


def from_experiment(
    exp_dir: str,
    trial: str | None = None,
    regime: int | None = None,
    budget_ms: float | None = None,
    flag: str = "--trial",
) -> Source:
    """A trial of an experiment: `trial` by id, else the most accurate trained trial of
    `regime` (default: the longest) within `budget_ms`, as `rsearch analyze --budgets` picks
    it (results.best_under_budget)."""
    from rsearch import results  # pyarrow and pandas, for an experiment source only

    exp = results.read_experiment(exp_dir)
    row = _trial_row(exp, trial, flag) if trial is not None else _best_row(exp, regime, budget_ms)
    state = _trial_checkpoint(exp, row, flag)
    if row.get(M.STATUS) != M.STATUS_OK:
        print(
            f"warning: trial {row[M.TRIAL_ID]} is '{row.get(M.STATUS)}', not ok: its last "
            "checkpoint is what it had trained when it stopped",
            file=sys.stderr,
        )
    test_size = state["config"]["data"].get("test_size")
    measured = {
        M.MINIVAL_TOP1: row.get(M.MINIVAL_TOP1),
        M.MINIVAL_TOP1_SE: row.get(M.MINIVAL_TOP1_SE),
        M.TEST_TOP1: row.get(M.TEST_TOP1),
        "test_top1_se": _standard_error(row.get(M.TEST_TOP1), test_size),
        M.LATENCY_MS: row.get(M.LATENCY_MS),
        "latency_method": exp.meta.get("latency_method"),
        M.FLOPS: row.get(M.FLOPS),
        M.STATUS: row.get(M.STATUS),
    }
    config = TrainConfig.from_dict(state["config"])
    return Source(config, state, measured, str(row[M.TRIAL_ID]), str(exp.path))


def _trial_row(exp, trial: str, flag: str) -> dict:
    from rsearch.frames import plain  # pandas (see from_experiment)

    rows = exp.results[exp.results[M.TRIAL_ID].astype(str) == trial]
    if rows.empty:
        ids = list(exp.results[M.TRIAL_ID].astype(str))
        more = ", ..." if len(ids) > 5 else ""
        raise UserError(
            f"{flag}: {trial!r} is not a trial of {exp.name}; expected one of "
            f"{', '.join(ids[:5])}{more}"
        )
    return plain(rows.iloc[-1].to_dict())


def _best_row(exp, regime: int | None, budget_ms: float | None) -> dict:
    from rsearch import results  # pyarrow and pandas (see from_experiment)

    regimes = results.regimes(exp.results)
    if not regimes:
        raise UserError(f"--best: {exp.name} has no trials yet")
    if regime is None:
        regime = max(regimes)
    elif regime not in regimes:
        raise UserError(
            f"--regime: expected one of {', '.join(map(str, regimes))} (the experiment's "
            f"epoch regimes), got {regime}"
        )
    in_regime = exp.results[exp.results[M.EPOCHS] == regime]
    best = results.best_under_budget(in_regime, budget_ms).get(regime)
    if best is None:
        within = f" within {budget_ms:g} ms" if budget_ms is not None else ""
        raise UserError(f"--best: no finished trial of the {regime}-epoch regime{within}")
    return best


def _trial_checkpoint(exp, row: dict, flag: str) -> dict:
    """The trial's last checkpoint (a folder inside the experiment, named by its row)."""
    from rsearch import storage

    relative = row.get(M.CHECKPOINT)
    trial = row[M.TRIAL_ID]
    if not isinstance(relative, str) or not relative:
        raise UserError(
            f"{flag}: {trial} has no checkpoint ({row.get(M.STATUS)}: it trained no epoch)"
        )
    folder = storage.checkpoint_folder(exp.path, relative, trial, flag)
    location = storage.join(folder, CHECKPOINT_FILE)
    fs, path = storage.filesystem(location)
    try:
        with fs.open_input_stream(path) as f:
            data = f.read()
    except (OSError, FileNotFoundError):
        raise UserError(f"{flag}: {trial}'s checkpoint {location} is gone") from None
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / CHECKPOINT_FILE
        local.write_bytes(data)
        return _checkpoint(local, shown=location, flag=flag)


def source_of(
    location: str, trial: str | None, best: bool, regime: int | None, budget_ms: float | None
) -> Source:
    """SOURCE as the command names it: an experiment (with --trial or --best) or an `rsearch
    train --output` folder."""
    from rsearch import storage

    if storage.exists(storage.join(location, "experiment.json")):
        if trial is None and not best:
            raise UserError(
                "SOURCE: an experiment; expected --trial ID or --best to choose a trial"
            )
        return from_experiment(location, trial, regime, budget_ms)
    folder = Path(location).expanduser()
    if (folder / "summary.json").is_file():
        if trial is not None or best or regime is not None or budget_ms is not None:
            raise UserError(
                "--trial/--best: SOURCE is one `rsearch train` run, not an experiment; drop them"
            )
        return from_train_output(folder)
    raise UserError(
        f"SOURCE: expected an experiment folder (experiment.json) or an `rsearch train --output` "
        f"folder (summary.json), got '{location}'"
    )
