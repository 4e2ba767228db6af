"""Every config group option composes, and what it describes can be built."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import subprocess
import sys
import typing
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import ListConfig, OmegaConf

import digits
from conftest import hiding_modules, run_cli, without_module
from digits.config import config_dir
from digits.config.command_line import check_command_line
from digits.config.hydra_flags import override, override_value
from digits.config.validate import schema_nodes
from digits.constraints import OneOf, Range
from digits.data.emnist import EMNISTDataModule
from digits.data.folder import FolderDataModule
from digits.data.mix import MixDataModule
from digits.data.mnist import MNISTDataModule
from digits.data.numbers import NumbersDataModule
from digits.data.qmnist import QMNISTDataModule
from digits.data.split import check_folds
from digits.data.usps import USPSDataModule
from digits.errors import DigitsError
from digits.models import NETWORKS
from digits.models.classifier import DigitClassifier
from digits.models.number_reader import NumberReader
from digits.serving.options import ServeOptions

CONF = Path(config_dir())


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


def test_config_dir_is_the_repo_conf_in_an_editable_install() -> None:
    assert (CONF / "train.yaml").is_file()


@pytest.mark.parametrize("model", options("model"))
def test_model_options_build_networks_that_output_ten_logits(make_cfg, model: str) -> None:
    cfg = make_cfg(f"model={model}")
    net = instantiate(cfg.model)
    if model == "crnn":  # a strip reader: 11 scores (0-9, CTC's blank) per 4 px of the strip
        assert net(torch.zeros(3, 1, 32, 100)).shape == (3, 25, 11)
        assert cfg.module.decoding == "greedy"  # model=crnn chooses its module
        return
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_model_sizes_are_configurable(make_cfg) -> None:
    small = instantiate(make_cfg("model=mlp", "model.hidden=[16]").model)
    default = instantiate(make_cfg("model=mlp").model)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in default.parameters())
    # T0's network exactly: 784-128-84-10.
    widths = [m.out_features for m in default if isinstance(m, torch.nn.Linear)]
    assert widths == [128, 84, 10]


@pytest.mark.parametrize("scheduler", options("scheduler"))
def test_scheduler_options_configure_with_step_counts_filled_in(make_cfg, scheduler: str) -> None:
    cfg = make_cfg(f"scheduler={scheduler}", "model=mlp", "logger=none", "callbacks=none")
    module = DigitClassifier(cfg.model, cfg.optimizer, cfg.get("scheduler"), **cfg.module)
    trainer = instantiate(cfg.trainer, max_epochs=2, limit_train_batches=3, limit_val_batches=1)
    trainer.fit(module, datamodule=instantiate(cfg.data))
    if scheduler == "none":
        assert trainer.lr_scheduler_configs == []
        return
    (config,) = trainer.lr_scheduler_configs
    assert type(config.scheduler).__name__ == cfg.scheduler._target_.rsplit(".", 1)[1]
    assert config.interval == cfg.scheduler.interval
    if scheduler == "onecycle":
        assert config.scheduler.total_steps == 6  # 2 epochs x 3 batches, from the trainer
    if scheduler == "cosine":
        assert config.scheduler.T_max == 6


@pytest.mark.parametrize("trainer", options("trainer"))
def test_trainer_options_compose(make_cfg, trainer: str) -> None:
    cfg = make_cfg(f"trainer={trainer}")
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer"
    if trainer in ("default", "cpu"):
        built = instantiate(cfg.trainer, logger=False)
        assert built.max_epochs == cfg.trainer.max_epochs


@pytest.mark.parametrize("group", ["logger", "callbacks"])
def test_logger_and_callback_options_instantiate(make_cfg, group: str) -> None:
    for option in options(group):
        cfg = make_cfg(f"{group}={option}")
        for entry in (cfg[group] or {}).values():
            assert instantiate(entry) is not None


@pytest.mark.parametrize("option", options("debug"))
def test_debug_options_change_the_trainer(make_cfg, option: str) -> None:
    plain = make_cfg().trainer
    debug = make_cfg(f"debug={option}").trainer
    assert debug != plain
    instantiate(debug, logger=False)


def test_configs_are_found_when_installed_from_a_wheel(tmp_path: Path) -> None:
    from hatchling.builders.wheel import WheelBuilder

    (wheel,) = WheelBuilder(str(CONF.parent)).build(directory=str(tmp_path), versions=["standard"])
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # a pure-Python wheel installs by unpacking
    found = subprocess.run(
        [sys.executable, "-c", "from digits.config import config_dir; print(config_dir())"],
        env={**os.environ, "PYTHONPATH": str(site)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(found) == site / "digits" / "conf"
    assert (Path(found) / "model" / "cnn.yaml").is_file()
    assert (Path(found) / "hydra" / "sweeper" / "optuna.yaml").is_file()
    assert (Path(found) / "tune" / "lr_find.yaml").is_file()
    # Hydra finds the search's sweeper only under hydra_plugins/.
    assert (site / "hydra_plugins" / "digits_optuna" / "__init__.py").is_file()
    pages = ("serving/page/index.html", "serving/page/app.js", "exported/web_page/index.html",
             "exported/web_page/page.js", "exported/web_page/pad.js")  # fmt: skip
    for page in pages:
        assert (site / "digits" / page).is_file(), page  # the pages ship too


def bad_value(allowed: Range, current: object) -> object:
    """A value just outside `allowed`, as an int where the current value is one."""
    if allowed.ge is not None:
        value = allowed.ge - 1
    elif allowed.gt is not None:
        value = allowed.gt
    elif allowed.lt is not None:
        value = allowed.lt
    else:
        value = allowed.le + 1
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return [value] if isinstance(current, list | ListConfig) else value


SELECTIONS = [
    f"{group}={option}"
    for group in ("model", "optimizer", "scheduler")
    for option in options(group)
]


@pytest.mark.slow
@pytest.mark.parametrize("selection", SELECTIONS)
def test_every_range_and_choice_of_the_schema_is_checked_in_its_own_words(selection: str) -> None:
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=[selection])
    group = selection.split("=")[0]
    # The settings every option shares (data, module, trainer...) once; each option's own always.
    shared_too = selection == SELECTIONS[0]
    checked = 0
    for prefix, node, fields in schema_nodes(cfg):
        if not shared_too and not prefix.startswith(f"{group}."):
            continue
        for name, schema_field in fields.items():
            allowed = schema_field.metadata.get("allowed")
            if isinstance(allowed, Range):
                value = bad_value(allowed, node[name])
                typed = f"{prefix}{name}={str(value).replace(' ', '')}"
                expected = f"{typed}: out of range, must be {allowed.describe()}"
            elif isinstance(allowed, OneOf):
                typed = f"{prefix}{name}=bogus"
                expected = f"{typed}: use {allowed.describe()}"
            else:
                continue
            with pytest.raises(DigitsError) as error:
                check_command_line("train", [selection, typed], None)
            assert str(error.value) == expected
            checked += 1
    assert checked >= 20 or not shared_too  # data, module, trainer and the option's own


def test_the_trainer_defaults_in_conf_are_still_lightnings_own() -> None:
    import inspect

    import lightning as L
    from omegaconf import OmegaConf

    stated = OmegaConf.load(Path(config_dir()) / "trainer" / "default.yaml")
    signature = inspect.signature(L.Trainer).parameters
    lightnings = ("num_nodes", "strategy", "overfit_batches", "fast_dev_run",
                  "accumulate_grad_batches", "val_check_interval", "sync_batchnorm", "profiler")  # fmt: skip
    for name in lightnings:
        assert stated[name] == signature[name].default, name


def test_importing_the_config_and_its_checks_does_not_import_lightning() -> None:
    code = (
        "import sys, digits.config.command_line, digits.models, digits.data, digits.training.settings\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'torchvision')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_config_machinery_the_runs_and_the_trainer_schema_import_no_torch() -> None:
    """Issue 46 (start-up): the up-front checks' shared parts load without torch, so a command
    whose own schemas need none can check its command line at once."""
    code = (
        "import sys, digits.cli, digits.config.command_line, digits.config.machine, digits.runs, "
        "digits.training.settings\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lightning', 'optuna'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_hydra_flags_parser_reads_every_flag_hydra_reads_as_hydra_does() -> None:
    # Hydra's parser is private; ours reads its public flags. This pins the two together.
    from hydra._internal.utils import get_args_parser

    from digits.config.hydra_flags import hydra_flags

    def options(parser: argparse.ArgumentParser) -> dict[str, tuple]:
        return {
            action.dest: (
                sorted(action.option_strings),
                action.nargs,
                list(action.choices or []),
                action.const,
            )
            for action in parser._actions
            if action.dest != "version"  # Hydra prints its version itself; ours only notes it
        }

    assert options(hydra_flags()) == options(get_args_parser())
    line = ["-m", "model=cnn", "--cfg", "job", "-p", "model", "seed=1", "--info", "--bogus"]
    ours, theirs = hydra_flags().parse_known_args(line), get_args_parser().parse_known_args(line)
    assert vars(ours[0]) | {"version": None} == vars(theirs[0]) | {"version": None}
    assert ours[1] == theirs[1]


def declared_constraints(owner: Any) -> dict[str, Any]:
    """Each argument of a class's constructor: its `Annotated` constraint, or None."""
    hints = typing.get_type_hints(owner.__init__, include_extras=True)
    return {
        name: next(
            (
                extra
                for hint in (hints[name], *typing.get_args(hints[name]))
                if typing.get_origin(hint) is typing.Annotated
                for extra in typing.get_args(hint)[1:]
            ),
            None,
        )
        for name in inspect.signature(owner).parameters
    }


