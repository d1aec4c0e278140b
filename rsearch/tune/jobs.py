"""A search's trials as rsearch's own records, so that `--resume` never unpickles anything.

Ray Tune restores a run by unpickling files in the experiment folder (tuner.pkl, the
trial states inside experiment_state-*.json, searcher state, error.pkl). Experiment
folders are shared (a bucket, a team's NFS), so whoever can write there could run code
on the next `--resume`. rsearch therefore never calls Tuner.restore. What it resumes
from is data only:

- plans/<run>.json: every job of a grid or random run, drawn up front with Ray's own
  variant generator, seeded (the same space and seed draw the same jobs);
- results.parquet: per trial its status, its config as JSON (`trial_config`) and its
  latest checkpoint folder (`checkpoint`, relative to the experiment);
- checkpoint.pt files, loaded with torch.load(weights_only=True).

A job is one trial's config wrapped as {JOB: {"id", "config", "of"?, "checkpoint"?}}: the
id is the trial's row in results.parquet (stable across resumes), "of" names the original
of a confirmation rerun, "checkpoint" is where a resumed trial continues from. Tune runs
a list of jobs through JobQueue, a searcher that hands them out in order. HyperOpt's
trials are not drawn up front (TPE adapts); a resumed HyperOpt search re-runs its
unfinished trials as jobs and continues with a TPE that has seen every finished one
(tuner.WarmStartHyperOpt).
"""

from __future__ import annotations

import json
import re

import pyarrow.fs as pafs
from ray.tune.search import Searcher
from ray.tune.search.sample import _BackwardsCompatibleNumpyRng
from ray.tune.search.variant_generator import generate_variants

from rsearch import metrics as M
from rsearch import results, storage
from rsearch.errors import UserError
from rsearch.frames import records
from rsearch.space.space import MAX_PLANNED_TRIALS

JOB = "job"
PLANS = "plans"  # the experiment's folder of job lists, one JSON file per Tune run
FINAL = (M.STATUS_OK, M.STATUS_INFEASIBLE, M.STATUS_FAILED, M.STATUS_STOPPED)


def make_job(job_id: str, config: dict, *, of: str | None = None) -> dict:
    job = {"id": job_id, "config": config}
    return {**job, "of": of} if of is not None else job


def unwrap(config: dict) -> dict:
    """The config a trial trains (a job's, or Tune's own for a HyperOpt suggestion)."""
    job = config.get(JOB)
    return config if job is None else job["config"]


def job_field(config: dict, key: str):
    return (config.get(JOB) or {}).get(key)


def row_key(trial) -> str:
    """The trial's row in results.parquet: its job id, else Tune's trial id."""
    return job_field(trial.config, "id") or trial.trial_id


class JobQueue(Searcher):
    """Tune's searcher for a list of jobs: hands them out one by one, in order (run it with
    num_samples=len(jobs)). The jobs as one grid_search dimension would do the same, but Ray's
    variant generator deep-copies the whole list for every trial it makes
    (variant_generator._grid_search_generator): quadratic, about 30 s at 1,000 jobs and hours at
    10,000 (benchmarks/driver_scale.py)."""

    def __init__(self, jobs: list[dict]):
        super().__init__()
        self._jobs, self._next = list(jobs), 0

    def suggest(self, trial_id: str) -> dict | str:
        if self._next == len(self._jobs):
            return Searcher.FINISHED
        self._next += 1
        return {JOB: self._jobs[self._next - 1]}

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        pass  # the jobs are drawn up front: nothing to learn

    def save(self, checkpoint_path: str) -> None:
        pass  # nothing to keep: a resume runs from rsearch's own records (this module's doc)

    def restore(self, checkpoint_path: str) -> None:
        pass


def draw(param_space: dict, num_samples: int, seed: int | None, prefix: str) -> list[dict]:
    """Every trial of a grid/random run, as Tune's BasicVariantGenerator would make them:
    the grid repeated num_samples times, other dimensions sampled (seeded: reproducible)."""
    rng = _BackwardsCompatibleNumpyRng(seed)
    configs = [
        spec["config"]
        for _ in range(num_samples)
        for _, spec in generate_variants({"config": param_space}, random_state=rng)
    ]
    return [make_job(f"{prefix}-{i:05d}", _as_json(config)) for i, config in enumerate(configs)]


def _as_json(value):
    """numpy scalars -> Python values: a job is JSON."""
    return json.loads(
        json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o))
    )


def config_json(config: dict) -> str:
    return json.dumps(_as_json(unwrap(config)), sort_keys=True)


# --------------------------------------------------------------------------- plans


def save_plan(exp_dir: str, run: str, jobs: list[dict]) -> None:
    results.write_file_atomic(
        storage.join(exp_dir, PLANS), f"{run}.json", (json.dumps(jobs, indent=1) + "\n").encode()
    )


MAX_PLAN_BYTES = 256 * 2**20  # a plan of MAX_PLANNED_TRIALS jobs is well under this
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")  # also a Ray Train run name under train/


def load_plan(exp_dir: str, run: str) -> list[dict] | None:
    """The run's jobs as saved when it started; None when it never started."""
    location = storage.join(exp_dir, PLANS, f"{run}.json")
    fs, path = storage.filesystem(location)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        return None
    if info.type != pafs.FileType.File or (info.size or 0) > MAX_PLAN_BYTES:
        raise UserError(
            f"--resume: {location} is not an rsearch job list; expected a file of at most "
            f"{MAX_PLAN_BYTES // 2**20} MiB"
        )
    with fs.open_input_stream(path) as stream:
        raw = stream.read(MAX_PLAN_BYTES + 1)
    try:
        jobs = json.loads(raw)
    except ValueError as exc:
        raise UserError(
            f"--resume: {location} is not valid JSON ({str(exc)[:100]}); expected the job list "
            "rsearch wrote"
        ) from None
    if not isinstance(jobs, list) or not all(_is_job(j) for j in jobs):
        raise UserError(
            f"--resume: {location} is not an rsearch job list; expected a JSON list of "
            '{"id": letters, digits, "_.-", "config": object}'
        )
    ids = [j["id"] for j in jobs]
    if len(jobs) > MAX_PLANNED_TRIALS or len(set(ids)) != len(ids):
        raise UserError(
            f"--resume: {location} is not an rsearch job list; expected at most "
            f"{MAX_PLANNED_TRIALS:,} jobs with distinct ids, "
            f"got {len(jobs):,} ({len(set(ids)):,} distinct)"
        )
    return jobs


