"""``stridelab erf resnet18 --input 3x224x224 --plot erf.png`` end to end, as a user runs it.

Runs the command in a fresh process (imports included) and prints its wall time and CPU time
(user + system of the child, so a machine shared with other jobs shows in the gap between the
two). Target from issue 13: < 10 s wall on 2 cores with 8 samples. Never asserts on time.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        plot = Path(folder) / "erf.png"
        command = [sys.executable, "-m", "stridelab", "erf", "resnet18", "--input", "3x224x224",
                   "--samples", "8", "--plot", str(plot)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=os.environ.copy())
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        print("command                                            wall s   cpu s   load (1 min)")
        print(f"stridelab erf resnet18 --input 3x224x224 --plot  {wall:7.2f} {cpu:7.2f} "
              f"{os.getloadavg()[0]:10.2f}")


if __name__ == "__main__":
    main()
