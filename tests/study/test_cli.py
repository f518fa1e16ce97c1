"""`stridelab study` end to end: bad flags, SIGKILL + --resume, torchrun with 2 processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from stridelab.cli import main

# A study small enough for seconds: 120 digits at 12x12, ResNet-8 of width 4, 8 steps per epoch.
SMALL = ["--dataset", "digits", "--image-size", "12", "--train-limit", "120", "--depth", "8",
         "--width", "4", "--variants", "strided,blurpool", "--seeds", "1", "--epochs", "3",
         "--batch-size", "16", "--latency-repeats", "2", "--max-shift", "2", "--quiet",
         "--device", "cpu"]
STEPS_PER_EPOCH = 8
REPRODUCIBLE = ("test_accuracy", "val_accuracy", "consistency", "peak_train_bytes")


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
    env.pop("STRIDELAB_STUDY_CRASH_AFTER_STEPS", None)
    return env


def _study(runs: Path, name: str, *extra: str, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "stridelab", "study", *SMALL, "--runs-dir", str(runs),
               "--name", name, *extra]
    return subprocess.run(command, env=env or _env(), capture_output=True, text=True,
                          timeout=300, check=False)


def _shape(value: Any) -> Any:
    """Structure of a JSON value: dict keys (recursively) and list lengths, not the numbers."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__ if not isinstance(value, (int, float)) else "number"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    done = _study(runs, "ref")
    assert done.returncode == 0, done.stderr
    assert "report:" in done.stdout and "strided" in done.stdout
    return runs / "ref"


def test_run_folder_layout(uninterrupted: Path) -> None:
    names = {p.relative_to(uninterrupted).as_posix() for p in uninterrupted.rglob("*")}
    for expected in ("config.json", "results.json", "report.md", "report.html",
                     "strided/seed-0/epoch-1.pt", "strided/seed-0/epoch-3.pt",
                     "blurpool/seed-0/result.json", "accuracy_vs_macs.png"):
        assert expected in names
    results = json.loads((uninterrupted / "results.json").read_text())
    assert [v["name"] for v in results["variants"]] == ["strided", "blurpool"]
    assert results["world_size"] == 1
    for variant in results["variants"]:
        assert variant["static"]["effective_stride"] == [4, 4]  # 12x12 input, 3x3 last map
        assert variant["feature_sizes"][-1] == [16, 3, 3]
        assert 0.0 <= variant["summary"]["consistency"]["mean"] <= 1.0
    assert not [p for p in uninterrupted.rglob("*.tmp")]


def test_sigkill_mid_epoch_then_resume_gives_the_same_numbers(uninterrupted: Path,
                                                            tmp_path: Path) -> None:
    env = _env()
    # Die in the middle of blurpool's second epoch (strided's 3 epochs come first).
    env["STRIDELAB_STUDY_CRASH_AFTER_STEPS"] = str(3 * STEPS_PER_EPOCH + STEPS_PER_EPOCH + 3)
    killed = _study(tmp_path, "cut", env=env)
    assert killed.returncode == -signal.SIGKILL
    run = tmp_path / "cut"
    assert (run / "strided" / "seed-0" / "result.json").is_file()
    assert sorted(p.name for p in (run / "blurpool" / "seed-0").iterdir()) == ["epoch-1.pt"]
    assert not (run / "results.json").exists()
    again = _study(tmp_path, "cut")
    assert again.returncode == 2 and "--resume" in again.stderr  # no silent clobbering
    resumed = _study(tmp_path, "cut", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    ref = json.loads((uninterrupted / "results.json").read_text())
    got = json.loads((run / "results.json").read_text())
    for a, b in zip(ref["variants"], got["variants"], strict=True):
        for key in REPRODUCIBLE:
            assert a["seeds"][0][key] == b["seeds"][0][key], (a["name"], key)
        assert [h["loss"] for h in a["seeds"][0]["history"]] == [
            h["loss"] for h in b["seeds"][0]["history"]]
    assert got["variants"][1]["seeds"][0]["resumed_from_epoch"] == 1
    final_ref = torch.load(uninterrupted / "blurpool" / "seed-0" / "epoch-3.pt",
                           weights_only=False)["model"]
    final_got = torch.load(run / "blurpool" / "seed-0" / "epoch-3.pt", weights_only=False)["model"]
    assert all(torch.equal(final_ref[k], final_got[k]) for k in final_ref)
    assert _shape(ref) == _shape(got)


def test_torchrun_two_cpu_processes(uninterrupted: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", "-m", "stridelab", "study", *SMALL,
               "--runs-dir", str(tmp_path), "--name", "ddp"]
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=240,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("report:") == 1  # only rank 0 reports
    ref = json.loads((uninterrupted / "results.json").read_text())
    got = json.loads((tmp_path / "ddp" / "results.json").read_text())
    assert got["world_size"] == 2
    ref["world_size"] = got["world_size"]
    assert _shape(ref) == _shape(got)
    for variant in got["variants"]:
        history = variant["seeds"][0]["history"]
        assert [h["epoch"] for h in history] == [1, 2, 3]
        assert history[-1]["loss"] < history[0]["loss"]


@pytest.mark.parametrize(("flags", "fragment"), [
    (["--epochs", "0"], "--epochs"),
    (["--val-every", "0"], "--val-every"),
    (["--variants", "strided,bogus"], "bogus"),
    (["--variants", "strided,strided"], "strided"),
    (["--dataset", "mnist"], "dataset"),
    (["--dataset", "cifar10:/nonexistent/cifar"], "/nonexistent/cifar"),
    (["--device", "tpu"], "--device"),
    (["--optimizer", "adam"], "--optimizer"),
    (["--name", "../escape"], "name"),
    (["--resume", "--overwrite"], "--overwrite"),
    (["--variants", "missing-plan.toml"], "missing-plan.toml"),
])
def test_bad_flags_one_line_exit_2(flags: list[str], fragment: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["study", *SMALL, "--runs-dir", str(tmp_path), *flags])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and fragment in err
    assert "Traceback" not in err
