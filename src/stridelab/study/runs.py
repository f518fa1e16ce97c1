"""The run directory ``runs/<name>/``: atomic writes, config matching and resume bookkeeping.

Layout::

    runs/<name>/config.json                      the study's configuration (checked on --resume)
    runs/<name>/<variant>/seed-<s>/epoch-<k>.pt  checkpoint after each completed epoch k (1-based)
    runs/<name>/<variant>/seed-<s>/result.json   measurements of that trained model
    runs/<name>/results.json                     everything, aggregated over seeds
    runs/<name>/report.md, report.html, *.png    the report

Every file is written to a temporary file in the same folder, flushed to disk and renamed over the
target with :func:`os.replace`, so a crash (even SIGKILL) leaves either the old or the new file.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

CHECKPOINT_PATTERN = re.compile(r"^epoch-(\d+)\.pt$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def normal_file_mode() -> int:
    """``0o666`` minus the process umask: the mode ``open(path, "w")`` would give a new file
    (read from /proc where it exists, so the umask is never changed, even for a moment)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace`` (write-then-rename).

    The file gets normal permissions (:func:`normal_file_mode`, 0644 with the usual umask), not
    the private 0600 of :func:`tempfile.mkstemp`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, normal_file_mode())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def atomic_torch_save(path: Path, value: Any) -> None:
    """``torch.save`` into memory, then :func:`atomic_write_bytes`."""
    import torch

    buffer = io.BytesIO()
    torch.save(value, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"corrupt JSON file {str(path)!r}: {err}") from err


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise ValueError(f"name must be letters, digits, '.', '_' or '-' (a folder name); "
                         f"got {name!r}")
    return name


def prepare_run_dir(run_dir: Path, config: dict[str, Any], *, resume: bool,
                    overwrite: bool, added_options: dict[str, Any] | None = None) -> bool:
    """Create ``run_dir`` with ``config.json``; returns True when continuing an existing study.

    An existing folder needs ``resume`` (its config.json must equal ``config``) or ``overwrite``
    (the folder is deleted first); otherwise ValueError, so nobody's results are clobbered.
    ``added_options``: options newer than some saved config.json files, with the value that
    reproduces the older behaviour; a saved config.json without such a key counts as having it.
    """
    config_path = run_dir / "config.json"
    if run_dir.exists() and overwrite:
        if not config_path.is_file() and any(run_dir.iterdir()):
            raise ValueError(f"--overwrite refuses to delete {str(run_dir)!r}: it has no "
                             "config.json, so it is not a stridelab study folder")
        shutil.rmtree(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        if not resume:
            raise ValueError(f"run folder {str(run_dir)!r} already exists: pass --resume to "
                             "continue it, --overwrite to start again, or another --name")
        if not config_path.is_file():
            raise ValueError(f"cannot resume {str(run_dir)!r}: config.json is missing")
        saved = {**(added_options or {}), **read_json(config_path)}
        changed = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k))
        if changed:
            raise ValueError(f"cannot resume {str(run_dir)!r}: options differ from its "
                             f"config.json ({', '.join(changed)}); use the same options or --name")
        return True
    atomic_write_json(config_path, config)
    return False


def seed_dir(run_dir: Path, variant: str, seed: int) -> Path:
    return run_dir / variant / f"seed-{seed}"


def checkpoint_path(directory: Path, epoch: int) -> Path:
    return directory / f"epoch-{epoch}.pt"


def latest_checkpoint(directory: Path) -> tuple[int, Path] | None:
    """The checkpoint of the last completed epoch in ``directory`` (or None)."""
    if not directory.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in directory.iterdir()
             if (m := CHECKPOINT_PATTERN.match(p.name))]
    return max(found) if found else None
