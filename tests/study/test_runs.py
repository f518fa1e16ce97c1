"""Run folders: atomic writes, config checks on resume, checkpoint discovery."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from stridelab.study import runs


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "results.json"
    runs.atomic_write_json(target, {"a": 1})
    runs.atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["results.json"]


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "config.json"
    runs.atomic_write_text(target, "old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        runs.atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_prepare_run_dir_protects_existing_studies(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "s"
    assert runs.prepare_run_dir(run_dir, {"epochs": 2}, resume=False, overwrite=False) is False
    with pytest.raises(ValueError, match="--resume"):
        runs.prepare_run_dir(run_dir, {"epochs": 2}, resume=False, overwrite=False)
    assert runs.prepare_run_dir(run_dir, {"epochs": 2}, resume=True, overwrite=False) is True
    with pytest.raises(ValueError, match="epochs"):
        runs.prepare_run_dir(run_dir, {"epochs": 3}, resume=True, overwrite=False)
    (run_dir / "stale.txt").write_text("x")
    assert runs.prepare_run_dir(run_dir, {"epochs": 3}, resume=False, overwrite=True) is False
    assert not (run_dir / "stale.txt").exists()
    assert json.loads((run_dir / "config.json").read_text()) == {"epochs": 3}
    # --resume on a folder that does not exist yet simply starts the study.
    assert runs.prepare_run_dir(tmp_path / "new", {}, resume=True, overwrite=False) is False


def test_overwrite_refuses_foreign_folders(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="not a stridelab study"):
        runs.prepare_run_dir(tmp_path / "mine", {}, resume=False, overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").exists()


def test_latest_checkpoint_is_numeric(tmp_path: Path) -> None:
    assert runs.latest_checkpoint(tmp_path / "none") is None
    for epoch in (1, 2, 9, 10):
        (tmp_path / f"epoch-{epoch}.pt").write_bytes(b"")
    (tmp_path / ".epoch-11.pt.abc.tmp").write_bytes(b"")  # an interrupted write
    assert runs.latest_checkpoint(tmp_path) == (10, tmp_path / "epoch-10.pt")


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "spaces here"])
def test_bad_run_names(name: str) -> None:
    with pytest.raises(ValueError, match="name"):
        runs.check_name(name)


def test_a_folder_saved_before_an_option_existed_resumes_with_its_old_value(
        tmp_path: Path) -> None:
    from stridelab.study.config import StudyConfig
    from stridelab.study.runner import ADDED_OPTIONS

    run_dir = tmp_path / "old"
    current = StudyConfig().to_dict()
    older = {k: v for k, v in current.items() if k not in ADDED_OPTIONS}
    runs.prepare_run_dir(run_dir, older, resume=False, overwrite=False)  # an older config.json
    assert runs.prepare_run_dir(run_dir, current, resume=True, overwrite=False,
                                added_options=ADDED_OPTIONS) is True
    with pytest.raises(ValueError, match="val_every"):
        runs.prepare_run_dir(run_dir, {**current, "val_every": 2}, resume=True, overwrite=False,
                             added_options=ADDED_OPTIONS)
    with pytest.raises(ValueError, match="val_every"):  # without the table: a real difference
        runs.prepare_run_dir(run_dir, current, resume=True, overwrite=False)
    # the defaults are what the older versions did
    assert {k: current[k] for k in ADDED_OPTIONS} == ADDED_OPTIONS
