"""How sure a number is: intervals for an accuracy and for a mean over replicate runs, and the tests
that say whether one classifier beats another. scipy.stats computes every distribution; this module
says which one answers which question.

- One run's accuracy on N images: Wilson's score interval (binomial).
- Replicates (seeds, folds) of one configuration: mean, standard deviation, Student's t interval.
- Two runs scored on the same images: McNemar's exact test on the images one got right and the other
  wrong (Dietterich 1998), and the accuracy difference's exact conditional interval, which agrees
  with it.
- Two groups of replicates: Welch's t interval and test of the difference of their means.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.stats import binom, binomtest, t, ttest_ind

LEVEL = 0.95


def accuracy_interval(correct: int, images: int, level: float = LEVEL) -> dict[str, Any]:
    """The `level` confidence interval of an accuracy of `correct` out of `images` (Wilson's score
    interval, scipy's: unlike the normal approximation it stays inside [0, 1] near 100%)."""
    interval = binomtest(correct, images).proportion_ci(level, method="wilson")
    return {"low": float(interval.low), "high": float(interval.high), "level": level,
            "method": "wilson"}  # fmt: skip


def mean_interval(values: Sequence[float], level: float = LEVEL) -> dict[str, Any]:
    """n, mean, sample standard deviation and the Student's t interval of the mean of replicate
    runs; the spread and interval are None for fewer than two."""
    array = np.asarray(values, dtype=float)
    n = len(array)
    mean = float(array.mean()) if n else None
    if n < 2:
        return {"n": n, "mean": mean, "sd": None, "low": None, "high": None}
    sd = float(array.std(ddof=1))
    half = float(t.ppf((1 + level) / 2, n - 1)) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "low": mean - half, "high": mean + half}


def paired_test(a_correct: np.ndarray, b_correct: np.ndarray, level: float = LEVEL) -> dict:
    """Runs A and B on the same images (boolean: right on each): how many only A got right and only
    B, McNemar's exact p-value (the binomial on those discordant images: twice the rarer count's
    tail), and the accuracy difference B - A with its exact conditional interval at `level`.

    The interval is Clopper-Pearson's for the share of the discordant images that B got right,
    scaled by their number: it excludes zero exactly when the test's p is below 1 - level, so the
    two never disagree (a paired t interval can exclude zero where the exact test finds nothing).
    With no discordant image at all, the difference is bounded by how many there could have been:
    the Clopper-Pearson upper bound of the discordant share, 0 of the images, either way."""
    a_correct, b_correct = np.asarray(a_correct, bool), np.asarray(b_correct, bool)
    images = len(a_correct)
    a_only = int((a_correct & ~b_correct).sum())
    b_only = int((b_correct & ~a_correct).sum())
    discordant = a_only + b_only
    if discordant == 0:
        bound = float(binomtest(0, images).proportion_ci(level, method="exact").high)
        p_value, low, high = 1.0, -bound, bound
    else:
        share = binomtest(b_only, discordant, 0.5)
        interval = share.proportion_ci(level, method="exact")
        scale = discordant / images
        p_value = float(share.pvalue)
        low, high = scale * (2 * interval.low - 1), scale * (2 * interval.high - 1)
    return {"test": "mcnemar_exact", "images": images, "a_only": a_only,
            "b_only": b_only, "difference": (b_only - a_only) / images, "low": float(low),
            "high": float(high), "interval": "exact_conditional", "level": level,
            "p_value": p_value,
            "detectable": detectable_difference(discordant, images, 1 - level)}  # fmt: skip


