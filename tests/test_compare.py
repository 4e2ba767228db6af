"""digits.compare: any runs side by side, their differing settings and final metrics."""

from __future__ import annotations

import csv
import json
import re
import shutil
import statistics
from pathlib import Path

import pytest

from conftest import FAST, TEST_SIZE, run_cli
from digits.compare import compare, main
from digits.errors import DigitsError
from digits.runs import RunDir
from digits.runs.comparison import fold_accuracies, grouped, replicate_kind
from digits.runs.per_image import PerImageResults
from digits.uncertainty import cross_validated_interval, fold_paired_test

FEW_STEPS = [
    *FAST,
    "model=mlp",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=4",
    "logger=none",
]


@pytest.fixture(scope="module")
def two_runs(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    cwd = tmp_path_factory.mktemp("compare")
    for name, extra in (("a", []), ("b", ["optimizer.lr=0.01", "data.batch_size=32"])):
        args = [*FEW_STEPS, *extra, f"hydra.run.dir=outputs/runs/{name}"]
        result = run_cli("digits.train", *args, cwd=cwd, data_root=data_root)
        assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "outputs" / "runs" / "a", cwd / "outputs" / "runs" / "b"


@pytest.mark.slow
def test_compare_lists_exactly_the_differing_settings_best_first(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = two_runs
    rows = compare([str(a), str(b)], tmp_path / "out")
    with (tmp_path / "out" / "comparison.csv").open() as handle:
        saved = list(csv.DictReader(handle))
    columns = list(saved[0])
    assert columns == [
        "run", "status", "data.batch_size", "optimizer.lr",
        "val_acc_best", "test_acc", "test_loss", "epochs", "train_time_s",
        "test_acc_low", "test_acc_high",
    ]  # fmt: skip
    by_run = {row["run"]: row for row in saved}
    assert (by_run["a"]["data.batch_size"], by_run["a"]["optimizer.lr"]) == ("64", "0.001")
    assert (by_run["b"]["data.batch_size"], by_run["b"]["optimizer.lr"]) == ("32", "0.01")
    assert [row["val_acc_best"] for row in rows] == sorted(
        (row["val_acc_best"] for row in rows), reverse=True
    )
    assert all(row["status"] == "completed" for row in rows)
    markdown = (tmp_path / "out" / "comparison.md").read_text().splitlines()
    assert markdown[0].startswith("| run | status | data.batch_size | optimizer.lr |")
    assert len(markdown) == 8  # the table (2 runs), then "Is A better than B?" and its verdict
    assert markdown[4:7] == ["", "## Is A better than B?", ""]
    assert (tmp_path / "out" / "accuracy_vs_time.png").read_bytes().startswith(b"\x89PNG")


def test_compare_takes_globs_and_multirun_folders(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = two_runs
    sweep = tmp_path / "multirun"
    shutil.copytree(a, sweep / "0")
    shutil.copytree(b, sweep / "1")
    rows = compare([str(a.parent / "*"), str(sweep)], tmp_path / "out")
    assert sorted(row["run"] for row in rows) == ["a", "b", "multirun/0", "multirun/1"]


def test_a_run_without_or_with_a_damaged_metrics_file_says_so(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = two_runs
    missing, damaged = tmp_path / "missing", tmp_path / "damaged"
    shutil.copytree(a, missing)
    shutil.copytree(b, damaged)
    (missing / "metrics.json").unlink()
    (damaged / "metrics.json").write_text("{cut off")
    rows = {
        row["run"]: row for row in compare([str(a), str(missing), str(damaged)], tmp_path / "o")
    }
    assert rows["missing"]["status"] == "no metrics.json"  # its manifest says completed
    assert rows["damaged"]["status"] == "damaged metrics.json"
    assert rows["a"]["status"] == "completed"
    assert rows["missing"]["val_acc_best"] is None and rows["damaged"]["test_acc"] is None


def replicate(
    run: Path, to: Path, seed: int, accuracies: tuple[float, float] | None = None
) -> Path:
    """A copy of `run` as if trained with another seed (reaching these accuracies: val, test)."""
    shutil.copytree(run, to, ignore=shutil.ignore_patterns(".lock"))
    config = to / ".hydra" / "config.yaml"
    config.write_text(re.sub(r"(?m)^seed: .*$", f"seed: {seed}", config.read_text()))
    if accuracies is not None:
        metrics = json.loads((to / "metrics.json").read_text())
        metrics["val/acc_best"], metrics["test/acc"] = accuracies
        (to / "metrics.json").write_text(json.dumps(metrics))
    return to


def test_two_runs_get_mcnemars_test_on_their_per_image_results(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = two_runs
    compare([str(a), str(b)], tmp_path / "out")
    (test,) = json.loads((tmp_path / "out" / "tests.json").read_text())["tests"]
    right = {run.name: PerImageResults.read(run / "test_predictions.csv").correct for run in (a, b)}
    first, second = right[test["a"]], right[test["b"]]  # the best by validation is "a"
    assert test["test"] == "mcnemar_exact"
    assert (test["a_only"], test["b_only"]) == ((first & ~second).sum(), (second & ~first).sum())
    assert test["images"] == TEST_SIZE
    assert test["verdict"] in (tmp_path / "out" / "comparison.md").read_text()
    rows = list(csv.DictReader((tmp_path / "out" / "comparison.csv").open()))
    for row in rows:  # each run's test accuracy inside its Wilson interval
        assert float(row["test_acc_low"]) <= float(row["test_acc"]) <= float(row["test_acc_high"])


def test_a_run_against_its_copy_is_no_difference_with_p_one(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    a, _ = two_runs
    copy = replicate(a, tmp_path / "copy", seed=7)
    compare([str(a), str(copy)], tmp_path / "out")
    (test,) = json.loads((tmp_path / "out" / "tests.json").read_text())["tests"]
    assert test["p_value"] == 1.0 and test["a_only"] == test["b_only"] == 0
    # No discordant image is no certainty: as wide as 0 of 200 images allows either way.
    assert test["difference"] == 0.0 and test["low"] == -test["high"] and test["high"] > 0.01
    assert test["verdict"].startswith("no detectable difference between")


def test_a_run_without_per_image_results_is_said_in_one_line(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = two_runs
    old = tmp_path / "old"
    shutil.copytree(b, old)
    (old / "test_predictions.csv").unlink()
    compare([str(a), str(old)], tmp_path / "out")
    (test,) = json.loads((tmp_path / "out" / "tests.json").read_text())["tests"]
    assert f"{old} has no per-image test results" in test["verdict"]
    assert "p_value" not in test


def test_seed_replicates_form_groups_with_mean_sd_and_welchs_test(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = two_runs
    accuracies = {"a": [0.90, 0.91, 0.92], "b": [0.95, 0.96, 0.955]}
    runs = [
        str(replicate(run, tmp_path / f"{run.name}{seed}", seed, (value, value)))
        for run in (a, b)
        for seed, value in enumerate(accuracies[run.name], start=1)
    ]
    compare(runs, tmp_path / "out")
    groups = list(csv.DictReader((tmp_path / "out" / "groups.csv").open()))
    assert [int(group["n"]) for group in groups] == [3, 3]
    best, other = groups  # b's settings first: its mean validation accuracy is higher
    assert float(best["test_acc"]) == pytest.approx(statistics.mean(accuracies["b"]), abs=1e-4)
    assert float(best["test_acc_sd"]) == pytest.approx(statistics.stdev(accuracies["b"]), rel=1e-3)
    assert float(other["val_acc_best"]) == pytest.approx(0.91, abs=1e-4)
    assert "optimizer.lr=0.01" in best["configuration"]
    (test,) = json.loads((tmp_path / "out" / "tests.json").read_text())["tests"]
    assert test["test"] == "welch" and (test["a_n"], test["b_n"]) == (3, 3)
    assert test["difference"] == pytest.approx(
        statistics.mean(accuracies["a"]) - statistics.mean(accuracies["b"])
    )
    assert test["verdict"].startswith(f"{best['configuration']} is better than")
    assert (tmp_path / "out" / "accuracy_vs_time.png").read_bytes().startswith(b"\x89PNG")


def test_runs_tested_on_different_test_sets_are_refused(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = two_runs
    other = tmp_path / "other"
    shutil.copytree(b, other)
    metrics = json.loads((other / "metrics.json").read_text())
    metrics["test/set"]["md5"] = "0" * 32
    (other / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(DigitsError, match="were tested on different test sets"):
        compare([str(a), str(other)], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_run_tested_on_part_of_the_test_set_is_refused_with_how_to_test_it_fully(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    """Issue 46: a debug=limit run was refused as "different test sets (10000 images, md5 8281dd42
    vs 320, 8281dd42)": the same digest, and nothing about the limit."""
    a, b = two_runs
    limited = tmp_path / "limited"
    shutil.copytree(b, limited, ignore=shutil.ignore_patterns(".lock"))
    metrics = json.loads((limited / "metrics.json").read_text())
    whole = metrics["test/set"]["images"]
    metrics["test/set"]["images"] = 20
    (limited / "metrics.json").write_text(json.dumps(metrics))
    config = limited / ".hydra" / "config.yaml"
    config.write_text(
        config.read_text().replace("limit_test_batches: 1.0", "limit_test_batches: 2")
    )
    overrides = limited / ".hydra" / "overrides.yaml"
    overrides.write_text(overrides.read_text() + "- trainer.limit_test_batches=2\n")
    with pytest.raises(DigitsError) as refused:
        compare([str(a), str(limited)], tmp_path / "out")
    message = str(refused.value)
    assert f"{limited} tested 20 of the {whole:,} test images {a} tested" in message
    assert "(trainer.limit_test_batches=2)" in message and "md5" not in message
    retest = message.split("on the full test set: ")[1]
    assert retest.startswith("python -m digits.train") and "train=false" in retest
    assert "limit_test_batches" not in retest and "optimizer.lr=0.01" in retest
    assert not (tmp_path / "out").exists()


def test_a_run_named_twice_in_other_spellings_is_one_run(
    two_runs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 44, case 4: runs/a and $PWD/runs/a and runs/../runs/a were compared as two runs."""
    a, _ = two_runs
    monkeypatch.chdir(a.parent)
    spelled = ["a", str(a), f"../{a.parent.name}/a"]
    with pytest.raises(DigitsError, match="found 1 run"):
        compare(spelled, tmp_path / "out")


def test_a_replicate_named_twice_counts_once_in_its_group(
    two_runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 44, case 5: a run and another of the same settings and seed made n one larger (and
    the interval narrower) without a word. Case 6: n is the runs its mean is over."""
    a, b = two_runs
    group_a = [
        replicate(a, tmp_path / f"a{seed}", seed, (0.90 + seed / 100,) * 2) for seed in (1, 2, 3)
    ]
    group_b = [
        replicate(b, tmp_path / f"b{seed}", seed, (0.95 + seed / 100,) * 2) for seed in (1, 2)
    ]
    again = replicate(a, tmp_path / "a_again", 1, (0.91, 0.91))  # seed 1 of a once more
    untested = replicate(b, tmp_path / "b_untested", 5)
    metrics = json.loads((untested / "metrics.json").read_text())
    del metrics["test/acc"]
    (untested / "metrics.json").write_text(json.dumps(metrics))
    compare([str(p) for p in [*group_a, again, *group_b, untested]], tmp_path / "out")
    groups = {
        g["configuration"]: g for g in csv.DictReader((tmp_path / "out" / "groups.csv").open())
    }
    sizes = sorted(int(g["n"]) for g in groups.values())
    assert sizes == [2, 3]  # a: a1-a3 (a_again is a1 again); b: b1, b2 (b_untested has no test)
    (test,) = json.loads((tmp_path / "out" / "tests.json").read_text())["tests"]
    assert sorted((test["a_n"], test["b_n"])) == [2, 3]
    shown = capsys.readouterr().out
    assert "a_again repeats a1 (same settings, seed=1" in " ".join(shown.split())
    assert "a_again repeats a1" in (tmp_path / "out" / "comparison.md").read_text()


def test_runs_without_a_test_set_record_are_paired_only_on_the_same_labels(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    """Issue 44, case 7: without `test/set`, per-image files of other images must not be paired."""
    a, b = two_runs
    copies = []
    for run, name in ((a, "a_old"), (b, "b_old")):
        copy = tmp_path / name
        shutil.copytree(run, copy, ignore=shutil.ignore_patterns(".lock"))
        metrics = json.loads((copy / "metrics.json").read_text())
        del metrics["test/set"]
        (copy / "metrics.json").write_text(json.dumps(metrics))
        copies.append(copy)
    lines = (copies[1] / "test_predictions.csv").read_text().splitlines()
    rows = [line.split(",") for line in lines[1:]]
    shifted = [[r[0], s[1], *r[2:]] for r, s in zip(rows, rows[1:] + rows[:1], strict=True)]
    (copies[1] / "test_predictions.csv").write_text(
        "\n".join([lines[0], *(",".join(r) for r in shifted)]) + "\n"
    )
    with pytest.raises(DigitsError, match="are not the same test images"):
        compare([str(c) for c in copies], tmp_path / "out")
    short = tmp_path / "short"
    shutil.copytree(copies[0], short)
    (short / "test_predictions.csv").write_text("\n".join(lines[:50]) + "\n")
    with pytest.raises(DigitsError, match="cut short or damaged"):
        compare([str(copies[0]), str(short)], tmp_path / "out2")


def test_several_tests_are_corrected_by_holm_with_intervals_at_agreeing_levels(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    """Issue 44, case 2: Bonferroni's bar on p beside 95% intervals; now Holm's adjusted p decides
    and each interval is at the level of its step."""
    a, b = two_runs
    other = replicate(b, tmp_path / "b_faster", seed=42)  # another configuration: lr 0.02
    config = other / ".hydra" / "config.yaml"
    config.write_text(re.sub(r"(?m)^  lr: .*$", "  lr: 0.02", config.read_text()))
    compare([str(a), str(b), str(other)], tmp_path / "out")
    tests = json.loads((tmp_path / "out" / "tests.json").read_text())["tests"]
    assert len(tests) == 2 and all(t["tests"] == 2 for t in tests)
    for test in tests:
        rejects = test["p_value"] < 1 - test["level"]
        assert (test["low"] > 0 or test["high"] < 0) == rejects
        assert "Holm over 2 tests: adjusted p = " in test["verdict"]
        assert test["p_holm"] >= test["p_value"] and test["level"] > 0.95


def test_a_group_of_one_gets_its_run_s_wilson_interval_and_the_plot_says_which_is_which(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = two_runs
    seeds = [
        replicate(b, tmp_path / f"b{seed}", seed, (0.95, 0.95 + seed / 100)) for seed in (1, 2)
    ]
    compare([str(a), *map(str, seeds)], tmp_path / "out")
    groups = {int(g["n"]): g for g in csv.DictReader((tmp_path / "out" / "groups.csv").open())}
    own = json.loads((a / "metrics.json").read_text())["test/acc_interval"]
    assert groups[1]["interval"] == "wilson" and groups[2]["interval"] == "t"
    assert float(groups[1]["test_acc_low"]) == pytest.approx(own["low"])
    assert float(groups[1]["test_acc_high"]) == pytest.approx(own["high"])


def fold_of(run: Path, to: Path, fold: int, val_acc: float, images: int = 200) -> Path:
    """A copy of `run` as fold `fold` of 5 (its final validation accuracy `val_acc` of `images`)."""
    shutil.copytree(run, to, ignore=shutil.ignore_patterns(".lock"))
    config = to / ".hydra" / "config.yaml"
    text = re.sub(r"(?m)^  folds: .*$", "  folds: 5", config.read_text())
    config.write_text(re.sub(r"(?m)^  fold: .*$", f"  fold: {fold}", text))
    metrics = json.loads((to / "metrics.json").read_text())
    metrics |= {"val/acc": val_acc, "val/acc_best": val_acc + 0.01, "val/images": images}
    (to / "metrics.json").write_text(json.dumps(metrics))
    return to


def test_folds_are_cross_validation_not_seed_replicates(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    """Issue 44, case 8: folds were pooled with seeds and compared by Welch's t; the CV estimate
    used val_acc_best, the running maximum that also chose the checkpoint."""
    a, b = two_runs
    a_folds = [0.90, 0.905, 0.895, 0.91, 0.90]
    b_folds = [0.93, 0.94, 0.925, 0.945, 0.93]
    runs = [fold_of(a, tmp_path / f"a_fold{i}", i, v) for i, v in enumerate(a_folds)]
    runs += [fold_of(b, tmp_path / f"b_fold{i}", i, v) for i, v in enumerate(b_folds)]
    compare([str(r) for r in runs], tmp_path / "out")
    groups = {
        g["configuration"]: g for g in csv.DictReader((tmp_path / "out" / "groups.csv").open())
    }
    best = next(g for g in groups.values() if "0.01" in g["configuration"])
    estimate = cross_validated_interval(b_folds)
    assert best["kind"] == "folds"
    assert float(best["cv_val_acc"]) == pytest.approx(statistics.mean(b_folds))  # not val_acc_best
    assert (float(best["cv_low"]), float(best["cv_high"])) == pytest.approx(
        (estimate["low"], estimate["high"])
    )
    right = sum(round(v * 200) for v in b_folds)
    assert float(best["cv_pooled"]) == pytest.approx(right / 1000)
    (test,) = json.loads((tmp_path / "out" / "tests.json").read_text())["tests"]
    assert test["test"] == "corrected_fold_t" and test["folds"] == 5
    expected = fold_paired_test(b_folds, a_folds)
    assert test["p_value"] == pytest.approx(expected["p_value"])
    assert "paired fold by fold over 5 folds" in test["verdict"]
    # Folds against seed replicates: no test, said in a line.
    seeds = [replicate(a, tmp_path / f"a_seed{s}", s, (0.9, 0.9 + s / 100)) for s in (1, 2, 3)]
    compare([*map(str, runs[5:]), *map(str, seeds)], tmp_path / "out2")
    (test,) = json.loads((tmp_path / "out2" / "tests.json").read_text())["tests"]
    assert "no test between a k-fold group and seed replicates" in test["verdict"]


def test_all_pairs_tests_every_pair_with_holm_over_them_all(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = two_runs
    other = replicate(b, tmp_path / "b_faster", seed=42)
    config = other / ".hydra" / "config.yaml"
    config.write_text(re.sub(r"(?m)^  lr: .*$", "  lr: 0.02", config.read_text()))
    main([str(a), str(b), str(other), "--out", str(tmp_path / "out"), "--all-pairs"])
    tests = json.loads((tmp_path / "out" / "tests.json").read_text())["tests"]
    pairs = {frozenset((t["a"], t["b"])) for t in tests}
    assert len(tests) == 3 and len(pairs) == 3 and all(t["tests"] == 3 for t in tests)


def test_two_fold_cross_validation_over_five_splits_is_tested_by_5x2cv(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    """Dietterich's 5x2cv: data.folds=2 repeated over five split seeds, paired split by split."""
    a, b = two_runs
    runs = []
    for run, base in ((a, 0.90), (b, 0.93)):
        for split in range(1, 6):
            for fold in (0, 1):
                value = base + split / 1000 + (fold * split / 500 if run == b else 0)
                to = fold_of(run, tmp_path / f"{run.name}_s{split}f{fold}", fold, value)
                config = to / ".hydra" / "config.yaml"
                text = re.sub(r"(?m)^  folds: .*$", "  folds: 2", config.read_text())
                config.write_text(re.sub(r"(?m)^  split_seed: .*$", f"  split_seed: {split}", text))
                runs.append(str(to))
    compare(runs, tmp_path / "out")
    groups = list(csv.DictReader((tmp_path / "out" / "groups.csv").open()))
    assert {g["kind"] for g in groups} == {"repeated folds"} and {g["n"] for g in groups} == {"10"}
    (test,) = json.loads((tmp_path / "out" / "tests.json").read_text())["tests"]
    assert test["test"] == "five_by_two_t" and test["repetitions"] == 5
    assert "Dietterich's 5x2cv paired t over 5 splits" in test["verdict"]


def test_seeds_within_a_fold_are_averaged_not_pooled_with_the_folds(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    a, _ = two_runs
    runs = []
    for fold, value in enumerate([0.90, 0.91, 0.92]):
        for seed, offset in ((1, -0.002), (2, 0.002)):
            to = fold_of(a, tmp_path / f"f{fold}s{seed}", fold, value + offset)
            config = to / ".hydra" / "config.yaml"
            config.write_text(re.sub(r"(?m)^seed: .*$", f"seed: {seed}", config.read_text()))
            runs.append(to)
    ((_, members),) = grouped([RunDir(r) for r in runs])
    assert replicate_kind(members) == "folds and seeds"
    assert fold_accuracies(members) == pytest.approx(
        {f"5:42:{f}": v for f, v in enumerate([0.90, 0.91, 0.92])}
    )
