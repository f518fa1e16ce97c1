"""`stridelab study` on scenes, all three tasks in one small run: SIGKILL in the middle of the
segmentation and of the detection training then --resume gives the same numbers; torchrun with 2
gloo processes; bad task / dataset combinations exit 2 with one line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stridelab.cli import main
from tests.study.test_cli import _env, _shape

# 32 training scenes of 32x32 at batch 16: 2 steps per epoch, 2 epochs, one variant per task.
SCENES = ["--dataset", "scenes", "--canvas", "32", "--task", "classify,segment,detect",
          "--variants", "classify:os32-strided,segment:os16-skip,detect:fpn",
          "--train-limit", "32", "--depth", "8", "--width", "4", "--seeds", "1", "--epochs", "2",
          "--batch-size", "16", "--latency-repeats", "1", "--max-shift", "2", "--quiet",
          "--device", "cpu", "--optimizer", "adamw", "--lr", "0.003"]
STEPS_PER_EPOCH = 2
STEPS_PER_TASK = 2 * STEPS_PER_EPOCH
METRICS = {"classify": ("mAP", "consistency"), "segment": ("mIoU", "boundary_F1", "IoU_small"),
           "detect": ("AP", "AP50", "AP_small")}


def _study(runs: Path, name: str, *extra: str, crash_after: int = 0,
           ) -> subprocess.CompletedProcess[str]:
    env = _env()
    if crash_after:
        env["STRIDELAB_STUDY_CRASH_AFTER_STEPS"] = str(crash_after)
    command = [sys.executable, "-m", "stridelab", "study", *SCENES, "--runs-dir", str(runs),
               "--name", name, *extra]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("scene-runs")
    done = _study(runs, "ref")
    assert done.returncode == 0, done.stderr
    assert "report:" in done.stdout and "The claims" not in done.stdout
    return runs / "ref"


def test_scene_run_layout_and_report(reference: Path) -> None:
    results = json.loads((reference / "results.json").read_text())
    assert results["tasks"] == ["classify", "segment", "detect"]
    assert [(v["task"], v["name"]) for v in results["variants"]] == [
        ("classify", "os32-strided"), ("segment", "os16-skip"), ("detect", "fpn")]
    for variant in results["variants"]:
        for metric in METRICS[variant["task"]]:
            assert metric in variant["summary"], (variant["name"], metric)
    for path in ("os32-strided/seed-0/epoch-2.pt", "segment/os16-skip/seed-0/result.json",
                 "detect/fpn/seed-0/epoch-1.pt", "report.md", "report.html",
                 "detail_vs_stride.png", "segment_vs_macs.png"):
        assert (reference / path).is_file(), path
    assert [c["key"] for c in results["claims"]][0] == "compute"
    markdown = (reference / "report.md").read_text()
    # the claims table comes first, before every task table
    assert markdown.index("## The claims, measured") < markdown.index("## Classification")
    assert (reference / "report.html").stat().st_mode & 0o777 == 0o644


def test_scene_run_reports_effective_beside_theoretical_field(reference: Path) -> None:
    """Each seed measured its effective field at init and after training, bounded by the theory."""
    results = json.loads((reference / "results.json").read_text())
    for variant in results["variants"]:
        entry = variant["seeds"][0]["effective_field"]
        for stage in ("init", "trained"):
            measured = entry[stage]
            assert abs(sum(map(sum, measured["map"])) - 1) < 1e-3
            for extent, size in zip(measured["extent95"], measured["field"]["size"], strict=True):
                assert 0 < extent <= float(size) + 1e-9, (variant["name"], stage)
    markdown = (reference / "report.md").read_text()
    assert "## Effective receptive field" in markdown
    assert (reference / "effective_fields.png").is_file()


def _same_numbers(ref: dict, got: dict) -> None:
    for a, b in zip(ref["variants"], got["variants"], strict=True):
        for metric in (*METRICS[a["task"]], "peak_train_bytes"):
            assert a["seeds"][0][metric] == b["seeds"][0][metric], (a["name"], metric)
        assert [h["loss"] for h in a["seeds"][0]["history"]] == [
            h["loss"] for h in b["seeds"][0]["history"]]


def test_sigkill_in_segment_and_in_detect_then_resume(reference: Path, tmp_path: Path) -> None:
    # 1) die in segment's second epoch (classify's 4 steps come first)
    killed = _study(tmp_path, "cut", crash_after=STEPS_PER_TASK + STEPS_PER_EPOCH + 1)
    assert killed.returncode == -signal.SIGKILL
    run = tmp_path / "cut"
    assert sorted(p.name for p in (run / "segment" / "os16-skip" / "seed-0").iterdir()) == [
        "epoch-1.pt"]
    # 2) resume, and die again in detect's second epoch (this process: 2 segment steps + 3)
    killed = _study(tmp_path, "cut", "--resume", crash_after=STEPS_PER_EPOCH + STEPS_PER_EPOCH + 1)
    assert killed.returncode == -signal.SIGKILL
    assert (run / "segment" / "os16-skip" / "seed-0" / "result.json").is_file()
    assert sorted(p.name for p in (run / "detect" / "fpn" / "seed-0").iterdir()) == ["epoch-1.pt"]
    # 3) finish
    resumed = _study(tmp_path, "cut", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    ref = json.loads((reference / "results.json").read_text())
    got = json.loads((run / "results.json").read_text())
    _same_numbers(ref, got)
    assert [v["seeds"][0]["resumed_from_epoch"] for v in got["variants"]] == [0, 1, 1]
    for part in ("segment/os16-skip", "detect/fpn"):
        a = torch.load(reference / part / "seed-0" / "epoch-2.pt", weights_only=False)["model"]
        b = torch.load(run / part / "seed-0" / "epoch-2.pt", weights_only=False)["model"]
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert _shape(ref) == _shape(got)


def test_torchrun_two_gloo_processes_every_task(reference: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", "-m", "stridelab", "study", *SCENES,
               "--runs-dir", str(tmp_path), "--name", "ddp"]
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("report:") == 1
    got = json.loads((tmp_path / "ddp" / "results.json").read_text())
    ref = json.loads((reference / "results.json").read_text())
    assert got["world_size"] == 2
    ref["world_size"] = 2
    assert _shape(ref) == _shape(got)
    for variant in got["variants"]:
        history = variant["seeds"][0]["history"]
        assert [h["epoch"] for h in history] == [1, 2]
        assert all(h["loss"] == h["loss"] and h["loss"] > 0 for h in history)


@pytest.mark.parametrize(("flags", "fragment"), [
    (["--task", "segment", "--dataset", "digits"], "scenes"),
    (["--task", "count"], "task"),
    (["--task", "segment,segment"], "task"),
    (["--variants", "os12"], "os12"),
    (["--variants", "segment:os8-transposed-skip"], "conflicting"),
    (["--variants", "detect:os8-bilinear"], "bilinear"),
    (["--variants", "segment:strided"], "strided"),
    (["--canvas", "16"], "canvas"),
    (["--augment", "shift"], "augment"),
    (["--dataset", "coco:/nonexistent/coco"], "/nonexistent/coco"),
])
def test_bad_scene_flags_one_line_exit_2(flags: list[str], fragment: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["study", *SCENES, "--runs-dir", str(tmp_path), *flags])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and fragment in err
    assert "Traceback" not in err


def test_coco_folder_trains_segment_and_detect(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from stridelab.study.coco import write_coco_folder
    from stridelab.study.scenes import make_scenes

    folder = tmp_path / "coco-data"
    write_coco_folder(make_scenes(24, canvas=32, seed=5, split="test"), folder)
    flags = [f if f != "scenes" else f"coco:{folder}" for f in SCENES]
    flags[flags.index("classify,segment,detect")] = "segment,detect"
    flags[flags.index("classify:os32-strided,segment:os16-skip,detect:fpn")] = (
        "segment:os32,detect:os32")
    code = main(["study", *flags, "--epochs", "1", "--runs-dir", str(tmp_path), "--name", "coco"])
    assert code == 0, capsys.readouterr().err
    results = json.loads((tmp_path / "coco" / "results.json").read_text())
    assert results["dataset"]["name"] == f"coco:{folder}"
    # 24 images: 2 validation, 5 test (10 % / 20 %), 17 training
    assert (results["dataset"]["train"], results["dataset"]["val"],
            results["dataset"]["test"]) == (17, 2, 5)
    assert [v["task"] for v in results["variants"]] == ["segment", "detect"]
