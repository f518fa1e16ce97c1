"""``import stridelab.ops`` must not import torch (the engine is NumPy only)."""

from __future__ import annotations

import subprocess
import sys


def test_import_does_not_load_torch() -> None:
    code = ("import sys, numpy as np, stridelab.ops as ops; "
            "ops.conv(np.ones((1, 1, 4)), np.ones((1, 1, 2)), stride=2); "
            "ops.max_pool(np.ones((1, 1, 4)), 2); "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
