"""Confirmation runs: after a regime, its best front members re-trained with other seeds.

One seed's minival accuracy can put a model on the front by luck. With
`search.confirm: {top: K, seeds: [...]}` the K most accurate members of the regime's
Pareto front are trained again with each listed seed (except the one they were trained
with), as one more Tune run (`tune/regime_<E>_confirm`, its jobs listed in
plans/regime_<E>_confirm.json, resumable like the regime's own).
Each rerun is a row of results.parquet whose `confirms` column names its original trial;
reruns are never on the front themselves. The analysis reports mean +- standard
deviation per configuration and whether the front's order held.
"""

from __future__ import annotations

import sys

from rsearch import metrics as M
from rsearch import results
from rsearch.frames import ok_mask
from rsearch.tune import jobs as J


def front_to_confirm(exp_dir: str, regime: int, top: int) -> list[dict]:
    """Rows of the `top` most accurate original front members of a regime."""
    df = results.read_experiment(exp_dir, allow_empty=True).results
    if df.empty:
        return []
    original = df[M.CONFIRMS].isna()
    # `== True`: the column holds booleans and NaN (never-flagged rows), not only booleans.
    on_front = df[M.PARETO] == True  # noqa: E712
    members = df[(df[M.EPOCHS] == regime) & ok_mask(df) & original & on_front]
    return members.sort_values(M.MINIVAL_TOP1, ascending=False).head(top).to_dict("records")


def confirmation_jobs(members: list[dict], seeds: list[int]) -> list[dict]:
    """One job per (front member, seed other than its own): the member's config, another seed."""
    out = []
    for row in members:
        config = J.row_config(row)
        for seed in seeds:
            if seed != int(config.get("seed", 0)):
                out.append(
                    J.make_job(
                        f"{row[M.TRIAL_ID]}-seed{seed}",
                        {**config, "seed": seed},
                        of=row[M.TRIAL_ID],
                    )
                )
    return out


def run_confirmation(
    space, regime: int, ctx, exp_dir: str, resume: bool, quiet: bool, run_jobs
) -> None:
    """`run_jobs(run name, jobs, scheduler?)` runs a list of jobs as one Tune run (the driver's)."""
    confirm = space.search.confirm
    run = f"regime_{regime}_confirm"
    planned = J.load_plan(exp_dir, run) if resume else None
    if planned is None:
        planned = confirmation_jobs(
            front_to_confirm(exp_dir, regime, confirm.top), list(confirm.seeds)
        )
        if not planned:
            return
        J.save_plan(exp_dir, run, planned)
    todo = J.pending(planned, J.recorded_trials(exp_dir, regime, confirmations=True), exp_dir)
    if not todo:
        return
    if not quiet:
        members = len({job["of"] for job in planned})
        print(
            f"[rsearch] regime {regime} epochs: confirming {members} front members "
            f"with {len(todo)} reruns (seeds {list(confirm.seeds)})",
            file=sys.stderr,
            flush=True,
        )
    run_jobs(run, todo, scheduled=False)
