"""Intervals and tests with known answers: digits.uncertainty against the formulas written out."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from scipy.stats import t

from digits.runs.significance import paired_verdict, welch_verdict
from digits.uncertainty import mean_interval, paired_test, welch_test

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


def test_mcnemar_on_a_constructed_pair_counts_the_discordant_images() -> None:
    a, b = constructed_pair(both=9900, a_only=12, b_only=41, neither=47)
    test = paired_test(a, b)
    assert (test["a_only"], test["b_only"], test["images"]) == (12, 41, 10000)
    assert test["p_value"] == pytest.approx(exact_mcnemar(12, 41), rel=1e-9)
    assert test["p_value"] < 0.001
    # B - A = 29 images in 10,000; the paired t interval: d ± t * sd(d_i) / sqrt(n).
    d = b.astype(float) - a.astype(float)
    half = t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    assert test["difference"] == pytest.approx(29 / 10000)
    assert (test["low"], test["high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    verdict = paired_verdict(NAMES, test, alpha=0.05, tests=1)
    assert verdict.startswith("B is better than A: 41 vs 12 discordant images, p = ")


def test_a_small_difference_is_no_detectable_difference() -> None:
    a, b = constructed_pair(both=9900, a_only=20, b_only=26, neither=54)
    test = paired_test(a, b)
    assert test["p_value"] == pytest.approx(exact_mcnemar(20, 26), rel=1e-9)
    assert test["low"] < 0 < test["high"]
    verdict = paired_verdict(NAMES, test, alpha=0.05, tests=1)
    assert verdict.startswith("no detectable difference between B and A at this test-set size")
    # Against the reference with four others, the bar is 0.05 / 4.
    a, b = constructed_pair(both=9900, a_only=12, b_only=28, neither=60)
    assert 0.0125 < paired_test(a, b)["p_value"] < 0.05
    assert paired_verdict(NAMES, paired_test(a, b), 0.05, 1).startswith("B is better")
    assert paired_verdict(NAMES, paired_test(a, b), 0.0125, 4).startswith("no detectable")


def test_two_identical_runs_give_p_one_and_an_interval_at_zero() -> None:
    a, _ = constructed_pair(both=9000, a_only=500, b_only=0, neither=500)
    test = paired_test(a, a.copy())
    assert test["p_value"] == 1.0
    assert (test["a_only"], test["b_only"]) == (0, 0)
    assert test["difference"] == test["low"] == test["high"] == 0.0


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
