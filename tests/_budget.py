"""Example counts for property tests: ``make test`` uses the base, ``make fuzz`` ten times more."""

from __future__ import annotations

import os

FUZZ_FACTOR = 10


def budget(examples: int) -> int:
    """``examples`` in ``make test``; ``FUZZ_FACTOR`` times as many under ``STRIDELAB_FUZZ=1``."""
    return examples * FUZZ_FACTOR if os.environ.get("STRIDELAB_FUZZ") else examples