def model_option(network: type) -> str:
    """The conf/model/ option that builds this network."""
    (option,) = [
        path.stem
        for path in (CONF / "model").glob("*.yaml")
        if OmegaConf.load(path)["_target_"].endswith(f".{network.__name__}")
    ]
    return option


# The Hydra keys of a data option that builds its own sources (a mix's, the strips' digit set).
BUILDS_ITS_OWN = ("_target_", "_convert_", "_recursive_")
# (what declares the settings, its options in conf/, the command composing one, at which key,
#  the constructor's arguments that come from elsewhere, Hydra's keys the YAML adds)
DECLARED = [
    *[(net, f"model/{model_option(net)}", "train", "model", (), ("_target_",)) for net in NETWORKS],
    (MNISTDataModule, "data/mnist", "train", "data", (), ("_target_", "_convert_")),
    (FolderDataModule, "data/folder", "train", "data", (), ("_target_", "_convert_")),
    (USPSDataModule, "data/usps", "train", "data", (), ("_target_", "_convert_")),
    (EMNISTDataModule, "data/emnist", "train", "data", (), ("_target_", "_convert_")),
    (QMNISTDataModule, "data/qmnist", "train", "data", (), ("_target_", "_convert_")),
    (MixDataModule, "data/mix", "train", "data", (), BUILDS_ITS_OWN),
    (NumbersDataModule, "data/numbers", "train", "data", (), BUILDS_ITS_OWN),
    (NumberReader, "module/sequence", "train", "module", ("net", "optimizer", "scheduler"), ()),
    (DigitClassifier, "module/default", "train", "module", ("net", "optimizer", "scheduler"), ()),
    (ServeOptions, "serve", "serve", "", (), ()),
]