def _is_job(job) -> bool:
    return (
        isinstance(job, dict)
        and isinstance(job.get("id"), str)
        and bool(_JOB_ID.fullmatch(job["id"]))
        and isinstance(job.get("config"), dict)
    )


# --------------------------------------------------------------------------- resuming


def recorded_trials(exp_dir: str, regime: int, confirmations: bool) -> dict[str, dict]:
    """Row per trial id of the regime's Tune trials in results.parquet: originals, or
    confirmation reruns (rows without a config are grid configs over the budget, never run)."""
    frame = results.read_experiment(exp_dir, allow_empty=True).results
    if frame.empty:
        return {}
    rerun = frame[M.CONFIRMS].notna()
    mine = frame[
        (frame[M.EPOCHS] == regime)
        & (rerun if confirmations else ~rerun)
        & frame[M.TRIAL_CONFIG].notna()
    ]
    return {row[M.TRIAL_ID]: row for row in records(mine)}


def check_records(exp_dir: str, trainable) -> None:
    """Everything a resume will read, read once before Ray starts: every job list, every
    recorded trial config and checkpoint folder; `trainable(config)` raises what the trial
    would (UserError on the first record that is not rsearch's or not a trial of this space)."""
    for name in storage.entry_names(storage.join(exp_dir, PLANS)):
        if name.endswith(".json") and not name.startswith("."):
            for job in load_plan(exp_dir, name[: -len(".json")]):
                _check_config(trainable, job["config"], f"{PLANS}/{name}, job {job['id']}")
    frame = results.read_experiment(exp_dir, allow_empty=True).results
    for row in records(frame[frame[M.TRIAL_CONFIG].notna()]):
        if not _JOB_ID.fullmatch(str(row[M.TRIAL_ID])):
            raise UserError(
                f"--resume: results.parquet has trial id {str(row[M.TRIAL_ID])[:100]!r}; expected "
                "letters, digits and _.-"
            )
        job = with_checkpoint(make_job(row[M.TRIAL_ID], row_config(row)), row, exp_dir)
        _check_config(trainable, job["config"], f"results.parquet, trial {job['id']}")


def _check_config(trainable, config: dict, where: str) -> None:
    try:
        trainable(config)
    except UserError as exc:
        raise UserError(f"--resume: {where}: {exc}") from None
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise UserError(
            f"--resume: {where}: expected a trial config of this space, got "
            f"{type(exc).__name__}: {str(exc)[:100]}"
        ) from None


def pending(jobs: list[dict], recorded: dict[str, dict], exp_dir: str) -> list[dict]:
    """The jobs a resumed run still has to do: those never started, and those started but
    unfinished, which continue from their last checkpoint."""
    todo = []
    for job in jobs:
        row = recorded.get(job["id"])
        if row is None:
            todo.append(job)
        elif row[M.STATUS] not in FINAL:
            todo.append(with_checkpoint(job, row, exp_dir))
    return todo


def unfinished_jobs(recorded: dict[str, dict], exp_dir: str) -> list[dict]:
    """Started, unfinished trials (HyperOpt's) as jobs that continue from their checkpoints."""
    return [
        with_checkpoint(make_job(trial_id, row_config(row), of=row.get(M.CONFIRMS)), row, exp_dir)
        for trial_id, row in recorded.items()
        if row[M.STATUS] not in FINAL
    ]


def finished_points(recorded: dict[str, dict]) -> list[tuple[dict, dict]]:
    """(config, {metric: value} as the searcher saw them) of every finished trial: the objective
    (infeasible and failed trials reported 0.0) and the costs a multi-objective searcher
    minimises."""
    return [
        (
            row_config(row),
            {
                M.OBJECTIVE: float(row.get(M.OBJECTIVE) or 0.0),
                **{key: row.get(key) for key in (M.LATENCY_MS, M.FLOPS)},
            },
        )
        for row in recorded.values()
        if row[M.STATUS] in FINAL
    ]


def with_checkpoint(job: dict, row: dict, exp_dir: str) -> dict:
    relative = row.get(M.CHECKPOINT)
    if relative is None:
        return job
    folder = storage.checkpoint_folder(exp_dir, relative, job["id"], "--resume")
    return {**job, "checkpoint": folder}


def row_config(row: dict) -> dict:
    try:
        config = json.loads(row[M.TRIAL_CONFIG])
    except (TypeError, ValueError):
        config = None
    if not isinstance(config, dict):
        raise UserError(
            f"--resume: results.parquet holds no readable trial_config "
            f"for trial {row[M.TRIAL_ID]}; expected the JSON object rsearch wrote"
        )
    return config


def checkpoint_relative(exp_dir: str, checkpoint) -> str | None:
    """A Tune checkpoint's folder relative to the experiment (so a moved or copied
    experiment still resumes); None when it lies elsewhere."""
    _, root = storage.filesystem(exp_dir)
    root = root.rstrip("/") + "/"
    path = str(checkpoint.path)
    return path[len(root) :] if path.startswith(root) else None
