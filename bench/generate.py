"""Benchmark: how long and how much memory ``expand`` takes for N KusciaDeployments.

Run: ``.venv/bin/python bench/generate.py [N ...]`` (default 100 1000). Each KD has two
parties in two of 20 domains, sharing the seed's AppImage. Prints one row per N and exits 1
when a row misses its target (TARGETS), so the numbers are checked, not just printed.
"""

from __future__ import annotations

import resource
import sys
import time
import tracemalloc
from pathlib import Path

import yaml

from kdgen.expand import expand
from kdgen.load import Source, parse_sources
from kdgen.model import Options, PortMode, Profile
from kdgen.render import render_stream

REPO = Path(__file__).resolve().parent.parent
IMAGE = REPO / "examples" / "secretflow-serving" / "secretflow-serving-image.yaml"
TARGETS = {100: (0.5, 16), 1000: (5.0, 128)}
"""N -> (seconds, MiB of traced peak allocation) that a run must stay under."""


def kd_stream(count: int) -> str:
    documents = []
    for i in range(count):
        alice, bob = f"domain-{i % 20}", f"domain-{(i + 7) % 20}"
        documents.append(
            {
                "apiVersion": "kuscia.secretflow/v1alpha1",
                "kind": "KusciaDeployment",
                "metadata": {
                    "name": f"serving-{i:04d}",
                    "namespace": "cross-domain",
                    "labels": {"kuscia.secretflow/app-type": "serving"},
                },
                "spec": {
                    "initiator": alice,
                    "inputConfig": '{"partyConfigs":{}}',
                    "parties": [
                        {"appImageRef": "secretflow-serving-image", "domainID": alice},
                        {"appImageRef": "secretflow-serving-image", "domainID": bob},
                    ],
                },
            }
        )
    return yaml.safe_dump_all(documents)


def run(count: int, options: Options) -> tuple[float, float, int]:
    """Return seconds, traced peak MiB and output bytes for ``count`` KDs.

    Time and memory come from two separate runs: tracing every allocation slows Python
    several times over, so a timed run under tracemalloc measures tracemalloc.
    """
    sources = [Source("kds.yaml", kd_stream(count)), Source("image.yaml", IMAGE.read_text())]
    start = time.perf_counter()
    stream = render_stream(expand(parse_sources(sources), options).manifests)
    elapsed = time.perf_counter() - start
    tracemalloc.start()
    traced = render_stream(expand(parse_sources(sources), options).manifests)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    assert traced == stream, "two runs over the same input gave different bytes"
    return elapsed, peak, len(stream)


def main(counts: list[int]) -> int:
    failed = False
    print(f"{'KDs':>6} {'profile':>8} {'ports':>10} {'seconds':>8} {'peak MiB':>9} {'bytes':>10}")
    for count in counts:
        for profile, ports in (
            (Profile.KUSCIA, PortMode.DECLARED),
            (Profile.PLAIN, PortMode.ALLOCATED),
        ):
            elapsed, peak, size = run(count, Options(profile=profile, ports=ports))
            limit = TARGETS.get(count)
            over = limit is not None and (elapsed > limit[0] or peak > limit[1])
            failed |= over
            mark = "  OVER TARGET" if over else ""
            print(
                f"{count:>6} {profile.value:>8} {ports.value:>10} {elapsed:>8.2f} "
                f"{peak:>9.1f} {size:>10}{mark}"
            )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process max RSS: {rss:.0f} MiB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main([int(a) for a in sys.argv[1:]] or [100, 1000]))