@pytest.mark.parametrize(("owner", "option", "command", "key", "elsewhere", "hydra_keys"), DECLARED,
                         ids=lambda value: getattr(value, "__name__", None))  # fmt: skip
def test_each_setting_is_declared_once_by_the_constructor_that_takes_it(
    owner: Any, option: str, command: str, key: str, elsewhere: tuple, hydra_keys: tuple
) -> None:
    # The schema (and so every check and message) is derived from the constructor's signature;
    # the YAML gives each argument a value and nothing else.
    arguments = {n: c for n, c in declared_constraints(owner).items() if n not in elsewhere}
    group, _, choice = option.rpartition("/")
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(command, [f"{group}={choice}"] if group else [])
    node = OmegaConf.select(cfg, key) if key else cfg
    fields = {f.name: f for f in dataclasses.fields(OmegaConf.get_type(node))}
    assert list(fields) == [*hydra_keys, *arguments]
    for name, constraint in arguments.items():
        assert fields[name].metadata["allowed"] == constraint, name
    values = OmegaConf.load(CONF / f"{option}.yaml")
    assert set(values) - {"defaults"} == set(fields), option


def test_a_launcher_from_a_missing_extra_is_named_with_its_install_command(monkeypatch) -> None:
    check_command_line(
        "train", ["-m", "hydra/launcher=slurm", "model=mlp,lenet"], None
    )  # installed
    without_module(monkeypatch, "hydra_plugins.hydra_submitit_launcher")
    with pytest.raises(
        DigitsError, match=r"hydra/launcher=slurm: needs hydra-submitit-launcher.*digits\[slurm\]"
    ):
        check_command_line("train", ["-m", "hydra/launcher=slurm", "model=mlp,lenet"], None)


