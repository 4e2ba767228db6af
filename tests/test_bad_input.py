"""The table of bad input: every entry point answers a user's mistake with one line on stderr that
names the key, file or value and what is allowed, exit status 2, and nothing written.

Each row runs the real entry point (`main()`, as `python -m digits.<entry>` does) in this process,
which is quick enough for a table that grows with every bug found. Add a row for each new one.
The subprocess tests in test_reliability.py check the same promise end to end for a few of them.
"""

from __future__ import annotations

import json
import shutil
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path

import onnx
import pytest
import torch
from awkward_images import dot_grid  # tools/awkward_images.py
from crafted import onnx_classifier, rewritten_checkpoint, running_code  # tools/crafted.py
from digit_files import folders_of_photos  # tools/digit_files.py
from PIL import Image

from conftest import run_entry_point
from digits.exported.web import RUNTIME_FILES
from digits.runs import RunDir

T, E, P, X, EX, S, C = "train", "evaluate", "predict", "explore", "export", "serve", "compare"
A = "adapt"
ADAPT = ["ckpt_path={run}", "data.root={photos}"]
PREDICT = ["ckpt_path={ckpt}", "images=[{image}]"]
SMALL_VAL = ["data.val_size=200"]
SERVE = ["ckpt_path={ckpt}", "port={free_port}"]

