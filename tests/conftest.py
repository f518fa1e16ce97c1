"""Shared test settings: hypothesis budgets and golden files.

* ``make test`` runs the "ci" profile; ``make fuzz`` sets ``STRIDELAB_FUZZ=1`` and every budget
  from :func:`budget` is multiplied (see tests/_budget.py).
* Golden files live in ``tests/golden/``; ``pytest --regen-golden`` (or ``make golden``) rewrites
  them from the current output instead of comparing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "fuzz", deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("fuzz" if os.environ.get("STRIDELAB_FUZZ") else "ci")

GOLDEN_DIR = Path(__file__).parent / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--regen-golden", action="store_true",
                     help="rewrite tests/golden/* from the current output")


@pytest.fixture(autouse=True, scope="session")
def _torch_threads() -> None:
    """One torch thread per xdist worker (two workers on two cores), deterministic algorithms."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a runtime dependency
        return
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)


class Golden:
    def __init__(self, regen: bool) -> None:
        self.regen = regen

    def check(self, name: str, text: str) -> None:
        """Compare ``text`` with ``tests/golden/<name>`` (or rewrite it with --regen-golden)."""
        path = GOLDEN_DIR / name
        if self.regen or os.environ.get("STRIDELAB_REGEN_GOLDEN"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        assert path.exists(), f"golden file {path} missing: run pytest --regen-golden"
        expected = path.read_text(encoding="utf-8")
        assert text == expected, f"output differs from {path} (pytest --regen-golden to accept)"


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Golden:
    return Golden(bool(request.config.getoption("--regen-golden")))
