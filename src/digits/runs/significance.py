"""Is A better than B? digits.compare's answer, in one sentence a reader can act on.

Two runs: McNemar's exact test on the test images one got right and the other wrong, from the
per-image results each run kept (test_predictions.csv), with the accuracy difference's interval.
Two groups of replicates (seeds, folds): Welch's t on their test accuracies. With more than two,
each is tested against the best by validation accuracy (never by test accuracy), with Holm's
correction (adjusted p-values; each interval at the level that agrees with its verdict)."""

from __future__ import annotations

import itertools
import shlex
from typing import Any

import numpy as np

from digits.errors import DigitsError
from digits.runs.comparison import (
    CROSS_VALIDATED,
    fold_accuracies,
    replicate_kind,
    status_and_metrics,
)
from digits.runs.per_image import PerImageResults
from digits.runs.run_dir import RunDir
from digits.uncertainty import (
    LEVEL,
    five_by_two_test,
    fold_paired_test,
    holm,
    paired_test,
    welch_test,
)

ALPHA = 0.05
# Overrides that change which test images a run sees.
LIMITING = ("debug=", "trainer.limit_test_batches=", "trainer.fast_dev_run=")
Group = tuple[str, list[RunDir]]


def check_same_test_set(runs: list[RunDir]) -> None:
    """Runs tested on different images (another data.root, limited test batches) have accuracies
    that no test can compare."""
    first: tuple[RunDir, dict] | None = None
    for run in runs:
        test_set = status_and_metrics(run)[1].get("test/set")
        if not test_set:
            continue  # not tested, or before runs recorded it
        if first is None:
            first = (run, test_set)
        elif test_set["md5"] == first[1]["md5"] and test_set["images"] != first[1]["images"]:
            raise DigitsError(partly_tested(first, (run, test_set)))
        elif test_set != first[1]:
            raise DigitsError(
                f"{first[0].path} and {run.path} were tested on different test sets "
                f"({first[1]['images']:,} images, md5 {first[1]['md5'][:8]} vs "
                f"{test_set['images']:,}, {test_set['md5'][:8]}): their accuracies cannot be "
                "compared; compare runs tested on the same images"
            )


def partly_tested(*tested: tuple[RunDir, dict[str, Any]]) -> str:
    """Two runs tested on part and all (or two parts) of one test set (the same file digest): how
    many images each tested, and how to test the one with fewer on them all."""
    (more, more_set), (fewer, fewer_set) = sorted(tested, key=lambda t: -t[1]["images"])
    settings = fewer.settings()
    limit = f"trainer.limit_test_batches={settings.get('trainer.limit_test_batches', '?')}"
    debug = settings.get("choices.debug")
    limit += f", debug={debug}" if debug not in (None, "None") else ""
    return (
        f"{fewer.path} tested {fewer_set['images']:,} of the {more_set['images']:,} test images "
        f"{more.path} tested ({limit}): "
        f"accuracies on different images cannot be compared; {retest(fewer)}"
    )


def tests_between(groups: list[Group], all_pairs: bool = False) -> list[dict[str, Any]]:
    """Each group tested against the first (the caller's best by validation accuracy), or with
    `all_pairs` every pair; Holm's correction over the tests made, each interval at the level that
    agrees with its verdict."""
    pairs = (
        list(itertools.combinations(groups, 2))
        if all_pairs
        else [(groups[0], other) for other in groups[1:]]
    )
    first = [pair_test(a, b) for a, b in pairs]
    made = [i for i, test in enumerate(first) if "p_value" in test]
    adjusted, levels = holm([first[i]["p_value"] for i in made], ALPHA)
    results = list(first)
    for i, p_holm, level in zip(made, adjusted, levels, strict=True):
        test = pair_test(*pairs[i], level) | {"p_holm": p_holm, "tests": len(made)}
        verdict = VERDICTS[test["test"]]
        results[i] = test | {"verdict": verdict(test["names"], test, ALPHA, len(made))}
    return [{key: value for key, value in t.items() if key != "names"} for t in results]


def pair_test(a: Group, b: Group, level: float = LEVEL) -> dict[str, Any]:
    """The right test for the pair and its figures (its interval at `level`), or a verdict saying
    why there is none."""
    names = {"a": a[0], "b": b[0]}
    if len(a[1]) == 1 and len(b[1]) == 1:
        results = [per_image(run) for run in (a[1][0], b[1][0])]
        missing = [run for run, result in zip((a[1][0], b[1][0]), results, strict=True)
                   if result is None]  # fmt: skip
        if missing:
            return names | {"verdict": no_per_image(missing[0])}
        check_same_images(a[1][0], b[1][0], results[0], results[1])
        return names | {"names": names} | paired_test(results[0].correct, results[1].correct, level)
    kinds = {replicate_kind(a[1]), replicate_kind(b[1])}
    if kinds & set(CROSS_VALIDATED):
        return names | fold_test(a, b, kinds, level)
    a_acc, b_acc = (tested_accuracies(group[1]) for group in (a, b))
    if len(a_acc) < 2 or len(b_acc) < 2:
        return names | {
            "verdict": f"{names['a']} ({len(a_acc)} tested) and {names['b']} ({len(b_acc)}): "
            "comparing groups needs two or more tested runs on each side (Welch's t), or one "
            "run each (McNemar)"
        }
    test = welch_test(a_acc, b_acc, level)
    if test["p_value"] is None:
        return names | {"verdict": welch_verdict(names, test, ALPHA, 1)}
    return names | {"names": names} | test