BAD_INPUT = [
    # --- train: choices, keys, types, ranges (from the schema) ---
    (T, ["model=resnet"], "model=resnet: no such model option; available: cnn, crnn, lenet, lstm, mlp"),
    (T, ["~seed"], "seed: Key 'seed' not in 'TrainConfig'"),
    (T, ["-m", *SMALL_VAL, "data.split_seed=range(50)", "data.val_size=70000,100"], "data.val_size=70000: out of range"),
    # the 61st value: past the sweep's full checks, checked against the schema
    (T, ["-m", *SMALL_VAL, "optimizer.lr=" + ",".join(f"{0.001 * (i + 1):g}" for i in range(60)) + ",-1"], "optimizer.lr=-1: out of range, must be > 0"),
    (T, ["--config-dir", "/no/such/conf"], "--config-dir /no/such/conf: no such folder"),
    (T, ["--config-name", "nosuch"], "--config-name nosuch: no nosuch.yaml in"),
    (T, ["--config-name", "train", "bogus"], "bogus: not a valid override (missing EQUAL"),
    (T, ["--config-dir", "{user_conf}", "model=broken"], 'error: not valid YAML: while parsing a flow sequence in "{user_conf}/model/broken.yaml", line 1'),
    (T, ["--config-dir", "{user_conf}", "model=odd"], "model.bogus=1: no such key in the config (model takes: hidden, dropout)"),
    (T, ["--config-dir", "{user_conf}", "model=nosuch"], "model=nosuch: no such model option; available: broken, cnn, crnn, lenet, lstm, mlp, odd"),
    (T, ["model=cnn,lenet"], "model=cnn,lenet: several values, for a sweep; add -m"),
    (T, ["optimizer.lr=${oc.env:NOPE_NOT_SET}"], "optimizer.lr: KeyError raised while resolving interpolation"),
    (T, ["data.batch_size=${optimizer.lr}"], "data.batch_size: While dereferencing interpolation '${optimizer.lr}'"),
    (T, ["seed=${seed}"], "seed: Recursive interpolation detected"),
    (T, ["run_name=../../../escape"], "run_name=../../../escape: names the run's folder inside its run directory"),
    (T, ["run_name=" + "x" * 300], "run_name=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...: 300 characters, at most 150"),
    (T, ["-m", "model=mlp,resnet"], "model=resnet: no such model option"),
    (T, ["model=null"], "model=null: no such model option"),
    (T, ["scheduler=null"], "scheduler=null: no such scheduler option; available: cosine"),
    (T, ["optimizer.lrr=0.1"], "optimizer.lrr=0.1: no such key in the config (did you mean optimizer.lr?"),
    (T, ["modle=cnn"], "modle=cnn: no such key in the config (did you mean"),
    (T, ["data.batch_size=abc"], "data.batch_size=abc: must be an integer >= 1"),
    (T, ["data.batch_size=null"], "data.batch_size=null: must be an integer >= 1"),
    (T, ["data.batch_size=1e3"], "data.batch_size=1e3: must be an integer >= 1"),
    (T, ["optimizer.lr=-1"], "optimizer.lr=-1: out of range, must be > 0"),
    (T, ["optimizer.lr=nan"], "optimizer.lr=nan: not a finite number; must be > 0"),
    (T, ["optimizer.lr=inf"], "optimizer.lr=inf: not a finite number; must be > 0"),
    (T, ["optimizer=sgd", "optimizer.momentum=2"], "optimizer.momentum=2: out of range, must be in [0, 1)"),
    (T, ["optimizer.momentum=0.5"], "the selected optimizer has no momentum; it is a setting of optimizer=sgd"),
    (T, ["trainer.max_epochs=0"], "trainer.max_epochs=0: out of range, must be >= 1"),
    (T, ["trainer.max_epochs=1.5"], "trainer.max_epochs=1.5: must be an integer >= 1"),
    (T, ["data.val_size=70000"], "data.val_size=70000: out of range"),
    (T, ["model=cnn", "model.dropout=1.0"], "model.dropout=1.0: out of range, must be in [0, 1)"),
    (T, ["seed=-1"], "seed=-1: out of range, must be in [0, 4294967295]"),
    (T, ["seed=abc"], "seed=abc: must be an integer in [0, 4294967295]"),
    (T, ["data.split_seed=-1"], "data.split_seed=-1: out of range, must be in [0, 4294967295]"),
    (T, ["model.hidden=[a]"], "model.hidden=[a]: must be a list of integers >= 1"),
    (T, ["data.pipeline=bogus"], "data.pipeline=bogus: use one of memory, torchvision"),
    (T, ["data.on_device=gpu"], "data.on_device=gpu: use one of auto, true, false"),
    (T, ["data.pipeline=torchvision", "data.on_device=true"], "data.on_device=true keeps the in-memory images on the device: set data.pipeline=memory"),
    (T, ["data.pipeline=torchvision", "data.augment={rotation:10}"], "data.augment works on the in-memory pipeline"),
    (T, ["data.augment={thickness:[-5,1]}"], "data.augment.thickness=[-5.0, 1.0]: out of range, must be in [-3, 3]"),
    (T, ["data.augment={elastic:[0,3]}"], "data.augment.elastic=[0.0, 3.0]: out of range, must be > 0"),
    (T, ["data.augment.rotation=10"], "data.augment is null (off), so it has no rotation; set it as a whole, e.g. data.augment={rotation:10"),
    (T, ["data.augment={rotation:400,translate:0.1,scale:[1,1]}"], "data.augment.rotation=400"),
    (T, ["data.augment=bogus"], "data.augment=bogus: must be null or a mapping of rotation, translate, scale, thickness, elastic, european_ones"),
    (T, ["experiment=robust", "data.augment.european_ones=0.3"], "data.augment.european_ones=0.3: not set by this config; add it with +data.augment.european_ones=0.3"),
    (T, ["data.augment={european_ones:2}"], "data.augment.european_ones=2"),
    (T, ["data.folds=5", "data.fold=5"], "data.fold=5 is out of range: use 0..4 (data.folds=5; every fold: -m data.fold='range(5)')"),
    (T, ["-m", "data.folds=3", "data.fold=range(4)"], "data.fold=3 is out of range: use 0..2 (data.folds=3"),
    (T, ["data.folds=1", "data.fold=0"], "data.folds=1: out of range, must be in [2, 60000] (k-fold cross-validation of the training images)"),
    (T, ["data.folds=5", "data.fold=0", "data.val_size=100"], "data.val_size=100 is unused with data.folds=5 (each fold validates on 1/data.folds of the training images); give one of them"),
    (T, ["data.fold=2"], "data.fold=2 needs data.folds, the number of folds of k-fold cross-validation (e.g. data.folds=5)"),
    (T, ["data.folds=5"], "data.folds=5 needs data.fold, the fold that validates: one of 0..4"),
    (T, ["data.folds=5000", "data.fold=0"], "data.folds=5000 is out of range: use 2..1200 (one fold per training image at most: 1200 in"),
    # --- train: what the data allows (synthetic MNIST: 1,000 training images after validation) ---
    (T, ["trainer.val_check_interval=1000"], "trainer.val_check_interval=1000: validates every 1000 training batches, but an epoch has 16"),
    (T, ["trainer.limit_train_batches=0"], "trainer.limit_train_batches=0: no training batches left, so nothing would train"),
    (T, ["trainer.limit_train_batches=0.0001"], "trainer.limit_train_batches=0.0001: no training batches left"),
    (T, ["tune=lr_find", "trainer.limit_train_batches=20"], "tune.num_training=100: the learning-rate finder would stop after 16 steps"),
    (T, ["data.root={empty}", "data.download=false"], "MNIST not found: {empty}/MNIST/raw lacks"),
    (T, ["data.root={truncated_data}", "data.download=false"], "t10k-images-idx3-ubyte: 1000 bytes but its header promises 200 items"),
    # --- train: data=folder, your own photos ---
    (T, ["data=folder"], "data=folder needs data.root=<folder> or data.labels=<csv>"),
    (T, ["data=folder", "data.root=/no/such"], "data.root=/no/such: no such folder; give a folder of <label>/<image>"),
    (T, ["data=folder", "data.root={empty}"], "data.root={empty}: no images in <label>/ folders (0-9)"),
    (T, ["data=folder", "data.root={letter_photos}"], "data.root={letter_photos}: class folder 'a' is not a digit; name the class folders 0-9"),
    (T, ["data=folder", "data.root={ten_photos}"], "class folder '10' is not a digit"),
    (T, ["data=folder", "data.root={bad_photos}"], "{bad_photos}/3/cut.png: "),
    (T, ["data=folder", "data.labels={missing_csv}"], "{missing_csv}, line 2: no such file"),
    (T, ["data=folder", "data.labels={label_csv}"], "{label_csv}, line 2: label '12' is not a digit 0-9"),
    (T, ["data=folder", "data.root={photos}", "data.labels={label_csv}"], "data.root={photos} is unused with data.labels={label_csv} (the CSV's rows name the images)"),
    (T, ["data=folder", "data.root={photos}", "data.val_fraction=1.5"], "data.val_fraction=1.5: out of range, must be in (0, 1) (a share of the images, stratified by label)"),
    (T, ["data=folder", "data.root={photos}", "data.preprocess=MNIST"], "data.preprocess=MNIST: use one of mnist, mnist_v1, scan, naive"),
    (T, ["data=folder", "data.root={photos}", "data.val_size=100"], "data.val_size=100: the selected data has no val_size; it is a setting of data=mnist"),
    (T, ["data=folder", "data.root={photos}", "data.val_fraction=0.01"], "20 images leave a split empty"),
    (T, ["data=usps", "data.root={empty}", "data.download=false"], "{empty}/usps.bz2: not found (USPS's train split, in torchvision's layout); put the file there, or allow data.download=true"),
    (T, ["data=usps", "data.test_fraction=1"], "data.test_fraction=1: out of range, must be in (0, 1)"),
    (T, ["data=mix", "data.weights={qmnist:2}"], "data.weights.qmnist: no such source; the sources are mnist, usps"),
    (T, ["data=mix", "data.weights={usps:-1}"], "data.weights.usps=-1: must be a number > 0"),
    (T, ["data=mix", "+data@data.sources.mine=folder"], "data=folder needs data.root=<folder> or data.labels=<csv>"),
    (T, ["data=mix", "+data@data.sources.mine=nosuch"], "nosuch"),
    # issue 42: a data module of your own (tests/test_own_code.py has the example package's)
    (T, ["data._target_=builtins.dict"], "data._target_=builtins.dict: not a digits data module; subclass digits.data.datamodule.HeldOutSplits"),
    (T, ["data._target_=no_such_package.Digits"], "data._target_=no_such_package.Digits: cannot import it"),
    (T, ["data=mix", "data.sources.mnist._target_=os.system"], "data.sources.mnist._target_: refused: 'os.system' is not one of digits' data options"),
    # --- train: a run directory that holds a run, damaged runs ---
    (T, ["hydra.run.dir={run}"], "hydra.run.dir={run}: holds a run already (completed); give another hydra.run.dir, add overwrite=true"),
    (T, ["resume={run}", "overwrite=true"], "resume= and overwrite= together: give one"),
    (T, ["resume={damaged_hydra}"], "{damaged_hydra}/.hydra/overrides.yaml: damaged, not readable YAML"),
    (T, ["reproduce={damaged_hydra}"], "{damaged_hydra}/.hydra/overrides.yaml: damaged, not readable YAML"),
    # --- compare ---
    (C, [], "the following arguments are required: runs (usage: python -m digits.compare"),
    (C, ["{run}"], "found 1 run(s); compare needs two or more"),
    (C, ["{run}", "{empty}"], "empty: neither a run directory nor a multirun folder of runs"),
    (C, ["{run}", "{empty}/gone"], "gone: no such folder"),
    (C, ["{run}", "{image}"], "digit.png: neither a run directory nor a multirun folder"),
    (C, ["{run}", "{run}/nothing*"], "nothing*: matches no folder"),
    (C, ["{run}", "{run}", "--out", "{blocked}"], "--out {blocked}: a file, not a folder"),
    (C, ["{run}", "{run}", "--out", "{blocked}/x"], "--out={blocked}/x: cannot write there"),
    (C, ["{run}", "{short_per_image}"], "{short_per_image}/test_predictions.csv: 20 images, but the run tested 200 (metrics.json): cut short or damaged; to test its checkpoint again on the full test set: python -m digits.train"),
    (C, ["{run}", "{other_images}"], "are not the same test images (200 and 200 images, labels that differ): no paired test"),
    (C, ["{run}", "{other_test_set}"], "{run} and {other_test_set} were tested on different test sets (200 images, md5"),
    # --- train: reproduce ---
    # issue 43: init_from= (transfer learning)
    (T, ["init_from={empty}/gone"], "init_from={empty}/gone: no such file or run directory"),
    (T, ["init_from={empty}"], "init_from={empty}: a folder that holds no run (give a run directory, or a checkpoint file"),
    (T, ["init_from={damaged_run}"], "init_from={damaged_run}: {damaged_run}/metrics.json: damaged"),
    (T, ["init_from={fixed_batch_onnx}"], "init_from={fixed_batch_onnx}: not a digits checkpoint"),
    (T, ["init_from={torchscript}"], "init_from={torchscript}: a TorchScript export (digits.export format=torchscript)"),
    (T, ["init_from={notes}"], "init_from={notes}: not a digits checkpoint"),
    (T, ["init_from={evil_ckpt}"], "init_from={evil_ckpt}: refused: its network is"),
    (T, ["init_from={run}", "model=cnn"], "init_from={run}: holds a MLP network, not the selected CNN:"),
    (T, ["init_from={run}", "module.std=0.5"], "its network learned on images normalised with module.std=0.3081, not 0.5"),
    (T, ["init_from={run}", "resume={run}"], "resume= and init_from= together: give one"),
    (T, ["init_from={run}", "ckpt_path={ckpt}"], "init_from={run} ckpt_path={ckpt}: give one (ckpt_path continues training"),
    (T, ["model=cnn", "module.freeze=[nope]"], "module.freeze=[nope]: the CNN network has no part 'nope'; its parts: features, head"),
    (T, ["module.freeze=[features,head]"], "module.freeze=[features,head]: freezes the whole MLP network, so nothing would train"),
    (T, ["module.unfreeze_at_epoch=2"], "module.unfreeze_at_epoch=2: nothing is frozen to unfreeze; set module.freeze"),
    (T, ["module.body_lr_scale=0"], "module.body_lr_scale=0: out of range, must be > 0"),
    (T, ["experiment=finetune"], "experiment=finetune needs init_from=<run directory or checkpoint>"),
    (T, ["reproduce={empty}"], "reproduce={empty}: not a finished run (needs .hydra/overrides.yaml and metrics.json)"),
    (T, ["reproduce={run}", "resume={run}"], "reproduce= and resume= together: give one"),
    # --- adapt (issue 43): a model, a method it can take, target images ---
    (A, ["data.root={photos}"], "ckpt_path: required, must be a value"),
    (A, ["ckpt_path={empty}/gone", "data.root={photos}"], "ckpt_path={empty}/gone: no such file or run directory"),
    (A, ["ckpt_path={empty}", "data.root={photos}"], "ckpt_path={empty}: a folder that holds no run"),
    (A, ["ckpt_path={notes}", "data.root={photos}"], "ckpt_path={notes}: not a digits checkpoint"),
    (A, ["ckpt_path={fixed_batch_onnx}", "data.root={photos}"], "ckpt_path={fixed_batch_onnx}: not a digits checkpoint"),
    (A, ["ckpt_path={torchscript}", "data.root={photos}"], "ckpt_path={torchscript}: a TorchScript export"),
    (A, ["ckpt_path={evil_ckpt}", "data.root={photos}"], "ckpt_path={evil_ckpt}: refused: its network is 'os.system'"),
    (A, [*ADAPT, "adaptation=adabn"], "adaptation=adabn: the model of ckpt_path={run} (MLP) has no batch-norm layer"),
    (A, [*ADAPT, "adaptation=fixmatch"], "adaptation=fixmatch: no such adaptation option; available: adabn, self_training"),
    (A, [*ADAPT, "adaptation.threshold=1"], "adaptation.threshold=1: out of range, must be in (0, 1)"),
    (A, [*ADAPT, "adaptation.threshold=0"], "adaptation.threshold=0: out of range, must be in (0, 1)"),
    (A, [*ADAPT, "adaptation.strong.spin=3"], "adaptation.strong.spin=3: no such key"),
    (A, ["ckpt_path={run}", "data.root={empty}"], "data.root={empty}: no images (files with a suffix of"),
    (A, ["ckpt_path={run}", "data=folder", "data.root={empty}"], "data.root={empty}: no images in <label>/ folders"),
    (A, ["ckpt_path={run}"], "data=unlabelled needs data.root=<folder of images>"),
    (T, ["data=unlabelled", "data.root={photos}"], "data=unlabelled: images without labels teach nothing to train on; adapt a trained model"),
    (E, ["run={run}", "data=unlabelled", "data.root={photos}"], "data=unlabelled: images without labels, nothing to score against"),
    (A, [*ADAPT, "hydra.run.dir={run}"], "hydra.run.dir={run}: holds a run already (completed)"),
    # --- the sequence reader (issue 45): strips for a strip reader, digits for a classifier ---
    (T, ["model=crnn"], "data=mnist: holds single digits, and the CRNN network reads strips of several; train it on data=numbers"),
    (T, ["data=numbers", "data.source.val_size=200"], "data=numbers: holds strips of several digits, and the MLP network classifies one digit; strips train a sequence reader: model=crnn"),
    (T, ["model=crnn", "data=numbers", "data.min_digits=5", "data.max_digits=3"], "data.min_digits=5 is more than data.max_digits=3"),
    (T, ["model=crnn", "data=numbers", "data.gap=[0.5,0.1]"], "data.gap=[0.5, 0.1]: must be [low, high] with low <= high"),
    (T, ["model=crnn", "data=numbers", "model.channels=[8,8,8,8,8,8]"], "cannot build this network (at most 5 blocks"),
    (T, ["model=crnn", "data=numbers", "module.beam_width=1000"], "module.beam_width=1000: out of range, must be in [1, 64]"),
    (P, [*PREDICT, "mode=number", "reader=sequence"], "ckpt_path={ckpt}: a digit classifier's checkpoint (MLP); reader=sequence reads rows with a number reader's"),
    (P, [*PREDICT, "reader=sequence"], "reader=sequence reads rows of digits whole: use mode=number (not mode=digit)"),
    # --- train: early stopping and the tuner ---
    (T, ["callbacks.early_stopping.patience=3"], "the selected callbacks has no early_stopping; it is a setting of callbacks=early_stopping"),
    (T, ["callbacks=early_stopping", "callbacks.early_stopping.monitor=test/acc"], "callbacks.early_stopping.monitor=test/acc: the test set must never choose the model"),
    (T, ["tune=lr"], "tune=lr: no such tune option; available: batch_size, lr_find"),
    (T, ["tune=lr_find", "tune.mode=cubic"], "tune.mode=cubic: use one of exponential, linear"),
    (T, ["tune=lr_find", "tune.min_lr=0"], "tune.min_lr=0: out of range, must be > 0"),
    (T, ["tune=batch_size", "tune.mode=grow"], "tune.mode=grow: use one of power, binsearch"),
    (T, ["tune=batch_size", "trainer=ddp"], "tune (scale_batch_size): Lightning's tuner runs on one device"),
    (T, ["scheduler.gamma=0.5"], "scheduler.gamma=0.5: the selected scheduler has no gamma; it is a setting of scheduler=step"),
    (T, ["scheduler=step", "scheduler.gamma=-0.5"], "scheduler.gamma=-0.5: out of range"),
    (T, ["scheduler=onecycle", "scheduler.max_lr=-1"], "scheduler.max_lr=-1: out of range"),
    (T, ["+optimizer.betas=1"], "optimizer.betas=1: no such key in the config"),
    (T, ["data.mean=0.5"], "data.mean=0.5: moved to module.mean; use module.mean=0.5"),
    (T, ["compile=true"], "compile=true: moved to module.compile"),
    (T, ["module.std=0"], "module.std=0: out of range, must be > 0"),
    # --- train: the network must fit 28x28 images ---
    (T, ["model=cnn", "model.channels=[0,64]"], "model.channels=[0,64]: out of range"),
    (T, ["model=cnn", "model.channels=[]"], "model.channels=[]: out of range, must be >= 1, at least 1 of them (a convolution block each)"),
    (T, ["model=lenet", "model.padding=-1"], "model.padding=-1: out of range, must be >= 0"),
    (T, ["model=cnn", "model.kernel_size=30"], "this network does not fit 28x28 images"),
    (T, ["model.hidden=[100000000,100000000]"], "cannot build this network (" ),
    (T, ["optimizer._target_=torch.optim.Bogus"], "optimizer._target_=torch.optim.Bogus: cannot import it"),
    (T, ["+callbacks.mine._target_=nope.Callback"], "callbacks.mine._target_=nope.Callback: cannot import it (No module named 'nope')"),
    # --- train: the Trainer, against this machine and Lightning's own checks ---
    (T, ["trainer.benchmrk=true"], "no such key in the config (did you mean trainer.benchmark?"),
    (T, ["trainer.benchmark=true"], "(to pass another Lightning Trainer argument, use +trainer.benchmark=true)"),
    (T, ["+trainer.bogus=1"], "trainer.bogus=1: no such key in the config"),
    (T, ["trainer.devices=999"], "trainer.devices=999: this machine has"),
    (T, ["trainer.devices=0"], "trainer.devices=0: this machine has"),
    (T, ["trainer.devices=abc"], "trainer.devices=abc: this machine has"),
    (T, ["trainer.num_nodes=2"], "trainer.num_nodes=2: no cluster here to start the other nodes"),
    (T, ["trainer.precision=bogus"], "trainer.precision=bogus: use one of 64, 32, 16"),
    (T, ["trainer.accelerator=bogus"], "trainer: Lightning refuses these settings: You selected an invalid accelerator"),
    (T, ["trainer.strategy=bogus"], "trainer: Lightning refuses these settings: You selected an invalid strategy"),
    (T, ["trainer.limit_train_batches=-1"], "trainer.limit_train_batches=-1: out of range, must be >= 0"),
    (T, ["trainer.max_steps=0"], "trainer.max_steps=0: out of range, must be >= -1, not 0"),
    (T, ["trainer.deterministic=maybe"], "trainer.deterministic=maybe: use one of true, false, warn"),
    (T, ["trainer.accumulate_grad_batches=0"], "trainer.accumulate_grad_batches=0: out of range"),
    (T, ["trainer.min_epochs=5", "trainer.max_epochs=2"], "trainer.min_epochs=5 is above trainer.max_epochs=2"),
    (T, ["trainer.limit_val_batches=0"], "trainer.limit_val_batches=0 turns validation off"),
    (T, ["trainer.check_val_every_n_epoch=9", "trainer.max_epochs=2"], "no validation would run"),
    # --- train: what chooses the model, and what there is to do ---
    (T, ["callbacks.model_checkpoint.monitor=test/acc"], "monitor=test/acc: the test set must never choose the model"),
    (T, ["callbacks.model_checkpoint.monitor=bogus"], "not a metric the model logs while training; use one of"),
    (T, ["callbacks.model_checkpoint.mode=bogus"], "callbacks.model_checkpoint.mode=bogus: use one of min, max"),
    (T, ["optimized_metric=test/acc"], "optimized_metric=test/acc: the test set must never choose"),
    (T, ["train=false", "test=false"], "train=false test=false: nothing to do"),
    (T, ["train=false"], "train=false: testing without training needs the model to test"),
    # --- train: checkpoints, resume and the run directory ---
    (T, ["ckpt_path=/no/such.ckpt"], "ckpt_path=/no/such.ckpt: no such file"),
    (T, ["ckpt_path={notes}"], "ckpt_path={notes}: not a digits checkpoint"),
    (T, ["ckpt_path={empty_file}"], "ckpt_path={empty_file}: an empty file, not a checkpoint"),
    (T, ["ckpt_path={run}"], "ckpt_path={run}: a folder, not a checkpoint file (e.g. {ckpt})"),
    (T, ["model=lenet", "ckpt_path={ckpt}"], "holds a MLP network, not the selected LeNet"),
    (T, ["resume=/no/such"], "resume=/no/such: not a run directory with checkpoints/last.ckpt"),
    (T, ["resume={run}"], "the run has already trained 2 epochs"),
    (T, ["hydra.run.dir={blocked}/x"], "hydra.run.dir={blocked}/x: cannot write there"),
    (T, ["hydra.run.dir="], "hydra.run.dir=: empty"),
    (T, ["hydra.run.dir={empty}/" + "a" * 300], "aaaa: too long a name for the file system (at most 255 bytes a folder or file name)"),
    (T, ["paths.log_dir={empty}/" + "a" * 300], "aaaa: too long a name for the file system"),
    (T, ["resume={weights_only_run}"], "checkpoints/last.ckpt holds the weights only, without the training state to continue from (loops, optimizer_states missing)"),
    (T, ["paths.log_dir="], "paths.log_dir=: empty"),
    (T, ["-m", "model=mlp,cnn", "hydra.sweep.dir={blocked}/x"], "hydra.sweep.dir={blocked}/x: cannot write there"),
    (T, ["-m", "model=mlp", "hydra.sweep.dir="], "hydra.sweep.dir=: empty"),
    # --- train: the command line itself, and Hydra's part of it ---
    (T, ["--bogus"], "--bogus: not an option; settings are key=value"),
    (T, ["optimizer.lr"], "optimizer.lr: not a valid override (missing EQUAL"),
    (T, ["hparams_search=optuna", "hydra.sweeper.n_trials=0"], "hydra.sweeper.n_trials=0: out of range"),
    # --- train: a search's space, sampler, pruner and storage ---
    (T, ["hparams_search=optuna", "model.dropout=interval(0.5, 0.1)"], "model.dropout=interval(0.5, 0.1): the interval is empty"),
    (T, ["hparams_search=optuna", "optimizer.lr=tag(log, interval(0, 1))"], "a log scale needs a start above 0"),
    (T, ["hparams_search=optuna", "optimizer.lr=glob(*)"], "optimizer.lr=glob(*): glob() picks options of a config group"),
    (T, ["hparams_search=optuna", "hydra.sweeper.params.model.dropout=interval(0,1)"], "Hydra does not sweep its own keys; give the dimension as model.dropout=interval(0,1)"),
    (T, ["hparams_search=optuna", "hydra.sweeper.direction=up"], "hydra.sweeper.direction=up: must be maximize or minimize"),
    (T, ["hparams_search=optuna", "hydra/sweeper/pruner=hyperbandx"], "hydra/sweeper/pruner=hyperbandx: Hydra's config has no such key or option"),
    (T, ["hparams_search=optuna", "hydra.sweeper.pruner.n_startup_trials=-1"], "hydra.sweeper.pruner: Number of startup trials cannot be negative"),
    (T, ["hparams_search=optuna", "hydra.sweeper.storage=nosuchdb://x", "hydra.sweeper.n_trials=1"], "hydra.sweeper.storage=nosuchdb://x: cannot open it as an Optuna storage"),
    (T, ["hydra.bogus=1"], "hydra.bogus=1: Hydra's config has no such key or option"),
    # --- evaluate ---
    (E, [], "give run=<run or multirun directory> or ckpt_path=<checkpoint file>"),
    (E, ["run=/no/such/run"], "run=/no/such/run: no such directory"),
    (E, ["run={run}", "data=folder"], "data=folder needs data.root=<folder> or data.labels=<csv>"),
    (E, ["run={run}", "data=folder", "data.root={letter_photos}"], "class folder 'a' is not a digit"),
    (E, ["run={run}", "data=folder", "data.root={bad_photos}"], "; remove it, or add data.skip_bad=true to leave such files out"),
    (E, ["run={run}", "data=nosuch"], "data=nosuch: no such data option; available: emnist, folder, mix, mnist, numbers, qmnist, unlabelled, usps"),
    (E, ["run={run}", "data=usps", "data.root={empty}", "data.download=false"], "usps.bz2: not found (USPS's train split"),
    (E, ["run={blocked}"], "run={blocked}: a file, not a run directory"),
    (E, ["run={run}", "data=mix", "data.root={empty}"], "data.root={empty}: no such key in the config (data takes: sources, weights"),
    (E, ["run={empty}"], "run={empty}: neither a run"),
    (E, ["run={run}", "ckpt_path={ckpt}"], "give one of them, not both"),
    (E, ["ckpt_path={notes}"], "ckpt_path={notes}: not a digits checkpoint"),
    (E, ["ckpt_path={run}"], "ckpt_path={run}: a folder, not a checkpoint file"),
    (E, ["run={run}", "split=train"], "split=train: use one of test, val"),
    (E, ["run={run}", "checkpoint=worst"], "checkpoint=worst: use one of best, last"),
    (E, ["run={run}", "mistakes=-1"], "mistakes=-1: out of range, must be >= 0"),
    (E, ["run={run}", "tta=5"], "tta=5: out of range, must be in [0, 3] (shifts of up to 3 px"),
    (E, ["ckpt_path={ckpt}", "ensemble=true"], "ensemble=true scores the jobs of a multirun"),
    (E, ["run={run}", "model=cnn"], "model=cnn: no such key in the config (the top level takes: trainer, run"),
    (E, ["run={run}", "trainer.devices=999"], "trainer.devices=999: this machine has"),
    (E, ["run={run}", "data.root={empty}"], "MNIST not found: {empty}/MNIST/raw lacks"),
    (E, ["run={run}", "data.root={empty}/sub"], "point data.root (or DIGITS_DATA_DIR) at the folder"),
    (E, ["run={run}", "data_root={empty}"], "data_root={empty}: moved to data.root; use data.root={empty}"),
    (E, ["run={damaged_run}"], "{damaged_run}/metrics.json: damaged, not JSON"),
    # --- predict ---
    (P, ["images=[{image}]"], "ckpt_path: required, must be a string"),
    (P, ["ckpt_path={ckpt}", "images=[]"], "images=[] is empty"),
    (P, ["ckpt_path={ckpt}", "images=[{empty}]"], "no image files there (.bmp"),
    (P, ["ckpt_path={ckpt}", "images=[[a]]"], "images=[['a']]: give image files and folders by name"),
    (P, [*PREDICT, "top_k=0"], "top_k=0: out of range, must be in [1, 10]"),
    (P, [*PREDICT, "top_k=11"], "top_k=11: out of range, must be in [1, 10]"),
    (P, [*PREDICT, "top_k=abc"], "top_k=abc: must be an integer"),
    (P, [*PREDICT, "batch_size=0"], "batch_size=0: out of range"),
    (P, [*PREDICT, "read_timeout_s=-1"], "read_timeout_s=-1: out of range, must be in (0, 600]"),
    (P, [*PREDICT, "output=bogus"], "output=bogus: use one of table, json"),
    (P, [*PREDICT, "min_confidence=2"], "min_confidence=2: out of range, must be in [0, 1]"),
    (P, [*PREDICT, "preprocess=bogus"], "preprocess=bogus: use one of mnist, mnist_v1, scan, naive"),
    (P, [*PREDICT, "save_preprocessed={blocked}/x"], "save_preprocessed={blocked}/x: cannot write there"),
    (P, [*PREDICT, "mode=numbers"], "mode=numbers: use one of digit, number, auto"),
    (P, [*PREDICT, "mode=number", "preprocess=naive"], "preprocess=naive: mode=number finds digits with MNIST's recipe; use mnist or mnist_v1"),
    (P, [*PREDICT, "mode=auto", "preprocess=naive"], "preprocess=naive: mode=auto finds digits with MNIST's recipe; use mnist or mnist_v1"),
    (P, [*PREDICT, "annotate=boxes"], "annotate=boxes: draws the digits found by mode=number or mode=auto; add one"),
    (P, [*PREDICT, "mode=number", "annotate={blocked}/x"], "annotate={blocked}/x: cannot write there"),
    (P, ["ckpt_path={run}", "images=[{image}]"], "ckpt_path={run}: a folder, not a checkpoint file"),
    (P, ["ckpt_path={notes}", "images=[{image}]"], "ckpt_path={notes}: not a digits checkpoint"),
    (P, ["ckpt_path=/no/such.ckpt", "images=[{image}]"], "ckpt_path=/no/such.ckpt: no such file"),
    (P, ["ckpt_path=/no/such.onnx", "images=[{image}]"], "ckpt_path=/no/such.onnx: no such file"),
    (P, ["ckpt_path={notes_onnx}", "images=[{image}]"], "ckpt_path={notes_onnx}: not a readable ONNX model"),
    (P, ["ckpt_path={other_onnx}", "images=[{image}]", "trainer=cpu"], "an .onnx file runs on onnxruntime (CPU), not through Lightning's Trainer; leave out the trainer settings"),
    (P, [*PREDICT, "trainer=ddp"], "trainer.devices=4: predict runs on one device; use trainer.devices=1"),
    (P, ["ckpt_path={other_onnx}", "images=[{image}]"], "ckpt_path={other_onnx}: not a digits model (wants one input images"),
    (P, ["ckpt_path={torchscript}", "images=[{image}]"], "ckpt_path={torchscript}: a TorchScript export (digits.export format=torchscript)"),
    # --- export ---
    (EX, [], "give run=<run or multirun directory> or ckpt_path=<checkpoint file>"),
    (EX, ["run={run}", "ckpt_path={ckpt}"], "give one of them, not both (ckpt_path= exports that file"),
    (EX, ["run={blocked}"], "run={blocked}: a file, not a run directory"),
    (EX, ["run={empty}"], "run={empty}: not a run directory (no checkpoints/)"),
    (EX, ["run={damaged_run}"], "{damaged_run}/metrics.json: damaged, not JSON"),
    (EX, ["ckpt_path=/no/such.ckpt"], "ckpt_path=/no/such.ckpt: no such file"),
    (EX, ["ckpt_path={notes}"], "ckpt_path={notes}: not a digits checkpoint"),
    (EX, ["ckpt_path={run}"], "ckpt_path={run}: a folder, not a checkpoint file"),
    (EX, ["run={run}", "format=tflite"], "format=tflite: use one of onnx, torchscript"),
    (EX, ["run={run}", "checkpoint=worst"], "checkpoint=worst: use one of best, last"),
    (EX, ["run={run}", "output={empty}"], "output={empty}: a folder; give a file name, e.g. {empty}/model.onnx"),
    (EX, ["run={run}", "output=model.pt"], "output=model.pt: a format=onnx file is named *.onnx"),
    (EX, ["run={run}", "format=torchscript", "output=m.onnx"], "output=m.onnx: a format=torchscript file is named *.pt"),
    (EX, ["run={run}", "output={empty}/" + "a" * 300 + ".onnx"], "too long a name for the file system"),
    (E, ["run={empty}/" + "a" * 300], "too long a name for the file system"),
    (EX, ["run={run}", "output={blocked}/m.onnx"], "output={blocked}: cannot write there"),
    (EX, ["run={run}", "format=web", "web_runtime={empty}"], "web_runtime={empty}: no ONNX Runtime Web there"),
    (EX, ["run={run}", "format=web", "web_runtime={web_runtime}", "output={notes}"], "output={notes}: a file; format=web writes a folder"),
    (EX, ["run={run}", "format=web", "web_runtime={web_runtime}", "output={run}"], "output={run}: a folder holding other files"),
    # --- checkpoints and models are data: nothing in them runs, damaged ones are refused ---
    (E, ["ckpt_path={evil_ckpt}"], "ckpt_path={evil_ckpt}: refused: its network is 'os.system', not one of digits' own"),
    (P, ["ckpt_path={evil_ckpt}", "images=[{image}]"], "ckpt_path={evil_ckpt}: refused: its network is 'os.system'"),
    (EX, ["ckpt_path={evil_ckpt}"], "ckpt_path={evil_ckpt}: refused: its network is 'os.system'"),
    (S, ["ckpt_path={evil_ckpt}", "port={free_port}"], "ckpt_path={evil_ckpt}: refused: its network is 'os.system'"),
    (E, ["ckpt_path={nan_ckpt}"], "ckpt_path={nan_ckpt}: refused: NaN or infinite weights in net."),
    (S, ["ckpt_path={nan_ckpt}", "port={free_port}"], "ckpt_path={nan_ckpt}: refused: NaN or infinite weights in net."),
    (P, ["ckpt_path={fixed_batch_onnx}", "images=[{image}]"], "ckpt_path={fixed_batch_onnx}: not a digits model (wants one input images, float (N, 1, 28, 28) for any N"),
    (S, ["ckpt_path={wide_onnx}", "port={free_port}"], "ckpt_path={wide_onnx}: not a digits model"),
    (P, ["ckpt_path={ckpt}", "images=[{dots}]", "mode=number"], "{dots}: too much ink to read as a number"),
    (P, ["ckpt_path={ckpt}", "images=[/dev/zero]"], "/dev/zero: not a regular file (a device, a pipe or a folder)"),
    # --- serve ---
    (S, [], "ckpt_path: required, must be a string"),
    (S, ["ckpt_path=/no/such.ckpt"], "ckpt_path=/no/such.ckpt: no such file; give a checkpoint (.ckpt) or an exported .onnx"),
    (S, ["ckpt_path={run}"], "ckpt_path={run}: a folder; give a checkpoint"),
    (S, ["ckpt_path={notes}", "port={free_port}"], "ckpt_path={notes}: not a digits checkpoint"),
    (S, ["ckpt_path={notes_onnx}", "port={free_port}"], "ckpt_path={notes_onnx}: not a readable ONNX model"),
    (S, ["ckpt_path={torchscript}", "port={free_port}"], "ckpt_path={torchscript}: a TorchScript export"),
    (S, [*SERVE, "body_timeout_s=0"], "body_timeout_s=0: out of range, must be in (0, 600]"),
    (S, [*SERVE, "port=0"], "port=0: out of range, must be in [1, 65535]"),
    (S, [*SERVE, "host="], "host=: empty; give an address: 127.0.0.1 (this machine only)"),
    (S, [*SERVE, "port=http"], "port=http: must be an integer in [1, 65535]"),
    (S, ["ckpt_path={ckpt}", "port={busy_port}"], "port={busy_port}: cannot listen there (Address already in use); choose another port="),
    (S, [*SERVE, "host=203.0.113.1"], "host=203.0.113.1 port={free_port}: cannot listen there"),
    (S, [*SERVE, "max_upload_mb=0"], "max_upload_mb=0: out of range, must be in (0, 100]"),
    (S, [*SERVE, "preprocess=bogus"], "preprocess=bogus: use one of mnist, mnist_v1, scan, naive"),
    (S, [*SERVE, "top_k=11"], "top_k=11: out of range, must be in [1, 10]"),
    (S, [*SERVE, "max_batch_images=0"], "max_batch_images=0: out of range, must be in [1, 256]"),
    (S, [*SERVE, "batch_images=0"], "batch_images=0: out of range, must be in [1, 1024]"),
    (S, [*SERVE, "batch_wait_ms=-1"], "batch_wait_ms=-1: out of range, must be in [0, 100]"),
    (S, [*SERVE, "cors_origins=https://a.example"], "cors_origins=https://a.example: must be a list of strings"),
    (S, [*SERVE, "root_path=digits/"], "root_path=digits/: a path prefix starts with / and does not end with one"),
    (S, [*SERVE, "access_log=maybe"], "access_log=maybe: must be true or false"),
    (S, [*SERVE, "cors_origins=[[a]]"], "cors_origins: ['a'] is no origin; give scheme://host[:port] per site"),
    (S, [*SERVE, "cors_origins=[example.org]"], "cors_origins: example.org is no origin"),
    (S, [*SERVE, "header_timeout_s=0"], "header_timeout_s=0: out of range, must be in (0, 600]"),
    (S, [*SERVE, "keep_alive_s=-1"], "keep_alive_s=-1: out of range, must be in (0, 3600]"),
    (S, [*SERVE, "read_timeout_s=0"], "read_timeout_s=0: out of range, must be in (0, 600]"),
    (S, [*SERVE, "bogus=1"], "bogus=1: no such key in the config (the top level takes: ckpt_path, host, port"),
    # --- explore ---
    (X, ["out={blocked}/x"], "out={blocked}/x: cannot write there"),
    (X, ["out="], "out=: empty"),
    (X, ["samples_per_class=0"], "samples_per_class=0: out of range, must be in [1, 50]"),
    (X, ["samples_per_class=100000"], "samples_per_class=100000: out of range, must be in [1, 50]"),
    (X, ["data.val_size=70000"], "data.val_size=70000: out of range"),
    (X, ["data.root={empty}", "data.download=false"], "MNIST not found: {empty}/MNIST/raw lacks"),
    (X, ["bogus=1"], "bogus=1: no such key in the config (the top level takes: data, out, samples_per_class)"),
]  # fmt: skip


