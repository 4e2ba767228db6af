"""A network from the user's own package (docs/examples/my_nets): trained by `_target_` with a
--config-dir of its own, checked against the input contract, and loaded from its checkpoint only
when the user trusts that package (DIGITS_TRUSTED_CODE or a `digits.networks` entry point)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import REPO, run_entry_point
from digits.runs import RunDir

EXAMPLE = REPO / "docs" / "examples" / "my_nets"


def test_your_own_network_trains_and_loads_only_when_you_trust_it(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.setenv("DIGITS_DATA_DIR", str(data_root))
    monkeypatch.delenv("DIGITS_TRUSTED_CODE", raising=False)
    run = RunDir(tmp_path / "run")
    args = ["--config-dir", str(EXAMPLE / "conf"), "model=tiny", "data.val_size=200",
            "trainer.max_epochs=1", "logger=none", f"hydra.run.dir={run.path}"]  # fmt: skip
    assert run_entry_point("train", args, monkeypatch) == 0
    assert json.loads(run.metrics_file.read_text())["test/images"] > 0
    capsys.readouterr()
    evaluate = [f"run={run.path}", "tensorboard=false"]
    assert run_entry_point("evaluate", evaluate, monkeypatch) == 2  # not trusted: never built
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "refused: its network is 'my_digits_nets.TinyNet'" in line
    assert "DIGITS_TRUSTED_CODE=<your package>" in line
    monkeypatch.setenv("DIGITS_TRUSTED_CODE", "my_digits_nets")
    assert run_entry_point("evaluate", evaluate, monkeypatch) == 0
    assert (run.evaluation("test") / "metrics.json").is_file()


def test_your_own_network_must_keep_the_input_contract(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.setenv("DIGITS_DATA_DIR", str(data_root))
    monkeypatch.chdir(tmp_path)
    conf = tmp_path / "conf" / "model"
    conf.mkdir(parents=True)
    (conf / "wide.yaml").write_text("_target_: torch.nn.Flatten\n")  # 784 scores, not 10
    args = ["--config-dir", str(tmp_path / "conf"), "model=wide", "logger=none"]
    assert run_entry_point("train", args, monkeypatch) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "model: the network gives (1, 784), not (1, 10)" in line
    assert not (tmp_path / "outputs").exists()