def test_a_postgresql_study_without_its_driver_names_the_search_extra(monkeypatch) -> None:
    from digits.search.study import StudyRef

    without_module(monkeypatch, "psycopg")
    with pytest.raises(DigitsError, match=r"hydra.sweeper.storage=postgresql.*digits\[search\]"):
        StudyRef("postgresql://digits:digits@127.0.0.1:1/digits", "s").storage_with()


# The packages that only the extras bring (pyproject.toml's optional-dependencies).
EXTRA_MODULES = ("psycopg", "optuna_dashboard", "hydra_plugins.hydra_submitit_launcher", "mlflow",
                 "mkdocs")  # fmt: skip


def test_every_command_imports_and_checks_without_the_extras() -> None:
    """A lean install (`pip install .`): no command needs an extra to start."""
    program = hiding_modules(*EXTRA_MODULES) + (
        "import digits.train, digits.evaluate, digits.predict, digits.explore, digits.export,"
        " digits.serve, digits.compare\n"
        "from digits.config.command_line import check_command_line\n"
        "check_command_line('train', ['-m', 'hparams_search=optuna', 'model=mlp'], None)\n"
        "import mlflow\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    # Everything ran up to the last line, whose import the hiding refused (so it does hide).
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "ModuleNotFoundError: mlflow", done.stderr


@pytest.mark.parametrize(
    "value", ["/a b/ü/x", "it's", "c:\\dir\\", "a\\b", "a,b=c [x] {y}", "/tmp/résultats 結果"]
)
def test_an_override_digits_writes_reads_back_as_the_value_it_was(value: str) -> None:
    assert override_value(override("hydra.run.dir", value)) == value


def test_a_sweep_checks_jobs_it_runs_with_settings_that_depend_on_each_other_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """data.folds=3,5 data.fold=0,1 is four valid jobs: never checked with a fold left at its
    default; a job the product makes that is wrong (fold 4 of 3) is still found."""
    composed: list[tuple[int, int]] = []

    def record(cfg) -> None:
        composed.append((cfg.data.folds, cfg.data.fold))

    check_command_line("train", ["-m", "data.folds=3,5", "data.fold=0,1"], record)
    assert sorted(composed) == [(3, 0), (3, 1), (5, 0), (5, 1)]
    with pytest.raises(DigitsError, match=r"data\.fold=4 is out of range: use 0\.\.2"):
        check_command_line("train", ["-m", "data.folds=5,3", "data.fold=0,4"],
                           lambda cfg: check_folds(cfg.data.folds, cfg.data.fold))  # fmt: skip


def test_resolve_cfg_job_shows_the_config_without_a_run_directory(tmp_path: Path) -> None:
    shown = run_cli("digits.train", "--cfg", "job", "--resolve", cwd=tmp_path, data_root=None)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "output_dir: null" in shown.stdout and "run_name: mlp-adam" in shown.stdout
    assert not (tmp_path / "outputs").exists()


def test_src_uses_no_private_api_of_its_libraries() -> None:
    # Hydra, OmegaConf, Lightning, Optuna and torch change their private parts without notice:
    # src imports no private module or name and reads no private attribute but its own (self's).
    import ast

    found = []
    for path in (Path(digits.__file__).parent).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                modules = [*(node.module or "").split("."), *(alias.name for alias in node.names)]
            elif isinstance(node, ast.Import):
                modules = [part for alias in node.names for part in alias.name.split(".")]
            elif isinstance(node, ast.Attribute) and not (
                isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            ):
                modules = [node.attr]
            else:
                continue
            if any(name.startswith("_") and not name.startswith("__") for name in modules):
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    assert found == []
