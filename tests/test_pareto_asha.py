"""The Pareto-rank successive-halving scheduler: rungs per regime and its promotion rule."""

from __future__ import annotations

import functools
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
from ray.tune.schedulers import TrialScheduler

from rsearch import metrics as M
from rsearch import results
from rsearch.pareto import pareto_ranks
from rsearch.tune.pareto_asha import ParetoASHA, Rung, _place, minival_noise, rung_epochs
from rsearch.tune.tuner import trial_latency

CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP


@pytest.mark.parametrize(
    "regime,fraction,rf,rungs",
    [
        (9, 1 / 3, 3, [3]),
        (3, 1 / 3, 3, [1]),
        (350, 1 / 3, 3, [117]),
        (27, 1 / 9, 3, [3, 9]),
        (1, 1 / 3, 3, []),
        (2, 0.5, 2, [1]),
        (10, 0.1, 2, [1, 2, 5]),
        (10, 0.3333, 3, [3]),
        (100, 0.3333, 3, [33]),
        (350, 0.3333, 3, [117]),
        (3, 0.3333, 3, [1]),
    ],
)
def test_rungs_sit_at_a_fraction_of_each_regime(regime, fraction, rf, rungs):
    assert rung_epochs(regime, fraction, rf) == rungs


def report(scheduler, name, accuracy, latency, epoch=3):
    trial = SimpleNamespace(trial_id=name, config={})
    return scheduler.on_trial_result(
        None, trial, {M.EPOCH: epoch, M.MINIVAL_TOP1: accuracy, M.LATENCY_MS: latency}
    )


def test_a_fast_less_accurate_model_is_kept_where_accuracy_alone_would_stop_it():
    sched = ParetoASHA(regime=9, cost_of=lambda trial, result: result[M.LATENCY_MS])
    assert report(sched, "slow-accurate", 0.60, 4.0) == CONTINUE  # first at its rung
    assert report(sched, "slow-worse", 0.50, 4.2) == STOP  # dominated, not in the top 1/3
    assert report(sched, "mid", 0.55, 3.9) == CONTINUE  # on the front
    # Third-best accuracy of four: plain ASHA (top 1/3) stops it; it is the fastest, so on the
    # front.
    assert report(sched, "fast", 0.52, 2.0) == CONTINUE
    assert report(sched, "slower-still", 0.40, 5.0) == STOP
    assert report(sched, "before-any-rung", 0.01, 9.0, epoch=2) == CONTINUE  # only rungs decide


def test_behind_the_front_the_top_share_by_rank_then_accuracy_continues():
    sched = ParetoASHA(
        regime=6,
        cost_of=lambda trial, result: result[M.LATENCY_MS],
        grace_fraction=0.5,
        reduction_factor=2,
    )  # one rung, at 3 epochs
    assert report(sched, "a", 0.9, 1.0) == CONTINUE  # dominates everything after it
    assert report(sched, "b", 0.5, 2.0) == STOP  # rank 1 of 2 seen; the top 1/2 is "a"
    assert report(sched, "c", 0.6, 1.5) == CONTINUE  # rank 1 (b falls to 2): in the top 2 of 3


def test_failed_and_infeasible_reports_are_not_ranked():
    sched = ParetoASHA(regime=9, cost_of=lambda trial, result: result.get(M.LATENCY_MS))
    trial = SimpleNamespace(trial_id="x", config={})
    result = {M.EPOCH: 3, M.MINIVAL_TOP1: 0.0, M.STATUS: M.STATUS_FAILED}
    assert sched.on_trial_result(None, trial, result) == CONTINUE and not sched.recorded[3]


def test_latency_comes_from_the_report_else_the_cost_table_else_flops():
    costs = {"26,0.25,32": {M.LATENCY_MS: 2.5, M.FLOPS: 7}, "26,0.5,32": {M.FLOPS: 30}}
    trial = SimpleNamespace(config={"arch": [26, 0.25, 32]})
    assert trial_latency(costs, trial, {M.LATENCY_MS: 1.5}) == 1.5
    assert trial_latency(costs, trial, {}) == 2.5
    assert trial_latency(costs, SimpleNamespace(config={"arch": [26, 0.5, 32]}), {}) == 30
    assert trial_latency({}, SimpleNamespace(config={"arch": [26, 0.5, 32]}), {}) is None


