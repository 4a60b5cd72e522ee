"""The status-sync benchmark, small, so it never rots (issue 11 item 8).

``bench/status_sync.py`` starts its own control plane; here it runs with 20 KDs over 2
namespaces and 10 watch changes and must write its table and plot. Its targets are reported,
not enforced: timings on a shared machine are noisy, and ``bench/results/`` holds the full run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_small_status_sync_benchmark_writes_its_table_and_plot(tmp_path: Path) -> None:
    argv = [sys.executable, "bench/status_sync.py", "--kds", "20", "--namespaces", "2"]
    argv += ["--changes", "10", "--out", str(tmp_path), "--no-fail"]
    done = subprocess.run(
        argv, cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    table = (tmp_path / "status-sync.md").read_text(encoding="utf-8")
    # What does not depend on the machine's speed holds even at this size.
    assert "| idle pass writes 0 | 0 | pass |" in table
    assert "| generator runs without the status-sync extra installed | True | pass |" in table
    assert (tmp_path / "status-sync.png").read_bytes().startswith(b"\x89PNG")