def fold_test(a: Group, b: Group, kinds: set[str], level: float) -> dict[str, Any]:
    """Two cross-validated groups on the same folds, paired fold by fold (their final validation
    accuracies; a fold's several training seeds as their mean): Nadeau and Bengio's corrected t,
    or Dietterich's 5x2cv t for 2-fold cross-validation repeated over split seeds. Any other mix of
    folds and seeds gets no test: folds share their training images, so their spread is not a seed
    group's."""
    names = {"a": a[0], "b": b[0]}
    if not kinds <= set(CROSS_VALIDATED) or ("repeated folds" in kinds and len(kinds) > 1):
        return {"verdict": f"{names['a']} and {names['b']}: no test between a k-fold group and "
                "seed replicates (or other cross-validation): folds share most of their training "
                "images, so their spread is not the seeds'; compare k-fold with k-fold on the same "
                "folds, seeds with seeds"}  # fmt: skip
    folds = [fold_accuracies(group[1]) for group in (a, b)]
    if None in folds or folds[0].keys() != folds[1].keys():
        return {"verdict": f"{names['a']} and {names['b']}: not cross-validated on the same folds "
                "(data.folds, data.split_seed and the folds run must match); no fold-by-fold "
                "test"}  # fmt: skip
    order = sorted(folds[0])
    k = int(order[0].split(":")[0])
    if kinds == {"repeated folds"} and k == 2:
        splits = sorted({key.rsplit(":", 1)[0] for key in order})
        differences = [tuple(folds[1][f"{s}:{f}"] - folds[0][f"{s}:{f}"] for f in (0, 1))
                       for s in splits]  # fmt: skip
        test = five_by_two_test(differences, level)
    else:
        test = fold_paired_test(
            [folds[0][f] for f in order], [folds[1][f] for f in order], level, k
        )
    if test["p_value"] is None:
        return {
            "verdict": f"{names['a']} and {names['b']}: the same accuracy on every fold; no test"
        }
    return {"names": names} | test


def per_image(run: RunDir) -> PerImageResults | None:
    """The run's per-image test results, None where it kept none; refused when they do not cover
    the images its metrics say it tested (a file cut short)."""
    file = run.test_predictions_file
    if not file.is_file():
        return None
    results = PerImageResults.read(file)
    tested = status_and_metrics(run)[1].get("test/images")
    if tested is not None and len(results.labels) != tested:
        raise DigitsError(
            f"{file}: {len(results.labels)} images, but the run tested {tested} (metrics.json): "
            f"cut short or damaged; {retest(run)}"
        )
    return results


def check_same_images(a: RunDir, b: RunDir, a_results: PerImageResults,
                      b_results: PerImageResults) -> None:  # fmt: skip
    """A paired test pairs image i with image i: both files must list the same images (their
    labels agree), whatever the runs' metrics say of their test sets."""
    if not np.array_equal(a_results.labels, b_results.labels):
        raise DigitsError(
            f"{a.test_predictions_file} and {b.test_predictions_file} are not the same test "
            f"images ({len(a_results.labels)} and {len(b_results.labels)} images, labels that "
            "differ): no paired test; compare runs tested on the same images"
        )


def tested_accuracies(runs: list[RunDir]) -> list[float]:
    return [m["test/acc"] for run in runs if "test/acc" in (m := status_and_metrics(run)[1])]


def no_per_image(run: RunDir) -> str:
    """Why there is no paired test, and how to get one."""
    return (
        f"{run.path} has no per-image test results (made before runs kept them, or not tested), "
        f"so no paired test; {retest(run)}"
    )


def retest(run: RunDir) -> str:
    """The command that tests the run's best checkpoint again into a new run, which keeps its
    per-image results: the run's own overrides (so that the same model is built), less those that
    limit the test (debug=..., trainer.limit_*: a paired test wants the full test set)."""
    try:
        checkpoint: str = str(run.best_checkpoint())
    except DigitsError:
        checkpoint = f"{run.checkpoints}/<best>.ckpt"
    kept = [o for o in run.overrides() if not o.lstrip("+~").startswith(LIMITING)]
    command = shlex.join(["python", "-m", "digits.train", *kept, "train=false",
                          f"ckpt_path={checkpoint}"])  # fmt: skip
    return f"to test its checkpoint again on the full test set: {command}"


def decisive_p(test: dict[str, Any]) -> float:
    """The p-value a verdict rests on: Holm's adjusted one among several tests, else the test's."""
    return test.get("p_holm", test["p_value"])