def test_a_faster_model_inside_the_minival_noise_does_not_push_a_trial_off_the_front():
    noisy = ParetoASHA(
        regime=9, cost_of=lambda trial, result: result[M.LATENCY_MS], noise=minival_noise(80)
    )
    exact = ParetoASHA(regime=9, cost_of=lambda trial, result: result[M.LATENCY_MS])
    for sched, verdict in ((noisy, CONTINUE), (exact, STOP)):
        assert report(sched, "fast", 0.30, 2.0) == CONTINUE
        assert report(sched, "slower-one-image-worse", 0.2875, 2.4) == verdict  # 1 of 80 images
        assert report(sched, "slower-and-clearly-worse", 0.15, 2.5) == STOP


def test_minival_noise_is_the_largest_standard_error_of_the_split():
    assert minival_noise(80) == pytest.approx(0.0559, abs=1e-4)
    assert minival_noise(25_600) == pytest.approx(0.003125)  # 2% of ImageNet
    assert minival_noise(0) == 0.0


def test_the_scheduler_pickles_with_the_tuner_for_resume():
    costs = {"26,0.25,32": {M.LATENCY_MS: 2.5}}
    sched = ParetoASHA(regime=9, cost_of=functools.partial(trial_latency, costs), noise=0.01)
    restored = pickle.loads(pickle.dumps(sched))
    trial = SimpleNamespace(trial_id="t", config={"arch": [26, 0.25, 32]})
    assert restored.on_trial_result(None, trial, {M.EPOCH: 3, M.MINIVAL_TOP1: 0.5}) == CONTINUE
    assert restored.recorded[3]["t"] == (0.5, 2.5)
    assert restored.set_search_properties(M.OBJECTIVE, M.OBJECTIVE_MODE)
    assert not restored.set_search_properties("test_top1", "max")


def test_a_resumed_search_refills_its_rungs_from_the_results_store(tmp_path):
    exp_dir = str(tmp_path / "exp")
    results.create_experiment(exp_dir, {"name": "exp"}, {})
    arch = {M.DEPTH: 26, M.WIDTH: 0.25, M.RESOLUTION: 32}
    results.write_results(
        exp_dir,
        [
            {
                M.TRIAL_ID: "before",
                M.STATUS: M.STATUS_RUNNING,
                **arch,
                M.EPOCHS: 9,
                M.LATENCY_MS: 2.0,
            },
            {
                M.TRIAL_ID: "other-regime",
                M.STATUS: M.STATUS_OK,
                **arch,
                M.EPOCHS: 3,
                M.LATENCY_MS: 1.0,
            },
        ],
    )
    results.write_curves(
        exp_dir,
        [
            {M.TRIAL_ID: "before", M.EPOCH: 3, M.MINIVAL_TOP1: 0.6},
            {M.TRIAL_ID: "other-regime", M.EPOCH: 3, M.MINIVAL_TOP1: 0.9},
        ],
    )
    # Tune restores the scheduler as it was pickled: empty. Its first decision sees "before".
    sched = ParetoASHA(
        regime=9, cost_of=lambda trial, result: result[M.LATENCY_MS], exp_dir=exp_dir
    )
    assert report(sched, "after", 0.3, 2.5) == STOP  # behind "before" (faster, far more accurate)
    assert set(sched.recorded[3]) == {
        "before",
        "after",
    }  # the 3-epoch regime's trial is not this rung's


def test_a_trials_place_at_a_rung_is_its_index_in_the_rank_then_accuracy_order():
    # _place counts with arrays what sorting every trial of the rung would give
    rng = np.random.default_rng(0)
    for _ in range(200):
        rung = Rung()
        for _ in range(int(rng.integers(1, 40))):
            key = f"k{rng.integers(0, 25)}"  # some trials report again: they keep their place
            cost = float("nan") if rng.random() < 0.1 else float(rng.integers(0, 5))
            rung[key] = (float(rng.integers(0, 5)) / 4, cost)
        points = rung.points()
        ranks = pareto_ranks(points, maximize=(True, False))
        order = sorted(range(len(points)), key=lambda i: (ranks[i], -points[i, 0]))
        assert [_place(points, i) for i in range(len(points))] == [
            order.index(i) for i in range(len(points))
        ]
