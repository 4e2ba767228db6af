"""Intervals and tests with known answers: digits.uncertainty against the formulas written out."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from scipy.stats import binom, binomtest, t
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from digits.runs.significance import paired_verdict, welch_verdict
from digits.uncertainty import (
    cross_validated_interval,
    detectable_difference,
    five_by_two_test,
    fold_paired_test,
    holm,
    mean_interval,
    paired_test,
    welch_test,
)

NAMES = {"a": "A", "b": "B"}


def constructed_pair(both: int, a_only: int, b_only: int, neither: int) -> tuple[np.ndarray, ...]:
    """Right/wrong per image for two classifiers with the given agreement counts."""
    a = [True] * both + [True] * a_only + [False] * b_only + [False] * neither
    b = [True] * both + [False] * a_only + [True] * b_only + [False] * neither
    return np.array(a), np.array(b)


def exact_mcnemar(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar: twice the binomial(n, 1/2) tail of the rarer discordant count."""
    n, k = a_only + b_only, min(a_only, b_only)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


def exact_conditional(a_only: int, b_only: int, images: int, level: float) -> tuple[float, float]:
    """statsmodels' Clopper-Pearson interval of B's share of the discordant images, as a
    difference of accuracies."""
    n = a_only + b_only
    low, high = proportion_confint(b_only, n, alpha=1 - level, method="beta")
    return n / images * (2 * low - 1), n / images * (2 * high - 1)


def test_mcnemar_on_a_constructed_pair_counts_the_discordant_images() -> None:
    a, b = constructed_pair(both=9900, a_only=12, b_only=41, neither=47)
    test = paired_test(a, b)
    assert (test["a_only"], test["b_only"], test["images"]) == (12, 41, 10000)
    assert test["p_value"] == pytest.approx(exact_mcnemar(12, 41), rel=1e-9)
    table = [[9900, 12], [41, 47]]  # rows: A right, A wrong; columns: B right, B wrong
    assert test["p_value"] == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-9)
    assert test["p_value"] < 0.001
    assert test["difference"] == pytest.approx(29 / 10000)
    assert (test["low"], test["high"]) == pytest.approx(exact_conditional(12, 41, 10000, 0.95))
    verdict = paired_verdict(NAMES, test, alpha=0.05, tests=1)
    assert verdict.startswith("B is better than A: 41 vs 12 discordant images, p = ")


@pytest.mark.parametrize(("a_only", "b_only"), [(0, 5), (0, 6), (2, 9), (3, 12), (20, 26), (7, 0)])
@pytest.mark.parametrize("level", [0.95, 0.975, 0.99])
def test_the_interval_excludes_zero_exactly_when_the_exact_test_rejects(
    a_only: int, b_only: int, level: float
) -> None:
    """Issue 44, case 1: 5 vs 0 gave p = 0.062 beside a (paired t) interval excluding zero."""
    a, b = constructed_pair(both=9000, a_only=a_only, b_only=b_only, neither=1000 - a_only - b_only)
    test = paired_test(a, b, level)
    rejects = test["p_value"] < 1 - level
    assert (test["low"] > 0 or test["high"] < 0) == rejects
    assert (test["low"], test["high"]) == pytest.approx(
        exact_conditional(a_only, b_only, 10000, level)
    )


def test_a_small_difference_is_no_detectable_difference() -> None:
    a, b = constructed_pair(both=9900, a_only=20, b_only=26, neither=54)
    test = paired_test(a, b)
    assert test["p_value"] == pytest.approx(exact_mcnemar(20, 26), rel=1e-9)
    assert test["low"] < 0 < test["high"]
    verdict = paired_verdict(NAMES, test, alpha=0.05, tests=1)
    assert verdict.startswith("no detectable difference between B and A at this test-set size")
    # Among four tests, Holm's adjusted p decides and is shown.
    a, b = constructed_pair(both=9900, a_only=12, b_only=28, neither=60)
    test = paired_test(a, b)
    assert 0.0125 < test["p_value"] < 0.05
    assert paired_verdict(NAMES, test, 0.05, 1).startswith("B is better")
    adjusted = paired_verdict(NAMES, test | {"p_holm": 4 * test["p_value"]}, 0.05, 4)
    assert adjusted.startswith("no detectable") and "Holm over 4 tests: adjusted p = " in adjusted


def test_two_identical_runs_give_p_one_and_an_interval_as_wide_as_unseen_discordance() -> None:
    """Issue 44, case 3: no discordant image is no certainty: the difference is bounded by the
    discordant share that 0 of 10,000 images allows (Clopper-Pearson, about 0.00037)."""
    a, _ = constructed_pair(both=9000, a_only=500, b_only=0, neither=500)
    test = paired_test(a, a.copy())
    assert test["p_value"] == 1.0
    assert (test["a_only"], test["b_only"], test["difference"]) == (0, 0, 0.0)
    bound = proportion_confint(0, 10000, alpha=0.05, method="beta")[1]
    assert (test["low"], test["high"]) == pytest.approx((-bound, bound))
    assert 0.0003 < bound < 0.0004


def test_holm_adjusts_as_statsmodels_does_and_its_levels_agree_with_its_decisions() -> None:
    p_values = [0.0099, 0.04, 0.03, 0.005, 0.2, 0.0105]  # no p at a step's bar exactly
    adjusted, levels = holm(p_values, 0.05)
    rejected, expected, _, _ = multipletests(p_values, alpha=0.05, method="holm")
    assert adjusted == pytest.approx(list(expected))
    # An interval at its level excludes zero exactly when Holm rejects: p below 1 - level.
    assert [p < 1 - level for p, level in zip(p_values, levels, strict=True)] == list(rejected)