def onnx_graph_of_another_shape(path: Path) -> None:
    """A valid ONNX model that is not a digits model: Identity on a (N, 3) input `x`."""
    tensor = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3])
    out = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3])
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])], "g", [tensor], [out]
    )
    onnx.save(onnx.helper.make_model(graph), path)


@pytest.fixture
def ports() -> Iterator[dict[str, int]]:
    """A port that is listened on (busy) and one that is free."""
    with (
        socket.create_server(("127.0.0.1", 0)) as busy,
        socket.create_server(("127.0.0.1", 0)) as free,
    ):
        free_port = free.getsockname()[1]
        free.close()
        yield {"busy_port": busy.getsockname()[1], "free_port": free_port}


@pytest.fixture
def places(
    trained_run: Path, tmp_path: Path, ports: dict[str, int], data_root: Path
) -> dict[str, Path]:
    """The files and folders (and ports) the rows name."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.onnx").write_text("not a model")
    onnx_graph_of_another_shape(tmp_path / "other.onnx")
    (tmp_path / "blocked").write_text("a file, not a folder")
    (tmp_path / "notes.ckpt").write_text("not a checkpoint")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    image = tmp_path / "digit.png"
    Image.new("L", (28, 28), 255).save(image)
    web_runtime = tmp_path / "onnxruntime-web" / "dist"  # its files' names, for the other checks
    web_runtime.mkdir(parents=True)
    for name in RUNTIME_FILES:
        (web_runtime / name).write_text("")
    (web_runtime.parent / "package.json").write_text('{"version": "0"}')
    run = RunDir(trained_run)
    damaged = RunDir(tmp_path / "damaged-run")
    damaged.checkpoints.mkdir(parents=True)
    damaged.metrics_file.write_text("{cut off")
    damaged_hydra = RunDir(tmp_path / "damaged-hydra")
    shutil.copytree(run.path, damaged_hydra.path, ignore=shutil.ignore_patterns(".lock"))
    damaged_hydra.overrides_file.write_text("- model=mlp\n- [unclosed\n")
    other_test_set = RunDir(tmp_path / "other-test-set")
    shutil.copytree(run.path, other_test_set.path, ignore=shutil.ignore_patterns(".lock"))
    metrics = json.loads(other_test_set.metrics_file.read_text())
    metrics["test/set"] = {"images": 10000, "md5": "0" * 32}
    other_test_set.metrics_file.write_text(json.dumps(metrics))
    user_conf = tmp_path / "my-conf"  # a --config-dir of the user's own model options
    (user_conf / "model").mkdir(parents=True)
    (user_conf / "model" / "broken.yaml").write_text("hidden: [unclosed\n")
    (user_conf / "model" / "odd.yaml").write_text(
        "_target_: digits.models.networks.MLP\nbogus: 1\n"
    )
    short_per_image = copied_run(run, tmp_path / "short-per-image")
    rows = short_per_image.test_predictions_file.read_text().splitlines()
    short_per_image.test_predictions_file.write_text("\n".join(rows[:21]) + "\n")
    other_images = copied_run(run, tmp_path / "other-images")
    rows = other_images.test_predictions_file.read_text().splitlines()
    fields = [row.split(",") for row in rows[1:]]
    labels = [f[1] for f in fields[1:] + fields[:1]]  # the same count, others' labels: other images
    moved = [",".join([f[0], label, *f[2:]]) for f, label in zip(fields, labels, strict=True)]
    other_images.test_predictions_file.write_text("\n".join([rows[0], *moved]) + "\n")
    weights_only = copied_run(run, tmp_path / "weights-only")
    rewritten_checkpoint(run.last_checkpoint, weights_only.last_checkpoint,
                         lambda c: [c.pop(key) for key in ("loops", "optimizer_states")])  # fmt: skip
    manifest = json.loads(weights_only.manifest_file.read_text())
    manifest.pop("checkpoints", None)  # no recorded hash to refuse it by first
    weights_only.manifest_file.write_text(json.dumps(manifest))
    # A TorchScript file to refuse; torch 2.14 deprecates making one (a FutureWarning per case).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.trace(torch.nn.Linear(2, 2), torch.zeros(1, 2)).save(str(tmp_path / "model.pt"))
    evil = running_code(tmp_path / "work" / "ran")["os.system"]  # the test's work folder

    def nan_weight(checkpoint: dict) -> None:
        weights = checkpoint["state_dict"]
        weights[next(key for key in weights if key.startswith("net."))].fill_(float("nan"))

    rewritten_checkpoint(run.last_checkpoint, tmp_path / "evil.ckpt",
                         lambda c: c["hyper_parameters"].update(net=evil))  # fmt: skip
    rewritten_checkpoint(run.last_checkpoint, tmp_path / "nan.ckpt", nan_weight)
    onnx_classifier(tmp_path / "fixed.onnx", batch=4)
    onnx_classifier(tmp_path / "wide.onnx", outputs=784)
    dot_grid(20).save(tmp_path / "dots.png")
    photos = folders_of_photos(tmp_path)  # a good folder, and others with one mistake each
    truncated = tmp_path / "truncated-data"
    shutil.copytree(data_root, truncated)
    test_images = truncated / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    test_images.write_bytes(test_images.read_bytes()[:1000])
    return {
        "user_conf": user_conf,
        **photos,
        "short_per_image": short_per_image.path,
        "other_images": other_images.path,
        "weights_only_run": weights_only.path,
        "evil_ckpt": tmp_path / "evil.ckpt",
        "nan_ckpt": tmp_path / "nan.ckpt",
        "fixed_batch_onnx": tmp_path / "fixed.onnx",
        "wide_onnx": tmp_path / "wide.onnx",
        "dots": tmp_path / "dots.png",
        "damaged_hydra": damaged_hydra.path,
        "torchscript": tmp_path / "model.pt",
        "truncated_data": truncated,
        "damaged_run": damaged.path,
        "other_test_set": other_test_set.path,
        "run": run.path,
        "ckpt": run.last_checkpoint,
        "image": image,
        "web_runtime": web_runtime,
        "empty": tmp_path / "empty",
        "blocked": tmp_path / "blocked",
        "notes": tmp_path / "notes.ckpt",
        "empty_file": tmp_path / "empty.ckpt",
        "notes_onnx": tmp_path / "notes.onnx",
        "other_onnx": tmp_path / "other.onnx",
        **{name: Path(str(port)) for name, port in ports.items()},
    }


def copied_run(run: RunDir, path: Path) -> RunDir:
    shutil.copytree(run.path, path, ignore=shutil.ignore_patterns(".lock"))
    return RunDir(path)


def fill(text: str, places: dict[str, Path]) -> str:
    """A row's text with {run}, {ckpt}, ... replaced (other braces, as in data.augment={...}, kept)."""
    for name, path in places.items():
        text = text.replace(f"{{{name}}}", str(path))
    return text


