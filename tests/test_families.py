"""Comparing two families' fronts: the speed ratio at equal accuracy, known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rsearch import metrics as m
from rsearch.families import Front, compare, regime_fronts


def table(rows):
    """A results table of trained originals: (family, epochs, accuracy, latency) per row."""
    return pd.DataFrame(
        {
            m.FAMILY: [r[0] for r in rows],
            m.EPOCHS: [r[1] for r in rows],
            m.MINIVAL_TOP1: [r[2] for r in rows],
            m.LATENCY_MS: [r[3] for r in rows],
            m.STATUS: m.STATUS_OK,
            m.CONFIRMS: None,
        }
    )


def test_a_family_exactly_twice_as_fast_at_every_accuracy_gives_two():
    rng = np.random.default_rng(0)
    accuracy = np.sort(rng.uniform(0.5, 0.8, 6))
    latency = np.exp(np.linspace(0, 3, 6))  # fronts: more accuracy costs more latency
    rows = [("resnetrs", 10, a, t) for a, t in zip(accuracy, latency)]
    rows += [("efficientnet", 10, a, 2 * t) for a, t in zip(accuracy, latency)]
    # dominated models of each family, which must not move the answer
    rows += [("resnetrs", 10, 0.55, 50.0), ("efficientnet", 10, 0.6, 400.0)]
    # another regime, and a failed and a confirmation row, which must not either
    rows += [("efficientnet", 30, 0.9, 0.1)]
    results = table(rows)
    results.loc[len(results)] = {
        **results.iloc[0].to_dict(),
        m.STATUS: m.STATUS_FAILED,
        m.LATENCY_MS: 0.01,
    }
    results.loc[len(results)] = {**results.iloc[0].to_dict(), m.CONFIRMS: "x", m.LATENCY_MS: 0.01}
    answer = compare(regime_fronts(results, 10))
    assert (answer.faster, answer.slower) == ("resnetrs", "efficientnet")
    assert answer.median_ratio == pytest.approx(2.0)
    assert answer.min_ratio == pytest.approx(2.0) and answer.max_ratio == pytest.approx(2.0)
    assert answer.accuracy_range == pytest.approx((accuracy[0], accuracy[-1]))
    assert answer.to_dict()["median_ratio"] == pytest.approx(2.0)


def test_the_ratio_is_read_only_where_the_fronts_overlap():
    a = Front.of([0.5, 0.6, 0.7], [1.0, 2.0, 4.0])
    b = Front.of([0.65, 0.9], [3.0, 30.0])
    answer = compare({"a": a, "b": b})
    assert answer.accuracy_range == pytest.approx((0.65, 0.7))
    assert answer.faster == "a" and answer.min_ratio > 1


def test_fronts_that_do_not_meet_say_so():
    answer = compare({"a": Front.of([0.5, 0.6], [1, 2]), "b": Front.of([0.7, 0.8], [3, 4])})
    assert answer.median_ratio is None and answer.accuracy_range is None
    assert answer.reason == (
        "the fronts do not overlap in accuracy: a spans [0.5, 0.6], b spans [0.7, 0.8]"
    )


def test_one_family_or_rows_without_a_family_have_no_ratio():
    results = table([("resnetrs", 10, 0.5, 1.0)]).drop(columns=[m.FAMILY])
    fronts = regime_fronts(results, 10)
    assert list(fronts) == [m.DEFAULT_FAMILY]  # older results read as ResNet-RS
    assert compare(fronts).reason == "expected two families with trained models, got 1"