def test_replicates_have_their_mean_sd_and_student_t_interval() -> None:
    values = [0.9912, 0.9905, 0.9921, 0.9899, 0.9915]
    stats = mean_interval(values)
    t_four_degrees = 2.7764451051977987  # Student's t, 97.5% quantile, 4 degrees of freedom
    half = t_four_degrees * statistics.stdev(values) / math.sqrt(5)
    assert stats["n"] == 5
    assert stats["mean"] == pytest.approx(statistics.mean(values))
    assert stats["sd"] == pytest.approx(statistics.stdev(values))
    assert (stats["low"], stats["high"]) == pytest.approx(
        (stats["mean"] - half, stats["mean"] + half)
    )
    alone = mean_interval([0.99])
    assert alone == {"n": 1, "mean": 0.99, "sd": None, "low": None, "high": None}


def test_welch_interval_uses_unequal_variances() -> None:
    a, b = [0.950, 0.955, 0.948, 0.952], [0.990, 0.991, 0.989, 0.993, 0.988]
    test = welch_test(a, b)
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))  # Welch-Satterthwaite
    difference = statistics.mean(b) - statistics.mean(a)
    half = t.ppf(0.975, df) * math.sqrt(va + vb)
    assert test["difference"] == pytest.approx(difference)
    assert (test["low"], test["high"]) == pytest.approx((difference - half, difference + half))
    assert test["p_value"] < 0.001
    assert welch_verdict(NAMES, test, 0.05, 1).startswith("B is better than A: p = ")
    same = welch_test([0.99, 0.98], [0.98, 0.99])
    assert same["p_value"] == pytest.approx(1.0)
    assert welch_verdict(NAMES, same, 0.05, 1).startswith("no detectable difference")


@pytest.mark.parametrize("discordant", [6, 20, 78, 400])
def test_the_detectable_difference_is_detected_four_times_in_five(discordant: int) -> None:
    """Where McNemar finds nothing, the smallest difference it could have found (80% power)."""
    smallest = detectable_difference(discordant, 10000, 0.05)
    share = (smallest * 10000 / discordant + 1) / 2  # B's share of the discordant images

    def power(p: float) -> float:  # summed over every outcome, with scipy's own test
        return sum(
            binom.pmf(k, discordant, p)
            for k in range(discordant + 1)
            if binomtest(k, discordant, 0.5).pvalue < 0.05
        )

    assert power(share) == pytest.approx(0.8, abs=0.01)
    assert power(share - 0.02) < 0.8
    assert detectable_difference(5, 10000, 0.05) is None  # 2 / 2**5 > 0.05: nothing can reach it
    a, b = constructed_pair(both=9900, a_only=20, b_only=26, neither=54)
    verdict = paired_verdict(NAMES, paired_test(a, b), alpha=0.05, tests=1)
    assert "it detects (80% power) a difference of 0.00" in verdict


def test_k_fold_intervals_carry_nadeau_and_bengios_correction() -> None:
    """Folds share most of their training images: the variance of their mean is (1/k + 1/(k-1))
    s^2, not s^2 / k (written out here, against digits.uncertainty)."""
    folds = [0.9900, 0.9898, 0.9879, 0.9905, 0.9883]
    k, s2 = len(folds), statistics.variance(folds)
    half = t.ppf(0.975, k - 1) * math.sqrt((1 / k + 1 / (k - 1)) * s2)
    estimate = cross_validated_interval(folds)
    assert estimate["mean"] == pytest.approx(statistics.mean(folds))
    assert (estimate["low"], estimate["high"]) == pytest.approx(
        (statistics.mean(folds) - half, statistics.mean(folds) + half)
    )
    naive = mean_interval(folds)
    assert estimate["high"] - estimate["low"] > naive["high"] - naive["low"]  # wider, honestly
    a, b = [0.99, 0.989, 0.988, 0.99, 0.988], [0.991, 0.9905, 0.989, 0.992, 0.989]
    d = [y - x for x, y in zip(a, b, strict=True)]
    statistic = statistics.mean(d) / math.sqrt((1 / k + 1 / (k - 1)) * statistics.variance(d))
    test = fold_paired_test(a, b)
    assert test["p_value"] == pytest.approx(2 * t.sf(abs(statistic), k - 1))
    assert test["difference"] == pytest.approx(statistics.mean(d))


def test_five_by_two_cv_is_dietterichs_t() -> None:
    """Dietterich (1998): t = p_1^(1) / sqrt(mean of s_i^2), s_i^2 = the two folds' squared
    deviations from their mean, 5 degrees of freedom (written out)."""
    pairs = [(0.004, 0.002), (0.003, 0.005), (0.001, 0.002), (0.006, 0.003), (0.002, 0.004)]
    variances = [(x - (x + y) / 2) ** 2 + (y - (x + y) / 2) ** 2 for x, y in pairs]
    statistic = pairs[0][0] / math.sqrt(sum(variances) / 5)
    test = five_by_two_test(pairs)
    assert test["p_value"] == pytest.approx(2 * t.sf(abs(statistic), 5))
    assert test["difference"] == pairs[0][0] and test["repetitions"] == 5
    assert test["mean_difference"] == pytest.approx(statistics.mean(v for p in pairs for v in p))
    assert (test["low"] > 0) == (test["p_value"] < 0.05)