def test_the_table_covers_every_entry_point_with_forty_rows_or_more() -> None:
    assert len(BAD_INPUT) >= 40
    assert {entry for entry, _, _ in BAD_INPUT} == {T, A, E, P, X, EX, S, C}


@pytest.mark.parametrize(("entry", "args", "expected"), BAD_INPUT)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    entry: str,
    args: list[str],
    expected: str,
    places: dict[str, Path],
    data_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("DIGITS_OUTPUT_DIR", str(work / "outputs"))
    monkeypatch.setenv("DIGITS_DATA_DIR", str(data_root))
    monkeypatch.setenv("DIGITS_CACHE_DIR", str(tmp_path / "cache"))  # outside `work`
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    run_before = sorted(places["run"].rglob("*"))

    # The synthetic training set is smaller than the default validation split, which training
    # checks (a row's own data.val_size comes later and wins; with folds it is unused).
    given = (
        [*SMALL_VAL, *args]
        if entry == T
        and not args[0].startswith(("resume", "reproduce", "-"))
        and not any(a.startswith("data.folds=") for a in args)
        and not any(a.startswith("data=") for a in args)  # another data option
        else args
    )
    status = run_entry_point(entry, [fill(a, places) for a in given], monkeypatch)

    err = capsys.readouterr().err
    assert status == 2, err[-3000:]
    (line,) = err.strip().splitlines()
    assert line.startswith("error: ") and fill(expected, places) in line
    assert not any(work.iterdir())  # no run directory, no outputs
    assert sorted(places["run"].rglob("*")) == run_before  # the trained run is untouched
