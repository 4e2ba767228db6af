"""The model's input contract: it normalises 0-1 images itself, a checkpoint alone classifies, and
checkpoints of the first format still load."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from crafted import rewritten_checkpoint, running_code  # tools/crafted.py
from hydra.utils import instantiate

from conftest import hiding_modules, run_cli
from digits.data.idx import load_mnist
from digits.errors import DigitsError
from digits.evaluation.scoring import calibration
from digits.models.calibration import fit_temperature
from digits.models.checkpoint import load_classifier
from digits.models.classifier import DigitClassifier
from digits.runs import RunDir

# Written by digits before the model carried its normalisation (mlp, data.mean=0.5, data.std=0.25,
# trained on the synthetic data of conftest.py).
FIRST_FORMAT = Path(__file__).parent / "fixtures" / "checkpoint-v0.1-mlp.ckpt"

# Classify with nothing but the checkpoint: digits' config and data packages may not even load.
CLASSIFY = (
    hiding_modules("digits.config", "digits.data")
    + """
import torch
from digits.models.checkpoint import load_classifier

model = load_classifier(sys.argv[1])
images, labels = torch.load(sys.argv[2])
with torch.no_grad():
    predicted = model.predict_step(images, 0).argmax(dim=1)
print((predicted == labels).float().mean().item())
"""
)


def test_the_model_normalises_its_0_1_input_itself(make_cfg) -> None:
    cfg = make_cfg("model=mlp", "module.mean=0.5", "module.std=0.25")
    model = DigitClassifier(cfg.model, cfg.optimizer, None, **cfg.module).eval()
    images = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(model(images), model.net((images - 0.5) / 0.25))
        probabilities = model.predict_step(images, 0)
        assert torch.equal(model.predict_step((images, torch.zeros(4)), 0), probabilities)
    assert probabilities.shape == (4, 10)
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(4))


def test_temperature_scaling_lowers_the_calibration_error_of_an_over_confident_model() -> None:
    generator = torch.Generator().manual_seed(0)
    calibrated = torch.randn(4000, 10, generator=generator) * 3
    # Labels drawn from the softmax itself: these logits are calibrated by construction.
    labels = calibrated.softmax(dim=1).multinomial(1, generator=generator).squeeze(1)
    over_confident = calibrated * 5
    temperature = fit_temperature(over_confident, labels)
    assert temperature == pytest.approx(5, rel=0.15)  # undoes the factor it was made with
    before = calibration(over_confident.softmax(dim=1), labels)["ece"]
    after = calibration((over_confident / temperature).softmax(dim=1), labels)["ece"]
    assert before > 0.1 and after < 0.03
    assert fit_temperature(torch.zeros(0, 10), torch.zeros(0)) == 1.0
    # No mistakes on the held-out set: nothing says how sure to be, so no change.
    right = calibrated.argmax(dim=1)
    assert fit_temperature(calibrated, right) == 1.0
    right[0] = (right[0] + 1) % 10
    assert fit_temperature(calibrated, right) < 1.0  # one mistake: sharper, but finite


def test_predicted_probabilities_are_divided_by_the_stored_temperature(make_cfg) -> None:
    cfg = make_cfg("model=mlp")
    model = DigitClassifier(cfg.model, cfg.optimizer, None, **cfg.module).eval()
    assert model.temperature.item() == 1.0
    model.temperature.fill_(2.5)
    images = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        expected = (model(images) / 2.5).softmax(dim=1)
        assert torch.allclose(model.predict_step(images, 0), expected)
    reloaded = DigitClassifier(cfg.model, cfg.optimizer, None, **cfg.module)
    reloaded.load_state_dict(model.state_dict())
    assert reloaded.temperature.item() == 2.5
    assert load_classifier(FIRST_FORMAT).temperature.item() == 1.0  # saved before calibration


def test_a_checkpoint_file_alone_classifies_images(
    trained_run: Path, data_root: Path, tmp_path: Path
) -> None:
    run = RunDir(trained_run)
    checkpoint = shutil.copy(run.best_checkpoint(), tmp_path / "model.ckpt")
    images, labels = load_mnist(data_root, train=False)
    torch.save((images.unsqueeze(1).float() / 255, labels), tmp_path / "test.pt")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITS_")}
    result = subprocess.run(
        [sys.executable, "-c", CLASSIFY, str(checkpoint), str(tmp_path / "test.pt")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    accuracy = float(result.stdout.strip().splitlines()[-1])
    assert accuracy == pytest.approx(run.metrics()["test/acc"], abs=1e-6)


def test_first_format_checkpoints_load_with_their_own_normalisation() -> None:
    saved = torch.load(FIRST_FORMAT, weights_only=True)
    assert "mean" not in saved["hyper_parameters"]  # it was kept with the data settings then
    data = saved["datamodule_hyper_parameters"]
    model = load_classifier(FIRST_FORMAT)
    assert (model.hparams.mean, model.hparams.std) == (data["mean"], data["std"]) == (0.5, 0.25)
    # What the first format did: normalise with the data settings, then run the network.
    net = instantiate(saved["hyper_parameters"]["net"], _convert_="all").eval()
    weights = {k.removeprefix("net."): v for k, v in saved["state_dict"].items() if "net." in k}
    net.load_state_dict(weights)
    images = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(model(images), net((images - 0.5) / 0.25), atol=1e-6)


@pytest.mark.slow
def test_first_format_checkpoints_evaluate_and_predict(data_root: Path, tmp_path: Path) -> None:
    checkpoint = shutil.copy(FIRST_FORMAT, tmp_path / "old.ckpt")
    result = run_cli(
        "digits.evaluate",
        f"ckpt_path={checkpoint}",
        "tensorboard=false",
        cwd=tmp_path,
        data_root=data_root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = (tmp_path / "evaluation" / "metrics.json").read_text()
    assert '"images": 200' in report
    image = tmp_path / "digit.png"
    images, _ = load_mnist(data_root, train=False)
    from PIL import Image

    Image.fromarray(images[0].numpy()).save(image)
    predicted = run_cli(
        "digits.predict",
        f"ckpt_path={checkpoint}",
        f"images={image}",
        "output=json",
        cwd=tmp_path,
        data_root=None,
    )
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert '"digit": ' in predicted.stdout


@pytest.mark.parametrize("where", ["net", "net.channels", "optimizer"])
@pytest.mark.parametrize("callable_name", ["os.system", "subprocess.run", "builtins.eval"])
def test_a_crafted_checkpoint_runs_nothing_and_is_refused_in_one_line(
    trained_run: Path, tmp_path: Path, where: str, callable_name: str
) -> None:
    marker = tmp_path / "ran"
    crafted = running_code(marker)[callable_name]

    def craft(checkpoint: dict) -> None:
        hparams = checkpoint["hyper_parameters"]
        if where == "net.channels":
            hparams["net"] = {"_target_": "digits.models.LeNet", **hparams["net"]}
            hparams["net"]["channels"] = crafted
        else:
            hparams[where] = crafted

    path = rewritten_checkpoint(RunDir(trained_run).last_checkpoint, tmp_path / "evil.ckpt", craft)
    with pytest.raises(DigitsError, match=r"refused: .*(not one of digits' own|names)") as raised:
        load_classifier(path)
    assert callable_name in str(raised.value) and "\n" not in str(raised.value)
    assert not marker.exists()


def test_a_checkpoint_holding_an_interpolation_is_refused(
    trained_run: Path, tmp_path: Path
) -> None:
    def craft(checkpoint: dict) -> None:
        checkpoint["hyper_parameters"]["net"]["dropout"] = "${oc.env:HOME}"

    path = rewritten_checkpoint(RunDir(trained_run).last_checkpoint, tmp_path / "i.ckpt", craft)
    with pytest.raises(DigitsError, match=r"net\.dropout holds an interpolation"):
        load_classifier(path)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_checkpoint_of_nan_or_infinite_weights_is_refused(
    trained_run: Path, tmp_path: Path, value: float
) -> None:
    def damage(checkpoint: dict) -> None:
        name = next(key for key in checkpoint["state_dict"] if key.endswith("weight"))
        checkpoint["state_dict"][name][0, 0] = value

    path = rewritten_checkpoint(RunDir(trained_run).last_checkpoint, tmp_path / "n.ckpt", damage)
    with pytest.raises(DigitsError, match=r"refused: NaN or infinite weights in net\.\S*weight"):
        load_classifier(path)
    assert load_classifier(RunDir(trained_run).last_checkpoint) is not None  # the original loads


def test_a_checkpoint_changed_since_its_run_recorded_it_is_refused(
    trained_run: Path, tmp_path: Path
) -> None:
    import shutil

    copy = RunDir(tmp_path / "run")
    shutil.copytree(trained_run, copy.path, ignore=shutil.ignore_patterns(".lock"))
    recorded = copy.manifest()["checkpoints"]
    assert set(recorded) == {p.name for p in copy.checkpoints.glob("*.ckpt")}
    assert load_classifier(copy.last_checkpoint) is not None  # as the run left it
    data = bytearray(copy.last_checkpoint.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit flipped
    copy.last_checkpoint.write_bytes(bytes(data))
    with pytest.raises(
        DigitsError, match=r"refused: its MD5 differs from the one its run recorded"
    ):
        load_classifier(copy.last_checkpoint)
