"""Peak memory of decoding each accepted in-limits bomb of the hostile corpus at the default limits, one fresh
process per case (VmHWM; tracemalloc does not see Pillow's C allocations), and how long it took.

    .venv/bin/python -m bench.decode_memory
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT
from pipeline.core.settings import Settings
from tests.hostile_images import bombs

_ONE_DECODE = """
import sys, time
from pipeline.core.settings import Settings
from pipeline.vision.imaging import decode_image
data = open(sys.argv[1], "rb").read()
settings = Settings()
def high_water():  # not ru_maxrss, which a child inherits from its parent across fork and exec
    with open("/proc/self/status") as lines:
        return next(int(line.split()[1]) for line in lines if line.startswith("VmHWM:"))
baseline = high_water()
started = time.monotonic()
decode_image(data, settings, max_bytes=settings.max_training_image_bytes)
seconds = time.monotonic() - started
peak = high_water()
print((peak - baseline) // 1024, round(seconds, 2))
"""


def main() -> None:
    settings = Settings()
    side = settings.max_image_side
    print(f"{'case':34} {'file KB':>8} {'peak MiB':>9} {'seconds':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for case in bombs(side, settings):
            path = Path(folder) / "case"
            path.write_bytes(case.data)
            done = subprocess.run(
                [sys.executable, "-W", "ignore", "-c", _ONE_DECODE, str(path)],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            peak, seconds = done.stdout.split() if done.returncode == 0 else ("refused", "-")
            print(f"{case.name:34} {len(case.data) // 1024:>8} {peak:>9} {seconds:>8}")


if __name__ == "__main__":
    main()
