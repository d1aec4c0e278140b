"""Confirmation runs: after a regime, its best front members re-trained with other seeds.

One seed's minival accuracy can put a model on the front by luck. With
`search.confirm: {top: K, seeds: [...]}` the K most accurate members of the regime's
Pareto front are trained again with each listed seed (except the one they were trained
with), as one more Tune run (`tune/regime_<E>_confirm`, resumable like the regime's own).
Each rerun is a row of results.parquet whose `confirms` column names its original trial;
reruns are never on the front themselves. The analysis reports mean +- standard
deviation per configuration and whether the front's order held.
"""
from __future__ import annotations

import sys

from rsearch import metrics as M
from rsearch import results, storage
from rsearch.tune.trial import CONFIRMATION


def front_to_confirm(exp_dir: str, regime: int, top: int) -> list[str]:
    """Trial ids of the `top` most accurate original front members of a regime."""
    df = results.read_experiment(exp_dir, allow_empty=True).results
    if df.empty:
        return []
    original = df[M.CONFIRMS].isna() if M.CONFIRMS in df else True
    members = df[(df[M.EPOCHS] == regime) & (df[M.STATUS] == M.STATUS_OK) & original & (df[M.PARETO] == True)]  # noqa: E712
    return list(members.sort_values(M.MINIVAL_TOP1, ascending=False)[M.TRIAL_ID].head(top))


def confirmation_jobs(trial_ids: list[str], configs: dict, seeds: list[int]) -> list[dict]:
    """One job per (front member, seed other than its own)."""
    jobs = []
    for trial_id in trial_ids:
        config = configs[trial_id]
        for seed in seeds:
            if seed != int(config.get("seed", 0)):
                jobs.append({"of": trial_id, "seed": seed, "config": config})
    return jobs


def run_confirmation(space, regime: int, configs: dict, ctx, exp_dir: str, resume: bool, quiet: bool,
                     trainable, describe, fit) -> None:
    from ray import tune

    from rsearch.tune.recorder import ResultsRecorder
    from rsearch.tune.tuner import run_config

    confirm = space.search["confirm"]
    path = storage.join(exp_dir, "tune", f"regime_{regime}_confirm")
    where = storage.ray_storage(path)
    restore = {"path": where["storage_path"], "storage_filesystem": where.get("storage_filesystem")}
    recorder = ResultsRecorder(exp_dir, ctx.costs, describe, quiet=quiet)
    if resume and tune.Tuner.can_restore(**restore):
        tuner = tune.Tuner.restore(**restore, trainable=trainable, resume_unfinished=True, resume_errored=False,
                                   restart_errored=False)
    else:
        jobs = confirmation_jobs(front_to_confirm(exp_dir, regime, confirm["top"]), configs, confirm["seeds"])
        if not jobs:
            return
        tune_config = tune.TuneConfig(metric=M.OBJECTIVE, mode=M.OBJECTIVE_MODE,
                                      max_concurrent_trials=space.search.get("max_concurrent"), reuse_actors=True)
        tuner = tune.Tuner(trainable, param_space={CONFIRMATION: tune.grid_search(jobs)}, tune_config=tune_config,
                           run_config=run_config(path, recorder))
        if not quiet:
            print(f"[rsearch] regime {regime} epochs: confirming {len({j['of'] for j in jobs})} front members "
                  f"with {len(jobs)} reruns (seeds {confirm['seeds']})", file=sys.stderr, flush=True)
    fit(tuner)
