"""The data module: split, batches, normalisation, augmentation, resumable shuffling."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from conftest import FAST, TEST_SIZE, TRAIN_SIZE, VAL_SIZE, run_cli
from digits.config import config_dir
from digits.data.augment import augment
from digits.data.split import split_indices
from digits.evaluation.scoring import predict_split
from digits.models.classifier import shifted_views
from digits.reading.strokes import dilate, erode
from digits.training.fit import run


def test_split_is_seeded_disjoint_and_the_test_set_is_separate(make_cfg) -> None:
    datamodule = instantiate(make_cfg().data)
    datamodule.setup()
    assert len(datamodule.train_set) == TRAIN_SIZE - VAL_SIZE
    assert len(datamodule.val_set) == VAL_SIZE and len(datamodule.test_set) == TEST_SIZE
    again = instantiate(make_cfg().data)
    again.setup("fit")
    assert torch.equal(again.val_set.images, datamodule.val_set.images)
    other = instantiate(make_cfg("data.split_seed=1").data)
    other.setup("fit")
    assert not torch.equal(other.val_set.images, datamodule.val_set.images)


FOLD_INDICES = (
    "import hashlib, sys; from digits.data.split import split_indices; "
    "train, val = split_indices(60000, 5000, 42, 5, int(sys.argv[1]), root='-'); "
    "print(hashlib.md5(val.numpy().tobytes() + train.numpy().tobytes()).hexdigest())"
)


def test_folds_are_disjoint_cover_the_training_images_once_and_are_the_same_everywhere() -> None:
    folds = [split_indices(60000, 5000, 42, 5, fold, root="-") for fold in range(5)]
    validation = torch.cat([val for _, val in folds])
    assert torch.equal(validation.sort().values, torch.arange(60000))  # disjoint, cover all once
    for train, val in folds:
        assert len(val) == 12000 and len(train) == 48000
        assert torch.equal(torch.cat([train, val]).sort().values, torch.arange(60000))
    for fold in (0, 4):  # another process computes the same split
        result = subprocess.run(
            [sys.executable, "-c", FOLD_INDICES, str(fold)], capture_output=True, text=True
        )
        train, val = folds[fold]
        here = hashlib.md5(val.numpy().tobytes() + train.numpy().tobytes()).hexdigest()
        assert result.stdout.strip() == here, result.stderr[-2000:]
    # The hold-out is what it always was (runs made before folds reproduce).
    order = torch.randperm(60000, generator=torch.Generator().manual_seed(42))
    train, val = split_indices(60000, 5000, 42, None, None, root="-")
    assert torch.equal(val, order[:5000]) and torch.equal(train, order[5000:])


def test_a_fold_run_validates_on_its_fold_and_evaluate_finds_the_same_images(
    make_cfg, tmp_path: Path
) -> None:
    cfg = make_cfg("data.folds=4", "data.fold=3", "model=mlp", "trainer.max_epochs=1",
                   "trainer.limit_train_batches=2", "logger=none")  # fmt: skip
    metrics = run(cfg)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    assert len(datamodule.val_set) == TRAIN_SIZE // 4
    assert len(datamodule.train_set) == TRAIN_SIZE - TRAIN_SIZE // 4
    # The checkpoint keeps the fold (plain ints, loaded weights_only): evaluate split=val
    # rebuilds the same validation images from it.
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        evaluate = compose("evaluate", overrides=[f"ckpt_path={metrics['best_checkpoint']}",
                                                  f"data.root={cfg.data.root}", "split=val"])  # fmt: skip
    split = predict_split(evaluate, Path(metrics["best_checkpoint"]))
    assert torch.equal(split.images, datamodule.val_set.images)


@pytest.mark.parametrize("pipeline", ["memory", "torchvision"])
def test_both_pipelines_give_the_same_0_1_batches(make_cfg, pipeline: str) -> None:
    memory = instantiate(make_cfg().data)
    memory.setup("test")
    images, labels = memory.on_after_batch_transfer(next(iter(memory.test_dataloader())), 0)
    other = instantiate(make_cfg(f"data.pipeline={pipeline}").data)
    other.setup("test")
    images2, labels2 = other.on_after_batch_transfer(next(iter(other.test_dataloader())), 0)
    assert images.shape == images2.shape == (64, 1, 28, 28) and images.dtype == torch.float32
    assert torch.allclose(images, images2, atol=1e-6) and torch.equal(labels, labels2)
    # 0-1, white ink on black: the model's input contract (it normalises them itself).
    assert torch.equal(images[:, 0], memory.test_set.images[:64].float() / 255)


@pytest.mark.parametrize(
    ("on_device", "model_device", "images_on"),
    [
        ("true", "meta", "meta"),
        ("auto", "meta", "cpu"),
        ("false", "meta", "cpu"),
        ("true", "cpu", "cpu"),
    ],
)
def test_on_device_keeps_the_images_where_the_model_runs_and_indexes_batches_there(
    make_cfg, on_device: str, model_device: str, images_on: str
) -> None:
    # "meta" stands in for a GPU here: tensors moved there keep their shapes, not their values.
    datamodule = instantiate(make_cfg(f"data.on_device={on_device}").data)
    datamodule.trainer = SimpleNamespace(
        strategy=SimpleNamespace(root_device=torch.device(model_device))
    )
    datamodule.setup("fit")
    assert datamodule.train_set.images.device.type == images_on
    loader = datamodule.train_dataloader()
    images, labels = datamodule.on_after_batch_transfer(next(iter(loader)), 0)
    assert images.device.type == labels.device.type == images_on
    assert images.shape == (64, 1, 28, 28) and images.dtype == torch.float32
    if images_on != "cpu":  # batches of device tensors: no worker processes, no pinning
        assert loader.num_workers == 0 and not loader.pin_memory
    else:  # the same batches as the host path
        host = instantiate(make_cfg("data.on_device=false").data)
        host.setup("fit")
        first = host.on_after_batch_transfer(next(iter(host.train_dataloader())), 0)
        assert torch.equal(images, first[0]) and torch.equal(labels, first[1])


def bars(count: int = 8) -> torch.Tensor:
    images = torch.zeros(count, 1, 28, 28)
    images[:, :, 10:18, 12:16] = 1
    return images


def test_random_affine_moves_pixels_and_identity_leaves_them() -> None:
    images = bars()
    assert torch.equal(augment(images), images)
    assert torch.equal(augment(images, rotation=None, elastic=None), images)
    same = augment(images, rotation=0, translate=0, scale=[1, 1], thickness=[0, 0])
    assert torch.allclose(same, images, atol=1e-5)
    moved = augment(images, rotation=15, translate=0.1, scale=[0.9, 1.1])
    assert moved.shape == images.shape and not torch.allclose(moved, images)
    assert (moved.sum(dim=(1, 2, 3)) > 0.5 * images[0].sum()).all()  # the stroke stays in view


def test_thickness_dilates_or_erodes_each_image_by_its_own_radius() -> None:
    images = bars()
    assert torch.allclose(augment(images, thickness=[1, 1]), dilate(images, 1), atol=1e-5)
    assert torch.allclose(augment(images, thickness=[-1, -1]), erode(images, 1), atol=1e-5)
    half = augment(images, thickness=[0.5, 0.5])
    assert torch.allclose(half, (images + dilate(images, 1)) / 2, atol=1e-5)
    torch.manual_seed(0)
    varied = augment(bars(64), thickness=[-1, 2]).sum(dim=(1, 2, 3))
    assert varied.min() < images[0].sum() < varied.max()  # thinner and thicker in one batch
    assert len(varied.unique()) > 32


def test_european_ones_gives_a_share_of_the_1s_a_flag_and_leaves_other_digits() -> None:
    torch.manual_seed(0)
    ones = torch.zeros(64, 1, 28, 28)
    ones[:, :, 4:24, 14:16] = 1  # a bare vertical stroke, MNIST's usual 1
    labels = torch.tensor([1, 7] * 32)
    flagged = augment(ones, labels, european_ones=1.0)
    added = flagged - ones
    assert (added >= 0).all() and torch.equal(flagged[labels == 7], ones[labels == 7])
    flag = added[labels == 1][:, 0, 4:14, :14].sum(dim=(1, 2))  # upper half, left of the stroke
    assert (flag > 3).all()  # every 1 got one, down to the left from the top
    base = added[labels == 1][:, 0, 22:26, 16:].sum(dim=(1, 2))  # at the foot, right of it
    assert 0.2 < (base > 1).float().mean() < 0.8  # about half have a base too
    assert torch.equal(augment(ones, labels, european_ones=0.0), ones)
    assert torch.equal(augment(ones, european_ones=1.0), ones)  # no labels: no 1s known
    some = augment(ones, labels, european_ones=0.3)
    assert 4 < (some != ones).flatten(1).any(1).sum() < 20  # about 30% of the 32 ones


def test_elastic_distortion_moves_strokes_a_little_and_differently_per_image() -> None:
    torch.manual_seed(0)
    images = bars(16)
    distorted = augment(images, elastic=[20, 3])
    assert not torch.allclose(distorted, images, atol=1e-3)
    assert not torch.allclose(distorted[0], distorted[1], atol=1e-3)
    # A little: most of the stroke's ink stays where it was.
    overlap = (distorted * images).sum(dim=(1, 2, 3)) / images.sum(dim=(1, 2, 3))
    assert (overlap > 0.6).all()


def test_shuffle_replays_an_epoch_and_resumes_mid_epoch(make_cfg) -> None:
    torch.manual_seed(5)
    datamodule = instantiate(make_cfg().data)
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    loader.sampler.set_epoch(2)
    epoch = [labels for _, labels in loader]
    loader.sampler.set_epoch(2)
    assert all(torch.equal(a, b) for a, b in zip(epoch, [y for _, y in loader], strict=True))
    loader.sampler.set_epoch(3)
    assert not all(torch.equal(a, b) for a, b in zip(epoch, [y for _, y in loader], strict=True))

    loader.sampler.set_epoch(2)
    iterator = iter(loader)
    for _ in range(5):
        next(iterator)
    state = loader.state_dict()
    assert state == {"batches_given": 5}
    fresh = datamodule.train_dataloader()
    fresh.load_state_dict(state)
    fresh.sampler.set_epoch(2)
    rest = [labels for _, labels in fresh]
    assert len(rest) == len(epoch) - 5
    assert all(torch.equal(a, b) for a, b in zip(rest, epoch[5:], strict=True))

    # Saved after an epoch's last batch (during its validation, say): the next epoch is whole.
    finished = datamodule.train_dataloader()
    assert len([batch for batch in finished]) == len(epoch)
    assert finished.state_dict() == {"batches_given": 0}


def test_augmented_run_saves_checkpoints_that_load_weights_only(
    tmp_path: Path, data_root: Path
) -> None:
    result = run_cli(
        "digits.train",
        *FAST,
        "model=mlp",
        "trainer.max_epochs=1",
        "logger=none",
        "data.augment={rotation:10,translate:0.1,scale:[0.9,1.1],thickness:[-0.5,1],elastic:[20,3]}",
        "hydra.run.dir=outputs/aug",
        cwd=tmp_path,
        data_root=data_root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for checkpoint in (tmp_path / "outputs" / "aug" / "checkpoints").glob("*.ckpt"):
        saved = torch.load(checkpoint, weights_only=True)
        assert saved["datamodule_hyper_parameters"]["augment"]["scale"] == [0.9, 1.1]


def test_shifted_views_move_the_image_by_every_offset_up_to_the_shift() -> None:
    image = torch.zeros(1, 1, 28, 28)
    image[0, 0, 10, 10] = 1.0
    assert shifted_views(image, 0) == [image]
    views = shifted_views(image, 1)
    assert len(views) == 9 and torch.equal(views[0], image)  # unmoved first
    dots = {tuple(view[0, 0].nonzero()[0].tolist()) for view in views}
    assert dots == {(10 + dy, 10 + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
    assert all(view.sum() == 1 for view in views)  # shifted, not blurred or wrapped
