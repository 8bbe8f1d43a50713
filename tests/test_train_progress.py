"""What `avforensics train` shows a user: one progress line, none of Lightning's noise, clear data errors."""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from train_fixtures import ENGINE_CONFIG

from avforensics.cli import main
from avforensics.train.progress import ProgressLine

TESTS = Path(__file__).resolve().parent
PROGRESS = re.compile(
    r"epoch (\d)/4  step (\d+)/16  loss (\d\.\d{4})  val/video/overall/auc (-|\d\.\d{4})  "
    r"eta (\d:\d\d:\d\d|-)"
)
LIGHTNING_NOISE = (
    "GPU available",
    "TPU available",
    "Tip:",
    "Total FLOPs",
    "Trainable params",
    "LeafSpec",
    "module(s) in eval mode",
    "smaller than the logging interval",
    "`Trainer.fit` stopped",
    "Epoch 3/3",  # Lightning's own progress bar
)
# Run as a user runs it, in a fresh process; the toy detector's frozen backbone is kept in eval mode as
# real detectors' backbones are (they load in eval mode), which Lightning would warn about.
SCRIPT = """
import sys
from torch import nn
import train_fixtures
from avforensics.cli import main

def train_keeping_backbone_frozen(self, mode=True):
    nn.Module.train(self, mode)
    self.backbone.eval()
    return self

train_fixtures.ToyAVDetector.train = train_keeping_backbone_frozen
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow  # a fresh process imports Lightning and trains: 15-35 s on two busy cores
def test_training_prints_one_progress_line_and_none_of_lightnings_noise(tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent / "src"), str(TESTS)])}
    command = [sys.executable, "-c", SCRIPT, "train", str(ENGINE_CONFIG), "--out", str(out),
               "--set", "trainer.progress_bar=true", "--set", "trainer.log_every_n_steps=50",
               "--set", "trainer.threads=1"]
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    output = finished.stdout + finished.stderr
    for noise in LIGHTNING_NOISE:
        assert noise not in output
    lines = output.splitlines()
    assert lines[-1].startswith("INFO avforensics.train.cli: finished at step 16")
    progress = [PROGRESS.fullmatch(line) for line in lines[:-1]]
    assert all(progress), lines  # nothing but progress lines before the closing message
    # After the first step (nothing validated yet), then after each of the 4 validations.
    assert [(m[1], m[2]) for m in progress] == [("1", "1"), ("1", "4"), ("2", "8"), ("3", "12"), ("4", "16")]
    assert progress[0][4] == "-" and all(m[4] != "-" for m in progress[1:])
    assert progress[-1][5] == "0:00:00"
    # 4 batches per epoch and log_every_n_steps=50: the interval is lowered so each epoch is still logged.
    with (out / "csv" / "version_0" / "metrics.csv").open() as handle:
        logged_steps = [int(row["step"]) for row in csv.DictReader(handle) if row["train/loss"]]
    assert logged_steps == [3, 7, 11, 15]


def test_progress_line_is_redrawn_in_place_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    line = ProgressLine("val/loss", stream)
    trainer = SimpleNamespace(
        is_global_zero=True, global_step=0, current_epoch=0, max_epochs=2, max_steps=-1,
        num_training_batches=3, callback_metrics={}, sanity_checking=False,
    )
    line.on_train_start(trainer, None)
    for step in (1, 2):
        trainer.global_step = step
        line.on_train_batch_end(trainer, None, {"loss": 0.5 * step}, None, step - 1)
    trainer.callback_metrics = {"val/loss": 0.25}
    line.on_validation_end(trainer, None)
    line.on_train_end(trainer, None)
    drawn = stream.getvalue()
    assert drawn.startswith("\repoch 1/2  step 1/6  loss 0.5000  val/loss -  eta ")
    # Step 1, the validation and the end; step 2 came within 0.2 s of step 1, so it was not drawn.
    assert drawn.count("\r") == 3 and drawn.count("\n") == 1 and drawn.endswith("\x1b[K\n")
    assert "\repoch 1/2  step 2/6  loss 0.7500  val/loss 0.2500  eta " in drawn


def test_too_little_data_says_what_to_change(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        code = main(["train", str(ENGINE_CONFIG), "--out", str(tmp_path / "run"),
                     "--set", "data.batch_size=64", "--set", "trainer.threads=1"])
    assert code == 1
    assert caplog.messages == [
        "32 training windows per epoch (split 'train', data.window_policy=random) cannot fill one batch of "
        "data.batch_size=64, and incomplete training batches are dropped: set data.batch_size to at most 32 "
        "(e.g. --set data.batch_size=32) or add training data"
    ]
