"""The GPU cold-start session: the library's own studies at full size, many runs in parallel on one GPU.

    OUT=/some/dir python benchmarks/gpu_cold_start.py      # GPU_SESSION_WORKERS (default 12) processes

Runs `tsallis llm study all --size full` (testbed measurement, SGD learning-rate sweep, escape runs under
AdamW and SGD, label noise with the q = 1 -> 0 schedule) into $OUT/study; every number comes from the same
`tsallis.llm.experiments.run_*` functions as on CPU. Started by `benchmarks/gpu_session.sh` after the speed
benchmark; on CPU it is the same command, only slower.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    from tsallis.cli import main as tsallis

    out = Path(os.environ.get("OUT", "runs/gpu_session")) / "study"
    workers = os.environ.get("GPU_SESSION_WORKERS", "12")
    size = os.environ.get("GPU_SESSION_SIZE", "full")
    return tsallis(["llm", "study", "all", "--size", size, "--workers", workers, "--out", str(out), "--overwrite"])


if __name__ == "__main__":
    raise SystemExit(main())
