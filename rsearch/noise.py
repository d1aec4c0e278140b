"""How much of a measured difference is noise: the few formulas every reader of results shares.

A minival accuracy is a binomial estimate: p correct out of n images has standard error
sqrt(p(1-p)/n) (80 images on the quickstart: +-0.056 at p=0.5). Two measurements are
told apart only when they differ by more than NOISE_Z standard errors of the difference;
the store (the minival_top1_se column), the scheduler (Pareto ASHA's margin), the
analysis and the dashboards all use these functions, so they never disagree on what
counts as noise. numpy only, like rsearch/pareto.py.
"""

from __future__ import annotations

import math

import numpy as np

# A difference is evidence when it exceeds this many standard errors (about 95% two-sided).
NOISE_Z = 2.0

EXCEEDS, WITHIN, UNKNOWN = "exceeds noise", "within noise", "noise unknown"


def binomial_se(accuracy, n):
    """sqrt(p(1-p)/n): the standard error of an accuracy p measured on n images, elementwise.

    NaN where p or n is missing, n <= 0, or p is no proportion (outside [0, 1]): an
    unknown SE stays unknown instead of becoming a confident 0.
    """
    p, size = np.asarray(accuracy, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.where((size > 0) & (p >= 0) & (p <= 1), np.sqrt(p * (1 - p) / size), np.nan)
    return float(se) if se.ndim == 0 else se


def minival_noise(minival_size: int) -> float:
    """The largest standard error of an accuracy measured on `minival_size` images (p = 0.5);
    0 for an empty split (no margin rather than an infinite one)."""
    return binomial_se(0.5, minival_size) if minival_size > 0 else 0.0


# A minival whose accuracies' standard error (at p = 0.5) exceeds this cannot rank models that
# differ by a few points: the user is warned at the start of a run.
NOISY_MINIVAL_SE = 0.025


def small_minival_warning(minival_size: int) -> str | None:
    """The warning for a minival too small to rank models, or None."""
    se = minival_noise(minival_size)
    if not minival_size or se <= NOISY_MINIVAL_SE:
        return None
    return (
        f"warning: the minival split holds {minival_size} images, so one accuracy's standard "
        f"error is up to {100 * se:.1f} points (> {100 * NOISY_MINIVAL_SE:g}); differences "
        f"smaller than about {200 * se:.0f} points cannot rank models. Raise the training set "
        "size or the minival fraction (a space's data.train_size and data.minival_fraction; "
        "--train-size)."
    )


def within_noise(acc_a, se_a, acc_b, se_b, z: float = NOISE_Z) -> np.ndarray:
    """1.0 where |acc_a - acc_b| <= z * sqrt(se_a^2 + se_b^2) (cannot be told apart), 0.0 where
    they differ by more, NaN where an accuracy or SE is unknown. Elementwise."""
    diff = np.abs(np.asarray(acc_a, dtype=float) - np.asarray(acc_b, dtype=float))
    margin = z * np.hypot(np.asarray(se_a, dtype=float), np.asarray(se_b, dtype=float))
    return np.where(np.isnan(diff) | np.isnan(margin), np.nan, (diff <= margin).astype(float))


def exceeds(effect: float | None, se: float | None, z: float = NOISE_Z) -> bool | None:
    """Whether a (signed) lead is larger than z standard errors; None when either is unknown."""
    if effect is None or se is None or math.isnan(effect) or math.isnan(se):
        return None
    return bool(effect > z * se)


def all_exceed(verdicts) -> bool | None:
    """A claim resting on several comparisons: False if any is within noise, None if any
    is unknown, True only when all of them exceed it."""
    verdicts = list(verdicts)
    if False in verdicts:
        return False
    return None if (None in verdicts or not verdicts) else True


def verdict(exceeded: bool | None) -> str:
    """The words every report uses for a noise verdict."""
    return UNKNOWN if exceeded is None else EXCEEDS if exceeded else WITHIN