def detectable_difference(
    discordant: int, images: int, alpha: float, power: float = 0.8
) -> float | None:
    """The smallest accuracy difference McNemar's exact test at `alpha` detects with `power`, for
    two runs that disagree on `discordant` of `images` images (as observed): the share of those
    images one run gets right at which the test rejects that often, as a difference. None where
    no split of so few discordant images could reach `alpha` (five or fewer, at 0.05)."""
    counts = range(discordant // 2 + 1, discordant + 1)
    # The exact test's p for k of n at 1/2: twice the upper tail P(X >= k).
    critical = next((k for k in counts if 2 * binom.sf(k - 1, discordant, 0.5) < alpha), None)
    if critical is None:
        return None
    share = brentq(lambda p: binom.sf(critical - 1, discordant, p) - power, 0.5, 1.0)
    return discordant / images * (2 * share - 1)


def welch_test(a_values: Sequence[float], b_values: Sequence[float], level: float = LEVEL) -> dict:
    """Two groups of replicate runs: the difference of their means (B - A) with Welch's t interval
    and p-value (unequal variances). Needs two or more runs on each side."""
    a, b = np.asarray(a_values, float), np.asarray(b_values, float)
    difference = float(b.mean() - a.mean())
    result = {"test": "welch", "a_n": len(a), "b_n": len(b), "difference": difference,
              "level": level}  # fmt: skip
    if a.std(ddof=1) == 0 and b.std(ddof=1) == 0:  # no spread on either side: t is undefined
        return result | {"low": None, "high": None, "p_value": None}
    test = ttest_ind(b, a, equal_var=False)
    interval = test.confidence_interval(level)
    return result | {"low": float(interval.low), "high": float(interval.high),
                     "p_value": float(test.pvalue)}  # fmt: skip


def holm(p_values: Sequence[float], alpha: float) -> tuple[list[float], list[float]]:
    """Holm's step-down correction of several tests at family-wise `alpha` (Bonferroni's guarantee,
    more power): each test's adjusted p-value (a difference counts where it is below `alpha`), and
    the level for each test's interval that agrees with that decision: 1 - alpha / (m - r) for the
    r-th smallest p (from 0) while the steps reject, the level of the step that stopped after."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, levels = [1.0] * m, [1.0 - alpha] * m
    running, stop = 0.0, m
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
        if stop == m and p_values[index] >= alpha / (m - rank):
            stop = rank
        levels[index] = 1.0 - alpha / (m - min(rank, stop))
    return adjusted, levels


def cross_validated_interval(
    values: Sequence[float], level: float = LEVEL, folds: int | None = None
) -> dict[str, Any]:
    """The mean of cross-validated accuracies (k folds, or r repetitions of k folds: `folds` = k)
    with Nadeau and Bengio's corrected resampled t interval: the folds share most of their training
    images, so their spread understates the estimate's; the variance of the mean of J values is
    (1/J + n_val/n_train) s^2, n_val/n_train = 1/(k-1) for k-fold, with J - 1 degrees of freedom.
    None for the bounds with fewer than two values."""
    array = np.asarray(values, dtype=float)
    count = len(array)
    mean = float(array.mean()) if count else None
    if count < 2:
        return {"n": count, "mean": mean, "low": None, "high": None, "method": "nadeau_bengio"}
    k = folds or count
    half = float(t.ppf((1 + level) / 2, count - 1)) * math.sqrt(
        (1 / count + 1 / (k - 1)) * float(array.var(ddof=1))
    )
    return {"n": count, "mean": mean, "low": mean - half, "high": mean + half, "level": level,
            "method": "nadeau_bengio"}  # fmt: skip


def fold_paired_test(
    a_values: Sequence[float],
    b_values: Sequence[float],
    level: float = LEVEL,
    folds: int | None = None,
) -> dict[str, Any]:
    """Two recipes cross-validated on the same folds (value i of each on fold i; r repetitions of
    k folds: `folds` = k): the mean of the fold-by-fold differences B - A with Nadeau and Bengio's
    corrected resampled t (interval and two-sided p, J - 1 degrees of freedom for J values)."""
    differences = np.asarray(b_values, float) - np.asarray(a_values, float)
    count = len(differences)
    k = folds or count
    mean = float(differences.mean())
    spread = math.sqrt((1 / count + 1 / (k - 1)) * float(differences.var(ddof=1)))
    result = {"test": "corrected_fold_t", "folds": count, "difference": mean, "level": level}
    if spread == 0:
        return result | {"low": None, "high": None, "p_value": None}
    statistic = mean / spread
    half = float(t.ppf((1 + level) / 2, count - 1)) * spread
    p_value = float(2 * t.sf(abs(statistic), count - 1))
    return result | {"low": mean - half, "high": mean + half, "p_value": p_value}


def five_by_two_test(
    differences: Sequence[tuple[float, float]], level: float = LEVEL
) -> dict[str, Any]:
    """Dietterich's 5x2cv paired t (1998): r repetitions (5) of 2-fold cross-validation, each a
    new split; `differences`: per repetition, B - A on its fold 0 and fold 1. t = the first
    repetition's first difference over sqrt(mean of the repetitions' variances), r degrees of
    freedom. `difference` and its interval are that first difference's (the test's own estimate,
    so that the interval agrees with the test); `mean_difference` is over all 2r."""
    pairs = np.asarray(differences, dtype=float)
    r = len(pairs)
    variances = ((pairs - pairs.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    spread = math.sqrt(float(variances.mean()))
    first = float(pairs[0, 0])
    result = {"test": "five_by_two_t", "repetitions": r, "difference": first,
              "mean_difference": float(pairs.mean()), "level": level}  # fmt: skip
    if spread == 0:
        return result | {"low": None, "high": None, "p_value": None}
    half = float(t.ppf((1 + level) / 2, r)) * spread
    p_value = float(2 * t.sf(abs(first / spread), r))
    return result | {"low": first - half, "high": first + half, "p_value": p_value}