def bar(test: dict[str, Any], alpha: float, tests: int) -> str:
    if tests <= 1:
        return ""
    return (
        f" (Holm over {tests} tests: adjusted p = {decisive_p(test):.2g}, counts below {alpha:.2g})"
    )


def paired_verdict(names: dict[str, str], test: dict[str, Any], alpha: float, tests: int) -> str:
    """'b is better than a: 41 vs 12 discordant images, p = 0.0001; ...' or 'no detectable
    difference ...'."""
    first, second = ("b", "a") if test["b_only"] >= test["a_only"] else ("a", "b")
    shown = (
        f"accuracy {difference_text(names, test, first, second)}; McNemar's exact test on "
        f"{test['images']} images{bar(test, alpha, tests)}"
    )
    counts = f"{test[first + '_only']} vs {test[second + '_only']} discordant images, "
    detected = decisive_p(test) < alpha
    return verdict(names, first, second, detected, "at this test-set size",
                   f"{counts}p = {test['p_value']:.2g}; {shown}"
                   + ("" if detected else detectable_text(test)))  # fmt: skip


def detectable_text(test: dict[str, Any]) -> str:
    """What 'no detectable difference' could have detected: the difference McNemar's test finds
    with 80% power at this many discordant images."""
    smallest = test.get("detectable")
    if smallest is None:
        return "; too few discordant images for any difference to be detectable"
    return f"; it detects (80% power) a difference of {smallest:.4f} or more at this discordance"


def welch_verdict(names: dict[str, str], test: dict[str, Any], alpha: float, tests: int) -> str:
    """The same for two groups of replicates, on their mean test accuracy."""
    first, second = ("b", "a") if test["difference"] >= 0 else ("a", "b")
    runs = f"{test[first + '_n']} and {test[second + '_n']} runs"
    if test["p_value"] is None:
        return f"{names['a']} and {names['b']}: no spread within either group of {runs}; no test"
    shown = (
        f"mean test accuracy {difference_text(names, test, first, second)}; Welch's t over "
        f"{runs}{bar(test, alpha, tests)}"
    )
    return verdict(names, first, second, decisive_p(test) < alpha, f"with {runs}",
                   f"p = {test['p_value']:.2g}; {shown}")  # fmt: skip


def fold_verdict(names: dict[str, str], test: dict[str, Any], alpha: float, tests: int) -> str:
    """The same for two recipes cross-validated on the same folds, on their validation accuracy."""
    first, second = ("b", "a") if test["difference"] >= 0 else ("a", "b")
    shown = (
        f"mean validation accuracy over folds {difference_text(names, test, first, second)}; "
        f"Nadeau-Bengio corrected t, paired fold by fold over {test['folds']} folds"
        f"{bar(test, alpha, tests)}"
    )
    return verdict(names, first, second, decisive_p(test) < alpha,
                   f"with {test['folds']} folds", f"p = {test['p_value']:.2g}; {shown}")  # fmt: skip


def verdict(
    names: dict[str, str], first: str, second: str, detected: bool, scope: str, evidence: str
) -> str:
    """'first is better than second: evidence', or 'no detectable difference between them
    <scope>: evidence'."""
    if detected:
        return f"{names[first]} is better than {names[second]}: {evidence}"
    return (
        f"no detectable difference between {names[first]} and {names[second]} {scope}: {evidence}"
    )


def difference_text(names: dict[str, str], test: dict[str, Any], first: str, second: str) -> str:
    """`first - second = +d (95% interval low to high)`, the test's B - A turned round if need be."""
    sign = 1 if first == "b" else -1
    low, high = sorted((sign * test["low"], sign * test["high"]))
    return (
        f"{names[first]} - {names[second]} = {signed(sign * test['difference'])} "
        f"({test['level'] * 100:.4g}% interval {signed(low)} to {signed(high)})"
    )


def signed(value: float) -> str:
    """A difference with its sign, four decimals; one too small to show there in powers of ten
    (an interval's end at -0.00002 must not read -0.0000)."""
    return f"{value:+.4f}" if value == 0 or abs(value) >= 5e-5 else f"{value:+.1e}"


def five_by_two_verdict(
    names: dict[str, str], test: dict[str, Any], alpha: float, tests: int
) -> str:
    """The same for 2-fold cross-validation repeated over split seeds (Dietterich's 5x2cv)."""
    first, second = ("b", "a") if test["difference"] >= 0 else ("a", "b")
    shown = (
        f"validation accuracy on the first split's first fold "
        f"{difference_text(names, test, first, second)} (mean over all "
        f"{2 * test['repetitions']} folds {signed(test['mean_difference'])}); Dietterich's 5x2cv "
        f"paired t over {test['repetitions']} splits{bar(test, alpha, tests)}"
    )
    return verdict(names, first, second, decisive_p(test) < alpha,
                   f"with {test['repetitions']} splits", f"p = {test['p_value']:.2g}; {shown}")  # fmt: skip


# Each test's verdict, by the test's name in its figures.
VERDICTS = {
    "mcnemar_exact": paired_verdict,
    "welch": welch_verdict,
    "corrected_fold_t": fold_verdict,
    "five_by_two_t": five_by_two_verdict,
}
