"""A hostile sweep: the mistakes a new user makes, against every entry point, each in a fresh process.

    python tools/hostile.py --out outputs/hostile [--only train,serve] [--limit N] [--match TEXT]

Needs real MNIST (DIGITS_DATA_DIR). It first trains a small run on it, exports it and makes the
files the cases name (images, a damaged run, a multirun...), then runs each case and gives it a
verdict: `as promised` when a mistake is refused with one `error:` line, exit status 2 and nothing
written (or, over HTTP, a 4xx with a one-line JSON error), and when valid input runs (exit 0, or
200); otherwise what went wrong (`traceback`, `several lines`, `exit N`, `wrote files`, `ran`,
`refused valid input`). Writes cases.csv and totals.json under --out; exit status 0 either way.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from awkward_images import dot_grid, encoded, scribble
from crafted import onnx_classifier, rewritten_checkpoint, running_code
from digit_files import folders_of_photos
from PIL import Image
from servers import free_port, wait_until_answered

T = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=20",
    "trainer.limit_val_batches=5",
    "trainer.limit_test_batches=5",
    "logger=none",
]
REFUSE, RUN = "refuse", "run"


def cli_cases() -> list[tuple[str, list[str], str]]:
    """(command, arguments, what should happen); {run}, {ckpt}... name the fixtures."""
    train_refused = [
        "data.batch_size=0", "data.batch_size=-5", "data.batch_size=1.5", "data.batch_size=true",
        "data.batch_size=[64]", "data.val_size=0", "data.val_size=-1", "data.val_size=60000",
        "data.val_size=abc", "data.split_seed=-1", "data.num_workers=-1", "data.num_workers=abc",
        "data.pipeline=gpu", "data.download=maybe", "optimizer.lr=0", "optimizer.lr=-inf",
        "optimizer.lr=abc", "optimizer.lr=[0.1]", "optimizer.weight_decay=-1",
        "optimizer.weight_decay=nan", "optimizer=rmsprop", "trainer.max_epochs=-1",
        "trainer.max_epochs=abc", "trainer.max_epochs=null", "trainer.min_epochs=-1",
        "trainer.max_steps=-2", "trainer.limit_val_batches=-0.5", "trainer.limit_test_batches=-1",
        "trainer.accumulate_grad_batches=-1", "trainer.log_every_n_steps=0",
        "trainer.num_sanity_val_steps=-2", "trainer.gradient_clip_val=-1",
        "trainer.check_val_every_n_epoch=0", "trainer.val_check_interval=0",
        "trainer.val_check_interval=-1", "trainer.precision=8", "trainer.deterministic=2",
        "trainer.devices=abc", "trainer.devices=-5", "trainer.num_nodes=0",
        "trainer.accelerator=tpu", "trainer.accelerator=gpu", "trainer=gpu",
        "model.hidden=[0]", "model.dropout=1", "module.label_smoothing=1.5",
        "module.label_smoothing=-0.1", "module.ema_decay=1.5", "module.mean=abc", "module.std=-1",
        "seed=8589934592", "seed=1.5", "logger=wandb", "experiment=nonexistent",
        "debug=nonexistent", "hparams_search=grid", "ckpt_path={image}", "ckpt_path={onnx}",
        "ckpt_path={empty}", "resume={image}", "resume={empty}", "resume={multirun}",
        "reproduce={image}", "reproduce=/no/such/run", "reproduce={multirun}",
        "hydra.run.dir={image}", "paths.log_dir={image}", "train=maybe", "test=maybe",
        "optimized_metric=bogus", "tune=lr_find tune.num_training=0", "tune=lr_find tune.max_lr=-1",
        "tune=batch_size tune.max_val=0", "+trainer.foo=1", "model=", "optimizer.lr==0.1",
        "model=cnn model.kernel_size=0", "model=cnn model.kernel_size=-3", "model=cnn model.channels=[]",
        "model=cnn model.conv_dropout=1.5", "model=lenet model.convs_per_block=0",
        "model=lenet model.batch_norm=maybe", "model=lstm model.layers=0", "model=lstm model.hidden=0",
        "model=lstm model.dropout=-0.1", "optimizer=sgd optimizer.momentum=-0.1",
        "optimizer=sgd optimizer.momentum=1", "scheduler=step scheduler.step_size=0",
        "scheduler=onecycle scheduler.pct_start=0", "scheduler=onecycle scheduler.pct_start=1",
        "scheduler=cosine scheduler.T_max=0", "scheduler=cosine scheduler.eta_min=-1",
        "scheduler=step scheduler.interval=batch", "-m optimizer.lr=0.1,-1",
        "-m hparams_search=optuna hydra.sweeper.n_jobs=0", "-m model=mlp,bogus",
        # issue 40: escapes, interpolations, sweeps, and every route into a finished run
        "run_name=../../../escape", "~seed", "model=cnn,lenet", "optimizer.lr=${{oc.env:NOPE_NOT_SET}}",
        "seed=${{seed}}", "hydra.run.dir={run}", "--config-name train hydra.run.dir={run}",
        "-m seed=1,2 hydra.sweep.subdir=same", "-m seed=1,2 hydra.sweep.subdir={run}",
        "-m seed=1,2 hydra.sweep.dir={run}",
        # issue 40, the rest: over-long names, a setting the other makes unused
        "hydra.run.dir={fix}/" + "a" * 300, "paths.log_dir={fix}/" + "b" * 300,
        "data.folds=5 data.fold=0 data.val_size=100",
        # issue 42: data=folder
        "data=folder", "data=folder data.root=/no/such", "data=folder data.root={empty}",
        "data=folder data.root={letter_photos}", "data=folder data.root={ten_photos}",
        "data=folder data.root={bad_photos}", "data=folder data.labels={missing_csv}",
        "data=folder data.labels={label_csv}", "data=folder data.root={photos} data.val_fraction=1",
        "data=folder data.root={photos} data.labels={label_csv}",
        "data=usps data.root={empty} data.download=false", "data=usps data.test_fraction=1",
        "data=mix data.weights={{qmnist:2}}", "data=mix data.weights={{usps:-1}}",
        "data=mix +data@data.sources.mine=nosuch", "data=mix data.sources.mnist.val_size=-1",
        "data._target_=builtins.dict", "data._target_=no_such_package.Digits",
        "data=mix data.sources.mnist._target_=os.system",
        # issue 43: init_from=
        "init_from=/no/such", "init_from={empty}", "init_from={run} model=cnn",
        "init_from={run} resume={run}", "init_from={run} module.mean=0.5",
        "module.freeze=[nope]", "module.freeze=[features,head]", "module.body_lr_scale=-1",
    ]  # fmt: skip
    train_runs = [
        "model=lenet", "model=lstm", "optimizer=sgd", "scheduler=onecycle", "--cfg job",
        "--help", "model=cnn trainer.val_check_interval=0.5", "-m seed=1,2",
        "--resolve --cfg job", "-m data.folds=3,5 data.fold=0,1",
        "data=folder data.root={photos} data.val_fraction=0.1",
        "data=folder data.root={bad_photos} data.val_fraction=0.1 data.skip_bad=true",
    ]  # fmt: skip
    evaluate_refused = [
        "run={image}", "ckpt_path={onnx}", "ckpt_path={torchscript}", "ckpt_path={image}",
        "run={run} batch_size=0", "run={run} batch_size=-1", "run={run} tta=-1", "run={run} tta=abc",
        "run={run} top_pairs=-1", "run={run} mistakes=abc", "run={run} tensorboard=maybe",
        "run={run} ensemble=maybe", "run={run} split=TEST", "run={run} checkpoint=best2",
        "run={run} data.root={image}", "run={no_best}", "run={run} trainer=gpu",
        "run={run} trainer.accelerator=tpu", "run={run} trainer.devices=abc",
        "run={run} extra=1", "ckpt_path={evil_ckpt}", "ckpt_path={nan_ckpt}",
        "ckpt_path={flipped_ckpt}", "run={run} data=folder", "run={run} data=nosuch",
        "run={run} data=folder data.root={letter_photos}",
    ]  # fmt: skip
    evaluate_runs = [
        "run={run} split=val",
        "run={run} checkpoint=last",
        "run={multirun} ensemble=true",
        "run={run} data=folder data.root={photos} data.test_fraction=0.5",
    ]
    predict = [f"ckpt_path={{ckpt}} {a}" for a in (
        "images=[{empty}]", "images=[{not_image}]", "images=[{truncated_png}]",
        "images=[{zero_png}]", "images=[/no/such.png]", "images=[{digit}] top_k=-1",
        "images=[{digit}] top_k=1.5", "images=[{digit}] batch_size=-1",
        "images=[{digit}] min_confidence=-0.1", "images=[{digit}] min_confidence=nan",
        "images=[{digit}] min_confidence=inf", "images=[{digit}] output=csv",
        "images=[{digit}] mode=sheet", "images=[{digit}] preprocess=MNIST",
        "images=[{digit}] save_preprocessed={image}", "images=[{digit}] mode=number annotate={image}",
        "images=[{run}]", "images=[{digit}] trainer.devices=abc",
    )]  # fmt: skip
    predict_refused = [
        *predict,
        "ckpt_path={image} images=[{digit}]",
        "ckpt_path={run}/ images=[{digit}]",
        "ckpt_path={evil_ckpt} images=[{digit}]",
        "ckpt_path={fixed_onnx} images=[{digit}]",
        "ckpt_path={wide_onnx} images=[{digit}]",
        "ckpt_path={ckpt} images=[{dots}] mode=number",
    ]
    predict_runs = [
        "ckpt_path={ckpt} images=[{digit}]", "ckpt_path={ckpt} images=[{digit}] output=json",
        "ckpt_path={ckpt} images=[{number}] mode=number", "ckpt_path={onnx} images=[{digit}] ~trainer",
        "ckpt_path={ckpt} images=[{tiny_png}]",
    ]  # fmt: skip
    export_refused = [
        "run={run} format=ONNX", "run={run} output={empty}", "run={run} output=x.onnx.txt",
        "run={run} checkpoint=middle", "run={multirun}", "ckpt_path={onnx}", "ckpt_path={image}",
        "ckpt_path={torchscript}", "run={run} output={image}/m.onnx", "run={run} bogus=1",
        "ckpt_path={evil_ckpt}", "run={run} format=web output={fix}",
        "run={run} output={fix}/" + "c" * 300 + ".onnx",
    ]  # fmt: skip
    export_runs = ["run={run}", "run={run} format=torchscript"]
    serve_refused = [f"ckpt_path={{ckpt}} {a}" for a in (
        "port=-1", "port=70000", "port=abc", "host=", "host=999.1.1.1", "max_upload_mb=-1",
        "max_upload_mb=1000", "top_k=0", "min_confidence=1.5", "preprocess=bogus",
        "header_timeout_s=0", "keep_alive_s=0",
    )] + ["ckpt_path={image} port={port}", "ckpt_path={empty_file} port={port}",
          "ckpt_path={other_onnx} port={port}", "ckpt_path={evil_ckpt} port={port}",
          "ckpt_path={nan_ckpt} port={port}", "ckpt_path={wide_onnx} port={port}",
          "ckpt_path={fixed_onnx} port={port}", "ckpt_path={ckpt} port={port} cors_origins=[[a]]",
          "ckpt_path={ckpt} port={port} read_timeout_s=0"]  # fmt: skip
    explore_refused = [
        "samples_per_class=-1", "samples_per_class=abc", "out={image}", "data.root={image}",
        "data.val_size=-1", "data.download=maybe", "model=cnn",
    ]  # fmt: skip
    explore_runs = ["out={work}/explored samples_per_class=2"]
    compare_refused = [
        "{run} {image}", "{run} /no/such", "{run} --out", "{run} {run2} --bogus", "{run} {run}",
        "{run} {empty_file}", "'{fix}/*.png'",
    ]  # fmt: skip
    compare_runs = ["{run} {multirun}", "{run} {damaged_run}", "{run} {run2} --out {work}/cmp"]
    groups = {
        "train": (train_refused, train_runs, T),
        "evaluate": (evaluate_refused, evaluate_runs, []),
        "predict": (predict_refused, predict_runs, []),
        "export": (export_refused, export_runs, []),
        "serve": (serve_refused, [], []),
        "explore": (explore_refused, explore_runs, []),
        "compare": (compare_refused, compare_runs, []),
    }
    cases = []
    for command, (refused, runs, common) in groups.items():
        cases += [(command, with_common(line, common), REFUSE) for line in refused]
        cases += [(command, with_common(line, common), RUN) for line in runs]
    return cases


# Hydra's flags that take the next word as their value (--config-name train, --cfg job).
VALUED_FLAGS = {
    "--config-name",
    "-cn",
    "--config-dir",
    "-cd",
    "--config-path",
    "-cp",
    "--cfg",
    "-c",
}


def with_common(line: str, common: list[str]) -> list[str]:
    """The case's flags (-m, --config-name train), the settings every case shares, then its own
    settings: Hydra takes its overrides in one run, on one side of its flags."""
    flags, rest = [], []
    words = iter(line.split(" "))
    for word in words:
        if word in VALUED_FLAGS:
            flags += [word, next(words)]
        elif word.startswith("-") and not word.startswith("--out"):
            flags.append(word)
        else:
            rest.append(word)
    return [*flags, *common, *rest]


HTTP_CASES = [
    # (method, path, content type, body, should succeed)
    ("POST", "/predict", "image/png", b"", False),
    ("POST", "/predict", "text/plain", b"hello", False),
    ("POST", "/predict?top_k=0", "image/png", "{digit}", False),
    ("POST", "/predict?top_k=abc", "image/png", "{digit}", False),
    ("POST", "/predict?mode=bogus", "image/png", "{digit}", False),
    ("POST", "/predict?min_confidence=inf", "image/png", "{digit}", False),
    ("POST", "/predict?image=maybe", "image/png", "{digit}", False),
    ("GET", "/predict", None, None, False),
    ("GET", "/nope", None, None, False),
    ("POST", "/predict", "multipart/form-data; boundary=xx", b"--xx--\r\n", False),
    ("POST", "/predict", "image/png", "{truncated_png}", False),
    ("POST", "/predict", "image/png", "{not_image}", False),
    ("POST", "/predict", "image/png", "{huge_png}", False),
    ("POST", "/predict/batch", "image/png", "{digit}", False),
    ("POST", "/predict/batch", "multipart/form-data; boundary=xx", b"--xx--\r\n", False),
    ("POST", "/predict", "image/png", "{digit}", True),
    ("POST", "/predict?mode=number", "image/png", "{number}", True),
    ("POST", "/predict?image=true&top_k=10", "image/png", "{tiny_png}", True),
    # issue 40: bounded reading, damaged images, methods, metrics
    ("POST", "/predict?mode=number", "image/png", "{scribble}", True),  # read within its bounds
    ("POST", "/predict?mode=auto", "image/png", "{dots}", False),
    ("POST", "/predict", "image/png", "{bad_idat}", False),
    ("PUT", "/predict", None, None, False),
    ("GET", "/metrics", None, None, True),
]


def make_fixtures(fix: Path, data: Path) -> dict[str, str]:
    """A real (short) run, its exports, a multirun, images and damaged or odd files."""
    fix.mkdir(parents=True)
    env = {**os.environ, "DIGITS_OUTPUT_DIR": str(fix / "outputs"), "DIGITS_DATA_DIR": str(data)}

    def train(*args: str) -> None:
        subprocess.run([sys.executable, "-m", "digits.train", *with_common(" ".join(args), T)],
                       cwd=fix, env=env, check=True, capture_output=True)  # fmt: skip

    train("hydra.run.dir=outputs/run")
    train("seed=7", "hydra.run.dir=outputs/run2")
    train("-m", "seed=1,2", "hydra.sweep.dir=outputs/multirun")
    for fmt in ("onnx", "torchscript"):
        subprocess.run([sys.executable, "-m", "digits.export", "run=outputs/run", f"format={fmt}"],
                       cwd=fix, env=env, check=True, capture_output=True)  # fmt: skip
    run = fix / "outputs" / "run"
    places = {
        "fix": fix, "run": run, "run2": fix / "outputs" / "run2",
        "multirun": fix / "outputs" / "multirun", "ckpt": run / "checkpoints" / "last.ckpt",
        "onnx": next((run / "export").glob("*.onnx")), "torchscript": next((run / "export").glob("*.pt")),
        "empty": fix / "empty", "image": fix / "photo.png", "digit": fix / "digit.png",
        "number": fix / "number.png", "tiny_png": fix / "tiny.png", "zero_png": fix / "zero.png",
        "truncated_png": fix / "truncated.png", "not_image": fix / "notes.png",
        "huge_png": fix / "huge.png", "empty_file": fix / "empty.ckpt",
        "other_onnx": fix / "other.onnx", "no_best": fix / "no-best", "damaged_run": fix / "damaged",
    }  # fmt: skip
    places |= {
        "evil_ckpt": fix / "evil.ckpt", "nan_ckpt": fix / "nan.ckpt",
        "flipped_ckpt": fix / "flipped" / "checkpoints" / "last.ckpt",
        "fixed_onnx": fix / "fixed.onnx", "wide_onnx": fix / "wide.onnx",
        "scribble": fix / "scribble.png", "dots": fix / "dots.png", "bad_idat": fix / "bad-idat.png",
    }  # fmt: skip
    make_crafted(places, run)
    places |= folders_of_photos(fix)
    places["empty"].mkdir()
    digit = Image.new("L", (120, 160), 255)
    for x in range(40, 80):
        for y in range(30, 130):
            if abs(x - 60) < 6:
                digit.putpixel((x, y), 0)
    digit.save(places["digit"])
    digit.save(places["image"])
    wide = Image.new("L", (360, 160), 255)
    for offset in (0, 120, 240):
        wide.paste(digit, (offset, 0))
    wide.save(places["number"])
    Image.new("L", (1, 1), 0).save(places["tiny_png"])
    places["zero_png"].write_bytes(b"")
    places["truncated_png"].write_bytes(places["digit"].read_bytes()[:60])
    places["not_image"].write_text("not an image")
    Image.new("1", (20000, 20000), 1).save(places["huge_png"])
    places["empty_file"].write_bytes(b"")
    places["other_onnx"].write_bytes(places["onnx"].read_bytes()[:200])
    shutil.copytree(run, places["no_best"], ignore=shutil.ignore_patterns("epoch*.ckpt", ".lock"))
    shutil.copytree(run, places["damaged_run"], ignore=shutil.ignore_patterns(".lock"))
    (places["damaged_run"] / "metrics.json").write_text("{cut")
    return {name: str(path) for name, path in places.items()}


def make_crafted(places: dict[str, Path], run: Path) -> None:
    """Issue 40's files: checkpoints that name code or hold NaN weights, a run whose checkpoint
    changed since its manifest recorded it, odd ONNX models, images costly to read as numbers, a PNG
    with damaged image data."""
    ckpt = run / "checkpoints" / "last.ckpt"
    evil = running_code(places["fix"] / "ran")["os.system"]
    rewritten_checkpoint(
        ckpt, places["evil_ckpt"], lambda c: c["hyper_parameters"].update(net=evil)
    )

    def nan_weights(checkpoint: dict) -> None:
        weights = checkpoint["state_dict"]
        weights[next(key for key in weights if key.startswith("net."))].fill_(float("nan"))

    rewritten_checkpoint(ckpt, places["nan_ckpt"], nan_weights)
    flipped = places["flipped_ckpt"].parents[1]
    shutil.copytree(run, flipped, ignore=shutil.ignore_patterns(".lock"))
    data = bytearray(places["flipped_ckpt"].read_bytes())
    data[len(data) // 2] ^= 1
    places["flipped_ckpt"].write_bytes(bytes(data))
    onnx_classifier(places["fixed_onnx"], batch=4)
    onnx_classifier(places["wide_onnx"], outputs=784)
    scribble(400).save(places["scribble"])
    dot_grid(20).save(places["dots"])
    png = encoded(Image.new("L", (8, 8), 0), "PNG")
    at = png.index(b"IDAT") + 6
    places["bad_idat"].write_bytes(png[:at] + bytes(8) + png[at + 8 :])


def snapshot(folder: Path) -> set[tuple[str, int, int]]:
    return {
        (str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    }


def verdict(expect: str, code: int, out: str, err: str, wrote: bool) -> str:
    if "Traceback" in out + err:
        return "traceback"
    lines = [line for line in err.splitlines() if line.strip()]
    if expect == RUN:
        return "as promised" if code == 0 else f"refused valid input (exit {code})"
    if code == 0:
        return "ran"
    if code != 2:
        return f"exit {code}"
    if len(lines) != 1 or not lines[0].startswith("error: "):
        return "several lines"
    return "wrote files" if wrote else "as promised"


def run_cli_case(
    command: str, args: list[str], places: dict[str, str], work: Path
) -> tuple[int, str, str, bool]:
    filled = [a.format(**places, port=free_port(), work=work).strip("'") for a in args]
    module = f"digits.{command}"
    env = {**os.environ, "DIGITS_OUTPUT_DIR": str(work / "outputs"), "PYTHONWARNINGS": "ignore",
           "DIGITS_CACHE_DIR": str(Path(places["fix"]).parent / "cache")}  # fmt: skip
    env.pop("HYDRA_FULL_ERROR", None)
    before = snapshot(Path(places["fix"])) | snapshot(work)
    try:
        done = subprocess.run([sys.executable, "-m", module, *filled], cwd=work, env=env,
                              capture_output=True, text=True, timeout=40 if command == "serve" else 300,
                              stdin=subprocess.DEVNULL)  # fmt: skip
        code, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as timeout:
        code, out, err = 124, str(timeout.stdout or ""), "timed out"
    wrote = (snapshot(Path(places["fix"])) | snapshot(work)) != before
    return code, out, err, wrote


def run_http_cases(places: dict[str, str], work: Path) -> list[dict[str, str]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "digits.serve", f"ckpt_path={places['ckpt']}", f"port={port}"]
    rows = []
    log = (work / "serve.log").open("w+b")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_answered(server, log, f"{url}/ready", 120)
        for method, path, content_type, body, ok in HTTP_CASES:
            data = Path(places[body[1:-1]]).read_bytes() if isinstance(body, str) else body
            request = urllib.request.Request(url + path, data=data, method=method)
            if content_type:
                request.add_header("Content-Type", content_type)
            try:
                with urllib.request.urlopen(request, timeout=60) as answer:
                    status, text = answer.status, answer.read().decode()
            except urllib.error.HTTPError as error:
                status, text = error.code, error.read().decode()
            if ok:
                result = "as promised" if status == 200 else f"refused valid input ({status})"
            else:
                one_line = text.count("\n") <= 1 and '"error"' in text
                result = "as promised" if 400 <= status < 500 and one_line else f"status {status}"
            rows.append({"command": "http", "case": f"{method} {path} {content_type} {body!s:.20}",
                         "expect": RUN if ok else REFUSE, "verdict": result, "detail": text[:200]})  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    server_log = (work / "serve.log").read_text() if (work / "serve.log").is_file() else ""
    rows.append({"command": "http", "case": "server log after the requests", "expect": RUN,
                 "verdict": "traceback" if "Traceback" in server_log else "as promised",
                 "detail": server_log[-200:]})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", help="commands to run, comma-separated (and http)")
    parser.add_argument("--limit", type=int, help="at most this many cases per command")
    parser.add_argument("--match", help="only the cases whose command line holds this text")
    args = parser.parse_args()
    data = Path(os.environ.get("DIGITS_DATA_DIR", "../shared/data"))
    scratch = Path(tempfile.mkdtemp(prefix="hostile-"))
    places = make_fixtures(scratch / "fix", data)
    work = scratch / "work"
    rows = []
    counts: collections.Counter = collections.Counter()
    for command, case_args, expect in cli_cases():
        if args.only and command not in args.only.split(","):
            continue
        if args.match and args.match not in " ".join(case_args):
            continue
        counts[command] += 1
        if args.limit and counts[command] > args.limit:
            continue
        if work.exists():
            shutil.rmtree(work)
        work.mkdir()
        start = time.monotonic()
        code, out, err, wrote = run_cli_case(command, case_args, places, work)
        result = verdict(expect, code, out, err, wrote)
        detail = (err.strip().splitlines() or out.strip().splitlines() or [""])[-1][:200]
        rows.append({"command": command, "case": " ".join(case_args), "expect": expect,
                     "verdict": result, "detail": detail})  # fmt: skip
        print(
            f"{result:>22}  {time.monotonic() - start:5.1f}s  {command} {' '.join(case_args)}",
            flush=True,
        )
    if not args.only or "http" in args.only.split(","):
        work.mkdir(exist_ok=True)
        rows += run_http_cases(places, work)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "cases.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=["command", "case", "expect", "verdict", "detail"]
        )
        writer.writeheader()
        writer.writerows(rows)
    totals = collections.Counter(row["verdict"] for row in rows)
    (args.out / "totals.json").write_text(
        json.dumps({"cases": len(rows), **totals}, indent=2) + "\n"
    )
    print(json.dumps({"cases": len(rows), **totals}, indent=2))
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
